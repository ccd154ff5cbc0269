"""The depthwise unit on its own (Amaranth simulator): random depthwise 3x3 layers, strides 1 and 2, padding
0 and 1, bands of rows, channel counts that are not multiples of 12, extremes, ReLU / ReLU6; every output
equals ``golden.layers.conv2d_int`` with ``groups`` = channels, and the cycles equal the unit's schedule
(``hw.dw_unit.ref_dw_cycles``) when its weight banks are ready. The same at 8 and 16 lanes (``DwUnit(lanes=)``:
strips of ``lanes`` output columns, groups of ``lanes`` channels, up to three 16-word reads per row segment)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import fixedpoint as fp
from golden import layers as L
from hw.dw_unit import LANES, SEG, TAPS, DwUnit, ref_dw_cycles, seg_reads, seg_words

FB_WORDS = 1 << 14


def run_dw(x, w, bias, shift, stride, pad, relu, clamp, band=None, bank_delay=0, seed=0, maxpool=False,
           ceil_mode=False, lanes=LANES):
    """Run a whole depthwise layer (or the output rows ``band`` = (first, count) of it) on the unit; returns
    (output map [C, rows, OW] as the unit wrote it, cycles from start to done). ``maxpool``: the unit's
    3x3 max-pool mode (``w``, ``bias`` unused). ``lanes``: the unit's lane count (its banks hold ``lanes``
    channels)."""
    c, h, wd = x.shape
    oh, ow = L.conv_out_size(h, 3, stride, pad, ceil_mode), L.conv_out_size(wd, 3, stride, pad, ceil_mode)
    oy0, rows = band if band is not None else (0, oh)
    # the band's input rows in the buffer (as the compiler loads them)
    y_a = max(0, oy0 * stride - pad)
    y_b = min(h, (oy0 + rows - 1) * stride - pad + 3)
    fb = np.zeros(FB_WORDS, np.int64)
    in_words = c * (y_b - y_a) * wd
    fb[:in_words] = x[:, y_a:y_b].reshape(-1)
    out_addr = in_words + 5
    groups = -(-c // lanes)
    bank = np.zeros((groups, TAPS, lanes), np.int64)
    bias_g = np.zeros((groups, lanes), np.int64)
    for ch in range(c) if not maxpool else ():
        bank[ch // lanes, :, ch % lanes] = w[ch, 0].reshape(-1)
        bias_g[ch // lanes, ch % lanes] = bias[ch]
    dut = DwUnit(fb_addr_bits=14, lanes=lanes)
    rng = np.random.default_rng(seed)
    state = {"cycles": None}

    async def bench(ctx):
        p = dut.p
        for name, v in dict(in_addr=0, in_ch_stride=(y_b - y_a) * wd, in_w=wd, in_y0=y_a, in_h_total=h,
                            out_addr=out_addr, out_ch_stride=rows * ow, out_w=ow, out_h=rows, out_y0=oy0,
                            channels=c, stride2=int(stride == 2), pad=pad, shift=shift, relu=int(relu),
                            clamp_en=int(clamp is not None), clamp=clamp or 0, maxpool=int(maxpool)).items():
            ctx.set(getattr(p, name), v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        g, wait, cycle = 0, bank_delay, 1
        rd_pending, w_pending = None, None
        while True:
            # the bank of group g becomes ready after a delay
            ready = wait <= 0 and g < groups
            ctx.set(dut.grp_ready, int(ready))
            if g < groups:
                for j in range(lanes):
                    ctx.set(dut.bias[j], int(bias_g[g, j]))
            # read data of the previous cycle's requests
            if rd_pending is not None:
                for e in range(16):  # the buffer's addresses wrap (a read at -1 starts at its last word)
                    ctx.set(dut.rd_data[e], int(fb[(rd_pending + e) % FB_WORDS]))
            if w_pending is not None:
                for j in range(lanes):
                    ctx.set(dut.w_data[j], int(bank[w_pending[0], w_pending[1], j]))
            rd_pending = ctx.get(dut.rd_addr) if ctx.get(dut.rd_en) else None
            w_pending = (g, ctx.get(dut.w_addr)) if ctx.get(dut.w_en) else None
            if ctx.get(dut.wr_en):
                a, mask = ctx.get(dut.wr_addr), ctx.get(dut.wr_mask)
                for j in range(lanes):
                    if mask >> j & 1:
                        fb[a + j] = ctx.get(dut.wr_data[j])
            if ctx.get(dut.grp_release):
                g += 1
                wait = int(rng.integers(0, bank_delay + 1)) if bank_delay else 0
            if ctx.get(dut.done):
                state["cycles"] = cycle
                break
            wait -= 1
            cycle += 1
            assert cycle < 200_000, "the depthwise unit hung"
            await ctx.tick()

    before = fb.copy()
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    out_end = out_addr + c * rows * ow
    outside = np.r_[0:out_addr, out_end:FB_WORDS]
    assert np.array_equal(fb[outside], before[outside]), "the unit wrote outside its output region"
    out = fb[out_addr:out_end].reshape(c, rows, ow)
    return out.astype(np.int16), state["cycles"]


def ref_dw(x, w, bias, shift, stride, pad, relu, clamp):
    return L.conv2d_int(x[None], w, bias, shift, stride, pad, groups=x.shape[0], relu=relu, clamp=clamp)[0]


CASES = [
    # (channels, h, w, stride, pad, relu, clamp)
    (5, 9, 10, 1, 1, True, None),
    (13, 7, 14, 1, 1, True, fp.relu6_clamp(10)),
    (12, 11, 25, 2, 1, False, None),
    (3, 8, 8, 2, 0, True, fp.relu6_clamp(8)),
    (2, 5, 30, 1, 0, False, None),
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{c}h{h}w{w}s{s}p{p}" for c, h, w, s, p, _, _ in CASES])
def test_depthwise_unit_equals_golden(case):
    c, h, wd, s, pad, relu, clamp = case
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    x = rng.integers(-32768, 32768, size=(c, h, wd)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(c, 1, 3, 3)).astype(np.int16)
    x.flat[::7] = -32768
    w.flat[::5] = -32768
    bias = rng.integers(-(2**39), 2**39, size=c)
    shift = int(rng.integers(14, 24))
    got, cycles = run_dw(x, w, bias, shift, s, pad, relu, clamp)
    exp = ref_dw(x, w, bias, shift, s, pad, relu, clamp)
    np.testing.assert_array_equal(got, exp)
    assert cycles == ref_dw_cycles(c, exp.shape[2], exp.shape[1], s)


def test_bands_and_waiting_for_weights():
    """Two bands of output rows (the second starting inside the map) and weight banks that come late."""
    rng = np.random.default_rng(5)
    c, h, wd = 14, 12, 9
    x = rng.integers(-20000, 20000, size=(c, h, wd)).astype(np.int16)
    w = rng.integers(-20000, 20000, size=(c, 1, 3, 3)).astype(np.int16)
    bias = rng.integers(-(2**30), 2**30, size=c)
    exp = ref_dw(x, w, bias, 18, 1, 1, True, None)
    top, _ = run_dw(x, w, bias, 18, 1, 1, True, None, band=(0, 5), bank_delay=7, seed=1)
    bottom, _ = run_dw(x, w, bias, 18, 1, 1, True, None, band=(5, 7), bank_delay=3, seed=2)
    np.testing.assert_array_equal(np.concatenate([top, bottom], axis=1), exp)


@pytest.mark.parametrize("s, pad, ceil", [(1, 1, False), (2, 0, False), (2, 0, True), (2, 1, True)])
def test_max_pool_mode_equals_golden(s, pad, ceil):
    """The unit's 3x3 max-pool mode: padding and the ceil-mode windows past the map read -32768."""
    rng = np.random.default_rng(10 * s + pad + ceil)
    x = rng.integers(-32768, 32768, size=(14, 11, 27)).astype(np.int16)
    x[0] = -32768
    got, cycles = run_dw(x, None, None, 0, s, pad, False, None, maxpool=True, ceil_mode=ceil)
    exp = L.maxpool2d_int(x[None], 3, s, pad, ceil)[0]
    np.testing.assert_array_equal(got, exp)
    assert cycles == ref_dw_cycles(14, exp.shape[2], exp.shape[1], s, maxpool=True)


