"""The vector unit on its own (Amaranth simulator): random residual ADDs and global average pools on a model of
the feature buffer (16-word reads a cycle later, ``lanes``-word masked writes), extremes included; every
output equals ``golden.layers.add_int`` / ``global_avgpool_int``, nothing else in the buffer is written, and
the cycles equal ``hw.vector_unit.ref_vector_cycles``. At 12 lanes and at 4, 8, 16 and 24 (24: 32-word reads, the
32-bank buffer of more than 16 lanes)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden import layers as GL
from golden.arch import default_fb_banks
from golden.fixedpoint import INT16_MAX, INT16_MIN
from hw.vector_unit import VectorUnit, ref_vector_cycles

FB_ADDR_BITS = 12


def run_vector(fb, params, lanes=12):
    """Run one command on the unit over the buffer ``fb`` (int64 array, changed in place); returns
    (cycles from the first ``run`` cycle to ``done`` inclusive, MACs counted)."""
    read_words = default_fb_banks(lanes)
    dut = VectorUnit(FB_ADDR_BITS, lanes=lanes, read_words=read_words)
    state = {}

    async def bench(ctx):
        for name, v in params.items():
            ctx.set(getattr(dut.p, name), int(v))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.run, 1)
        rd = [0] * read_words
        cycles, macs = 0, 0
        while True:
            cycles += 1
            assert cycles < 10_000
            for t in range(read_words):
                ctx.set(dut.rd_data[t], int(rd[t]))
            done = ctx.get(dut.done)
            macs += ctx.get(dut.macs)
            if ctx.get(dut.wr_en):
                addr, mask = ctx.get(dut.wr_addr), ctx.get(dut.wr_mask)
                for t in range(lanes):
                    if mask >> t & 1:
                        fb[addr + t] = ctx.get(dut.wr_data[t])
            if ctx.get(dut.rd_en):
                a = ctx.get(dut.rd_addr)
                rd = [int(fb[(a + t) % len(fb)]) for t in range(read_words)]
            await ctx.tick()
            if done:
                break
        state["cycles"], state["macs"] = cycles, macs

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return state["cycles"], state["macs"]


def _values(rng, n, extremes):
    x = rng.integers(INT16_MIN, INT16_MAX + 1, n)
    if extremes:
        x[rng.random(n) < 0.3] = INT16_MIN
        x[rng.random(n) < 0.3] = INT16_MAX
    return x


def check_add(rng, lanes, n, extremes=False):
    fb = rng.integers(INT16_MIN, INT16_MAX + 1, 1 << FB_ADDR_BITS)
    a_addr = int(rng.integers(0, 300))
    b_addr = a_addr + n + int(rng.integers(0, 40))
    out_addr = b_addr + n + int(rng.integers(0, 40))
    a, b = _values(rng, n, extremes), _values(rng, n, extremes)
    fb[a_addr:a_addr + n], fb[b_addr:b_addr + n] = a, b
    wa, wb = (int(v) for v in (rng.choice([INT16_MIN, INT16_MAX, 1, -1]) if extremes
                               else rng.integers(-300, 300) for _ in range(2)))
    shift = int(rng.choice([0, 1, 31])) if extremes else int(rng.integers(0, 12))
    relu = bool(rng.integers(0, 2))
    clamp = int(rng.choice([1, 6 << 8, INT16_MAX])) if rng.random() < 0.4 else None
    before = fb.copy()
    cycles, macs = run_vector(fb, dict(gap=0, in_addr=a_addr, in2_addr=b_addr, out_addr=out_addr, row_len=n,
                                       wa=wa & 0xFFFF, wb=wb & 0xFFFF, shift=shift, relu=int(relu),
                                       clamp_en=int(clamp is not None), clamp=clamp or 0), lanes)
    want = GL.add_int(a.astype(np.int16), b.astype(np.int16), wa, wb, shift, relu, clamp)
    np.testing.assert_array_equal(fb[out_addr:out_addr + n], want)
    before[out_addr:out_addr + n] = want
    np.testing.assert_array_equal(fb, before)          # nothing else written
    assert cycles == ref_vector_cycles(False, n, lanes=lanes)
    assert macs == 2 * n


def check_gap(rng, lanes, c, n, extremes=False):
    fb = rng.integers(INT16_MIN, INT16_MAX + 1, 1 << FB_ADDR_BITS)
    stride = n + int(rng.integers(0, 20))
    in_addr = int(rng.integers(0, 200))
    out_addr = in_addr + c * stride + int(rng.integers(0, 30))
    x = np.stack([_values(rng, n, extremes) for _ in range(c)])
    for ch in range(c):
        fb[in_addr + ch * stride:in_addr + ch * stride + n] = x[ch]
    weight, _r, shift = GL.avgpool_params(n, 8, 8) if not extremes else (INT16_MAX, 0, 31)
    before = fb.copy()
    cycles, macs = run_vector(fb, dict(gap=1, in_addr=in_addr, in_ch_stride=stride, in_c=c, row_len=n,
                                       out_addr=out_addr, wa=weight, shift=shift, relu=1, clamp_en=1, clamp=0),
                              lanes)
    want = GL.global_avgpool_int(x.astype(np.int16).reshape(1, c, 1, n), weight, shift)[0]
    np.testing.assert_array_equal(fb[out_addr:out_addr + c], want)   # (no ReLU, no clamp in GAP)
    before[out_addr:out_addr + c] = want
    np.testing.assert_array_equal(fb, before)
    assert cycles == ref_vector_cycles(True, n, c, lanes=lanes)
    assert macs == c * n


@pytest.mark.parametrize("lanes", [12, 4, 8, 16, 24])
def test_add_random(lanes):
    rng = np.random.default_rng(lanes)
    for i, n in enumerate([1, lanes - 1, lanes, lanes + 1, 3 * lanes + 5, 61]):
        check_add(rng, lanes, max(1, n), extremes=i % 2 == 1)


@pytest.mark.parametrize("lanes", [12, 8, 24])
def test_gap_random(lanes):
    rng = np.random.default_rng(100 + lanes)
    for i, (c, n) in enumerate([(1, 1), (3, 16), (2, 17), (5, 49), (2, 36)]):
        check_gap(rng, lanes, c, n, extremes=i % 2 == 1)


@pytest.mark.parametrize("kw", [dict(lanes=3), dict(lanes=25), dict(lanes=17), dict(lanes=True), dict(fb_addr_bits=4),
                                dict(read_words=8), dict(lanes=24, read_words=16)])
def test_refuses(kw):
    with pytest.raises(ValueError, match="VectorUnit"):
        VectorUnit(**kw)
