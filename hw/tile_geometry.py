"""Where the output pixels of a tile are, and which input row segments they need.

A tile is a run of up to ``lanes`` consecutive output pixels (raster order inside the output band; ``lanes``
is the architecture's lane count, ``golden.arch.EngineArch.lanes``, 12 by default), which may wrap over up
to ``SEG_ROWS`` output rows. Running across row ends keeps all columns of the MAC array busy on maps whose
width is not a multiple of the lane count (AlexNet's 13 x 13 and 27 x 27 at 12 lanes).

For one (input channel, kernel row) step, output row ``r`` of the tile needs one contiguous segment of
one input row: ``x_lo[r] .. x_lo[r] + width[r] - 1`` with ``x_lo[r] = ox_min[r] * stride - pad`` and
``width[r] = (ox_max[r] - ox_min[r]) * stride + k``, at most ``(lanes - 1) * MAX_STRIDE + MAX_K`` words
(at 12 lanes 11 * 4 + 11 = 55 <= 64). The segment width :func:`seg_width` is that rounded up to a
multiple of 16 (the window loader writes 16 words per cycle): 48, 64, 80, 112 words at 8, 12, 16, 24 lanes.
The window loader copies segment ``r`` to ``seg_width`` registers at ``r * seg_width``; lane ``j``
then finds its input for kernel column ``kx`` at ``base[j] + kx`` with
``base[j] = r_j * seg_width + (ox_j - ox_min[r_j]) * stride``.

All of this is combinational from the tile's start (``oy0``, ``ox0``, ``p0``).
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.arch import DEFAULT_ARCH, MAX_LANES, MIN_LANES

SEG_ROWS = 3
DIM_BITS = 16
MAX_STRIDE = 4      # the engine's largest convolution / pool stride
MAX_K = 11          # and kernel size
LOAD_WORDS = 16     # words the window loader writes per cycle (a segment is a whole number of these)


def check_lanes(lanes, who: str = "TileGeometry") -> int:
    """``lanes`` if it is a lane count the RTL is built for (``golden.arch``: MIN_LANES..MAX_LANES), else
    a ValueError naming it."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_LANES:
        raise ValueError(f"{who} lanes must be an integer in {MIN_LANES}..{MAX_LANES}, got {lanes!r}")
    return lanes


