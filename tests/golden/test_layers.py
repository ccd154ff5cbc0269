"""Integer layer references: against independent int64 references, torch float, and their own rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from golden import fixedpoint as fp
from golden import layers as L
from golden.nets.cifar_resnet import ShortcutA


def ref_requant(acc: np.ndarray, shift: int, relu: bool) -> np.ndarray:
    """Requantize written out independently: floor((acc + 2**(s-1)) / 2**s), clamp, ReLU."""
    acc = np.asarray(acc, dtype=object)
    half = (1 << (shift - 1)) if shift else 0
    y = np.vectorize(lambda v: min(max((int(v) + half) // (1 << shift), -32768), 32767), otypes=[np.int64])(
        acc
    )
    return np.maximum(y, 0) if relu else y


def ref_conv_acc(x, w, bias, stride, padding, groups):
    """Direct convolution in int64: a sum over (ky, kx) of shifted, strided input slices (no im2col)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=np.int64)
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    acc = np.zeros((n, o, oh, ow), dtype=np.int64)
    og = o // groups
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    ky : ky + sh * (oh - 1) + 1 : sh,
                    kx : kx + sw * (ow - 1) + 1 : sw,
                ]
                acc[:, g * og : (g + 1) * og] += np.einsum(
                    "nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, ky, kx].astype(np.int64)
                )
    return acc + np.asarray(bias, dtype=np.int64)[None, :, None, None]


