"""Split fine-tuning: retrain the host part on JPEG-coded features so that it tolerates a lower QF.

The edge part stays frozen (it is the int16 engine network, :func:`golden.quantize.run_fast`, so the
features are exactly what the engine sends). The host part -- the float layers after the split -- is
trained on the **training split only** (digits training split; CIFAR-10 training tarball), on features
that went through the real codec round trip at a QF drawn uniformly per image and per epoch from
``qf_range`` (default 30..35): :class:`model.accuracy.SplitCodec`, i.e. the bit-exact reference encoder's
quantized coefficients and the reference decoder's reconstruct path (:func:`golden.jpeg.reconstruct`,
equal to :func:`golden.jpeg.decode_jpeg` on the bytes; tested), unpacked and dequantised to int16 by
:func:`golden.featpack.unpack`. Each training image's DCT is computed once; each epoch re-quantizes it
at that epoch's QF (cheap), so nothing is approximated and nothing large is cached.

Training: SGD with momentum, cosine learning-rate decay to 0 over the run, cross-entropy on the labels,
the host kept in ``eval`` mode (BatchNorm running statistics frozen, dropout off; all its parameters
train), 2 torch threads. Short schedules (a few epochs over a subset of the training images) are enough
to move the budget point.

Control: the same recipe (the same seed, so the same batch order and initial RNG state; the same training
images, epochs, learning rate and schedule, batch size, and a fresh copy of the original host) on the **uncoded**
int16 training features. Fine-tuning can change the host's top-1 on exact features too (on CIFAR-10 it rises:
training on the JPEG CIFAR-10 training files adapts the checkpoint, trained on the lossless originals, to the
JPEG test files); the control host gets that part of the change and none of the coding, so the coded host against
the control is the gain due to the coding alone (``--no-control`` / ``control=False`` skips it: half the time).

Report (:func:`finetune`): on the held-out **test** split, the encoding study of the split
(:func:`model.accuracy.study_split`, the same coarse-to-fine QF search) for three hosts -- ``before`` (the
original host), ``control`` and ``after`` (the coded fine-tune) -- all with the budget counted from the same
reference, the original int16 network's top-1 on uncoded features (``int16_top1``): the largest lossy ratio
within the budget, its QF and top-1, and each host's top-1 on uncoded features. ``gain_percent = 100 *
(after / before - 1)`` of that ratio (the paper: +11% at AlexNet conv5) and ``gain_due_to_coding = 100 *
(after / control - 1)`` (percent). ``after_own_reference`` / ``control_own_reference`` count the budget from
each host's own uncoded top-1 instead (``gain_percent_own_reference``,
``gain_due_to_coding_own_reference``); ``references`` names the reference of every block.

Any network (a built-in name or a :class:`golden.network.Network`: ``--net PATH.onnx``, ``PATH.py:FACTORY``);
a user network needs its data (``data``: an image folder or tar.gz with ``train/`` and ``test/``, see
:mod:`model.accuracy`) and is calibrated on its training images.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from golden import files, jpeg, limits
from golden.errors import UserError
from golden.network import INPUT, Network
from golden.network import network as as_network
from golden.quantize import QNet, run_fast
from model import accuracy as A

DEFAULT_QF_RANGE = (30, 35)


@dataclass(frozen=True)
class FinetuneConfig:
    """The training recipe (module docstring)."""

    qf_range: tuple[int, int] = DEFAULT_QF_RANGE
    epochs: int = 3
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    seed: int = 0
    threads: int = 2

    def check(self) -> FinetuneConfig:
        lo, hi = self.qf_range
        jpeg.check_qf(lo)
        jpeg.check_qf(hi)
        if lo > hi:
            raise UserError(f"QF range {lo}..{hi} is empty (the first QF must not exceed the second)")
        for what, value, bound in (("--epochs", self.epochs, limits.EPOCHS), ("--lr", self.lr, limits.LEARNING_RATE),
                                   ("--batch-size", self.batch_size, limits.BATCH_SIZE),
                                   ("threads", self.threads, limits.THREADS), ("--seed", self.seed, limits.SEED)):
            bound.check(value, what)
        if not (0 <= self.momentum < 1 and 0 <= self.weight_decay < 1):
            raise UserError(f"momentum {self.momentum!r} and weight decay {self.weight_decay!r} must be in [0, 1)")
        return self


def _to_float(codec: A.SplitCodec, values: np.ndarray, frac: int | None, norm: A.InputNorm) -> np.ndarray:
    if codec.kind == "image":
        return norm.from_u8(values)
    return values.astype(np.float32) * np.float32(2.0**-frac)


def coded_epoch(codec: A.SplitCodec, qfs: np.ndarray, chunk: int = 500) -> np.ndarray:
    """Every image of ``codec`` through the JPEG round trip at its own QF ``qfs[i]`` (decoded values)."""
    out = np.empty_like(codec.values[:0], shape=(codec.n, *codec.tensor_shape))
    for qf in np.unique(qfs):
        idx = np.flatnonzero(qfs == qf)
        for part in A._chunks(idx, chunk):
            out[part] = codec.jpeg(int(qf), part, decode=True)[1]
    return out


def train_host(host: nn.Module, codec: A.SplitCodec, y: np.ndarray, frac: int | None, norm: A.InputNorm,
               config: FinetuneConfig, progress: A.Progress | None = None, coded: bool = True
               ) -> list[dict[str, float]]:
    """Train ``host`` (in place) on ``codec``'s values coded at random QFs in ``config.qf_range``
    (``coded`` False: on the uncoded values themselves -- the control -- with the same random stream, so the
    same QF draws are made and discarded and the batches come in the same order); returns per-epoch mean loss
    and training top-1 (on the features it trained on: ``train_top1_coded`` or ``train_top1_uncoded``)."""
    progress = progress or A.Progress("", enabled=False)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    params = [p for p in host.parameters()]
    if not params:
        raise UserError("the host part has no parameters to train (the last split sends the logits)")
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(codec.n / config.batch_size)
    total = steps_per_epoch * config.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    y_t = torch.from_numpy(np.asarray(y, dtype=np.int64))
    lo, hi = config.qf_range
    what = "coded" if coded else "uncoded"
    uncoded = None if coded else torch.from_numpy(_to_float(codec, codec.values, frac, norm))
    history = []
    host.eval()  # BatchNorm statistics frozen, dropout off; the parameters still train
    for epoch in range(config.epochs):
        qfs = rng.integers(lo, hi + 1, size=codec.n)  # drawn by the control too: the same stream below
        if coded:
            progress.update(f"epoch {epoch + 1}/{config.epochs}: coding {codec.n} training features", force=True)
            feats = torch.from_numpy(_to_float(codec, coded_epoch(codec, qfs), frac, norm))
        else:
            feats = uncoded
        order = torch.from_numpy(rng.permutation(codec.n))
        loss_sum, correct = 0.0, 0
        for k in range(steps_per_epoch):
            idx = order[k * config.batch_size : (k + 1) * config.batch_size]
            logits = host(feats[idx])
            loss = F.cross_entropy(logits, y_t[idx])
            if not torch.isfinite(loss):
                raise UserError(f"fine-tuning diverged at epoch {epoch + 1}, step {k + 1} (loss {float(loss)}): "
                                f"lower --lr (now {config.lr:g})")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y_t[idx]).sum())
            if k % 20 == 0:
                progress.update(f"epoch {epoch + 1}/{config.epochs}: step {k}/{steps_per_epoch} "
                                f"loss {loss_sum / max(1, (k + 1) * config.batch_size):.3f}")
        history.append({"epoch": epoch + 1, "loss": loss_sum / codec.n, f"train_top1_{what}": correct / codec.n})
        progress.update(f"epoch {epoch + 1}: loss {history[-1]['loss']:.4f}, {what} train top-1 "
                        f"{100 * history[-1][f'train_top1_{what}']:.2f}%", force=True)
    for p in params:
        p.requires_grad_(False)
    return history


def split_values(qnet: QNet, x: np.ndarray, split: str, norm: A.InputNorm, batch: int = 500,
                 progress: A.Progress | None = None) -> np.ndarray:
    """What the edge sends at ``split`` for images ``x``: uint8 camera images at the input split, else the
    int16 features of the int16 network."""
    if split == INPUT:
        return norm.to_u8(x)
    return A.int16_features(qnet, x, split, batch, progress)


KEEP = ("lossy_ratio_at_budget", "qf_at_budget", "top1_at_budget", "bytes_at_budget", "loss_at_budget",
        "top1_uncoded", "evaluated")
"""The fields of each study kept in the result (``evaluated``: the searched QF points, full JSON only)."""

REFERENCES = {
    "before": "int16_top1", "control": "int16_top1", "after": "int16_top1",
    "control_own_reference": "control.top1_uncoded", "after_own_reference": "after.top1_uncoded",
}
"""Which top-1 each block's budget is counted from: the original int16 network's top-1 on uncoded test
features (the same for before, control and after, so their ratios compare), or the host's own."""


