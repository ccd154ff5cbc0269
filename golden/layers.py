"""Bit-exact integer layer references at the engine's precision, built only from :mod:`golden.fixedpoint`.

Every arithmetic layer is a dot product on the MAC array followed by ``fixedpoint.requantize``: int16
operands, exact products and sums in the 48-bit accumulator, a BIAS_BITS bias in accumulator scale, then
``y = sat16((acc + 2**(s-1)) >> s)`` (round half up) and the optional ReLU. These functions ARE the rules the
RTL implements; tensors are numpy arrays ``[N, C, H, W]`` (activations) of int16 values.

conv2d / im2col order
---------------------
``conv2d_int`` lowers a convolution to ``fixedpoint.linear_int(A, W, bias, shift, relu)``:

* Zero padding (the value 0, which is real 0 at any scale) of ``padding = (ph, pw)`` on each side.
* A has one row per output pixel, rows in ``(n, oy, ox)`` row-major order; a row holds the input patch
  ``x[n, c, oy*sy + ky - ph, ox*sx + kx - pw]`` at column ``k = (c * KH + ky) * KW + kx`` (input channel
  major, then ky, then kx), i.e. the order of ``weight.reshape(O, -1)`` for a torch weight ``[O, C, KH, KW]``.
* ``W = weight.reshape(O, C*KH*KW).T``; the result ``[N*OH*OW, O]`` is stored back as ``[N, O, OH, OW]``.
* ``groups = g``: input channels ``[j*C/g, (j+1)*C/g)`` feed output channels ``[j*O/g, (j+1)*O/g)``, each
  group as above with its own weight slice.

Residual add
------------
``a`` (frac ``fa``) + ``b`` (frac ``fb``) -> frac ``fo``: a 2-term dot product per element,
``acc = a * wa + b * wb`` with power-of-two int16 weights ``wa = 2**(F - fa)``, ``wb = 2**(F - fb)`` at the
accumulator scale ``F = max(fa, fb)``, bias 0, then ``requantize(acc, shift = F - fo, relu)``.
The sum is exact in the accumulator; the only rounding is the final requantize (half up). Constraints:
``|fa - fb| <= 14`` (so the weights fit int16) and ``0 <= F - fo <= 31``. See :func:`residual_add_params`.

Global average pool
-------------------
``[N, C, H, W]`` frac ``fi`` -> ``[N, C]`` frac ``fo`` over ``M = H * W`` values: a dot product of the
M values with one constant int16 weight ``R = floor((2**r + floor(M/2)) / M)`` (2**r / M rounded half up)
at every tap, bias 0, then ``requantize(acc, shift = fi + r - fo)``. ``r`` is the largest value with
``R <= 32767`` (so ``R >= 16384``), lowered only if ``shift`` would exceed 31 (then R is smaller and the
bound below grows to ``M / 2**(r+1)``). Error versus the true mean: the weight's relative error is
``|R * M / 2**r - 1| <= M / 2**(r+1) <= 2**-15`` (about 3.1e-5; exactly 0 when M is a power of two, e.g.
8x8 = 64), so ``|y - mean| <= 0.5 LSB + |mean| * 2**-15`` (0.5 LSB only, for power-of-two M).
Examples: M = 64: r = 20, R = 16384 (exact); M = 49 (7x7): r = 20, R = 21400, relative error 2.3e-5.

Max-pool, average pool, concat, shortcut, flatten
-------------------------------------------------
Max-pool works on int16 directly (exact; frac unchanged); padding cells hold -32768 and never win (torch
pads with -inf, and ``padding <= kernel / 2`` keeps every window non-empty). ``ceil_mode`` rounds the output
size up as torch does (the last window may start past the padded end only if it still starts inside the
input or its left padding); the cells it reaches past the map are padding too.

A k x k average pool (``count_include_pad``: the divisor is always ``k * k``) is a depthwise convolution
whose every tap has the constant weight ``R`` of the global pool rule over ``M = k * k`` values (zero padding,
bias 0, ``shift = fi + r - fo``): :func:`avgpool2d_int`, :func:`avgpool_params`.

Channel concatenation joins maps of one format (the calibration gives the inputs of a concat the same frac
bits): an exact copy, ``np.concatenate`` along channels. The CIFAR option-A shortcut is
an exact copy ``y[:, off + c, i, j] = x[:, c, 2i, 2j]``, other channels 0 (frac unchanged); the same bits as a
1x1 stride-2 conv with ``W[o, c] = 1`` iff ``o == c + off``, bias 0, shift 0 (:func:`shortcut_a_as_conv`).
Flatten is ``reshape(N, C*H*W)`` in C, H, W order.
"""

from __future__ import annotations