def random_conv_case(seed: int):
    rng = np.random.default_rng(seed)
    kh, kw = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    if rng.random() < 0.5:
        kw = kh
    sh, sw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    ph, pw = int(rng.integers(0, kh // 2 + 2)), int(rng.integers(0, kw // 2 + 2))
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    c = groups * int(rng.integers(1, 8))
    o = groups * int(rng.integers(1, 9))
    h = max(kh - 2 * ph, 1) + int(rng.integers(0, 12))
    wd = max(kw - 2 * pw, 1) + int(rng.integers(0, 12))
    n = int(rng.integers(1, 3))
    amp = int(rng.choice([100, 3000, 32768]))
    x = rng.integers(-amp, amp, size=(n, c, h, wd)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(o, c // groups, kh, kw)).astype(np.int16)
    if seed % 5 == 0:  # extreme values
        x.flat[::3] = -32768
        w.flat[::2] = -32768
    k = (c // groups) * kh * kw
    acc_std = amp * 32768 / 3 * np.sqrt(k)  # of a sum of k uniform products
    bias = rng.integers(-int(acc_std), int(acc_std) + 1, size=o)
    shift = int(np.clip(np.ceil(np.log2(acc_std)) - 12 + rng.integers(-2, 3), 0, fp.MAX_SHIFT))
    return dict(
        x=x,
        w=w,
        bias=bias,
        shift=shift,
        stride=(sh, sw),
        padding=(ph, pw),
        groups=groups,
        relu=bool(rng.random() < 0.5),
    )


@pytest.mark.parametrize("seed", range(60))
def test_conv2d_matches_direct_int64_reference(seed):
    cs = random_conv_case(seed)
    got = L.conv2d_int(
        cs["x"], cs["w"], cs["bias"], cs["shift"], cs["stride"], cs["padding"], cs["groups"], cs["relu"]
    )
    acc = ref_conv_acc(cs["x"], cs["w"], cs["bias"], cs["stride"], cs["padding"], cs["groups"])
    assert got.dtype == np.int16
    assert got.shape == acc.shape
    np.testing.assert_array_equal(got, ref_requant(acc, cs["shift"], cs["relu"]))


def test_conv2d_matches_literal_loops():
    """Seven nested loops, the most literal definition, on a small odd case (C=5, 7x9, k=4x3, s=(2,3))."""
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, size=(1, 5, 7, 9)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(7, 5, 4, 3)).astype(np.int16)
    b = rng.integers(-(2**39), 2**39, size=7)
    (sh, sw), (ph, pw), shift = (2, 3), (2, 1), 21
    got = L.conv2d_int(x, w, b, shift, (sh, sw), (ph, pw))
    oh, ow = (7 + 2 * ph - 4) // sh + 1, (9 + 2 * pw - 3) // sw + 1
    for o in range(7):
        for oy in range(oh):
            for ox in range(ow):
                acc = int(b[o])
                for c in range(5):
                    for ky in range(4):
                        for kx in range(3):
                            iy, ix = oy * sh + ky - ph, ox * sw + kx - pw
                            if 0 <= iy < 7 and 0 <= ix < 9:
                                acc += int(x[0, c, iy, ix]) * int(w[o, c, ky, kx])
                assert got[0, o, oy, ox] == fp.requantize(acc, shift)


def test_im2col_order_is_channel_ky_kx_like_weight_reshape():
    x = np.arange(2 * 3 * 4, dtype=np.int16).reshape(1, 2, 3, 4)
    a = L.im2col(x, (2, 3), 1, 0)
    assert a.shape == (2 * 2, 2 * 2 * 3)
    # output pixel (oy=1, ox=1) is row 1*2+1 = 3; column (c*KH + ky)*KW + kx
    for c in range(2):
        for ky in range(2):
            for kx in range(3):
                assert a[3, (c * 2 + ky) * 3 + kx] == x[0, c, 1 + ky, 1 + kx]
    w = np.arange(5 * 2 * 2 * 3).reshape(5, 2, 2, 3)
    assert np.array_equal(
        a @ w.reshape(5, -1).T,
        ref_conv_acc(x, w, np.zeros(5), (1, 1), (0, 0), 1).transpose(0, 2, 3, 1).reshape(-1, 5),
    )


def test_conv2d_within_quantization_error_of_float():
    rng = np.random.default_rng(5)
    xf = rng.normal(0, 1.0, size=(2, 7, 13, 11))
    wf = rng.normal(0, 0.2, size=(9, 7, 5, 5))
    bf = rng.normal(0, 0.5, size=9)
    fx_, fw = fp.frac_bits_for(np.abs(xf).max()), fp.frac_bits_for(np.abs(wf).max())
    ref = F.conv2d(
        torch.from_numpy(xf), torch.from_numpy(wf), torch.from_numpy(bf), stride=2, padding=2
    ).numpy()
    fo = fp.frac_bits_for(np.abs(ref).max())
    xq, wq = fp.quantize(xf, fx_), fp.quantize(wf, fw)
    got = fp.dequantize(L.conv2d_int(xq, wq, L.quantize_bias(bf, fx_ + fw), fx_ + fw - fo, 2, 2), fo)
    k = 7 * 25
    bound = (
        k
        * (
            np.abs(wf).max() * 2.0 ** -(fx_ + 1)
            + np.abs(xf).max() * 2.0 ** -(fw + 1)
            + 2.0 ** -(fx_ + fw + 2)
        )
        + 2.0 ** -(fx_ + fw + 1)
        + 2.0 ** -(fo + 1)
    )
    err = np.abs(got - ref).max()
    assert err <= bound, (err, bound)
    assert err < 2e-3 * np.abs(ref).max()


def test_fc_matches_reference_and_float():
    rng = np.random.default_rng(2)
    x = rng.integers(-32768, 32768, size=(3, 77)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(13, 77)).astype(np.int16)
    b = rng.integers(-(2**39), 2**39, size=13)
    for shift, relu in ((0, False), (20, True), (31, False)):
        acc = x.astype(object) @ w.T.astype(object) + b.astype(object)
        np.testing.assert_array_equal(L.fc_int(x, w, b, shift, relu), ref_requant(acc, shift, relu))


def test_linear_chunks_do_not_change_results(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.integers(-32768, 32768, size=(2, 4, 30, 30)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(6, 4, 3, 3)).astype(np.int16)
    full = L.conv2d_int(x, w, None, 18, 1, 1)
    monkeypatch.setattr(L, "ROW_CHUNK", 7)
    np.testing.assert_array_equal(L.conv2d_int(x, w, None, 18, 1, 1), full)


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1), (5, 3, 2), (2, 1, 1)])
def test_maxpool_is_exact(k, s, p):
    rng = np.random.default_rng(k * 10 + s + p)
    x = rng.integers(-32768, 32768, size=(2, 3, 11, 9)).astype(np.int16)
    x[0, 0] = -32768  # an all-minimum plane must stay -32768 next to the padding
    ref = F.max_pool2d(torch.from_numpy(x.astype(np.float64)), k, s, p).numpy()
    got = L.maxpool2d_int(x, k, s, p)
    assert got.dtype == np.int16
    np.testing.assert_array_equal(got, ref)


def test_relu_and_flatten():
    x = np.array([[[[-5, 0], [7, -32768]]]], dtype=np.int16)
    np.testing.assert_array_equal(L.relu_int(x), [[[[0, 0], [7, 0]]]])
    assert L.flatten_int(np.zeros((2, 3, 4, 5), np.int16)).shape == (2, 60)


@pytest.mark.parametrize(
    "fa, fb, fo, relu",
    [
        (12, 12, 11, True),
        (10, 13, 12, False),
        (13, 10, 9, True),
        (8, 8, 8, False),
        (15, 1, 3, False),
        (-2, 4, 0, True),
    ],
)
def test_residual_add_is_exact_and_within_half_lsb(fa, fb, fo, relu):
    rng = np.random.default_rng(abs(fa * 100 + fb * 10 + fo))
    a = rng.integers(-32768, 32768, size=(2, 5, 7, 3)).astype(np.int16)
    b = rng.integers(-32768, 32768, size=(2, 5, 7, 3)).astype(np.int16)
    wa, wb, shift = L.residual_add_params(fa, fb, fo)
    assert wa & (wa - 1) == 0 and wb & (wb - 1) == 0 and max(wa, wb) <= 2**14
    got = L.add_int(a, b, wa, wb, shift, relu)
    acc = a.astype(np.int64) * wa + b.astype(np.int64) * wb
    np.testing.assert_array_equal(got, ref_requant(acc, shift, relu))
    true = a * 2.0**-fa + b * 2.0**-fb
    if relu:
        true = np.maximum(true, 0)
    ok = np.abs(true) * 2.0**fo < 32767
    assert np.abs(got * 2.0**-fo - true)[ok].max() <= 2.0 ** -(fo + 1)


def test_residual_add_rejects_impossible_formats():
    with pytest.raises(ValueError):
        L.residual_add_params(0, 15, 10)  # weight 2**15 does not fit int16
    with pytest.raises(ValueError):
        L.residual_add_params(10, 10, 11)  # output finer than the accumulator
    with pytest.raises(ValueError):
        L.add_int(np.zeros((1, 2), np.int16), np.zeros((2, 1), np.int16), 1, 1, 0)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 9, 25, 36, 49, 64, 100, 169, 196, 1000, 4096, 65536])
