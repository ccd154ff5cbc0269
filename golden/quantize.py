"""Calibration to int16 power-of-two scales, the integer-exact network, its fast twin, and golden export.

Calibration (:func:`quantize_net`)
----------------------------------
* BatchNorm is folded into the conv before it (float64): ``s = gamma / sqrt(var + eps)``,
  ``w' = w * s[o]``, ``b' = (b - mean) * s + beta``.
* Weights: per tensor, ``frac_w = fixedpoint.frac_bits_for(max |w'|)`` (the finest scale that fits int16).
* Activations: per tensor (the input and every layer output), ``frac = frac_bits_for(A)`` where ``A`` is the
  largest ``|activation|`` seen on the calibration images (``percentile=100``, the default). With 16 bits
  the max leaves 15 bits of resolution below the largest value, so clipping outliers (a percentile below
  100, which the option allows, computed per calibration batch and maxed over batches) only risks
  saturation and buys nothing; the power-of-two rounding adds between 1x and 2x head-room for unseen images.
* Conv / FC: accumulator scale ``F = frac_in + frac_w``; bias ``round(b' * 2**F)`` (half to even) in
  BIAS_BITS; ``shift = F - frac_out``. If the shift would exceed 31, ``frac_w`` is lowered; if it would be
  negative (an output finer than the accumulator), ``frac_out = F``.
* Max-pool, flatten, option-A shortcut: ``frac_out = frac_in`` (exact ops).
* ReLU6: the layer's requantize clamps at ``fixedpoint.relu6_clamp(frac_out)`` (6 in the output format).
* Channel concat: an exact copy, so its inputs share one format: each input's calibrated frac is capped at
  the smallest of the concat's inputs and output (a cap on a max-pool's or another concat's output moves to
  its input, since those keep their input's format), repeated until the inputs agree.
* k x k average pool: ``frac_out = min(calibrated, frac_in + r)``, ``R, r, shift`` by
  :func:`golden.layers.avgpool_params` over ``k * k`` values (a depthwise conv with one constant weight).
* Residual add: ``frac_out = min(calibrated, max(fa, fb))``, weights/shift by
  :func:`golden.layers.residual_add_params`. Global average pool: ``frac_out = min(calibrated, frac_in + r)``,
  ``R, r, shift`` by :func:`golden.layers.avgpool_params`.
* Input images: ``fixedpoint.quantize(x, input_frac)`` (round half to even, saturate).

Two executors of the same integers
----------------------------------
:func:`run_int` is the reference: numpy, built only from :mod:`golden.layers` (so from
``fixedpoint.linear_int``/``requantize``). :func:`run_fast` computes the same int16 values with torch in
float64: every product (< 2**30), sum (< 2**47) and bias fits the 53-bit mantissa exactly, so the float64
convolution/matmul is exact in any summation order, and requantize is ``floor((acc + 2**(s-1)) * 2**-s)``
then clamp and ReLU, all exact. A conv whose weights allow it runs as four float32 convolutions of the
operands' 8-bit halves instead (each partial sum provably below ``2**24``; :func:`_conv_fast`), 1.5x faster on
ResNet-56. The tests check bit-exact agreement per network and the split convolution on extremes.

Golden export
-------------
:func:`export_activations` writes ``build/golden/<net>_<split>_<hash>.npz``; see its docstring for the keys.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from golden import fixedpoint as fp
from golden import layers as L
from golden.errors import UserError
from golden.network import Network, network, network_of
from golden.splits import INPUT, Layer, split_names

FORMAT_VERSION = 1
DEFAULT_CALIBRATION = {"digits": 1347, "cifar10": 500, "imagenet": 6}


# ---- the quantized network -------------------------------------------------------------------------------


@dataclass
class QLayer:
    """One quantized engine layer.

    ``w``: int16 — conv ``[O, C/g, KH, KW]`` (torch layout; ``reshape(O, -1)`` rows are in im2col order),
    linear ``[O, I]``, add ``[wa, wb]``, avgpool ``[R]``; None for maxpool/flatten/shortcut.
    ``bias``: int64 ``[O]`` in accumulator scale ``frac_in + frac_w`` (conv/linear), else None.
    ``shift``: requantize shift; ``r``: the avgpool weight exponent (``R ~ 2**r / (H*W)``); ``clamp``: the
    ReLU6 upper clamp (``fixedpoint.relu6_clamp(frac_out)``) or None.
    """

    layer: Layer
    frac_in: tuple[int, ...]
    frac_out: int
    shift: int = 0
    frac_w: int | None = None
    w: np.ndarray | None = None
    bias: np.ndarray | None = None
    r: int = 0
    clamp: int | None = None

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def type(self) -> str:
        return self.layer.type

    @property
    def relu(self) -> bool:
        return self.layer.relu

    def descriptor(self) -> dict[str, Any]:
        """JSON-ready description: the layer table entry plus formats, shift and weight shape."""
        d = self.layer.as_dict()
        d.update(
            frac_in=list(self.frac_in),
            frac_out=self.frac_out,
            frac_w=self.frac_w,
            shift=self.shift,
            w_shape=list(self.w.shape) if self.w is not None else None,
            has_bias=self.bias is not None,
        )
        if self.type == "add":
            d["add_weights"] = [int(v) for v in self.w]
        if self.type in ("avgpool", "avgpool2d"):
            d["avg_weight"], d["avg_r"] = int(self.w[0]), self.r
        if self.clamp is not None:
            d["clamp"] = self.clamp
        return d


@dataclass
class QNet:
    """A calibrated int16 network: the input format and one :class:`QLayer` per engine layer."""

    net: str
    input_frac: int
    layers: tuple[QLayer, ...]
    calibration: dict[str, Any] = field(default_factory=dict)
    source: Network | None = field(default=None, repr=False, compare=False)

    @property
    def network(self) -> Network:
        """The network these layers belong to (``source``, else the one registered under ``net``)."""
        return self.source if self.source is not None else network(self.net)

    def layer(self, name: str) -> QLayer:
        for q in self.layers:
            if q.name == name:
                return q
        raise KeyError(f"{self.net} has no layer {name!r}")

    def frac(self, tensor: str) -> int:
        """Frac bits of a tensor: ``"input"`` or a layer name."""
        return self.input_frac if tensor == INPUT else self.layer(tensor).frac_out

    def split_frac(self, split: str) -> int:
        """Frac bits of the feature sent at ``split``."""
        return self.frac(self.network.split(split).output)

    def quantize_input(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Float (normalised) images to int16 with ``input_frac`` (round half to even, saturate)."""
        return fp.quantize(_np(x), self.input_frac)


