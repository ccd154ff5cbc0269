"""Where the 12 output pixels of a tile are, and which input row segments they need.

A tile is a run of up to ``LANES`` consecutive output pixels (raster order inside the output band),
which may wrap over up to ``SEG_ROWS`` output rows. Running across row ends keeps all 12 columns of
the MAC array busy on maps whose width is not a multiple of 12 (AlexNet's 13 x 13 and 27 x 27).

For one (input channel, kernel row) step, output row ``r`` of the tile needs one contiguous segment of
one input row: ``x_lo[r] .. x_lo[r] + width[r] - 1`` with ``x_lo[r] = ox_min[r] * stride - pad`` and
``width[r] = (ox_max[r] - ox_min[r]) * stride + k`` (at most 11 * 4 + 11 = 55 <= ``SEG_WIDTH``).
The window loader copies segment ``r`` to ``SEG_WIDTH`` registers at ``r * SEG_WIDTH``; lane ``j``
then finds its input for kernel column ``kx`` at ``base[j] + kx`` with
``base[j] = r_j * SEG_WIDTH + (ox_j - ox_min[r_j]) * stride``.

All of this is combinational from the tile's start (``oy0``, ``ox0``, ``p0``).
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

LANES = 12
SEG_ROWS = 3
SEG_WIDTH = 64
DIM_BITS = 16


def ref_tile_geometry(oy0, ox0, p0, m, out_w, stride, k, pad):
    """Python model: returns dict(n, next_oy, next_ox, r, base, present, x_lo, reads)."""
    ox, r = [ox0], [0]
    for _ in range(LANES):
        wrap = ox[-1] + 1 == out_w
        ox.append(0 if wrap else ox[-1] + 1)
        r.append(r[-1] + wrap)
    valid = [r[j] < SEG_ROWS and p0 + j < m for j in range(LANES)]
    n = valid.index(False) if False in valid else LANES
    present, x_lo, reads = [], [], []
    for row in range(SEG_ROWS):
        lanes = [j for j in range(n) if r[j] == row]
        present.append(bool(lanes))
        ox_min = ox0 if row == 0 else 0
        ox_max = ox[lanes[-1]] if lanes else ox_min
        x_lo.append(ox_min * stride - pad)
        reads.append(((ox_max - ox_min) * stride + k + 15) // 16)
    base = [r[j] * SEG_WIDTH + ((j if r[j] == 0 else ox[j]) * stride) for j in range(LANES)]
    return dict(n=n, next_oy=oy0 + r[n], next_ox=ox[n], r=r[:LANES], base=base, present=present,
                x_lo=x_lo, reads=reads)


class TileGeometry(wiring.Component):
    oy0: In(DIM_BITS)
    ox0: In(DIM_BITS)
    p0: In(32)
    m: In(32)          # pixels in the output band (out_h * out_w)
    out_w: In(DIM_BITS)
    stride: In(3)
    k: In(4)
    pad: In(4)

    n: Out(range(LANES + 1))
    next_oy: Out(DIM_BITS)
    next_ox: Out(DIM_BITS)
    lane_row: Out(data.ArrayLayout(range(SEG_ROWS + LANES), LANES))
    base: Out(data.ArrayLayout(unsigned(8), LANES))
    present: Out(SEG_ROWS)
    x_lo: Out(data.ArrayLayout(signed(DIM_BITS + 4), SEG_ROWS))
    reads: Out(data.ArrayLayout(unsigned(3), SEG_ROWS))

    def elaborate(self, platform):
        m = Module()
        # the lane chain: position of lane j, wrapping at the row end (13 entries: lane 12 is the
        # start of the next tile)
        ox = [self.ox0]
        r = [0]
        for j in range(LANES):
            nox = Signal(DIM_BITS, name=f"ox{j + 1}")
            nr = Signal(range(LANES + 2), name=f"r{j + 1}")
            wrap = (ox[-1] + 1) == self.out_w
            m.d.comb += [nox.eq(ox[-1] + 1), nr.eq(r[-1] + wrap)]
            with m.If(wrap):
                m.d.comb += nox.eq(0)
            ox.append(nox)
            r.append(nr)
        valid = [Signal(name=f"v{j}") for j in range(LANES)]
        for j in range(LANES):
            m.d.comb += valid[j].eq((r[j] < SEG_ROWS) & ((self.p0 + j) < self.m))
        # n = index of the first invalid lane (valid lanes form a prefix)
        m.d.comb += self.n.eq(LANES)
        for j in reversed(range(LANES)):
            with m.If(~valid[j]):
                m.d.comb += self.n.eq(j)
        # start of the next tile = position of lane n
        for j in range(LANES + 1):
            with m.If(self.n == j):
                m.d.comb += [self.next_oy.eq(self.oy0 + r[j]), self.next_ox.eq(ox[j])]

        for row in range(SEG_ROWS):
            present = Signal(name=f"present{row}")
            ox_max = Signal(DIM_BITS, name=f"ox_max{row}")
            m.d.comb += present.eq(0)
            ox_min = self.ox0 if row == 0 else 0
            m.d.comb += ox_max.eq(ox_min)
            for j in range(LANES):
                with m.If(valid[j] & (r[j] == row)):
                    m.d.comb += [present.eq(1), ox_max.eq(ox[j])]  # the last such lane wins
            width = Signal(DIM_BITS + 4, name=f"width{row}")
            m.d.comb += [
                self.present[row].eq(present),
                self.x_lo[row].eq(ox_min * self.stride - self.pad),
                width.eq((ox_max - ox_min) * self.stride + self.k),
                self.reads[row].eq((width + 15) >> 4),
            ]
        for j in range(LANES):
            col = j if j == 0 else Signal(DIM_BITS, name=f"col{j}")
            if j:
                m.d.comb += col.eq(ox[j])
                with m.If(r[j] == 0):
                    m.d.comb += col.eq(j)
            m.d.comb += [
                self.lane_row[j].eq(r[j]),
                self.base[j].eq(r[j] * SEG_WIDTH + col * self.stride),
            ]
        return m