import numpy as np

from golden.fixedpoint import (
    BIAS_BITS,
    INT16_MAX,
    INT16_MIN,
    MAX_DOT_LENGTH,
    MAX_SHIFT,
    check_int,
    linear_int,
    quantize,
    requantize,
)

#: Rows of the im2col matrix processed per ``linear_int`` call (bounds the int64 temporaries).
ROW_CHUNK = 8192
#: The largest power-of-two weight exponent of the residual add (2**14 fits int16).
MAX_ADD_WEIGHT_EXP = 14

IntPair = int | tuple[int, int]


def _pair(v: IntPair) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def _as_int16(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    check_int(x, 16, what)
    return x.astype(np.int16, copy=False)


def conv_out_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output length of a convolution / pool along one axis (floor mode, or torch's ceil mode)."""
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = -(-(size + 2 * padding - kernel) // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def im2col(
    x: np.ndarray, kernel: IntPair, stride: IntPair = 1, padding: IntPair = 0, pad_value: int = 0
) -> np.ndarray:
    """Patches of ``x`` [N, C, H, W] as a matrix [N*OH*OW, C*KH*KW] in the documented im2col order."""
    x = np.asarray(x)
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(w, kw, sw, pw)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"kernel {kh}x{kw} does not fit input {h}x{w} with padding {ph},{pw}")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # [N, C, H', W', KH, KW]
    win = win[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]  # [N, C, OH, OW, KH, KW]
    return np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * oh * ow, c * kh * kw)


def _linear_rows(a: np.ndarray, wt: np.ndarray, bias: np.ndarray, shift: int, relu: bool,
                 clamp: int | None = None) -> np.ndarray:
    """``linear_int`` over row chunks (same result, bounded memory)."""
    if a.shape[0] <= ROW_CHUNK:
        return linear_int(a, wt, bias, shift, relu, clamp)
    return np.concatenate(
        [linear_int(a[i : i + ROW_CHUNK], wt, bias, shift, relu, clamp) for i in range(0, a.shape[0], ROW_CHUNK)]
    )


def conv2d_int(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    shift: int,
    stride: IntPair = 1,
    padding: IntPair = 0,
    groups: int = 1,
    relu: bool = False,
    clamp: int | None = None,
) -> np.ndarray:
    """Integer conv2d: ``x`` int16 [N, C, H, W], ``w`` int16 [O, C/groups, KH, KW] (torch layout),
    ``bias`` int [O] in accumulator scale (None = 0), ``requantize(conv + bias, shift, relu, clamp)`` -> int16
    [N, O, OH, OW]. Kernel 1..11, stride 1..4 and any padding are all the same rule (module docstring).
    Depthwise (``groups == C``) and grouped convolutions run group by group."""
    x = _as_int16(x, "activation")
    w = _as_int16(w, "weight")
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d_int needs x [N,C,H,W] and w [O,C,KH,KW], got {x.shape} and {w.shape}")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c % groups or o % groups or cg != c // groups:
        raise ValueError(f"channels {c} -> {o} with weight {w.shape} do not fit groups={groups}")
    b = np.zeros(o, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oh, ow = conv_out_size(h, kh, sh, ph), conv_out_size(wd, kw, sw, pw)
    og = o // groups
    out = np.empty((n, o, oh, ow), dtype=np.int16)
    if groups > 1 and cg == 1 and og == 1:  # depthwise: all channels at once, each with its own taps
        for i in range(n):
            win = im2col(x[i : i + 1], (kh, kw), (sh, sw), (ph, pw)).reshape(oh * ow, c, kh * kw)
            acc = np.einsum("pck,ck->pc", win.astype(np.int64), w.reshape(c, kh * kw).astype(np.int64))
            check_int(b, BIAS_BITS, "bias")
            y = requantize(acc + b, shift, relu, clamp).astype(np.int16)  # [OH*OW, C]
            out[i] = y.T.reshape(o, oh, ow)
        return out
    for g in range(groups):
        wg = w[g * og : (g + 1) * og].reshape(og, cg * kh * kw).T
        for i in range(n):  # one image at a time keeps the im2col matrix small
            a = im2col(x[i : i + 1, g * cg : (g + 1) * cg], (kh, kw), (sh, sw), (ph, pw))
            y = _linear_rows(a, wg, b[g * og : (g + 1) * og], shift, relu, clamp)  # [OH*OW, og]
            out[i, g * og : (g + 1) * og] = y.T.reshape(og, oh, ow)
    return out


def fc_int(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, shift: int, relu: bool = False,
    clamp: int | None = None,
) -> np.ndarray:
    """Integer fully-connected layer: ``x`` int16 [N, I], ``w`` int16 [O, I] (torch layout), ``bias`` int [O]
    in accumulator scale -> ``requantize(x @ w.T + bias, shift, relu, clamp)`` int16 [N, O]."""
    x = _as_int16(x, "activation")
    w = _as_int16(w, "weight")
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    return _linear_rows(x.reshape(x.shape[0], -1), w.T, b, shift, relu, clamp)


def quantize_bias(bias: np.ndarray, acc_frac: int) -> np.ndarray:
    """Float bias to accumulator scale: ``round(b * 2**acc_frac)`` (half to even), saturated to BIAS_BITS.

    ``acc_frac = frac_in + frac_weight``. Returns int64.
    """
    return quantize(np.asarray(bias, dtype=np.float64), acc_frac, bits=BIAS_BITS).astype(np.int64)


def relu_int(x: np.ndarray) -> np.ndarray:
    """ReLU on int16 (exact): ``max(x, 0)``; the engine fuses it into requantize (after saturation)."""
    return np.maximum(_as_int16(x, "activation"), 0).astype(np.int16)


def maxpool2d_int(
    x: np.ndarray, kernel: IntPair, stride: IntPair | None = None, padding: IntPair = 0, ceil_mode: bool = False
) -> np.ndarray:
    """Max-pool on int16 [N, C, H, W] (floor or ceil mode); padding cells are -32768. Exact; frac unchanged."""
    x = _as_int16(x, "activation")
    kh, kw = _pair(kernel)
    sh, sw = _pair(stride if stride is not None else kernel)
    ph, pw = _pair(padding)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"max-pool padding {ph},{pw} exceeds half the kernel {kh}x{kw}")
    n, c, h, w = x.shape
    oh, ow = conv_out_size(h, kh, sh, ph, ceil_mode), conv_out_size(w, kw, sw, pw, ceil_mode)
    eh, ew = max(0, (oh - 1) * sh + kh - h - 2 * ph), max(0, (ow - 1) * sw + kw - w - 2 * pw)  # ceil mode
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=INT16_MIN)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
    win = win[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]
    return win.max(axis=(4, 5)).astype(np.int16)