def seg_width(lanes: int) -> int:
    """Words of one row segment: the widest segment ``(lanes - 1) * MAX_STRIDE + MAX_K`` rounded up to a
    multiple of ``LOAD_WORDS`` (64 at 12 lanes)."""
    check_lanes(lanes, "seg_width")
    widest = (lanes - 1) * MAX_STRIDE + MAX_K
    return -(-widest // LOAD_WORDS) * LOAD_WORDS


LANES = DEFAULT_ARCH.lanes
SEG_WIDTH = seg_width(LANES)


def ref_tile_geometry(oy0, ox0, p0, m, out_w, stride, k, pad, lanes=LANES):
    """Python model: returns dict(n, next_oy, next_ox, r, base, present, x_lo, reads)."""
    check_lanes(lanes, "ref_tile_geometry")
    seg = seg_width(lanes)
    ox, r = [ox0], [0]
    for _ in range(lanes):
        wrap = ox[-1] + 1 == out_w
        ox.append(0 if wrap else ox[-1] + 1)
        r.append(r[-1] + wrap)
    valid = [r[j] < SEG_ROWS and p0 + j < m for j in range(lanes)]
    n = valid.index(False) if False in valid else lanes
    present, x_lo, reads = [], [], []
    for row in range(SEG_ROWS):
        in_row = [j for j in range(n) if r[j] == row]
        present.append(bool(in_row))
        ox_min = ox0 if row == 0 else 0
        ox_max = ox[in_row[-1]] if in_row else ox_min
        x_lo.append(ox_min * stride - pad)
        reads.append(((ox_max - ox_min) * stride + k + LOAD_WORDS - 1) // LOAD_WORDS)
    base = [r[j] * seg + ((j if r[j] == 0 else ox[j]) * stride) for j in range(lanes)]
    return dict(n=n, next_oy=oy0 + r[n], next_ox=ox[n], r=r[:lanes], base=base, present=present,
                x_lo=x_lo, reads=reads)


class TileGeometry(wiring.Component):
    """The tile geometry of a ``lanes``-lane engine (ports as in the module docstring):

    inputs   oy0, ox0 (DIM_BITS), p0, m (32: pixels in the output band, out_h * out_w), out_w (DIM_BITS),
             stride (3), k (4), pad (4)
    outputs  n (0..lanes), next_oy, next_ox, lane_row[lanes] (0..SEG_ROWS + lanes - 1),
             base[lanes] (0..SEG_ROWS * seg_width - 1), present (SEG_ROWS bits), x_lo[SEG_ROWS] (signed),
             reads[SEG_ROWS] (0..seg_width / 16: 16-word loads of each segment)
    """

    def __init__(self, lanes: int = LANES):
        self.lanes = check_lanes(lanes)
        self.seg_width = seg_width(lanes)
        super().__init__({
            "oy0": In(DIM_BITS),
            "ox0": In(DIM_BITS),
            "p0": In(32),
            "m": In(32),          # pixels in the output band (out_h * out_w)
            "out_w": In(DIM_BITS),
            "stride": In(3),
            "k": In(4),
            "pad": In(4),

            "n": Out(range(lanes + 1)),
            "next_oy": Out(DIM_BITS),
            "next_ox": Out(DIM_BITS),
            "lane_row": Out(data.ArrayLayout(range(SEG_ROWS + lanes), lanes)),
            "base": Out(data.ArrayLayout(range(SEG_ROWS * self.seg_width), lanes)),
            "present": Out(SEG_ROWS),
            "x_lo": Out(data.ArrayLayout(signed(DIM_BITS + 4), SEG_ROWS)),
            "reads": Out(data.ArrayLayout(range(self.seg_width // LOAD_WORDS + 1), SEG_ROWS)),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = self.lanes
        # the lane chain: position of lane j, wrapping at the row end (lanes + 1 entries: lane ``lanes`` is
        # the start of the next tile)
        ox = [self.ox0]
        r = [0]
        for j in range(lanes):
            nox = Signal(DIM_BITS, name=f"ox{j + 1}")
            nr = Signal(range(lanes + 2), name=f"r{j + 1}")
            wrap = (ox[-1] + 1) == self.out_w
            m.d.comb += [nox.eq(ox[-1] + 1), nr.eq(r[-1] + wrap)]
            with m.If(wrap):
                m.d.comb += nox.eq(0)
            ox.append(nox)
            r.append(nr)
        valid = [Signal(name=f"v{j}") for j in range(lanes)]
        for j in range(lanes):
            m.d.comb += valid[j].eq((r[j] < SEG_ROWS) & ((self.p0 + j) < self.m))
        # n = index of the first invalid lane (valid lanes form a prefix)
        m.d.comb += self.n.eq(lanes)
        for j in reversed(range(lanes)):
            with m.If(~valid[j]):
                m.d.comb += self.n.eq(j)
        # start of the next tile = position of lane n
        for j in range(lanes + 1):
            with m.If(self.n == j):
                m.d.comb += [self.next_oy.eq(self.oy0 + r[j]), self.next_ox.eq(ox[j])]

        for row in range(SEG_ROWS):
            present = Signal(name=f"present{row}")
            ox_max = Signal(DIM_BITS, name=f"ox_max{row}")
            m.d.comb += present.eq(0)
            ox_min = self.ox0 if row == 0 else 0
            m.d.comb += ox_max.eq(ox_min)
            for j in range(lanes):
                with m.If(valid[j] & (r[j] == row)):
                    m.d.comb += [present.eq(1), ox_max.eq(ox[j])]  # the last such lane wins
            width = Signal(DIM_BITS + 4, name=f"width{row}")
            m.d.comb += [
                self.present[row].eq(present),
                self.x_lo[row].eq(ox_min * self.stride - self.pad),
                width.eq((ox_max - ox_min) * self.stride + self.k),
                self.reads[row].eq((width + (LOAD_WORDS - 1)) >> 4),   # / LOAD_WORDS (16)
            ]
        for j in range(lanes):
            col = j if j == 0 else Signal(DIM_BITS, name=f"col{j}")
            if j:
                m.d.comb += col.eq(ox[j])
                with m.If(r[j] == 0):
                    m.d.comb += col.eq(j)
            m.d.comb += [
                self.lane_row[j].eq(r[j]),
                self.base[j].eq(r[j] * self.seg_width + col * self.stride),
            ]
        return m
