"""``edgesplit accuracy`` and ``edgesplit finetune``: the encoding study and split fine-tuning on real data.

``edgesplit accuracy --net NET [--weights FILE] [--input-shape C,H,W] [--data DIR] [--mean R,G,B] [--std R,G,B]
[--resize N] [--split S ...] [--limit N] [--json] [--workers N | --scheduler tcp://HOST:PORT]``
    For every split (or the ``--split`` ones): float and int16 top-1, the lossless ratio, the JPEG ratio for
    QF 1..100, top-1 along a coarse-to-fine QF search, and the largest ratio within 1% top-1 loss and its
    QF (:mod:`model.accuracy`). Writes ``build/accuracy/<net>.json`` (rows of an earlier run with the same
    setup are kept for splits not run now) and the plots ``<net>_compression.png`` (Fig. 4(b)) and
    ``<net>_top1_vs_ratio.png`` (Fig. 5(b)). Prints a table, or with ``--json`` one JSON object with
    ``net, float_top1, int16_top1, splits: [{name, feature_bytes, lossless_ratio, lossy_ratio_at_budget,
    qf_at_budget, top1_at_budget, ...}]``.

``edgesplit finetune --net NET --split S [--qf-range 30 35] [--epochs E] [--limit-train N] [--limit N]
[--no-control] [--save FILE] [--json]``
    Freezes the edge part, trains the host part on training-split features coded at a random QF in the
    range and, as the control, a fresh copy of it with the same recipe on the uncoded features
    (``--no-control`` skips it), and reports on the test split the largest ratio within 1% loss of the
    original, the control and the coded host (all against the int16 network's top-1), the gain over the
    original and the gain due to coding (over the control) (:mod:`model.finetune`, ``docs/finetune.md``).
    Writes ``build/accuracy/<net>_finetune_<split>.json``; ``--save`` the network with the coded host.

``NET``: a built-in name, ``PATH.onnx`` or ``PATH.py:FACTORY`` (:mod:`golden.network`), resolved once;
``--weights FILE`` a state_dict for a built-in or ``.py`` network (an ONNX model carries its own);
``--input-shape C,H,W`` for a model that does not fix it.

``DIR``: a data folder with the shared CIFAR-10 tarballs, one tar.gz, or an ImageFolder-style tree
(``<class>/<image>`` or ``<split>/<class>/<image>``; a tar.gz may hold ``train/`` and ``test/`` too). Default:
digits from scikit-learn, CIFAR-10 from ``$EDGESPLIT_DATA`` or ``../shared/data``; a model file has no default
data set (``--data`` is required). ``--mean`` / ``--std`` (per channel on [0, 1]; default ImageNet's) and
``--resize N`` (shorter side to N, then the centre crop; default: straight to H x W, or the 256/224 rule for
224 x 224 inputs) say how the images are read (:mod:`model.accuracy`). ``--limit N`` takes N test images
evenly spaced over the set. Progress goes to stderr (``--quiet`` silences it). An unknown network or split, a
weight file whose keys do not match (the first missing and unexpected key are named), an empty, missing or
damaged data folder or archive, an image that cannot be decoded, a model file without ``--data``, a number
outside its bound (:mod:`golden.limits`: ``--lr`` above 0 up to 10, ``--epochs`` 1..1000, ``--batch-size``
1..4096, image counts 1..1e7, ``--mean`` 0..1, ``--std`` 0.001..1, ``--resize`` up to 4096), an ``--out``
folder or ``--save`` file that cannot be written (checked before any work; ``--save`` must not be an input):
one line on stderr, exit status 2. Results are written atomically: the study's JSON and its plots appear
together or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from golden import limits
from model import accuracy as A
from model import finetune as FT
from sim import cluster as CL


def register(subparsers) -> None:
    acc = subparsers.add_parser(
        "accuracy", help="feature-encoding study: lossless and JPEG ratios per split within 1%% top-1 loss",
        description="For each split of a network: float/int16 top-1, lossless ratio, JPEG ratio and top-1 "
                    "over QF 1..100, and the largest ratio within the accuracy budget (build/accuracy/).")
    _common(acc)
    acc.add_argument("--split", nargs="+", action="extend", metavar="S", help="split point(s) (default: all)")
    acc.add_argument("--curve-images", type=int, default=A.DEFAULT_CURVE_IMAGES, metavar="N",
                     help=f"images for the 100-QF size curve, {limits.IMAGE_COUNT.text()} "
                          f"(default {A.DEFAULT_CURVE_IMAGES})")
    acc.add_argument("--search-images", type=int, default=A.DEFAULT_SEARCH_IMAGES, metavar="N",
                     help=f"with more test images than N, the coarse QF search runs on N evenly spaced ones and "
                          f"only its last steps on all; {limits.IMAGE_COUNT.text()} (default "
                          f"{A.DEFAULT_SEARCH_IMAGES:,})")
    acc.add_argument("--no-plots", action="store_true", help="write the JSON only")
    acc.add_argument("--resume", action="store_true",
                     help="reuse the splits a study of the same setup (network, weights, images, encoding, budget, "
                          "search) saved in the output folder, e.g. one stopped part-way: every finished split is "
                          "saved as it comes")
    CL.add_arguments(acc)
    acc.set_defaults(func=cmd_accuracy)

    ft = subparsers.add_parser(
        "finetune", help="split fine-tuning: retrain the host part on JPEG-coded features, report the gain",
        description="Freeze the edge part, train the host part on training-split features coded at a QF drawn "
                    "from a range (and, as the control, on uncoded features), and report the largest ratio "
                    "within the budget before, after the control and after coded fine-tuning on the test split.")
    _common(ft)
    ft.add_argument("--split", required=True, metavar="S", help="split point")
    ft.add_argument("--qf-range", nargs=2, type=int, default=list(FT.DEFAULT_QF_RANGE), metavar=("LO", "HI"),
                    help="training QFs, drawn uniformly per image and epoch (default 30 35)")
    ft.add_argument("--epochs", type=int, default=FT.FinetuneConfig.epochs,
                    help=f"training epochs, {limits.EPOCHS.text()} (default 3)")
    ft.add_argument("--limit-train", type=int, default=10000, metavar="N",
                    help=f"training images, evenly spaced over the training split, {limits.IMAGE_COUNT.text()} "
                         "(default 10000)")
    ft.add_argument("--lr", type=float, default=FT.FinetuneConfig.lr,
                    help=f"SGD learning rate, {limits.LEARNING_RATE.text()} (default 0.001)")
    ft.add_argument("--batch-size", type=int, default=FT.FinetuneConfig.batch_size,
                    help=f"{limits.BATCH_SIZE.text()} (default 128)")
    ft.add_argument("--seed", type=int, default=0, help=f"{limits.SEED.text()} (default 0)")
    ft.add_argument("--save", metavar="FILE", help="save the network's state_dict with the fine-tuned host (its "
                                                   "folder must exist; not an input file)")
    ft.add_argument("--no-control", action="store_true",
                    help="skip the control host trained on uncoded features (half the time; no gain due to coding)")
    ft.set_defaults(func=cmd_finetune)


NET_HELP = ("network: a built-in name (alexnet, vgg16, resnet50, resnet20, resnet56, digits, mobilenetv2, "
            "squeezenet1_1, resnet18, mobilenetv2_cifar), PATH.onnx or PATH.py:FACTORY")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--net", required=True, help=NET_HELP)
    p.add_argument("--weights", metavar="FILE", help="state_dict file for a built-in or .py network "
                                                     "(torchvision-compatible keys for the built-ins)")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape of a model that does not fix it")
    p.add_argument("--data", metavar="DIR", help="data folder, tar.gz or ImageFolder tree (<class>/<image>, "
                                                 "optionally under train/ and test/); required for a model file")
    p.add_argument("--mean", metavar="R,G,B", help=f"input normalisation mean on [0, 1], each "
                                                   f"{limits.NORM_MEAN.text()} (default ImageNet's)")
    p.add_argument("--std", metavar="R,G,B", help=f"input normalisation std, each {limits.NORM_STD.text()} "
                                                  "(default ImageNet's)")
    p.add_argument("--resize", type=int, metavar="N",
                   help="scale the shorter side to N, then centre-crop to the input (default: straight to H x W; "
                        f"the 256/224 rule for 224x224 inputs); at most {limits.RESIZE_PX.hi:g}")
    p.add_argument("--limit", type=int, metavar="N",
                   help=f"test images, evenly spaced, {limits.IMAGE_COUNT.text()} (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--mode", default=A.DEFAULT_MODE, help=f"JPEG feature scaling: layer or channel "
                                                          f"(default {A.DEFAULT_MODE})")
    p.add_argument("--container", default=A.DEFAULT_CONTAINER, help="transmitted JPEG form: scan (side info + "
                                                                    "entropy-coded segment) or jfif")
    p.add_argument("--budget", type=float, default=A.BUDGET, help="absolute top-1 loss budget (default 0.01)")
    p.add_argument("--out", metavar="DIR", help="output folder, created if missing (default build/accuracy)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _threads() -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))


def _counts(args, *names: str) -> None:
    """Image counts checked before any work."""
    for name in ("limit", *names):
        value = getattr(args, name.replace("-", "_"))
        if value is not None and not limits.IMAGE_COUNT.ok(value):
            raise A.UserError(f"--{name} {value} must be a positive number, at most {limits.IMAGE_COUNT.hi:,}")


def _model_file(spec: str) -> str | None:
    if spec.endswith(".onnx"):
        return spec
    return spec.rpartition(":")[0] if ".py:" in spec else None


def _inputs(args) -> list[tuple[str, str | None]]:
    return [("--net", _model_file(args.net)), ("--weights", args.weights), ("--data", args.data)]


def _network(args):
    """``--net`` (with ``--weights``, ``--input-shape``) resolved once: the Network every step takes. A model
    file without ``--data`` fails here, before any work."""
    from golden.network import load_network

    nw = load_network(args.net, weights=args.weights, input_shape=args.input_shape)
    if nw.dataset is None and args.data is None:
        raise A.no_data_error(nw)
    return nw


def image_options(nw, args) -> tuple[A.InputNorm | None, int | None]:
    """``--mean`` / ``--std`` (None: the network's default normalisation) and ``--resize``, checked."""
    norm = A.input_norm(nw, args.mean, args.std) if args.mean is not None or args.std is not None else None
    return norm, A.check_resize(args.resize, nw.input_shape)


def cmd_accuracy(args) -> int:
    _threads()
    config = A.StudyConfig(budget=args.budget, mode=args.mode, container=args.container,
                           curve_images=args.curve_images, search_images=args.search_images).check()
    _counts(args, "curve-images", "search-images")
    cluster = CL.from_args(args)
    A.check_out_dir(args.out)
    nw = _network(args)
    norm, resize = image_options(nw, args)
    progress = A.Progress(f"edgesplit accuracy {nw.name}", enabled=not args.quiet)
    result, paths = A.run(nw, None, args.data, args.split, args.limit, config, args.out,
                          plots=not args.no_plots, progress=progress, norm=norm, resize=resize, cluster=cluster,
                          resume=args.resume)
    if args.json:
        out = A.summary(result)
        out["files"] = {k: str(v) for k, v in paths.items()}
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(A.format_table(result))
        for k, v in paths.items():
            print(f"{k}: {v}")
    return 0


def cmd_finetune(args) -> int:
    _threads()
    study = A.StudyConfig(budget=args.budget, mode=args.mode, container=args.container).check()
    config = FT.FinetuneConfig(qf_range=tuple(args.qf_range), epochs=args.epochs, lr=args.lr,
                               batch_size=args.batch_size, seed=args.seed).check()
    _counts(args, "limit-train")
    FT.check_outputs(args.out, args.save, _inputs(args))
    nw = _network(args)
    norm, resize = image_options(nw, args)
    progress = A.Progress(f"edgesplit finetune {nw.name} {args.split}", enabled=not args.quiet)
    result = FT.finetune(nw, args.split, config, limit_train=args.limit_train, limit=args.limit,
                         data=args.data, study_config=study, progress=progress, save=args.save, norm=norm,
                         resize=resize, control=not args.no_control)
    path = FT.write_result(result, args.out)
    if args.json:
        out = FT.summary(result)
        out["file"] = str(path)
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(FT.format_result(result))
        print(f"json: {path}")
    return 0
