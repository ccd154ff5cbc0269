"""Training a network from scratch on the shared CIFAR-10 training JPEGs (``edgesplit train``).

Trainable: ``mobilenetv2_cifar`` (:class:`golden.nets.cifar_mobilenetv2.CifarMobileNetV2`, any width).

Data: the 50,000 training JPEGs of the shared data folder, decoded once to uint8 by
:func:`golden.data.load_cifar10_u8` (cached in ``build/data/``); ``limit`` takes that many evenly spaced
images instead (quick runs). Each epoch visits the images in the order of a permutation drawn from a
``numpy.random.Generator`` seeded with ``seed``; each image gets the standard CIFAR augmentation, drawn
from the same generator: a random 32x32 crop of the image zero-padded by 4 pixels on each side, and a
horizontal flip with probability 1/2 (one vectorised gather on the uint8 batch), then
:func:`golden.data.normalize_imagenet` (the normalisation of every CIFAR network here).

Recipe (defaults of :class:`TrainConfig`): SGD with Nesterov momentum 0.9, weight decay 5e-4 on conv and
linear weights (none on BatchNorm parameters and biases), batch 128, the learning rate rising linearly
from 0 to ``lr`` over the first epoch, then cosine decay to 0 at the last step (per step), cross-entropy
with label smoothing 0.1, the reference initialisation (:func:`golden.nets.mobilenetv2.reference_init_`)
drawn after ``torch.manual_seed(seed)``; channels-last tensors (measured 1.9x faster than NCHW for the
depthwise convolutions on CPU) and ``threads`` torch threads (default 1: on this project's shared 2-core
machines two threads ran up to 30x slower as soon as another process took a core, because the OpenMP
threads spin waiting for each other; one thread lost nothing then).

Evaluation: float32 top-1 on all 10,000 test JPEGs (``test_limit`` fewer) every ``eval_every`` epochs for
the log (never used to choose anything) and at the end. The checkpoint stores the state_dict in float16
(half the size; ``num_batches_tracked`` dropped); the reported ``top1`` is that of exactly the stored
weights, measured after the float16 round trip. The checkpoint and the log are written to temporary files in
their folders and renamed into place together at the end (the log first, then the checkpoint,
:class:`golden.files.AtomicGroup`): an interrupted or failed run leaves neither, and the old ones untouched.
``--out`` and ``--log`` are checked before any work (their folders exist and are writable, or can be
created; neither is a folder; not the same file). The checkpoint is a dict
``{"state_dict", "net", "width_mult", "top1", "config", ...}`` that
:func:`golden.nets.get_net` reads (``weights=path``).

Reproducible: the same config, thread count and machine give the same weights (the seed fixes the
initialisation, dropout, order and augmentation); different thread counts may differ in the last bits.

The defaults are the recipe of the shipped checkpoint ``golden/nets/checkpoints/mobilenetv2_cifar.pt`` (35
epochs at width 0.5: 84.50% top-1 on the 10,000 test JPEGs, 74.6 minutes on the project's 2-core machine
under load, about 2.2 ms per training image; ``mobilenetv2_cifar.md`` beside it has the details).
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from golden import files, limits
from golden.data import REPO_ROOT, find_cifar10, load_cifar10_u8, normalize_imagenet
from golden.errors import UserError
from golden.nets import NET_NAMES, load_weights
from golden.nets.cifar_mobilenetv2 import DEFAULT_WIDTH, CifarMobileNetV2
from golden.nets.mobilenetv2 import reference_init_

TRAINABLE_NETS: tuple[str, ...] = ("mobilenetv2_cifar",)
MAX_LR = limits.LEARNING_RATE.hi
PAD = 4
EVAL_BATCH = 500


@dataclass
class TrainConfig:
    """What ``edgesplit train`` does (module docstring); ``out``/``log`` default to ``build/train/<net>.*``."""

    net: str = "mobilenetv2_cifar"
    data: str | None = None
    epochs: int = 35
    batch_size: int = 128
    lr: float = 0.1
    width: float = DEFAULT_WIDTH
    seed: int = 0
    out: str | None = None
    log: str | None = None
    threads: int = 1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    eval_every: int = 5
    limit: int | None = None
    test_limit: int | None = None
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def out_path(self) -> Path:
        return Path(self.out) if self.out else REPO_ROOT / "build" / "train" / f"{self.net}.pt"

    def log_path(self) -> Path:
        return Path(self.log) if self.log else self.out_path().with_suffix(".log")


def check_config(cfg: TrainConfig) -> TrainConfig:
    """Raise UserError (one line naming the value and what is allowed) for a bad setting; returns ``cfg``."""
    if cfg.net not in TRAINABLE_NETS:
        known = "" if cfg.net in NET_NAMES else " (not a known network)"
        raise UserError(f"cannot train network {cfg.net!r}{known}; trainable: {', '.join(TRAINABLE_NETS)}")
    checks = (
        ("--epochs", cfg.epochs, limits.EPOCHS.ok(cfg.epochs), limits.EPOCHS.text()),
        ("--batch-size", cfg.batch_size, limits.BATCH_SIZE.ok(cfg.batch_size), limits.BATCH_SIZE.text()),
        ("--lr", cfg.lr, limits.LEARNING_RATE.ok(cfg.lr), f"above 0 and at most {MAX_LR:g}"),
        ("--width", cfg.width, 0.05 <= cfg.width <= 4, "0.05..4"),
        ("--threads", cfg.threads, limits.THREADS.ok(cfg.threads), limits.THREADS.text()),
        ("--seed", cfg.seed, limits.SEED.ok(cfg.seed), "0..2^63-1"),
        ("momentum", cfg.momentum, 0 <= cfg.momentum < 1, "0..1 (exclusive)"),
        ("weight decay", cfg.weight_decay, 0 <= cfg.weight_decay < 1, "0..1 (exclusive)"),
        ("label smoothing", cfg.label_smoothing, 0 <= cfg.label_smoothing < 1, "0..1 (exclusive)"),
        ("warm-up epochs", cfg.warmup_epochs, 0 <= cfg.warmup_epochs <= cfg.epochs, f"0..{cfg.epochs}"),
        ("--eval-every", cfg.eval_every, 0 <= cfg.eval_every <= limits.EPOCHS.hi, f"0 (never) .. {limits.EPOCHS.hi}"),
        ("--limit", cfg.limit, cfg.limit is None or limits.IMAGE_COUNT.ok(cfg.limit), limits.IMAGE_COUNT.text()),
        ("--test-limit", cfg.test_limit, cfg.test_limit is None or limits.IMAGE_COUNT.ok(cfg.test_limit),
         limits.IMAGE_COUNT.text()),
    )
    for name, value, ok, allowed in checks:
        if isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise UserError(f"{name} {value} is out of range; allowed: {allowed}")
    out = files.check_output_file(cfg.out_path(), "--out checkpoint", create_parent=True)
    log = files.check_output_file(cfg.log_path(), "--log file", create_parent=True, inputs=[("--out", out)])
    if cfg.data is not None:
        files.check_output_file(out, "--out checkpoint", inputs=[("--data", cfg.data)])
        files.check_output_file(log, "--log file", inputs=[("--data", cfg.data)])
    return cfg


def build_trainable(cfg: TrainConfig) -> nn.Module:
    """The network of ``cfg`` with its training initialisation (seeded by ``torch.manual_seed(cfg.seed)``)."""
    torch.manual_seed(cfg.seed)
    net = CifarMobileNetV2(cfg.width)
    return reference_init_(net)


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crop (zero padding ``PAD``) and horizontal flip of uint8 ``[B, H, W, C]`` images, from ``rng``."""
    b, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (PAD, PAD), (PAD, PAD), (0, 0)))
    oy = rng.integers(0, 2 * PAD + 1, size=b)
    ox = rng.integers(0, 2 * PAD + 1, size=b)
    flip = rng.random(b) < 0.5
    rows = oy[:, None] + np.arange(h)
    cols = ox[:, None] + np.arange(w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def to_input(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 ``[B, H, W, 3]`` to the normalised float32 network input, channels-last."""
    return torch.from_numpy(normalize_imagenet(images_u8)).contiguous(memory_format=torch.channels_last)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Learning rate of step ``step`` (0-based) of ``total``: linear warm-up over ``warmup`` steps, cosine to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * t))


def evaluate(net: nn.Module, images_u8: np.ndarray, labels: np.ndarray) -> float:
    """Float32 top-1 of ``net`` on uint8 images (eval mode, batches of ``EVAL_BATCH``)."""
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images_u8), EVAL_BATCH):
            pred = net(to_input(images_u8[i : i + EVAL_BATCH])).argmax(1).numpy()
            correct += int((pred == labels[i : i + EVAL_BATCH]).sum())
    return correct / max(1, len(images_u8))


def half_state_dict(net: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict as stored: floating tensors in float16, contiguous NCHW, no ``num_batches_tracked``."""
    return {
        k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous().clone()
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a unique temporary file beside ``path``, then rename (never a half-written file)."""
    with files.atomic_path(path, "checkpoint") as tmp:
        torch.save(obj, tmp)


def machine_description() -> str:
    """One line: CPU model, core count, OS, Python and torch versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def train(cfg: TrainConfig, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says, write the checkpoint and the log; returns the result (also in the checkpoint).

    ``echo`` receives each log line (default: stderr). Result keys: ``out``, ``log``, ``top1`` (the stored
    float16 weights, float32 arithmetic), ``top1_float32`` (the weights before rounding), ``test_images``,
    ``train_images``, ``wall_s``, ``epoch_s`` (per epoch, training only), ``history`` (per epoch: loss,
    train top-1 on the augmented batches, learning rate at the epoch's end, test top-1 where evaluated).
    """
    check_config(cfg)
    for split in ("train", "test"):  # missing data: the one-line error before any file is touched
        find_cifar10(split, cfg.data)
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    out, log_path = cfg.out_path(), cfg.log_path()
    t_start = time.perf_counter()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with files.AtomicGroup() as group:   # renamed in this order at the end: the log, then the checkpoint
            log_tmp, ckpt_tmp = group.path(log_path, "log"), group.path(out, "checkpoint")
            with open(log_tmp, "w") as log_file:

                def emit(line: str) -> None:
                    log_file.write(line + "\n")
                    log_file.flush()
                    echo(line)

                result = _train(cfg, out, log_path, emit, t_start, ckpt_tmp)
    finally:
        torch.set_num_threads(threads_before)
    return result


def _train(cfg: TrainConfig, out: Path, log_path: Path, emit: Callable[[str], None], t_start: float,
           ckpt_tmp: Path) -> dict:
    from tqdm import tqdm

    emit(f"edgesplit train: {cfg.net} width {cfg.width:g}, config {_config_dict(cfg)}")
    emit(f"command: {command_line(cfg)}")
    emit(f"machine: {machine_description()}; torch threads {cfg.threads}")
    x_train, y_train, _ = load_cifar10_u8("train", cfg.limit, cfg.data)
    x_test, y_test, _ = load_cifar10_u8("test", cfg.test_limit, cfg.data)
    emit(f"data: {len(x_train)} training and {len(x_test)} test images ({time.perf_counter() - t_start:.1f} s)")

    net = build_trainable(cfg).to(memory_format=torch.channels_last)
    n_params = sum(p.numel() for p in net.parameters())
    decay = [p for p in net.parameters() if p.ndim > 1]
    no_decay = [p for p in net.parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.momentum > 0,
    )
    rng = np.random.default_rng(cfg.seed)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    emit(f"network: {n_params:,} parameters; {steps_per_epoch} steps per epoch, {total} in all, warm-up {warmup}")

    history: list[dict[str, Any]] = []
    epoch_s: list[float] = []
    step = 0
    show_bar = cfg.progress and sys.stderr.isatty()
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", disable=not show_bar, leave=False)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            xb = to_input(augment(x_train[idx], rng))
            yb = torch.from_numpy(y_train[idx])
            lr = lr_at(step, total, warmup, cfg.lr)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = net(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{lr:.4f}")
        bar.close()
        epoch_s.append(time.perf_counter() - t0)
        rec: dict[str, Any] = {
            "epoch": epoch, "loss": loss_sum / seen, "train_top1": correct / seen, "lr": lr, "s": epoch_s[-1],
        }
        line = (
            f"epoch {epoch}/{cfg.epochs}: loss {rec['loss']:.4f}, train top-1 {100 * rec['train_top1']:.2f}% "
            f"(augmented), lr {lr:.5f}, {epoch_s[-1]:.1f} s ({1e3 * epoch_s[-1] / seen:.2f} ms/image)"
        )
        if cfg.eval_every and epoch % cfg.eval_every == 0 and epoch < cfg.epochs:
            rec["test_top1"] = evaluate(net, x_test, y_test)
            line += f", test top-1 {100 * rec['test_top1']:.2f}% (monitoring only)"
        history.append(rec)
        emit(line + f"; elapsed {time.perf_counter() - t_start:.0f} s")

    top1_f32 = evaluate(net, x_test, y_test)
    sd16 = half_state_dict(net)
    stored = load_weights(CifarMobileNetV2(cfg.width), sd16)
    top1 = evaluate(stored.to(memory_format=torch.channels_last), x_test, y_test)
    wall = time.perf_counter() - t_start
    result = {
        "net": cfg.net,
        "width_mult": cfg.width,
        "parameters": n_params,
        "top1": top1,
        "top1_float32": top1_f32,
        "test_images": len(x_test),
        "train_images": n,
        "wall_s": wall,
        "epoch_s": epoch_s,
        "history": history,
        "machine": machine_description(),
        "out": str(out),
        "log": str(log_path),
    }
    torch.save({"state_dict": sd16, **{k: v for k, v in result.items() if k not in ("out", "log")},
                "config": _config_dict(cfg)}, ckpt_tmp)   # renamed onto ``out`` by train() with the log
    emit(
        f"final: test top-1 {100 * top1:.2f}% on {len(x_test)} test images with the stored float16 weights "
        f"({100 * top1_f32:.2f}% before rounding); wall {wall:.0f} s ({wall / 60:.1f} min), "
        f"mean epoch {np.mean(epoch_s):.1f} s; wrote {out} ({ckpt_tmp.stat().st_size:,} bytes)"
    )
    return result


def command_line(cfg: TrainConfig) -> str:
    """The ``edgesplit train`` command that runs ``cfg``, every option spelled out (the recipe's constants
    without an option, momentum, weight decay, label smoothing and warm-up, are the defaults)."""
    args = ["edgesplit", "train", "--net", cfg.net, "--epochs", str(cfg.epochs), "--batch-size", str(cfg.batch_size),
            "--lr", f"{cfg.lr:g}", "--width", f"{cfg.width:g}", "--seed", str(cfg.seed), "--threads", str(cfg.threads),
            "--eval-every", str(cfg.eval_every)]
    for opt, value in (("--data", cfg.data), ("--out", cfg.out), ("--log", cfg.log), ("--limit", cfg.limit),
                       ("--test-limit", cfg.test_limit)):
        if value is not None:
            args += [opt, str(value)]
    return shlex.join(args)


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The recipe as plain values (for the log and the checkpoint; no paths that depend on the machine)."""
    d = asdict(cfg)
    for k in ("data", "out", "log", "progress", "extra"):
        d.pop(k)
    return d