def test_parameters_checked():
    with pytest.raises(ValueError, match="fb_addr_bits"):
        DwUnit(fb_addr_bits=30)


# ---- other lane counts ---------------------------------------------------------------------------------------

LANE_CASES = [
    # (lanes, channels, h, w, stride, pad, relu, clamp): reads per row segment = seg_reads(stride, lanes)
    (8, 11, 9, 21, 1, 1, True, fp.relu6_clamp(10)),   # 2 groups (the last of 3 channels), 3 strips, 1 read
    (8, 9, 10, 35, 2, 1, False, None),                 # ow 18: 3 strips (the last of 2); 2 reads (18 words)
    (16, 17, 7, 37, 2, 1, True, None),                 # 2 groups (the last of 1); ow 19: 2 strips; 3 reads
    (16, 5, 6, 35, 1, 0, False, fp.relu6_clamp(9)),    # ow 33: 3 strips (the last of 1); 2 reads (18 words)
    (24, 2, 4, 53, 2, 1, True, None),                  # ow 27: 2 strips; 4 reads (50 words)
]


@pytest.mark.parametrize("case", LANE_CASES, ids=[f"l{n}c{c}h{h}w{w}s{s}p{p}" for n, c, h, w, s, p, _, _ in LANE_CASES])
def test_depthwise_unit_other_lanes_equals_golden(case):
    lanes, c, h, wd, s, pad, relu, clamp = case
    rng = np.random.default_rng(1000 + lanes * 10 + s)
    x = rng.integers(-32768, 32768, size=(c, h, wd)).astype(np.int16)
    w = rng.integers(-32768, 32768, size=(c, 1, 3, 3)).astype(np.int16)
    x.flat[::7] = -32768
    x.flat[3::11] = 32767
    w.flat[::5] = -32768
    bias = rng.integers(-(2**39), 2**39, size=c)
    shift = int(rng.integers(14, 24))
    got, cycles = run_dw(x, w, bias, shift, s, pad, relu, clamp, lanes=lanes)
    exp = ref_dw(x, w, bias, shift, s, pad, relu, clamp)
    np.testing.assert_array_equal(got, exp)
    assert cycles == ref_dw_cycles(c, exp.shape[2], exp.shape[1], s, lanes=lanes)