def test_avgpool_weight_rule(count):
    big_r, r, shift = L.avgpool_params(count, 10, 12)
    assert big_r == ((1 << r) + count // 2) // count
    assert 16384 <= big_r <= 32767
    assert ((1 << (r + 1)) + count // 2) // count > 32767  # r is the largest that fits
    assert shift == 10 + r - 12
    rel = abs(big_r * count / 2**r - 1)
    assert rel <= count / 2 ** (r + 1) <= 2**-15
    if count & (count - 1) == 0:
        assert rel == 0


def test_avgpool_shift_is_capped_at_31():
    assert L.avgpool_params(49, 20, 10) == (((1 << 20) + 24) // 49, 20, 30)
    big_r, r, shift = L.avgpool_params(49, 25, 10)  # r = 20 would need shift 35: r drops to 16
    assert shift == fp.MAX_SHIFT and r == 16 and big_r == ((1 << 16) + 24) // 49
    with pytest.raises(ValueError):
        L.avgpool_params(49, 0, 40)


@pytest.mark.parametrize("h, w, fi, fo", [(8, 8, 12, 13), (7, 7, 11, 12), (6, 6, 10, 10), (3, 5, 13, 15)])
def test_global_avgpool_vs_true_mean(h, w, fi, fo):
    rng = np.random.default_rng(h * w + fi)
    x = rng.integers(-32768, 32768, size=(3, 11, h, w)).astype(np.int16)
    big_r, r, shift = L.avgpool_params(h * w, fi, fo)
    got = L.global_avgpool_int(x, big_r, shift)
    acc = x.astype(np.int64).sum(axis=(2, 3)) * big_r
    np.testing.assert_array_equal(got, ref_requant(acc, shift, False))
    mean = x.astype(np.float64).mean(axis=(2, 3)) * 2.0**-fi
    ok = np.abs(mean) * 2.0**fo < 32767
    bound = 2.0 ** -(fo + 1) + np.abs(mean) * 2.0**-15
    assert np.all((np.abs(got * 2.0**-fo - mean) <= bound + 1e-12)[ok])


def test_shortcut_a_copy_equals_conv_and_torch():
    rng = np.random.default_rng(4)
    x = rng.integers(-32768, 32768, size=(2, 16, 9, 8)).astype(np.int16)
    y = L.shortcut_a_int(x, 32)
    assert y.shape == (2, 32, 5, 4)
    np.testing.assert_array_equal(y, L.conv2d_int(x, L.shortcut_a_as_conv(16, 32), None, 0, stride=2))
    ref = ShortcutA(16, 32)(torch.from_numpy(x.astype(np.float32))).numpy()
    np.testing.assert_array_equal(y, ref)


def test_bias_quantization_and_range_checks():
    b = L.quantize_bias(np.array([1.5, -0.25, 1e9]), 20)
    assert b.dtype == np.int64 and b.tolist() == [3 << 19, -(1 << 18), fp.BIAS_MAX]
    with pytest.raises(ValueError):
        L.conv2d_int(np.full((1, 1, 3, 3), 40000), np.ones((1, 1, 1, 1), np.int16), None, 0)
    with pytest.raises(ValueError):
        L.conv2d_int(np.zeros((1, 4, 3, 3), np.int16), np.ones((2, 3, 1, 1), np.int16), None, 0, groups=2)
    with pytest.raises(ValueError):
        L.conv2d_int(np.zeros((1, 1, 3, 3), np.int16), np.ones((1, 1, 1, 1), np.int16), None, 32)


# ---- operators of the network front end (issue #9): depthwise, ReLU6, k x k average pool, ceil mode, concat ----


@pytest.mark.parametrize("seed", range(24))
def test_depthwise_conv_matches_direct_reference(seed):
    """groups == channels (the depthwise path) with strides 1-3, odd sizes, extremes and the ReLU6 clamp."""
    rng = np.random.default_rng(1000 + seed)
    c, k = int(rng.integers(1, 40)), int(rng.choice([1, 3, 5, 7]))
    s, p = int(rng.integers(1, 4)), int(rng.integers(0, k // 2 + 1))
    h, w = int(rng.integers(k, k + 15)), int(rng.integers(k, k + 15))
    x = rng.integers(-32768, 32768, size=(2, c, h, w)).astype(np.int16)
    wt = rng.integers(-32768, 32768, size=(c, 1, k, k)).astype(np.int16)
    if seed % 4 == 0:
        x.flat[::2] = -32768
        wt.flat[::3] = -32768
    bias = rng.integers(-(2**38), 2**38, size=c)
    shift = int(rng.integers(10, 32))
    clamp = int(rng.integers(0, 32768)) if seed % 2 else None
    got = L.conv2d_int(x, wt, bias, shift, s, p, groups=c, relu=clamp is not None, clamp=clamp)
    ref = ref_requant(ref_conv_acc(x, wt, bias, (s, s), (p, p), c), shift, clamp is not None)
    if clamp is not None:
        ref = np.minimum(ref, clamp)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("frac", range(-8, 16))
def test_relu6_clamp_is_six_rounded_half_up(frac):
    want = min(int(np.floor(6 * 2.0**frac + 0.5)), 32767)
    assert fp.relu6_clamp(frac) == want
    # clamping the rounded value = rounding the clamped real value (exact), on every accumulator near 6
    shift = 10
    acc = np.arange(-(1 << 18), 1 << 24, 37, dtype=np.int64)
    got = fp.requantize(acc, shift, relu=True, clamp=fp.relu6_clamp(frac))
    real = np.clip(acc / 2.0**shift, 0, 6 * 2.0**frac)  # the accumulator in output units, ReLU6 in those units
    np.testing.assert_array_equal(got, np.minimum(np.floor(real + 0.5), 32767).astype(np.int64))


def test_requantize_clamp_rejects_bad_values():
    with pytest.raises(ValueError, match="clamp"):
        fp.requantize(5, 0, True, -1)
    with pytest.raises(ValueError, match="clamp"):
        fp.requantize(5, 0, True, 40000)
    assert fp.requantize(np.array([5, 9]), 0, True, 7).tolist() == [5, 7]


@pytest.mark.parametrize("k, s, p", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (5, 1, 2), (7, 7, 0)])
def test_avgpool2d_within_its_error_bound_of_the_true_mean(k, s, p):
    rng = np.random.default_rng(k + 10 * s)
    x = rng.integers(-32768, 32768, size=(2, 5, 14, 15)).astype(np.int16)
    fi, fo = 10, 10
    r_weight, r, shift = L.avgpool_params(k * k, fi, fo)
    got = L.avgpool2d_int(x, k, s, p, r_weight, shift)
    true = F.avg_pool2d(torch.from_numpy(x.astype(np.float64)), k, s, p, count_include_pad=True).numpy()
    err = np.abs(got - true)
    bound = 0.5 + np.abs(true) * (k * k) / 2.0 ** (r + 1) + 1e-9
    assert got.shape == true.shape and np.all(err <= np.minimum(bound, 32768))
    # and it is exactly the depthwise conv with constant weights
    np.testing.assert_array_equal(got, L.conv2d_int(x, L.avgpool2d_weight(5, k, r_weight), None, shift, s, p,
                                                     groups=5))


@pytest.mark.parametrize("k, s, p", [(3, 2, 0), (2, 2, 0), (3, 2, 1), (3, 3, 1)])
def test_maxpool_ceil_mode_equals_torch(k, s, p):
    rng = np.random.default_rng(k * 7 + s + p)
    for h, w in ((13, 13), (14, 15), (55, 55), (8, 9)):
        x = rng.integers(-32768, 32768, size=(1, 2, h, w)).astype(np.int16)
        ref = F.max_pool2d(torch.from_numpy(x.astype(np.float64)), k, s, p, ceil_mode=True).numpy()
        got = L.maxpool2d_int(x, k, s, p, ceil_mode=True)
        np.testing.assert_array_equal(got, ref)
        assert L.conv_out_size(h, k, s, p, True) == ref.shape[2]


def test_concat_is_a_copy():
    a = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(2, 3, 4, 5)
    b = -np.arange(2 * 2 * 4 * 5, dtype=np.int16).reshape(2, 2, 4, 5)
    got = L.concat_int([a, b])
    np.testing.assert_array_equal(got[:, :3], a)
    np.testing.assert_array_equal(got[:, 3:], b)
    with pytest.raises(ValueError, match="different sizes"):
        L.concat_int([a, b[:, :, :3]])
