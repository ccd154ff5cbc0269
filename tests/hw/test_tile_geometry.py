"""Tile geometry (combinational) against its Python model over random layer shapes, at the default 12 lanes
and at other lane counts of the architecture (``golden.arch``: 8, 16, 24)."""

import numpy as np
import pytest
from amaranth.hdl import Shape, unsigned
from amaranth.sim import Simulator

from hw.tile_geometry import LANES, MAX_K, MAX_STRIDE, SEG_ROWS, SEG_WIDTH, TileGeometry, ref_tile_geometry, seg_width


def rtl_tile_geometry(cases, lanes=LANES):
    dut = TileGeometry() if lanes == LANES else TileGeometry(lanes)
    out = []

    async def bench(ctx):
        for oy0, ox0, p0, m, out_w, s, k, pad in cases:
            for sig, v in ((dut.oy0, oy0), (dut.ox0, ox0), (dut.p0, p0), (dut.m, m), (dut.out_w, out_w),
                           (dut.stride, s), (dut.k, k), (dut.pad, pad)):
                ctx.set(sig, v)
            out.append(dict(
                n=ctx.get(dut.n), next_oy=ctx.get(dut.next_oy), next_ox=ctx.get(dut.next_ox),
                r=[ctx.get(dut.lane_row[j]) for j in range(lanes)],
                base=[ctx.get(dut.base[j]) for j in range(lanes)],
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


def lane_cases(lanes, count, seed):
    """Random tiles of a ``lanes``-lane engine: map widths around the lane count and its multiples (rows that
    wrap once, twice or not at all), the last tiles of a band, and the widest segments (stride 4, k 11)."""
    rng = np.random.default_rng(seed)
    widths = sorted({1, 2, 3, lanes // 2, lanes - 1, lanes, lanes + 1, 2 * lanes - 1, 2 * lanes + 1, 27, 56, 224,
                     4 * lanes + 3})
    cases = []
    for i in range(count):
        out_w = int(rng.choice(widths))
        out_h = int(rng.integers(1, 8))
        m = out_w * out_h
        kind = i % 4
        if kind == 0:       # the last tile (or one of the last few) of the band
            p0 = max(0, m - int(rng.integers(1, lanes + 2)))
        elif kind == 1:     # a tile that starts at a row start: the widest segment with stride 4, k 11
            p0 = int(rng.integers(0, out_h)) * out_w
        else:
            p0 = int(rng.integers(0, m))
        if kind == 1 or rng.random() < 0.25:
            s, k = MAX_STRIDE, MAX_K
        else:
            s, k = int(rng.integers(1, MAX_STRIDE + 1)), int(rng.integers(1, MAX_K + 1))
        cases.append((p0 // out_w, p0 % out_w, p0, m, out_w, s, k, int(rng.integers(0, k))))
    return cases


@pytest.mark.parametrize("lanes", [8, 16, 24])
def test_tile_geometry_random_lanes(lanes):
    """rtl == model at other lane counts, and every valid lane's window stays inside its row's segment."""
    cases = lane_cases(lanes, 240, seed=lanes)
    got = rtl_tile_geometry(cases, lanes)
    seg = seg_width(lanes)
    widest = 0
    for case, g in zip(cases, got, strict=True):
        ref = ref_tile_geometry(*case, lanes=lanes)
        assert masked(g) == masked(ref), case
        k = case[6]
        for j in range(ref["n"]):
            r = ref["r"][j]
            assert r * seg <= ref["base"][j] and ref["base"][j] + k <= (r + 1) * seg, (case, j)
        widest = max([widest] + [ref["reads"][r] for r in range(SEG_ROWS) if ref["present"][r]])
    assert widest == seg // 16        # some case needed every 16-word load of the widest segment
    assert any(r["n"] < lanes for r in got) and any(r["n"] == lanes for r in got)
    assert any(max(r["r"][:r["n"]], default=0) == SEG_ROWS - 1 for r in got)   # tiles over three rows


def test_segment_width():
    """A segment holds the widest window run ((lanes - 1) * 4 + 11 words), in whole 16-word loads; 64 at 12."""
    assert SEG_WIDTH == seg_width(12) == 64 and LANES == 12
    assert [seg_width(n) for n in (4, 8, 16, 24)] == [32, 48, 80, 112]
    for n in range(4, 25):
        assert seg_width(n) % 16 == 0 and seg_width(n) - 16 < (n - 1) * MAX_STRIDE + MAX_K <= seg_width(n)
        g = TileGeometry(n)
        assert g.lanes == n and g.seg_width == seg_width(n)


def test_signature_widths():
    """The 12-lane ports are as before; the others widen with the lane count and the segment width."""
    def widths(g):
        sig = g.signature.members
        return ({name: Shape.cast(sig[name].shape.elem_shape) for name in ("base", "reads", "lane_row")},
                {name: sig[name].shape.length for name in ("base", "reads", "lane_row")},
                Shape.cast(sig["n"].shape))

    assert widths(TileGeometry()) == ({"base": unsigned(8), "reads": unsigned(3), "lane_row": unsigned(4)},
                                      {"base": 12, "reads": SEG_ROWS, "lane_row": 12}, unsigned(4))
    # 24 lanes: base 0..3 * 112 - 1, reads 0..7, lane rows 0..26, n 0..24
    assert widths(TileGeometry(24)) == ({"base": unsigned(9), "reads": unsigned(3), "lane_row": unsigned(5)},
                                        {"base": 24, "reads": SEG_ROWS, "lane_row": 24}, unsigned(5))


@pytest.mark.parametrize("bad", [3, 25, 0, 12.0, True, "12", None])
def test_lanes_checked(bad):
    with pytest.raises(ValueError, match=r"lanes must be an integer in 4\.\.24, got"):
        TileGeometry(bad)
    with pytest.raises(ValueError, match=r"lanes must be an integer in 4\.\.24"):
        ref_tile_geometry(0, 0, 0, 1, 1, 1, 1, 0, lanes=bad)
    with pytest.raises(ValueError, match=r"lanes must be an integer in 4\.\.24"):
        seg_width(bad)