def test_other_lanes_bands_waiting_and_max_pool():
    """16 lanes: two bands with late weight banks; 8 lanes: max-pool mode with ceil-mode windows past the map."""
    rng = np.random.default_rng(16)
    c, h, wd = 18, 9, 20
    x = rng.integers(-20000, 20000, size=(c, h, wd)).astype(np.int16)
    w = rng.integers(-20000, 20000, size=(c, 1, 3, 3)).astype(np.int16)
    bias = rng.integers(-(2**30), 2**30, size=c)
    exp = ref_dw(x, w, bias, 18, 1, 1, True, None)
    top, _ = run_dw(x, w, bias, 18, 1, 1, True, None, band=(0, 4), bank_delay=7, seed=1, lanes=16)
    bottom, _ = run_dw(x, w, bias, 18, 1, 1, True, None, band=(4, 5), bank_delay=3, seed=2, lanes=16)
    np.testing.assert_array_equal(np.concatenate([top, bottom], axis=1), exp)

    x = rng.integers(-32768, 32768, size=(10, 8, 26)).astype(np.int16)
    x[0] = -32768
    got, cycles = run_dw(x, None, None, 0, 2, 1, False, None, maxpool=True, ceil_mode=True, lanes=8)
    exp = L.maxpool2d_int(x[None], 3, 2, 1, True)[0]
    np.testing.assert_array_equal(got, exp)
    assert cycles == ref_dw_cycles(10, exp.shape[2], exp.shape[1], 2, maxpool=True, lanes=8)


def test_lane_count_geometry():
    """Segments of ``lanes * s + 2`` words in 16-word reads; the 12-lane unit and schedule are as before."""
    assert LANES == 12 and SEG == seg_words(12) == 26
    assert [(seg_reads(1, n), seg_reads(2, n)) for n in (4, 8, 12, 16, 24)] == [(1, 1), (1, 2), (1, 2), (2, 3),
                                                                                (2, 4)]
    for c, ow, oh, s, mp in ((13, 27, 5, 1, False), (30, 14, 7, 2, True), (1, 1, 1, 2, False)):
        old = -(-c // 12) * (1 if mp else TAPS + 1) + c * (1 + -(-ow // 12) * (3 + (oh - 1) * s) * s) + 4
        assert ref_dw_cycles(c, ow, oh, s, mp) == ref_dw_cycles(c, ow, oh, s, mp, lanes=12) == old
    assert ref_dw_cycles(17, 19, 4, 2, lanes=16) == 2 * (TAPS + 1) + 17 * (1 + 2 * (3 + 3 * 2) * 3) + 4
    for n in (12, 16):
        d = DwUnit(lanes=n)
        assert d.lanes == n and d.seg == seg_words(n)
        assert d.w_data.shape().length == d.bias.shape().length == d.wr_data.shape().length == n
        assert len(d.wr_mask) == n and d.macs.shape().width == (9 * n).bit_length()


@pytest.mark.parametrize("bad", [3, 25, 12.5, True, "16"])
def test_lanes_checked(bad):
    with pytest.raises(ValueError, match=r"DwUnit lanes must be an integer in 4\.\.24, got"):
        DwUnit(lanes=bad)
    with pytest.raises(ValueError, match=r"lanes must be an integer in 4\.\.24"):
        ref_dw_cycles(12, 12, 3, 1, lanes=bad)
