"""The number formats: requantization rounding, saturation, accumulator bound, conversions."""

import numpy as np
import pytest

from golden import fixedpoint as fp


def ref_requantize(x: int, shift: int, relu: bool) -> int:
    """Independent definition by exact rational arithmetic: round half up of x / 2**shift."""
    import math
    from fractions import Fraction

    y = math.floor(Fraction(x, 2**shift) + Fraction(1, 2)) if shift else x
    y = min(max(y, -32768), 32767)
    return max(y, 0) if relu else y


@pytest.mark.parametrize("shift", range(0, fp.MAX_SHIFT + 1))
def test_requantize_matches_exact_rounding(shift):
    rng = np.random.default_rng(shift)
    base = [0, 1, -1, 2**shift, -(2**shift), 3 * 2**shift // 2, -(3 * 2**shift // 2),
            (2**shift) // 2, -((2**shift) // 2), 32767 << shift, -32768 << shift,
            (32767 << shift) + (1 << shift) - 1, (-32768 << shift) - 1, fp.ACC_MAX, fp.ACC_MIN]
    xs = np.array(base + list(rng.integers(fp.ACC_MIN, fp.ACC_MAX, size=300))
                  + list(rng.integers(-(2 ** (shift + 17)), 2 ** (shift + 17), size=300)), dtype=np.int64)
    for relu in (False, True):
        got = fp.requantize(xs, shift, relu)
        exp = [ref_requantize(int(x), shift, relu) for x in xs]
        assert got.tolist() == exp
        assert [fp.requantize(int(x), shift, relu) for x in xs[:20]] == exp[:20]


def test_round_half_up_ties():
    # ties go towards +infinity, for both signs
    assert fp.requantize(3, 1) == 2 and fp.requantize(-3, 1) == -1
    assert fp.requantize(1, 1) == 1 and fp.requantize(-1, 1) == 0
    assert fp.requantize(5, 2) == 1 and fp.requantize(6, 2) == 2 and fp.requantize(-6, 2) == -1


def test_saturation_and_relu():
    assert fp.requantize(10**12, 0) == 32767
    assert fp.requantize(-(10**12), 0) == -32768
    assert fp.requantize(-(10**12), 0, relu=True) == 0
    assert fp.requantize(32767, 0) == 32767 and fp.requantize(32768, 0) == 32767
    assert fp.requantize(-32768, 0) == -32768 and fp.requantize(-32769, 0) == -32768
    assert fp.round_const(0) == 0 and fp.round_const(1) == 1 and fp.round_const(31) == 2**30


@pytest.mark.parametrize("bad", [-1, 32, 100, 1.5])
def test_shift_out_of_range(bad):
    with pytest.raises(ValueError, match=str(bad)):
        fp.requantize(0, bad)


def test_accumulator_bound_vgg16_fc6():
    # -32768 * -32768 accumulated 25088 times (VGG-16 fc6) fits the accumulator with room to spare
    k = 25088
    worst = k * 2**30
    assert worst < fp.ACC_MAX and -worst > fp.ACC_MIN
    a = np.full((1, k), fp.INT16_MIN, dtype=np.int16)
    w = np.full((k, 1), fp.INT16_MIN, dtype=np.int16)
    assert int(fp.dot_accumulate(a, w)[0, 0]) == worst
    # and the longest allowed dot product with the largest bias still fits
    assert fp.MAX_DOT_LENGTH * 2**30 + fp.BIAS_MAX < fp.ACC_MAX
    assert -fp.MAX_DOT_LENGTH * 2**30 + fp.BIAS_MIN > fp.ACC_MIN  # most negative: -32768*32767 terms


def test_dot_length_limit():
    with pytest.raises(ValueError, match="65537"):
        n = fp.MAX_DOT_LENGTH + 1
        fp.dot_accumulate(np.zeros((1, n), np.int16), np.zeros((n, 1), np.int16))


def test_linear_int_checks_ranges():
    with pytest.raises(ValueError, match="32768"):
        fp.linear_int(np.array([[32768]]), np.array([[1]]), [0], 0)
    with pytest.raises(ValueError, match="bias"):
        fp.linear_int(np.array([[1]]), np.array([[1]]), [2**39], 0)
    with pytest.raises(TypeError):
        fp.linear_int(np.array([[0.5]]), np.array([[1]]), [0], 0)
    out = fp.linear_int(np.array([[2, 3]]), np.array([[4], [5]]), [1], 1, relu=False)
    assert out.dtype == np.int16 and out.tolist() == [[12]]  # (8 + 15 + 1 + 1) >> 1 = 12


def test_frac_bits_and_quantize():
    assert fp.frac_bits_for(1.0) == 14  # 1.0 * 2**14 = 16384 <= 32767 < 32768
    assert fp.frac_bits_for(0.99) == 15
    assert fp.frac_bits_for(32767.0) == 0
    assert fp.frac_bits_for(40000.0) == -1
    assert fp.frac_bits_for(0.0) == 24
    for m in [1e-6, 0.3, 1.0, 2.5, 100.0, 3e4]:
        f = fp.frac_bits_for(m)
        assert m * 2.0**f <= 32767 < m * 2.0 ** (f + 1) or f == 24
    with pytest.raises(ValueError):
        fp.frac_bits_for(float("nan"))
    q = fp.quantize([0.5, -0.5, 1.0, -2.0, 3.0], 14)
    assert q.dtype == np.int16 and q.tolist() == [8192, -8192, 16384, -32768, 32767]
    assert np.allclose(fp.dequantize(q[:3], 14), [0.5, -0.5, 1.0])
