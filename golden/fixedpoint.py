"""The one definition of edgesplit's number formats.

Every golden model and every RTL parameter takes its widths and its rounding from here, so the
hardware and the references can never disagree on a format.

Formats
-------
* Activations and weights: signed 16-bit integers (int16) with a per-tensor power-of-two scale.
  A tensor with ``frac_bits = f`` represents the real value ``q * 2**-f``.
* Products: int16 x int16 is at most ``(-32768)**2 = 2**30`` in magnitude.
* Accumulator: signed ``ACC_BITS = 48``. Why 48: the longest dot product the engine must run without
  overflow is VGG-16's fc6 (512 x 7 x 7 = 25,088 terms; AlexNet's fc6 has 9,216). We allow any length up
  to ``MAX_DOT_LENGTH = 2**16``, whose worst case is ``2**16 * 2**30 = 2**46``; plus a bias of magnitude
  below ``2**(BIAS_BITS-1) = 2**39`` the sum stays below ``2**46 + 2**39 < 2**47``, so a signed 48-bit
  register (range ``[-2**47, 2**47)``) never wraps. 46 bits would suffice for VGG-16 alone; 48 leaves
  head-room for longer layers and is a byte multiple.
* Bias: signed ``BIAS_BITS = 40``, already in accumulator scale (``frac_bits = f_act + f_weight``).
* Requantization to the output format: ``y = sat16((x + round_const(s)) >> s)`` where ``x`` is the
  accumulator plus bias, ``s`` in ``0..MAX_SHIFT`` is ``f_act + f_weight - f_out``, ``>>`` is an
  arithmetic shift and ``round_const(s) = 2**(s-1)`` for ``s > 0`` (0 for ``s = 0``).
  That is round half up (ties go towards +infinity): one adder in hardware, no sign-dependent logic,
  and the bias it introduces (half an LSB at exact ties only) is negligible at 16 bits.
  Saturation clamps to ``[-32768, 32767]``; the optional ReLU is applied after saturation
  (``max(y, 0)``, the same result as before saturation).
* ReLU6 is a ReLU plus an upper clamp ``min(y, clamp)`` with ``clamp = relu6_clamp(f_out)``, the value 6 in
  the output format rounded half up (``floor(6 * 2**f_out + 1/2)``, saturated). Rounding is monotone, so
  clamping the rounded value equals rounding the clamped real value: the clamp is exact.
"""

from __future__ import annotations

import numpy as np

ACT_BITS = 16
WEIGHT_BITS = 16
ACC_BITS = 48
BIAS_BITS = 40
MAX_DOT_LENGTH = 2**16
SHIFT_BITS = 5
MAX_SHIFT = 2**SHIFT_BITS - 1

INT16_MIN = -(2 ** (ACT_BITS - 1))
INT16_MAX = 2 ** (ACT_BITS - 1) - 1
ACC_MIN = -(2 ** (ACC_BITS - 1))
ACC_MAX = 2 ** (ACC_BITS - 1) - 1
BIAS_MIN = -(2 ** (BIAS_BITS - 1))
BIAS_MAX = 2 ** (BIAS_BITS - 1) - 1

# The worst case of the accumulator bound, checked at import so a change of widths cannot silently
# break the no-overflow guarantee the module docstring promises.
assert MAX_DOT_LENGTH * 2 ** (2 * (ACT_BITS - 1)) + 2 ** (BIAS_BITS - 1) < 2 ** (ACC_BITS - 1)


def round_const(shift: int) -> int:
    """The rounding constant added before an arithmetic right shift by ``shift`` (round half up)."""
    check_shift(shift)
    return (1 << shift) >> 1


def check_shift(shift: int) -> None:
    if not isinstance(shift, (int, np.integer)) or not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"requantization shift {shift!r} is outside 0..{MAX_SHIFT}")


