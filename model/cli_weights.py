"""``edgesplit weights``: per-layer QF choice for the JPEG-coded weights (:mod:`model.weightqf`).

``edgesplit weights --net NET [--weights FILE] [--data DIR|FILE.tar.gz [--mean R,G,B] [--std R,G,B] [--resize N]]
[--input-shape C,H,W] [--budget 0.005] [--qf Q ...] [--search-images N] [--max-evals N] [--test-limit N]
[--qfs-from FILE] [--out DIR] [--json] [--no-plots] [--quiet] [--workers N | --scheduler tcp://HOST:PORT]``
    digits, resnet20, resnet56 and model files (``PATH.onnx``, ``PATH.py:FACTORY``, with ``--data``: they have
    no default data set): for every conv / FC layer the lowest QF of the grid such that the int16 network with
    all decoded weights loses at most the budget (absolute top-1) on the search subset (training split);
    top-1 before and after on the whole test split. alexnet, vgg16 (untrained default weights): ratio and
    weight error per layer per grid QF. ``--weights FILE``: a state_dict for a built-in or ``.py`` network.
    ``--data`` and the image options as ``edgesplit accuracy`` (:mod:`model.accuracy`). Writes
    ``build/weights/<net>.json`` and ``build/weights/<net>_ratio.png`` together (renamed into place at the end,
    the JSON last: complete or absent); prints a table (or with ``--json`` the JSON). Bad input (unknown
    network, budget outside 0..1, QF outside 1..100, an image count outside 1..1e7, a model file without
    ``--data``, an ``--out`` folder that cannot be written, checked before any work): one line on stderr, exit
    status 2.

    ``--workers N`` / ``--scheduler`` (:mod:`sim.cluster`; default ``$EDGESPLIT_WORKERS`` or one local worker per
    core, 1 = serially in this process): the layer sweeps (one piece per layer) and every top-1 evaluation (shards
    of whole batches of images) run on a Dask cluster, whose workers load the images, the int16 network and the
    decoded weights themselves; the same QFs, sizes and top-1 as the serial run.

    ``--qfs-from FILE`` (trained networks): no search; the per-layer QFs of FILE (a previous
    ``build/weights/<net>.json`` of the same network) are re-scored with the current codec: sizes, weight
    errors, top-1 on the search subset and the test split (``--qf``: the per_qf grid, default FILE's; the
    budget is FILE's). A missing or unreadable FILE, another network's file, layer names that do not match:
    one line on stderr, exit status 2, nothing written. FILE may be the very table the command writes
    (re-scoring in place): it is read whole at the start and replaced only by the complete new result.
"""

from __future__ import annotations

import json
import sys

from golden import limits
from model import weightqf as WQ
from model.cli_accuracy import image_options
from sim import cluster as CL


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "weights", help="JPEG-coded weights: per-layer QF within a top-1 budget, ratios per layer",
        description="Per-layer QF choice for the compressed weights (build/weights/<net>.json).")
    p.add_argument("--net", required=True,
                   help=f"network: {', '.join(WQ.NETS)}, or PATH.onnx / PATH.py:FACTORY with --data")
    p.add_argument("--weights", metavar="FILE", help="state_dict file for a built-in or .py network")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape of a model that does not fix it")
    p.add_argument("--data", metavar="DIR", help="labelled images (required for a model file): an image folder or "
                                                 "a .tar.gz of <class>/<image>, optionally under train/ and test/")
    p.add_argument("--mean", metavar="R,G,B", help=f"input normalisation mean, each {limits.NORM_MEAN.text()} "
                                                   "(default ImageNet's)")
    p.add_argument("--std", metavar="R,G,B", help=f"input normalisation std, each {limits.NORM_STD.text()} "
                                                  "(default ImageNet's)")
    p.add_argument("--resize", type=int, metavar="N",
                   help="scale the shorter side to N, then centre-crop to the input (default: see accuracy); at most "
                        f"{limits.RESIZE_PX.hi:g}")
    p.add_argument("--budget", type=float, default=None,
                   help=f"absolute top-1 loss budget (default {WQ.BUDGET})")
    p.add_argument("--qf", type=int, nargs="+", metavar="Q",
                   help=f"QF grid (default: {' '.join(map(str, WQ.QF_GRID))})")
    p.add_argument("--search-images", type=int, default=-1, metavar="N",
                   help=f"search subset size, evenly spaced over the training split, {limits.IMAGE_COUNT.text()} "
                        "(default: per network)")
    p.add_argument("--search-split", choices=("train", "test"),
                   help="split of the search subset (default: train for CIFAR-10, test for digits)")
    p.add_argument("--max-evals", type=int, default=-1, metavar="N",
                   help=f"cap on network evaluations, {limits.IMAGE_COUNT.text()}")
    p.add_argument("--test-limit", type=int, metavar="N",
                   help=f"test images for the final top-1, {limits.IMAGE_COUNT.text()} (default: all)")
    p.add_argument("--qfs-from", metavar="FILE",
                   help="no search: re-score the per-layer QFs of a previous build/weights/<net>.json of this "
                        "network with the current codec (trained networks)")
    p.add_argument("--out", metavar="DIR", help="output folder, created if missing (default build/weights)")
    p.add_argument("--json", action="store_true", help="print the JSON result")
    p.add_argument("--no-plots", action="store_true", help="write the JSON only")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    CL.add_arguments(p)
    p.set_defaults(func=cmd_weights)


def cmd_weights(args) -> int:
    from golden.network import load_network

    for name, v in (("--search-images", args.search_images), ("--max-evals", args.max_evals),
                    ("--test-limit", args.test_limit)):
        if v is not None and v != -1:
            if v < 1:
                raise WQ.UserError(f"{name} {v} must be a positive number")
            limits.IMAGE_COUNT.check(v, name)
    WQ.check_budget(args.budget if args.budget is not None else WQ.BUDGET)
    if args.qf:
        WQ.check_grid(args.qf)
    WQ.check_out_dir(args.out)
    cluster = CL.from_args(args)
    nw = WQ.check_net(load_network(args.net, weights=args.weights, input_shape=args.input_shape))
    norm, resize = image_options(nw, args)
    data = WQ.check_data(nw, WQ.ImageData(args.data, norm, resize))
    budget = WQ.check_budget(args.budget if args.budget is not None else WQ.BUDGET)
    grid = WQ.check_grid(args.qf) if args.qf else None
    for name, v in (("--search-images", args.search_images), ("--max-evals", args.max_evals),
                    ("--test-limit", args.test_limit)):
        if v is not None and v != -1 and v < 1:
            raise WQ.UserError(f"{name} {v} must be a positive number")
    if args.qfs_from is not None:
        for name, given in (("--budget", args.budget is not None), ("--max-evals", args.max_evals != -1)):
            if given:
                raise WQ.UserError(f"{name} does not apply with --qfs-from (no search; the budget is the file's)")
        if not WQ.is_trained(nw):
            raise WQ.UserError(f"--qfs-from applies to the trained networks ({', '.join(WQ.TRAINED_NETS)}) and "
                               f"model files, not {nw.name!r}")
        WQ.load_qfs(args.qfs_from, nw)  # bad input fails here, before any work

    def log(msg: str) -> None:
        if not args.quiet:
            print(f"weights {nw.name}: {msg}", file=sys.stderr, flush=True)

    result = WQ.run(nw, budget, grid, args.search_images, args.max_evals, args.test_limit, log,
                    args.search_split, args.qfs_from, data, cluster)
    paths = WQ.write(result, args.out, plots=not args.no_plots)
    if args.json:
        print(json.dumps(result))
    else:
        print(WQ.format_table(result))
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
