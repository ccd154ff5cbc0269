"""The MAC processing element and a small MAC array in Amaranth's own simulator (Glasgow style:
``rtl_x(case) == ref_x(case)`` over random cases). The full 12 x 12 array runs in Verilator
(test_mac_array_cocotb.py)."""

import random

import numpy as np
from amaranth.sim import Simulator

from golden.fixedpoint import INT16_MAX, INT16_MIN, linear_int
from hw.mac_array import MacArray, input_layout, output_layout
from hw.pe import MacPE
from sim.payload import Packer


def ref_pe(pairs: list[list[tuple[int, int]]]) -> list[int]:
    return [sum(a * w for a, w in dot) for dot in pairs]


def rtl_pe(pairs: list[list[tuple[int, int]]]) -> list[int]:
    dut = MacPE()
    results = []

    async def bench(ctx):
        for dot in pairs:
            for n, (a, w) in enumerate(dot):
                ctx.set(dut.a, a)
                ctx.set(dut.w, w)
                ctx.set(dut.en, 1)
                ctx.set(dut.fresh, n == 0)
                await ctx.tick()
            ctx.set(dut.en, 0)
            await ctx.tick()  # an idle cycle: the accumulator must hold
            results.append(ctx.get(dut.acc))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def test_pe_random_and_extremes():
    rng = random.Random(3)
    vals = [INT16_MIN, INT16_MAX, -1, 0, 1]
    cases = [[(INT16_MIN, INT16_MIN)] * 40, [(INT16_MIN, INT16_MAX)] * 40, [(0, 0)]]
    for _ in range(30):
        k = rng.randint(1, 40)
        pick = (lambda: rng.choice(vals)) if rng.random() < 0.3 else (lambda: rng.randint(INT16_MIN, INT16_MAX))
        cases.append([(pick(), pick()) for _ in range(k)])
    assert rtl_pe(cases) == ref_pe(cases)


def ref_array(tiles):
    """Tiles are (a [cols pixels, K], w [K, rows channels], bias [rows], shift, relu); the array drains
    rows = channels."""
    return [linear_int(a, w, b, s, r).T.tolist() for a, w, b, s, r in tiles]


def rtl_array(tiles, rows, cols, stall_every=0):
    dut = MacArray(rows=rows, cols=cols)
    pin, pout = Packer(input_layout(rows, cols)), Packer(output_layout(rows, cols))
    outs: list[list[list[int]]] = []

    async def feed(ctx):
        for a, w, b, s, r in tiles:
            k = a.shape[1]
            beats = pin.pack(k, a=a.T, w=w, last=[0] * (k - 1) + [1])
            for n, beat in enumerate(beats):
                ctx.set(dut.inp.payload.as_value(), beat)
                if n == k - 1:
                    for i in range(rows):
                        ctx.set(dut.bias[i], int(b[i]))
                    ctx.set(dut.shift, s)
                    ctx.set(dut.relu, r)
                ctx.set(dut.inp.valid, 1)
                await ctx.tick().until(dut.inp.ready)
        ctx.set(dut.inp.valid, 0)

    async def collect(ctx):
        n = 0
        while sum(map(len, outs)) < len(tiles) * rows:
            ctx.set(dut.out.ready, not (stall_every and n % stall_every == 0))
            n += 1
            _, _, valid, ready, payload = await ctx.tick().sample(dut.out.valid, dut.out.ready,
                                                                   dut.out.payload.as_value())
            if valid and ready:
                beat = pout.unpack(payload)
                if beat["row"] == 0:
                    outs.append([])
                outs[-1].append(beat["data"].tolist())

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(collect)
    sim.run()
    return outs


def random_tiles(rng, n, rows, cols):
    tiles = []
    for _ in range(n):
        k = int(rng.integers(1, 20))
        ext = rng.random() < 0.3
        draw = (lambda s: rng.choice([INT16_MIN, INT16_MAX, 0], size=s)) if ext else \
            (lambda s: rng.integers(INT16_MIN, INT16_MAX + 1, size=s))
        tiles.append((draw((cols, k)), draw((k, rows)), rng.integers(-(2**30), 2**30, size=rows),
                      int(rng.integers(0, 32)), bool(rng.integers(2))))
    return tiles


def test_small_array_matches_golden():
    rng = np.random.default_rng(5)
    tiles = random_tiles(rng, 12, 3, 2)
    assert rtl_array(tiles, 3, 2) == ref_array(tiles)


def test_small_array_with_backpressure():
    rng = np.random.default_rng(6)
    tiles = random_tiles(rng, 8, 2, 3)
    assert rtl_array(tiles, 2, 3, stall_every=3) == ref_array(tiles)


def test_parameters_checked():
    import pytest

    with pytest.raises(ValueError, match="rows.*0"):
        MacArray(rows=0)