def residual_add_params(frac_a: int, frac_b: int, frac_out: int) -> tuple[int, int, int]:
    """``(wa, wb, shift)`` of the residual add: ``wa = 2**(F-fa)``, ``wb = 2**(F-fb)``, ``shift = F - fo``
    with ``F = max(fa, fb)``. ValueError when the weights do not fit int16 or the shift is out of range."""
    f = max(frac_a, frac_b)
    if f - min(frac_a, frac_b) > MAX_ADD_WEIGHT_EXP:
        raise ValueError(
            f"residual add of frac bits {frac_a} and {frac_b}: difference over {MAX_ADD_WEIGHT_EXP}"
        )
    shift = f - frac_out
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"residual add to frac {frac_out} needs shift {shift}, outside 0..{MAX_SHIFT}")
    return 1 << (f - frac_a), 1 << (f - frac_b), shift


def add_int(a: np.ndarray, b: np.ndarray, wa: int, wb: int, shift: int, relu: bool = False,
            clamp: int | None = None) -> np.ndarray:
    """Residual add as a MAC-array dot product: per element ``requantize([a, b] . [wa, wb], shift, relu, clamp)``.

    ``a``, ``b`` int16 of the same shape; ``wa``, ``wb`` int16 weights (powers of two from
    :func:`residual_add_params`). Returns int16 of ``a``'s shape.
    """
    a = _as_int16(a, "activation")
    b = _as_int16(b, "activation")
    if a.shape != b.shape:
        raise ValueError(f"residual add of different shapes {a.shape} and {b.shape}")
    pairs = np.stack([a.reshape(-1), b.reshape(-1)], axis=1)  # [M, 2]
    wmat = np.array([[wa], [wb]], dtype=np.int64)
    return _linear_rows(pairs, wmat, np.zeros(1, dtype=np.int64), shift, relu, clamp).reshape(a.shape)


