"""Tile geometry (combinational) against its Python model over random layer shapes."""

import numpy as np
from amaranth.sim import Simulator

from hw.tile_geometry import LANES, SEG_ROWS, TileGeometry, ref_tile_geometry


def rtl_tile_geometry(cases):
    dut = TileGeometry()
    out = []

    async def bench(ctx):
        for oy0, ox0, p0, m, out_w, s, k, pad in cases:
            for sig, v in ((dut.oy0, oy0), (dut.ox0, ox0), (dut.p0, p0), (dut.m, m), (dut.out_w, out_w),
                           (dut.stride, s), (dut.k, k), (dut.pad, pad)):
                ctx.set(sig, v)
            out.append(dict(
                n=ctx.get(dut.n), next_oy=ctx.get(dut.next_oy), next_ox=ctx.get(dut.next_ox),
                r=[ctx.get(dut.lane_row[j]) for j in range(LANES)],
                base=[ctx.get(dut.base[j]) for j in range(LANES)],
                present=[bool(ctx.get(dut.present[r])) for r in range(SEG_ROWS)],
                x_lo=[ctx.get(dut.x_lo[r]) for r in range(SEG_ROWS)],
                reads=[ctx.get(dut.reads[r]) for r in range(SEG_ROWS)],
            ))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out


def masked(g):
    """Only the fields the engine uses for valid lanes / present rows."""
    n = g["n"]
    rows = [r for r in range(SEG_ROWS) if g["present"][r]]
    return (n, g["next_oy"], g["next_ox"], g["r"][:n], g["base"][:n], g["present"],
            [g["x_lo"][r] for r in rows], [g["reads"][r] for r in rows])


def test_tile_geometry_random():
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(300):
        out_w = int(rng.choice([1, 2, 3, 5, 6, 7, 11, 12, 13, 14, 27, 55, 56, 224]))
        out_h = int(rng.integers(1, 8))
        m = out_w * out_h
        p0 = int(rng.integers(0, m))
        k = int(rng.integers(1, 12))
        cases.append((p0 // out_w, p0 % out_w, p0, m, out_w, int(rng.integers(1, 5)), k, int(rng.integers(0, k))))
    got = rtl_tile_geometry(cases)
    for case, g in zip(cases, got, strict=True):
        assert masked(g) == masked(ref_tile_geometry(*case)), case