def _gain(new: float | None, old: float | None) -> float | None:
    """``100 * (new / old - 1)``; None if either ratio is missing (no QF within the budget)."""
    return 100.0 * (new / old - 1.0) if new and old else None


def finetune(net: str | Network, split: str, config: FinetuneConfig | None = None, limit_train: int | None = None,
             limit: int | None = None, weights: str | os.PathLike | None = None,
             data: str | os.PathLike | None = None, study_config: A.StudyConfig | None = None,
             progress: A.Progress | None = None, save: str | os.PathLike | None = None,
             norm: A.InputNorm | None = None, resize: int | None = None, control: bool = True) -> dict[str, Any]:
    """Fine-tune the host part of ``net`` after ``split`` and measure the budget point before and after on
    the test split, beside the control host trained on uncoded features (module docstring). ``net``: a
    built-in name or a Network (its weights, or ``weights``). ``limit_train``/``limit``: training/test images
    (evenly spaced; None = all). ``norm`` / ``resize``: how the images are read
    (:func:`model.accuracy.load_dataset`). ``save``: write the whole network's state_dict with the (coded)
    fine-tuned host there. ``control`` False: no control (half the training and evaluation time)."""
    config = (config or FinetuneConfig()).check()
    study_config = (study_config or A.StudyConfig()).check()
    nw = as_network(net)
    if weights is not None:
        nw = nw.with_weights(weights)
    sp = nw.split(split)
    if split == nw.split_names[-1]:
        raise UserError(f"split {split!r} sends the logits: there is no host part to fine-tune")
    name = nw.name
    progress = progress or A.Progress("", enabled=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    t0 = time.monotonic()
    try:
        progress.update(f"loading {name} training and test images", force=True)
        src_train, src_test = A.data_source(nw, data, "train"), A.data_source(nw, data, "test")
        if src_train is not None and src_train == src_test:
            raise UserError(f"the training and the test images both come from {src_test}: fine-tuning needs a "
                            "separate training split (a folder with train/ and test/, or the shared tarballs)")
        x_tr, y_tr = A.load_dataset(nw, data, "train", limit_train, norm, resize)
        x_te, y_te = A.load_dataset(nw, data, "test", limit, norm, resize)
        module, qnet = A.network(nw, None, data, progress,
                                 calib=None if nw.is_builtin else A.user_calibration(x_tr))
        norm = norm or A.input_norm(nw)
        b = study_config.batch_size
        frac = None if split == INPUT else qnet.split_frac(split)

        # test side: the features, the references
        from golden.nets import predict as float_predict

        float_top1 = float(np.mean(float_predict(module, x_te, b) == y_te))
        test_vals = split_values(qnet, x_te, split, norm, b, progress)
        if split == INPUT:
            int16_logits = A.int16_features(qnet, x_te, None, b, progress)
        else:
            int16_logits = np.concatenate([run_fast(qnet, test_vals[i : i + b], start=split)
                                           for i in range(0, len(test_vals), b)])
        int16_top1 = float(np.mean(int16_logits.argmax(1) == y_te))
        kind = "image" if split == INPUT else "feature"
        test_codec = A.SplitCodec(test_vals, kind, study_config.mode, study_config.container,
                                  study_config.lossless_table)
        before_host = nw.host_model(module, split)

        def study(host: nn.Module, label: str, own: bool = True) -> tuple[dict[str, Any], dict[str, Any] | None]:
            """The budget point of ``host`` against the int16 reference and (``own``) against its own uncoded
            top-1, reusing the first search's points (the size curve is not reported: skipped)."""
            task = A.make_task(qnet, split, test_vals, host, "float", b, norm)
            task.name = f"{label} {split}"
            cache: dict[int, dict[str, float]] = {}
            ref = A.study_split(task, y_te, int16_top1, study_config, progress, codec=test_codec, cache=cache,
                                curve=False)
            if not own:
                return ref, None
            return ref, A.study_split(task, y_te, ref["top1_uncoded"], study_config, progress, codec=test_codec,
                                      cache=cache, curve=False)

        before, _ = study(before_host, "before", own=False)

        # training: the same recipe and initial host, on uncoded (control) and on coded features
        progress.update(f"{split}: features of {len(x_tr)} training images", force=True)
        train_vals = split_values(qnet, x_tr, split, norm, b, progress)
        train_codec = A.SplitCodec(train_vals, kind, study_config.mode, study_config.container,
                                   study_config.lossless_table)
        runs: dict[str, dict[str, Any]] = {}
        for label, coded in (("control", False), ("coded", True)) if control else (("coded", True),):
            tuned_host = copy.deepcopy(before_host)
            t = time.monotonic()
            history = train_host(tuned_host, train_codec, y_tr, frac, norm, config,
                                 A._Prefixed(progress, f"{label} fine-tune"), coded=coded)
            seconds = round(time.monotonic() - t, 1)
            ref, own = study(tuned_host, label)
            runs[label] = {"host": tuned_host, "history": history, "train_seconds": seconds, "ref": ref, "own": own}
    finally:
        torch.set_num_threads(threads)

    def block(row: dict[str, Any], reference: str, train_seconds: float | None = None,
              fields: tuple[str, ...] = KEEP) -> dict[str, Any]:
        out = {k: row[k] for k in fields}
        out["reference"] = reference
        out["reference_top1"] = int16_top1 if reference == "int16_top1" else row["top1_uncoded"]
        if train_seconds is not None:
            out["train_seconds"] = train_seconds
        return out

    coded_run = runs["coded"]
    host = coded_run["host"]
    own_fields = tuple(k for k in KEEP if k != "evaluated")
    r0 = before["lossy_ratio_at_budget"]
    r1 = coded_run["ref"]["lossy_ratio_at_budget"]
    gain = _gain(r1, r0)
    result = {
        "net": name,
        "split": split,
        "feature_bytes": sp.feature_bytes,
        "raw_bytes": before["raw_bytes"],
        "lossless_ratio": before["lossless_ratio"],
        "train_images": int(len(x_tr)),
        "test_images": int(len(x_te)),
        "float_top1": float_top1,
        "int16_top1": int16_top1,
        "reference_top1": int16_top1,
        "budget": study_config.budget,
        "config": {**asdict(config), "qf_range": list(config.qf_range), "host": "float",
                   "mode": study_config.mode, "container": study_config.container, "control": control,
                   "codec": "golden reference encoder + reconstruct (= decode_jpeg), featpack.unpack to int16"},
        "references": {k: v for k, v in REFERENCES.items() if control or not k.startswith("control")},
        "before": block(before, "int16_top1"),
        "after": block(coded_run["ref"], "int16_top1", coded_run["train_seconds"]),
        "gain_percent": gain,
        "after_own_reference": block(coded_run["own"], "after.top1_uncoded", fields=own_fields),
        "gain_percent_own_reference": _gain(coded_run["own"]["lossy_ratio_at_budget"], r0),
        "gain_due_to_coding": None,
        "gain_due_to_coding_own_reference": None,
        "history": coded_run["history"],
    }
    if control:
        ctrl = runs["control"]
        result.update(
            control=block(ctrl["ref"], "int16_top1", ctrl["train_seconds"]),
            control_own_reference=block(ctrl["own"], "control.top1_uncoded", fields=own_fields),
            gain_due_to_coding=_gain(r1, ctrl["ref"]["lossy_ratio_at_budget"]),
            gain_due_to_coding_own_reference=_gain(coded_run["own"]["lossy_ratio_at_budget"],
                                                   ctrl["own"]["lossy_ratio_at_budget"]),
            control_history=ctrl["history"],
        )
    result.update(weights=A.weights_text(nw), seconds=round(time.monotonic() - t0, 1))
    if not nw.is_builtin:
        result.update(source=nw.source, input_shape=list(nw.input_shape),
                      input_norm={"mean": list(norm.mean), "std": list(norm.std)})
    if save is not None:
        tuned = copy.deepcopy(module)
        nw.host_model(tuned, split).load_state_dict(host.state_dict())
        with files.atomic_path(save, "--save file") as tmp:
            torch.save({"state_dict": tuned.state_dict(), "finetune": {k: result[k] for k in ("net", "split")}}, tmp)
        result["saved"] = str(save)
    msg = f"{name} {split}: ratio within budget before {_r(r0)}"
    if control:
        msg += f", control {_r(result['control']['lossy_ratio_at_budget'])}"
    msg += f", coded {_r(r1)} ({_pct(gain)} vs before"
    msg += f", {_pct(result['gain_due_to_coding'])} vs control)" if control else ")"
    progress.done(msg)
    return result


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.1f}%"


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The short form (``--json``): everything but the per-QF points and the training histories."""
    out = {k: v for k, v in result.items() if k not in ("history", "control_history")}
    for k in ("before", "control", "after"):
        if k in result:
            out[k] = {f: v for f, v in result[k].items() if f != "evaluated"}
    return out


def format_result(result: dict[str, Any]) -> str:
    """The table of the three hosts (before / control / coded) against the int16 reference, the same two
    fine-tuned hosts against their own uncoded top-1 (starred), and the gains."""
    control = "control" in result

    def row(label: str, r: dict[str, Any]) -> str:
        qf = r["qf_at_budget"] if r["qf_at_budget"] is not None else "-"
        t = "-" if r["top1_at_budget"] is None else f"{100 * r['top1_at_budget']:.2f}%"
        s = "-" if r.get("train_seconds") is None else f"{r['train_seconds']:.1f}"
        return (f"{label:<9} {_r(r['lossy_ratio_at_budget']):>9} {qf!s:>4} {t:>8} {100 * r['top1_uncoded']:>8.2f}% "
                f"{100 * r['reference_top1']:>8.2f}% {s:>8}")

    lo, hi = result["config"]["qf_range"]
    budget = f"{100 * result['budget']:g}%"
    lines = [
        f"{result['net']} split {result['split']}: host fine-tuned {result['config']['epochs']} epochs on "
        f"{result['train_images']} training images coded at QF {lo}..{hi}"
        + (" (control: the same recipe on uncoded int16 features)" if control else " (no control)")
        + f"; test {result['test_images']} images, int16 top-1 {100 * result['int16_top1']:.2f}%, "
        f"budget {budget} top-1 loss",
        f"{'host':<9} {'lossy@' + budget:>9} {'QF':>4} {'top-1':>8} {'uncoded':>9} {'reference':>9} {'train s':>8}",
        row("before", result["before"]),
    ]
    if control:
        lines.append(row("control", result["control"]))
    lines.append(row("coded", result["after"]))
    if control:
        lines.append(row("control*", result["control_own_reference"]))
    lines.append(row("coded*", result["after_own_reference"]))
    lines.append("reference: before, control, coded: the int16 network's top-1 on uncoded features; "
                 "*: the host's own top-1 on uncoded features")
    gains = (f"gain in compression ratio at the budget: coded vs before {_pct(result['gain_percent'])} "
             f"(coded* vs before {_pct(result['gain_percent_own_reference'])})")
    if control:
        gains += (f"; due to coding, coded vs control {_pct(result['gain_due_to_coding'])} "
                  f"(coded* vs control* {_pct(result['gain_due_to_coding_own_reference'])})")
    lines.append(gains)
    return "\n".join(lines)


def write_result(result: dict[str, Any], out_dir: str | os.PathLike | None = None) -> Path:
    """Save ``<out>/<net>_finetune_<split>.json`` (atomically: complete or absent)."""
    out = Path(out_dir) if out_dir is not None else A.OUT_DIR
    return files.write_text(out / f"{result['net']}_finetune_{result['split']}.json", json.dumps(result, indent=1))


def check_outputs(out_dir: str | os.PathLike | None, save: str | os.PathLike | None,
                  inputs: list[tuple[str, str | None]]) -> None:
    """``--out`` and ``--save`` checked before any work (:mod:`golden.files`): a writable folder (created if
    missing), a file in an existing writable folder that is not one of the inputs."""
    A.check_out_dir(out_dir)
    if save is not None:
        files.check_output_file(save, "--save file", inputs=inputs)


__all__ = ["DEFAULT_QF_RANGE", "FinetuneConfig", "KEEP", "REFERENCES", "coded_epoch", "finetune", "format_result",
           "split_values", "summary", "train_host", "write_result"]