def avgpool_params(count: int, frac_in: int, frac_out: int) -> tuple[int, int, int]:
    """``(R, r, shift)`` of the global average pool rule over ``count`` values (module docstring).

    ``R = floor((2**r + floor(count/2)) / count)`` with the largest ``r`` giving ``R <= 32767``, lowered so
    that ``shift = frac_in + r - frac_out <= 31``. ValueError when no valid ``r`` exists.
    """

    def weight(r: int) -> int:
        return ((1 << r) + count // 2) // count

    r = min(avgpool_max_r(count), MAX_SHIFT - frac_in + frac_out)
    shift = frac_in + r - frac_out
    if r < 0 or weight(r) < 1 or not 0 <= shift <= MAX_SHIFT:
        raise ValueError(
            f"average pool of {count} values from frac {frac_in} to frac {frac_out} is not possible"
        )
    return weight(r), r, shift


def avgpool_max_r(count: int) -> int:
    """The largest ``r`` with ``round_half_up(2**r / count) <= 32767`` (before any shift cap)."""
    if not 1 <= count <= MAX_DOT_LENGTH:
        raise ValueError(f"average pool over {count} values, allowed 1..{MAX_DOT_LENGTH}")
    r = 0
    while ((1 << (r + 1)) + count // 2) // count <= INT16_MAX:
        r += 1
    return r


def global_avgpool_int(x: np.ndarray, weight: int, shift: int) -> np.ndarray:
    """Global average pool ``[N, C, H, W] -> [N, C]``: ``requantize(sum(x * R), shift)`` per channel,
    a dot product of the H*W values with the constant int16 weight ``R`` (from :func:`avgpool_params`)."""
    x = _as_int16(x, "activation")
    n, c, h, w = x.shape
    wmat = np.full((h * w, 1), weight, dtype=np.int64)
    y = _linear_rows(x.reshape(n * c, h * w), wmat, np.zeros(1, dtype=np.int64), shift, False)
    return y.reshape(n, c)


def avgpool2d_weight(channels: int, kernel: IntPair, weight: int) -> np.ndarray:
    """The depthwise conv weight (int16 [C, 1, KH, KW], every tap ``weight``) that runs a k x k average
    pool on the engine."""
    kh, kw = _pair(kernel)
    return np.full((channels, 1, kh, kw), weight, dtype=np.int16)


def avgpool2d_int(x: np.ndarray, kernel: IntPair, stride: IntPair | None, padding: IntPair, weight: int,
                  shift: int) -> np.ndarray:
    """k x k average pool on int16 [N, C, H, W] (``count_include_pad``): a depthwise conv whose taps all
    hold ``weight`` (``R`` of :func:`avgpool_params` over ``k * k`` values), zero padding, bias 0, then
    ``requantize(acc, shift)``."""
    x = _as_int16(x, "activation")
    kh, kw = _pair(kernel)
    c = x.shape[1]
    return conv2d_int(x, avgpool2d_weight(c, (kh, kw), weight), None, shift, stride if stride is not None else
                      kernel, padding, groups=c)


def concat_int(xs: list[np.ndarray]) -> np.ndarray:
    """Channel concatenation of int16 maps [N, C_i, H, W] of one format (an exact copy)."""
    xs = [_as_int16(x, "activation") for x in xs]
    if len({x.shape[2:] for x in xs}) != 1 or len({x.shape[0] for x in xs}) != 1:
        raise ValueError(f"concat of maps of different sizes {[x.shape for x in xs]}")
    return np.concatenate(xs, axis=1)


def shortcut_a_int(x: np.ndarray, out_channels: int, stride: int = 2) -> np.ndarray:
    """CIFAR option-A shortcut on int16: ``x[:, :, ::s, ::s]`` placed at channel offset
    ``(out_channels - C) // 2``, zeros elsewhere. Exact copy; frac unchanged."""
    x = _as_int16(x, "activation")
    n, c, h, w = x.shape
    off = (out_channels - c) // 2
    sub = x[:, :, ::stride, ::stride]
    y = np.zeros((n, out_channels, *sub.shape[2:]), dtype=np.int16)
    y[:, off : off + c] = sub
    return y


def shortcut_a_as_conv(in_channels: int, out_channels: int) -> np.ndarray:
    """The 1x1 conv weight (int16 [out, in, 1, 1]) that runs the option-A shortcut on the MAC array
    (stride 2, bias 0, shift 0): the same bits as :func:`shortcut_a_int`."""
    off = (out_channels - in_channels) // 2
    w = np.zeros((out_channels, in_channels, 1, 1), dtype=np.int16)
    w[np.arange(in_channels) + off, np.arange(in_channels), 0, 0] = 1
    return w


def flatten_int(x: np.ndarray) -> np.ndarray:
    """``[N, C, H, W] -> [N, C*H*W]`` in C, H, W order (no arithmetic)."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


__all__ = [
    "ROW_CHUNK",
    "avgpool_max_r",
    "add_int",
    "avgpool2d_int",
    "avgpool2d_weight",
    "avgpool_params",
    "concat_int",
    "conv2d_int",
    "conv_out_size",
    "fc_int",
    "flatten_int",
    "global_avgpool_int",
    "im2col",
    "maxpool2d_int",
    "quantize_bias",
    "relu_int",
    "residual_add_params",
    "shortcut_a_as_conv",
    "shortcut_a_int",
]