def saturate(x, bits: int = ACT_BITS):
    """Clamp integers to the signed range of ``bits`` bits (numpy arrays or Python ints)."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if isinstance(x, (int, np.integer)):
        return int(min(max(int(x), lo), hi))
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def relu6_clamp(frac_bits: int) -> int:
    """The int16 value of 6 at ``frac_bits`` (round half up, saturated): the upper clamp of ReLU6."""
    if frac_bits >= 0:
        return int(min(6 << frac_bits, INT16_MAX)) if frac_bits < 16 else INT16_MAX
    return (6 + (1 << (-frac_bits - 1))) >> -frac_bits


def check_clamp(clamp) -> None:
    if clamp is not None and not (isinstance(clamp, (int, np.integer)) and 0 <= clamp <= INT16_MAX):
        raise ValueError(f"activation clamp {clamp!r} is outside 0..{INT16_MAX}")


def requantize(x, shift: int, relu: bool = False, clamp: int | None = None):
    """Accumulator-scale integers (accumulator + bias) to int16: round half up, shift, saturate, ReLU, and
    with ``clamp`` (ReLU6) ``min(y, clamp)``.

    ``x`` may be a Python int or an integer numpy array (computed in int64, exact for |x| < 2**62).
    Returns the same kind (int or ``np.int64`` array) holding int16 values.
    """
    check_shift(shift)
    check_clamp(clamp)
    if isinstance(x, (int, np.integer)):
        y = saturate((int(x) + round_const(shift)) >> shift)
        y = max(y, 0) if relu else y
        return min(y, int(clamp)) if clamp is not None else y
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"requantize needs integers, got dtype {x.dtype}")
    y = saturate((x.astype(np.int64) + round_const(shift)) >> shift)
    y = np.maximum(y, 0) if relu else y
    return np.minimum(y, int(clamp)) if clamp is not None else y


def dot_accumulate(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Exact integer matrix product of int16 operands in int64: ``a[M, K] @ w[K, N]``.

    Checks the dot length against MAX_DOT_LENGTH (the accumulator's no-overflow bound).
    numpy's integer matmul does not use BLAS, so the result is exact.
    """
    a = np.asarray(a)
    w = np.asarray(w)
    check_int(a, ACT_BITS, "activation")
    check_int(w, WEIGHT_BITS, "weight")
    if a.shape[-1] > MAX_DOT_LENGTH:
        raise ValueError(f"dot product length {a.shape[-1]} exceeds MAX_DOT_LENGTH {MAX_DOT_LENGTH}")
    return a.astype(np.int64) @ w.astype(np.int64)


def check_int(x: np.ndarray, bits: int, what: str) -> None:
    """Raise ValueError if ``x`` holds values outside the signed ``bits``-bit range."""
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"{what} values must be integers, got dtype {x.dtype}")
    if x.size:
        lo, hi = int(x.min()), int(x.max())
        if lo < -(2 ** (bits - 1)) or hi > 2 ** (bits - 1) - 1:
            bad = lo if lo < -(2 ** (bits - 1)) else hi
            raise ValueError(f"{what} value {bad} does not fit signed {bits} bits")


def linear_int(a, w, bias, shift: int, relu: bool = False, clamp: int | None = None) -> np.ndarray:
    """Golden integer layer core: ``requantize(a @ w + bias, shift, relu, clamp)``.

    ``a``: int16 [M, K]; ``w``: int16 [K, N]; ``bias``: int [N] in accumulator scale (BIAS_BITS).
    Returns int16 values as an ``np.int16`` array [M, N].
    """
    bias = np.asarray(bias, dtype=np.int64)
    check_int(bias, BIAS_BITS, "bias")
    acc = dot_accumulate(a, w) + bias
    return requantize(acc, shift, relu, clamp).astype(np.int16)


# ---- float <-> fixed conversion (calibration helpers) -------------------------------------------


def frac_bits_for(max_abs: float, bits: int = ACT_BITS, max_frac: int = 24) -> int:
    """Largest number of fractional bits so that ``max_abs`` still fits a signed ``bits`` integer.

    Power-of-two scale: ``max_abs * 2**f <= 2**(bits-1) - 1``. A tensor of zeros gets ``max_frac``.
    The result may be negative for values above 32767.
    """
    if not np.isfinite(max_abs) or max_abs < 0:
        raise ValueError(f"max_abs must be a finite non-negative number, got {max_abs!r}")
    if max_abs == 0:
        return max_frac
    limit = 2 ** (bits - 1) - 1
    f = int(np.floor(np.log2(limit / max_abs)))
    # guard against floating-point edge cases of log2
    while max_abs * 2.0**f > limit:
        f -= 1
    while f + 1 <= max_frac and max_abs * 2.0 ** (f + 1) <= limit:
        f += 1
    return min(f, max_frac)


def quantize(x, frac_bits: int, bits: int = ACT_BITS) -> np.ndarray:
    """Float to signed integer with ``frac_bits`` fractional bits: round half to even, saturate."""
    q = np.rint(np.asarray(x, dtype=np.float64) * 2.0**frac_bits)
    return saturate(q.astype(np.int64), bits).astype(np.int16 if bits <= 16 else np.int64)


def dequantize(q, frac_bits: int) -> np.ndarray:
    """Signed integers with ``frac_bits`` fractional bits back to float64."""
    return np.asarray(q, dtype=np.float64) * 2.0**-frac_bits