def _np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def folded_params(
    net: nn.Module, lay: Layer, dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a conv/linear layer with its BatchNorm folded in (bias 0 when absent).

    The folding is computed in float64; without BN the module's own tensors are returned (no copy) unless
    ``dtype`` asks for another type.
    """
    m = net.get_submodule(lay.module)
    w = m.weight.detach()
    b = torch.zeros(w.shape[0], dtype=w.dtype) if m.bias is None else m.bias.detach()
    if lay.bn:
        bn = net.get_submodule(lay.bn)
        assert isinstance(bn, nn.BatchNorm2d)
        s = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
        w = w.double() * s.reshape(-1, *([1] * (w.ndim - 1)))
        b = (b.double() - bn.running_mean.detach().double()) * s + bn.bias.detach().double()
    return (w, b) if dtype is None else (w.to(dtype), b.to(dtype))


def _quantize_weights(w: torch.Tensor, frac: int, chunk: int = 1 << 22) -> np.ndarray:
    """``fixedpoint.quantize(w, frac)`` in chunks (bounded float64 temporaries for VGG's 100M-weight fc6)."""
    flat = w.reshape(-1)
    out = np.empty(flat.numel(), dtype=np.int16)
    for i in range(0, flat.numel(), chunk):
        out[i : i + chunk] = fp.quantize(flat[i : i + chunk].double().numpy(), frac)
    return out.reshape(tuple(w.shape))


# ---- float executor of the fused layer list (calibration, and a check of the fusion) ---------------------


def run_float(
    net: nn.Module,
    x: np.ndarray | torch.Tensor,
    upto: str | None = None,
    record: Callable[[str, torch.Tensor], None] | None = None,
    dtype: torch.dtype = torch.float32,
    params: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Float forward through the fused engine layers (BN folded) of ``net``; ``record(name, out)`` per layer.

    Equal to the module's own forward up to float rounding; the calibration runs this. ``params`` are
    precomputed :func:`float_params` (to fold once for many batches).
    """
    nw = network_of(net)
    params = params if params is not None else float_params(net, dtype)
    env: dict[str, torch.Tensor] = {INPUT: torch.as_tensor(_np(x)).to(dtype)}
    out = env[INPUT]
    if record is not None:
        record(INPUT, out)
    for lay in nw.layers_between(INPUT, upto):
        a = [env[i] for i in lay.inputs]
        if lay.type == "conv":
            w, b = params[lay.name]
            out = F.conv2d(a[0], w, b, lay.stride, lay.padding, 1, lay.groups)
        elif lay.type == "linear":
            w, b = params[lay.name]
            out = F.linear(a[0], w, b)
        elif lay.type == "maxpool":
            out = F.max_pool2d(a[0], lay.kernel, lay.stride, lay.padding, ceil_mode=lay.ceil_mode)
        elif lay.type == "avgpool":
            out = a[0].mean(dim=(2, 3))
        elif lay.type == "avgpool2d":
            out = F.avg_pool2d(a[0], lay.kernel, lay.stride, lay.padding, count_include_pad=True)
        elif lay.type == "add":
            out = a[0] + a[1]
        elif lay.type == "concat":
            out = torch.cat(a, dim=1)
        elif lay.type == "shortcut_a":
            out = _shortcut_t(a[0], lay)
        elif lay.type == "flatten":
            out = a[0].reshape(a[0].shape[0], -1)
        else:
            raise NotImplementedError(lay.type)
        if lay.relu6:
            out = F.relu6(out)
        elif lay.relu:
            out = F.relu(out)
        env[lay.name] = out
        if record is not None:
            record(lay.name, out)
    return out


def float_params(
    net: nn.Module, dtype: torch.dtype = torch.float32
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{layer: (weight, bias)}`` of every conv/linear layer, BN folded, in ``dtype``."""
    return {
        lay.name: folded_params(net, lay, dtype)
        for lay in network_of(net).layers
        if lay.type in ("conv", "linear")
    }


def _shortcut_t(x: torch.Tensor, lay: Layer) -> torch.Tensor:
    s, off = lay.stride[0], lay.channel_offset
    extra = lay.out_shape[0] - lay.in_shape[0] - off
    return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, off, extra))


# ---- calibration ----------------------------------------------------------------------------------------


def quantize_net(
    net: str | Network | nn.Module, calib: np.ndarray | torch.Tensor, percentile: float = 100.0,
    batch_size: int = 100
) -> QNet:
    """Calibrate ``net`` (a network = its default or given weights, or a module from ``Network.module`` /
    ``golden.nets.get_net``) on the float images ``calib`` [N, C, H, W] and quantize it (module docstring
    for the rules)."""
    module = network(net).module() if isinstance(net, (str, Network)) else net
    nw = network_of(module)
    if not 0 < percentile <= 100:
        raise UserError(f"percentile must be in (0, 100], got {percentile}")
    calib = _np(calib)
    if len(calib) == 0:
        raise UserError("calibration needs at least one image")
    amax: dict[str, float] = {}

    def record(tname: str, t: torch.Tensor) -> None:
        v = t.detach().abs()
        m = float(v.max()) if percentile >= 100 else float(np.percentile(v.numpy(), percentile))
        amax[tname] = max(amax.get(tname, 0.0), m)

    module.eval()
    with torch.no_grad():
        params = float_params(module)
        for i in range(0, len(calib), batch_size):
            run_float(module, calib[i : i + batch_size], record=record, params=params)
        del params

    caps: dict[str, int] = {}
    for _ in range(8):  # the concat inputs' formats settle in a round or two (module docstring)
        frac, qlayers = _quantize_layers(module, nw, amax, caps)
        if not _tighten_concat_caps(nw, frac, caps):
            break
    else:  # pragma: no cover - every round lowers a cap, and caps are bounded below
        raise AssertionError(f"{nw.name}: concat input formats did not settle")
    return QNet(nw.name, frac[INPUT], tuple(qlayers), {"images": int(len(calib)), "percentile": float(percentile)},
                source=nw)


_KEEPS_FORMAT = ("maxpool", "flatten", "shortcut_a", "concat")


def _tighten_concat_caps(nw: Network, frac: dict[str, int], caps: dict[str, int]) -> bool:
    """Lower ``caps`` so that every concat's inputs get one format; True if a cap changed."""
    by_name = {la.name: la for la in nw.layers}
    changed = False

    def cap(t: str, f: int) -> None:
        nonlocal changed
        if caps.get(t, 1 << 30) > f:
            caps[t] = f
            changed = True
        la = by_name.get(t)
        if la is not None and la.type in _KEEPS_FORMAT:
            for i in la.inputs:
                cap(i, f)

    for la in nw.layers:
        if la.type == "concat":
            fs = [frac[i] for i in la.inputs]
            if len(set(fs)) > 1:
                for i in la.inputs:
                    cap(i, min(fs))
    return changed


def _quantize_layers(module: nn.Module, nw: Network, amax: dict[str, float], caps: dict[str, int]
                     ) -> tuple[dict[str, int], list[QLayer]]:
    frac: dict[str, int] = {INPUT: min(fp.frac_bits_for(amax[INPUT]), caps.get(INPUT, 1 << 30))}
    qlayers = []
    for lay in nw.layers:
        fi = tuple(frac[i] for i in lay.inputs)
        f_cal = min(fp.frac_bits_for(amax[lay.name]), caps.get(lay.name, 1 << 30))
        if lay.type in ("conv", "linear"):
            with torch.no_grad():
                w, b = folded_params(module, lay)
            f_w = fp.frac_bits_for(float(w.abs().max()), fp.WEIGHT_BITS)
            f_w = min(f_w, fp.MAX_SHIFT + f_cal - fi[0])
            b_max = float(b.abs().max()) if b.numel() else 0.0
            while f_w > -fp.MAX_SHIFT and b_max * 2.0 ** (fi[0] + f_w) > fp.BIAS_MAX:
                f_w -= 1
            acc = fi[0] + f_w
            f_out = min(f_cal, acc)
            w_int, b_int = _quantize_weights(w, f_w), L.quantize_bias(b.double().numpy(), acc)
            q = QLayer(lay, fi, f_out, shift=acc - f_out, frac_w=f_w, w=w_int, bias=b_int)
        elif lay.type in ("maxpool", "flatten", "shortcut_a"):
            q = QLayer(lay, fi, fi[0])
        elif lay.type == "concat":
            q = QLayer(lay, fi, min(fi))
        elif lay.type == "add":
            f_out = min(f_cal, max(fi))
            wa, wb, shift = L.residual_add_params(fi[0], fi[1], f_out)
            q = QLayer(lay, fi, f_out, shift, w=np.array([wa, wb], dtype=np.int16))
        elif lay.type in ("avgpool", "avgpool2d"):
            count = lay.in_shape[1] * lay.in_shape[2] if lay.type == "avgpool" else lay.kernel[0] * lay.kernel[1]
            f_out = min(f_cal, fi[0] + L.avgpool_max_r(count))
            big_r, r, shift = L.avgpool_params(count, fi[0], f_out)
            q = QLayer(lay, fi, f_out, shift, w=np.array([big_r], dtype=np.int16), r=r)
        else:
            raise NotImplementedError(lay.type)
        if lay.relu6:
            q.clamp = fp.relu6_clamp(q.frac_out)
        frac[lay.name] = q.frac_out
        qlayers.append(q)
    return frac, qlayers


# ---- the integer reference (numpy) ------------------------------------------------------------------------


def _start_tensor(qnet: QNet, start: str) -> str:
    return qnet.network.split(start).output


def _as_batch(x: np.ndarray, qnet: QNet, start: str) -> np.ndarray:
    shape = qnet.network.split(start).tensor_shape
    x = np.asarray(x)
    if x.shape == tuple(shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(shape):
        raise UserError(
            f"{qnet.net} at split {start!r} takes [N, {', '.join(map(str, shape))}], got {x.shape}"
        )
    return x


def run_int(
    qnet: QNet, x_int16: np.ndarray, upto: str | None = None, start: str = INPUT, return_all: bool = False
) -> np.ndarray | dict[str, np.ndarray]:
    """The integer-exact forward (numpy, :mod:`golden.layers`) from split ``start`` to split ``upto``.

    ``x_int16``: the int16 feature at ``start`` (``[N, ...]`` or one unbatched sample), with frac bits
    ``qnet.split_frac(start)``. Returns the int16 feature at ``upto`` (None: the logits), or with
    ``return_all`` a dict ``{layer name: int16 output}`` (plus the start tensor under its name).
    """
    x = _as_batch(x_int16, qnet, start)
    fp.check_int(x, fp.ACT_BITS, "input")
    env = {_start_tensor(qnet, start): x.astype(np.int16)}
    out = env[_start_tensor(qnet, start)]
    for lay in qnet.network.layers_between(start, upto):
        q = qnet.layer(lay.name)
        a = [env[i] for i in lay.inputs]
        if lay.type == "conv":
            out = L.conv2d_int(a[0], q.w, q.bias, q.shift, lay.stride, lay.padding, lay.groups, lay.relu, q.clamp)
        elif lay.type == "linear":
            out = L.fc_int(a[0], q.w, q.bias, q.shift, lay.relu, q.clamp)
        elif lay.type == "maxpool":
            out = L.maxpool2d_int(a[0], lay.kernel, lay.stride, lay.padding, lay.ceil_mode)
        elif lay.type == "avgpool":
            out = L.global_avgpool_int(a[0], int(q.w[0]), q.shift)
        elif lay.type == "avgpool2d":
            out = L.avgpool2d_int(a[0], lay.kernel, lay.stride, lay.padding, int(q.w[0]), q.shift)
        elif lay.type == "add":
            out = L.add_int(a[0], a[1], int(q.w[0]), int(q.w[1]), q.shift, lay.relu, q.clamp)
        elif lay.type == "concat":
            out = L.concat_int(a)
        elif lay.type == "shortcut_a":
            out = L.shortcut_a_int(a[0], lay.out_shape[0], lay.stride[0])
        elif lay.type == "flatten":
            out = L.flatten_int(a[0])
        else:
            raise NotImplementedError(lay.type)
        env[lay.name] = out
    return env if return_all else out


# ---- the fast twin (torch float64, exact) ---------------------------------------------------------------


def _fast_param(qnet: QNet, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """float64 copies of a layer's integer weights and bias, cached on the QNet (treat QNets as immutable)."""
    cache = qnet.__dict__.setdefault("_fast_params", {})
    if name not in cache:
        q = qnet.layer(name)
        assert q.w is not None
        b = None if q.bias is None else torch.from_numpy(q.bias.astype(np.float64))
        cache[name] = (torch.from_numpy(q.w.astype(np.float64)), b)
    return cache[name]


SPLIT_BASE = 256
"""An int16 value ``v`` is ``hi * 256 + lo`` with ``lo = v - 256 * floor((v + 128) / 256)`` in -128..127 and
``hi`` in -128..128: every product of two parts is at most ``2**14`` in magnitude."""
FLOAT32_EXACT = 2**24
"""float32 holds every integer up to ``2**24`` in magnitude exactly."""


def _split16(v: np.ndarray | torch.Tensor) -> tuple:
    """``(hi, lo)`` of int16 values (see :data:`SPLIT_BASE`); exact for integer-valued floats too."""
    hi = np.floor((v + 128) / SPLIT_BASE) if isinstance(v, np.ndarray) else torch.floor((v + 128) / SPLIT_BASE)
    return hi, v - SPLIT_BASE * hi


def _conv_split_weights(qnet: QNet, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """float32 ``(hi, lo)`` weight parts of a conv when the split float32 convolution is exact, else None.

    A conv output of the parts is a sum of products ``x_part * w_part``, each ``|x_part| <= 128``; every
    partial sum, in any order, is at most ``128 * sum_k |w_part[k]|`` of its output channel, so when that is at
    most ``2**24`` for both parts float32 adds exactly (any algorithm that sums products: direct, im2col +
    GEMM; checked against the integer reference in the tests)."""
    cache = qnet.__dict__.setdefault("_split_params", {})
    if name not in cache:
        q = qnet.layer(name)
        assert q.w is not None
        hi, lo = _split16(q.w.astype(np.float64))
        worst = max(np.abs(part).reshape(len(part), -1).sum(axis=1).max(initial=0.0) for part in (hi, lo))
        exact = 128 * worst <= FLOAT32_EXACT
        cache[name] = (torch.from_numpy(hi.astype(np.float32)), torch.from_numpy(lo.astype(np.float32))) \
            if exact else None
    return cache[name]


def _conv_fast(qnet: QNet, lay: Layer, x: torch.Tensor) -> torch.Tensor:
    """A conv layer's exact integer accumulator (float64), bias included.

    Where :func:`_conv_split_weights` allows it, four float32 convolutions of the operands' parts (two
    calls, the input's parts stacked in the batch): ``x * w = (xh * wh) * 2**16 + (xh * wl + xl * wh) * 2**8
    + xl * wl``, each part exact in float32, combined in float64. float32 convolutions are about 12x faster
    than float64 ones on this CPU, so this is 2-4x faster per layer. Otherwise one float64 convolution
    (products < 2**30, sums < 2**47: exact in float64's 53 bits)."""
    w, b = _fast_param(qnet, lay.name)
    parts = _conv_split_weights(qnet, lay.name)
    if parts is None:
        return F.conv2d(x, w, b, lay.stride, lay.padding, 1, lay.groups)
    n = x.shape[0]
    x2 = torch.empty((2 * n, *x.shape[1:]), dtype=torch.float32)
    xh, xl = x2[:n], x2[n:]
    xl.copy_(x)                                               # int16 values: exact in float32
    torch.floor((xl + 128.0).mul_(1.0 / SPLIT_BASE), out=xh)
    xl.sub_(xh, alpha=SPLIT_BASE)
    by_wh = F.conv2d(x2, parts[0], None, lay.stride, lay.padding, 1, lay.groups)
    by_wl = F.conv2d(x2, parts[1], None, lay.stride, lay.padding, 1, lay.groups)
    acc = by_wh[:n].to(torch.float64).mul_(float(SPLIT_BASE**2))
    acc.add_(by_wl[:n].to(torch.float64).add_(by_wh[n:]), alpha=float(SPLIT_BASE)).add_(by_wl[n:])
    return acc if b is None else acc.add_(b.view(1, -1, 1, 1))


def _requant_t(acc: torch.Tensor, shift: int, relu: bool, clamp: int | None = None) -> torch.Tensor:
    y = torch.floor((acc + float(fp.round_const(shift))) * 2.0**-shift).clamp_(fp.INT16_MIN, fp.INT16_MAX)
    y = y.clamp_(min=0) if relu else y
    return y.clamp_(max=clamp) if clamp is not None else y


FAST_BATCH_BYTES = 24 << 20
""":func:`run_fast` works through its images in batches whose largest tensor (float64) stays under 24 MiB. glibc
maps a larger block from the kernel for each allocation and unmaps it when freed, so every new tensor is
page-faulted in again: at 500 CIFAR images a batch (65 MB tensors), the kernel's page faults took 62% of
ResNet-56's int16 network (19.3 s of system time against 11.9 s of computing)."""


def fast_batch(qnet: QNet, start: str = INPUT, upto: str | None = None) -> int:
    """Images per batch of :func:`run_fast` between ``start`` and ``upto`` (see :data:`FAST_BATCH_BYTES`)."""
    layers = qnet.network.layers_between(start, upto)
    shapes = [lay.out_shape for lay in layers] + [s for lay in layers for s in lay.in_shapes]
    per_image = 8 * max([int(np.prod(s)) for s in shapes] + [1])
    return max(1, FAST_BATCH_BYTES // per_image)


def run_fast(
    qnet: QNet,
    x_int16: np.ndarray | torch.Tensor,
    upto: str | None = None,
    start: str = INPUT,
    return_all: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """Same contract and the same int16 values as :func:`run_int`, computed with torch float64 (fast), in
    batches of :func:`fast_batch` images."""
    x = _as_batch(_np(x_int16), qnet, start)
    fp.check_int(x, fp.ACT_BITS, "input")
    batch = fast_batch(qnet, start, upto)
    parts = [_run_fast_batch(qnet, x[i : i + batch], upto, start, return_all) for i in range(0, max(len(x), 1), batch)]
    if len(parts) == 1:
        return parts[0]
    if return_all:
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _run_fast_batch(qnet: QNet, x: np.ndarray, upto: str | None, start: str, return_all: bool
                    ) -> np.ndarray | dict[str, np.ndarray]:
    start_name = _start_tensor(qnet, start)
    env = {start_name: torch.from_numpy(x.astype(np.float64))}
    out = env[start_name]
    layers = qnet.network.layers_between(start, upto)
    last_use = {i: k for k, lay in enumerate(layers) for i in lay.inputs}
    with torch.no_grad():
        for k, lay in enumerate(layers):
            q = qnet.layer(lay.name)
            a = [env[i] for i in lay.inputs]
            if not return_all:   # a tensor no later layer reads is freed
                for i in lay.inputs:
                    if last_use[i] == k:
                        env.pop(i, None)
            if lay.type == "conv":
                out = _requant_t(_conv_fast(qnet, lay, a[0]), q.shift, lay.relu, q.clamp)
            elif lay.type == "linear":
                w, b = _fast_param(qnet, lay.name)
                out = _requant_t(F.linear(a[0], w, b), q.shift, lay.relu, q.clamp)
            elif lay.type == "maxpool":
                out = F.max_pool2d(a[0], lay.kernel, lay.stride, lay.padding, ceil_mode=lay.ceil_mode)
            elif lay.type == "avgpool":
                out = _requant_t(a[0].sum(dim=(2, 3)) * float(q.w[0]), q.shift, False)
            elif lay.type == "avgpool2d":
                c = a[0].shape[1]
                wk = torch.full((c, 1, *lay.kernel), float(q.w[0]), dtype=torch.float64)
                out = _requant_t(F.conv2d(a[0], wk, None, lay.stride, lay.padding, 1, c), q.shift, False)
            elif lay.type == "add":
                out = _requant_t(a[0] * float(q.w[0]) + a[1] * float(q.w[1]), q.shift, lay.relu, q.clamp)
            elif lay.type == "concat":
                out = torch.cat(a, dim=1)
            elif lay.type == "shortcut_a":
                out = _shortcut_t(a[0], lay)
            elif lay.type == "flatten":
                out = a[0].reshape(a[0].shape[0], -1)
            else:
                raise NotImplementedError(lay.type)
            env[lay.name] = out
    if return_all:
        return {k: v.numpy().astype(np.int16) for k, v in env.items()}
    return out.numpy().astype(np.int16)


def predict_int(qnet: QNet, x: np.ndarray | torch.Tensor, batch_size: int = 250) -> np.ndarray:
    """Class predictions of the int16 network for float images ``x`` (argmax of the int16 logits, first
    index on ties), via :func:`run_fast` in batches."""
    x = _np(x)
    out = [
        run_fast(qnet, qnet.quantize_input(x[i : i + batch_size])).argmax(1)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def top1_int(qnet: QNet, x: np.ndarray | torch.Tensor, y: np.ndarray, batch_size: int = 250) -> float:
    """Top-1 accuracy of the int16 network on float images ``x`` with labels ``y``."""
    return float(np.mean(predict_int(qnet, x, batch_size) == np.asarray(y)))


# ---- default data, default quantized nets ----------------------------------------------------------------


def sample_images(net: str | Network, n: int | None = None, split: str = "test", data: str | None = None
                  ) -> np.ndarray:
    """Real float images for ``net``: digits, CIFAR-10 (``n`` evenly spaced), or the scikit-image photos
    (at most 6) for the ImageNet nets and for user networks (resized to their input, see
    :func:`golden.data.load_photos_for`). ``n`` None = all."""
    from golden import data as D

    nw = network(net)
    ds = nw.dataset
    if ds == "digits":
        x, _ = D.load_digits(split)
        return x if n is None else x[:n]
    if ds == "cifar10":
        return D.load_cifar10(split, n, data)[0]
    if ds == "imagenet":
        x, _ = D.load_photos()
    else:
        x, _ = D.load_photos_for(nw.input_shape)
    return x if n is None else x[:n]


def calibration_images(net: str | Network, n: int | None = None, data: str | None = None) -> np.ndarray:
    """The default calibration set: digits training split (1,347), 500 CIFAR-10 *training* images evenly
    spaced, or the 6 photos for the ImageNet nets and user networks."""
    ds = network(net).dataset or "imagenet"
    return sample_images(
        net, n or DEFAULT_CALIBRATION[ds], split="test" if ds == "imagenet" else "train", data=data
    )


@lru_cache(maxsize=4)
def default_qnet(net: str | Network) -> QNet:
    """``net`` with its default (or given) weights, calibrated on :func:`calibration_images` (cached per
    process)."""
    return quantize_net(network(net).module(), calibration_images(net))


# ---- golden export ----------------------------------------------------------------------------------------


def export_activations(
    net_name: str,
    split: str,
    images: np.ndarray | torch.Tensor | None = None,
    qnet: QNet | None = None,
    out_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run the integer reference on ``images`` up to ``split`` and save everything the RTL tests need.

    ``images``: float (normalised) ``[N, C, H, W]``, quantized with ``qnet.input_frac``; or int16 (already
    quantized); None takes 2 :func:`sample_images`. ``qnet`` defaults to :func:`default_qnet`. Writes
    ``<out_dir or build/golden>/<net>_<split>_<hash>.npz`` (the hash covers the input and the metadata) and
    returns the same content as a dict plus ``"path"``. Keys:

    * ``meta``: JSON string ``{format_version, net, split, images, input_frac, feature_frac, layers: [names],
      fixedpoint: {ACT_BITS, WEIGHT_BITS, ACC_BITS, BIAS_BITS, MAX_SHIFT}}``.
    * ``descriptors``: JSON string, list of per-layer descriptors (:meth:`QLayer.descriptor`), edge layers in
      execution order: name, type, inputs, in/out shapes, kernel, stride, padding, groups, relu, MACs,
      frac_in/frac_w/frac_out, shift, w_shape, add_weights / avg_weight+avg_r.
    * ``input`` int16 ``[N, C, H, W]``, ``input_frac``; ``feature`` int16 (the split feature),
      ``feature_frac``.
    * per edge layer ``i`` (3 digits): ``L{i}.out`` int16 output ``[N, ...]``; ``L{i}.w`` int16 weights;
      ``L{i}.b`` int64 bias (accumulator scale) when the layer has them.
    """
    nw = network(net_name)
    net_name = nw.name
    sp = nw.split(split)
    qnet = qnet or default_qnet(nw)
    if qnet.net != net_name:
        raise UserError(f"quantized network is {qnet.net}, not {net_name}")
    x = _np(sample_images(net_name, 2) if images is None else images)
    x_int = x.astype(np.int16) if x.dtype.kind in "iu" else qnet.quantize_input(x)
    x_int = _as_batch(x_int, qnet, INPUT)
    outs = run_int(qnet, x_int, upto=split, return_all=True)
    assert isinstance(outs, dict)
    edge = nw.layers_between(INPUT, split)
    result: dict[str, Any] = {
        "input": x_int,
        "input_frac": np.int64(qnet.input_frac),
        "feature": outs[sp.output],
        "feature_frac": np.int64(qnet.frac(sp.output)),
    }
    descriptors = []
    for i, lay in enumerate(edge):
        q = qnet.layer(lay.name)
        descriptors.append(q.descriptor())
        result[f"L{i:03d}.out"] = outs[lay.name]
        if q.w is not None:
            result[f"L{i:03d}.w"] = q.w
        if q.bias is not None:
            result[f"L{i:03d}.b"] = q.bias
    meta = {
        "format_version": FORMAT_VERSION,
        "net": net_name,
        "split": split,
        "images": int(len(x_int)),
        "input_frac": qnet.input_frac,
        "feature_frac": qnet.frac(sp.output),
        "layers": [lay.name for lay in edge],
        "fixedpoint": {
            k: getattr(fp, k) for k in ("ACT_BITS", "WEIGHT_BITS", "ACC_BITS", "BIAS_BITS", "MAX_SHIFT")
        },
    }
    result["meta"] = np.array(json.dumps(meta))
    result["descriptors"] = np.array(json.dumps(descriptors))
    digest = hashlib.sha1(x_int.tobytes() + json.dumps(meta).encode()).hexdigest()[:10]
    from golden.data import build_dir

    folder = build_dir("golden") if out_dir is None else os.fspath(out_dir)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{net_name}_{split}_{digest}.npz")
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez(tmp, **result)
    os.replace(tmp, path)
    result["path"] = path
    return result


def load_export(path: str | os.PathLike) -> dict[str, Any]:
    """Read an export back: arrays as saved, ``meta`` and ``descriptors`` decoded from JSON."""
    with np.load(path) as z:
        d: dict[str, Any] = {k: z[k] for k in z.files}
    d["meta"] = json.loads(str(d["meta"]))
    d["descriptors"] = json.loads(str(d["descriptors"]))
    return d


def main(argv: list[str] | None = None) -> int:
    """``python -m golden.quantize NET SPLIT [-n N]``: export N sample images' golden activations."""
    p = argparse.ArgumentParser(prog="python -m golden.quantize", description=main.__doc__)
    p.add_argument("net")
    p.add_argument("split")
    p.add_argument("-n", "--images", type=int, default=2)
    args = p.parse_args(argv)
    try:
        network(args.net).split(args.split)
        d = export_activations(args.net, args.split, sample_images(args.net, args.images))
    except UserError as e:
        print(f"golden.quantize: error: {e}", file=sys.stderr)
        return 2
    print(d["path"])
    return 0


__all__ = [
    "QLayer",
    "QNet",
    "calibration_images",
    "default_qnet",
    "export_activations",
    "float_params",
    "folded_params",
    "load_export",
    "predict_int",
    "quantize_net",
    "run_fast",
    "run_float",
    "run_int",
    "sample_images",
    "split_names",
    "top1_int",
]

if __name__ == "__main__":
    sys.exit(main())
