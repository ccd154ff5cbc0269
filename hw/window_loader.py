"""The window loader: copies each step's input row segments from the feature buffer into two segment buffers.

``lanes`` is the engine's lane count (``golden.arch.EngineArch.lanes``, 12 by default). A CONV (POOL) command
runs, for each group ``g`` of ``lanes`` output channels (POOL: each channel), for each tile of up to ``lanes``
consecutive output pixels of the band (``hw.tile_geometry``), for each input channel ``c`` (POOL: channel
``g`` only) and kernel row ``ky``, one *step*: the loader reads the tile's row segments of input row
``(out_y0 + oy) * stride + ky - pad`` (band coordinates, one per output row of the tile) from the feature
buffer, one 16-word read per cycle, into a free segment buffer (``SEG_ROWS x seg_width`` words), words
outside the map (``x`` or ``y`` out of range) replaced by padding: 0 for CONV, -32768 for POOL. Rows outside
the map are not read. When the step's last read has landed the buffer is full and its *record* (what the
consumer needs: the lanes' word offsets, the tile and its flags) is presented; the consumer then takes ``k``
beats (``kx = 0..k-1``), lane ``j`` reading the word at ``base[j] + kx``, and releases the buffer with the
last one. The two buffers (``hw.ping_pong``) let loading the next step overlap consuming this one; a buffer
is free again in the very cycle its last beat is taken, so steps of one read run one per cycle.

The words a step presents are those of the im2col window: lane ``j`` (pixel ``p = p0 + j`` of the band,
``oy, ox = divmod(p, out_w)``) at beat ``kx`` reads input ``(ch, (out_y0 + oy) * stride + ky - pad,
ox * stride + kx - pad)`` (``ch``: ``c``, POOL: ``g``), at feature-buffer address ``in_addr + ch * in_ch_stride
+ (y - in_y0) * in_w + x`` (``in_y0``: the first input row the band holds), or the padding outside
``0 <= y < in_h_total``, ``0 <= x < in_w``.

Ports
-----
start : In(1)        one-cycle pulse: reset for a new command (``p`` valid in this cycle; latched)
run : In(1)          a CONV or POOL is executing: the loader may read (held until the command ends)
p : In(PARAMS)       the command's descriptor fields (``hw.descriptor``) and ``pool`` (0 CONV, 1 POOL); held
                     from ``start`` to the end of the command
rd_en, rd_addr : Out the feature buffer's read port (16 words at ``rd_addr``, the first 16 of its ``fb_banks``;
                     ``rd_addr`` valid while ``rd_en``); ``rd_data`` (In, 16 words) must come the cycle after the read
rec : Out(rec_layout(lanes))  the record of the step being consumed (valid while ``rec_ready``): ``base``
                     (lane word offsets), ``n`` (pixels in the tile), ``first_step`` / ``last_step`` (first /
                     last (c, ky) of the tile), ``first_tile`` / ``last_tile`` (of the group), ``g``, ``p0``
                     (the tile's first pixel in the band), ``rows_valid`` (CONV: output channels of the group,
                     ``min(out_c - g * lanes, lanes)``)
rec_ready : Out(1)   a step is ready to be consumed
kx : In(4)           the consumer's kernel column: ``lane`` shows words ``base[j] + kx``
lane : Out(lanes words)  the segment words of the current step at ``kx`` (combinational; lanes ``j >= n``
                     read 0)
consume : In(1)      the step's last beat is taken this cycle (only while ``rec_ready``): release the buffer
done : Out(1)        every step's reads have been issued (from the cycle after the last one until ``start``)
empty : Out(1)       no step is waiting or landing (both buffers empty, no read in flight): with ``done``, the
                     consumer has taken every step
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACT_BITS, INT16_MIN

from .ping_pong import PingPong
from .tile_geometry import LANES, LOAD_WORDS, SEG_ROWS, TileGeometry, check_lanes, seg_width

PARAMS = data.StructLayout({
    "pool": 1,
    "out_c": 16, "in_c": 16, "k": 4, "stride": 3, "pad": 4, "out_h": 16, "out_w": 16, "out_y0": 16,
    "in_y0": 16, "in_h_total": 16, "in_addr": 24, "in_ch_stride": 24, "in_w": 16,
})


def rec_layout(lanes: int = LANES) -> data.StructLayout:
    """A step's record (ports: ``rec``) at ``lanes`` lanes."""
    seg_size = SEG_ROWS * seg_width(lanes)
    return data.StructLayout({
        "base": data.ArrayLayout(unsigned(max(8, (seg_size - 1).bit_length())), lanes), "n": range(lanes + 1),
        "first_step": 1, "last_step": 1, "first_tile": 1, "last_tile": 1,
        "g": 16, "p0": 32, "rows_valid": range(lanes + 1),
    })


class WindowLoader(wiring.Component):
    """The window loader and its two segment buffers (module docstring). ``fb_addr_bits``: the feature
    buffer's address width (8..24); ``lanes``: the array's lanes (``golden.arch``: 4..24)."""

    def __init__(self, fb_addr_bits: int = 18, lanes: int = LANES):
        self.lanes = check_lanes(lanes, "WindowLoader")
        if not isinstance(fb_addr_bits, int) or isinstance(fb_addr_bits, bool) or not 8 <= fb_addr_bits <= 24:
            raise ValueError(f"WindowLoader fb_addr_bits must be an integer in 8..24, got {fb_addr_bits!r}")
        self.fb_addr_bits = fb_addr_bits
        self.seg_width = seg_width(lanes)
        self.rec_layout = rec_layout(lanes)
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS),
            "rd_en": Out(1), "rd_addr": Out(fb_addr_bits),
            "rd_data": In(data.ArrayLayout(signed(ACT_BITS), LOAD_WORDS)),
            "rec": Out(self.rec_layout), "rec_ready": Out(1),
            "kx": In(4), "lane": Out(data.ArrayLayout(signed(ACT_BITS), lanes)), "consume": In(1),
            "done": Out(1), "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        p = self.p
        m.submodules.geom = geom = TileGeometry(L)
        m.submodules.pp = pp = PingPong()
        m.d.comb += pp.start.eq(self.start)

        groups = Signal(16)          # conv: ceil(out_c / lanes); pool: channels
        m_pixels = Signal(32)        # output pixels in the band
        steps_c = Signal(16)         # input channels summed per tile (1 for pool)
        with m.If(self.start):
            m.d.sync += [
                groups.eq(Mux(p.pool, p.out_c, (p.out_c + L - 1) // L)),
                m_pixels.eq(p.out_h * p.out_w),
                steps_c.eq(Mux(p.pool, 1, p.in_c)),
            ]

        # loop counters: group, tile (first pixel, its output row / column), channel, kernel row, segment
        # row, 16-word load within the row
        l_g, l_p0, l_oy0, l_ox0 = Signal(16), Signal(32), Signal(16), Signal(16)
        # 16-word loads per segment row: 0..seg_width / 16 - 1 (2 bits at 12 lanes)
        chunk_bits = max(1, (self.seg_width // LOAD_WORDS - 1).bit_length())
        l_c, l_ky, l_row, l_chunk = Signal(16), Signal(4), Signal(range(SEG_ROWS)), Signal(chunk_bits)
        l_done = Signal()
        l_active = Signal()
        l_buf = pp.fill_buf
        m.d.comb += [
            geom.oy0.eq(l_oy0), geom.ox0.eq(l_ox0), geom.p0.eq(l_p0), geom.m.eq(m_pixels),
            geom.out_w.eq(p.out_w), geom.stride.eq(p.stride), geom.k.eq(p.k), geom.pad.eq(p.pad),
        ]
        with m.If(self.start):
            m.d.sync += [l_g.eq(0), l_p0.eq(0), l_oy0.eq(0), l_ox0.eq(0), l_c.eq(0), l_ky.eq(0),
                         l_row.eq(0), l_chunk.eq(0), l_done.eq(0), l_active.eq(1)]

        # segment buffers: 2 x SEG_ROWS x seg_width words; written 16 words per cycle, read by the lanes
        SEG_WIDTH = self.seg_width
        seg_size = SEG_ROWS * SEG_WIDTH
        seg = Memory(shape=signed(ACT_BITS), depth=2 * seg_size, init=[])
        m.submodules.seg = seg
        seg_w = [seg.write_port() for _ in range(LOAD_WORDS)]
        seg_r = [seg.read_port(domain="comb") for _ in range(L)]
        recs = [Signal(self.rec_layout, name=f"rec{i}") for i in range(2)]

        ch = Mux(p.pool, l_g, l_c)
        row_x_lo = Signal(signed(24))
        row_reads = Signal(3)
        with m.Switch(l_row):
            for r in range(SEG_ROWS):
                with m.Case(r):
                    m.d.comb += [row_x_lo.eq(geom.x_lo[r]), row_reads.eq(geom.reads[r])]
        # global input row of this segment row
        y_glob = Signal(signed(24))
        m.d.comb += y_glob.eq((p.out_y0 + l_oy0 + l_row) * p.stride + l_ky - p.pad)
        y_valid = (y_glob >= 0) & (y_glob < p.in_h_total)
        x_chunk = Signal(signed(24))
        m.d.comb += x_chunk.eq(row_x_lo + l_chunk * 16)
        rd_addr = Signal(signed(40))
        m.d.comb += rd_addr.eq(p.in_addr + ch * p.in_ch_stride + (y_glob - p.in_y0) * p.in_w + x_chunk)

        last_row = Signal()
        m.d.comb += last_row.eq((l_row == SEG_ROWS - 1) | ~geom.present.bit_select(l_row + 1, 1))
        step_end = Signal()
        m.d.comb += step_end.eq(last_row & (l_chunk == row_reads - 1))
        tile_last_step = Signal()
        m.d.comb += tile_last_step.eq((l_ky == p.k - 1) & (l_c == steps_c - 1))
        tile_last = Signal()
        m.d.comb += tile_last.eq(l_p0 + geom.n >= m_pixels)

        l_issue = Signal()
        m.d.comb += l_issue.eq(self.run & l_active & ~self.start & pp.fill_free)
        # the read lands one cycle later: remember where it goes
        p_valid, p_buf, p_row, p_chunk, p_x, p_yv, p_last = (Signal(), Signal(), Signal(range(SEG_ROWS)),
                                                              Signal(chunk_bits), Signal(signed(24)), Signal(),
                                                              Signal())
        m.d.sync += p_valid.eq(l_issue)
        m.d.comb += [self.rd_en.eq(l_issue & y_valid), self.rd_addr.eq(rd_addr[:self.fb_addr_bits])]
        with m.If(l_issue):
            m.d.sync += [p_buf.eq(l_buf), p_row.eq(l_row), p_chunk.eq(l_chunk), p_x.eq(x_chunk),
                         p_yv.eq(y_valid), p_last.eq(step_end)]
            with m.If(~step_end):
                with m.If(l_chunk == row_reads - 1):
                    m.d.sync += [l_chunk.eq(0), l_row.eq(l_row + 1)]
                with m.Else():
                    m.d.sync += l_chunk.eq(l_chunk + 1)
            with m.Else():
                # the step's record: what the consumer needs to consume this segment buffer
                for i in range(2):
                    with m.If(l_buf == i):
                        m.d.sync += [
                            # lane by lane: the record's offsets may be wider than the geometry's
                            # (under 7 lanes), a whole-array assignment would misalign them
                            *(recs[i].base[j].eq(geom.base[j]) for j in range(L)), recs[i].n.eq(geom.n),
                            recs[i].first_step.eq((l_c == 0) & (l_ky == 0)),
                            recs[i].last_step.eq(tile_last_step),
                            recs[i].first_tile.eq(l_p0 == 0), recs[i].last_tile.eq(tile_last),
                            recs[i].g.eq(l_g), recs[i].p0.eq(l_p0),
                            recs[i].rows_valid.eq(Mux(p.out_c - l_g * L > L, L, p.out_c - l_g * L)),
                        ]
                m.d.sync += [l_row.eq(0), l_chunk.eq(0)]
                m.d.comb += pp.fill_next.eq(1)
                # advance (ky, c, tile, group)
                with m.If(l_ky != p.k - 1):
                    m.d.sync += l_ky.eq(l_ky + 1)
                with m.Else():
                    m.d.sync += l_ky.eq(0)
                    with m.If(l_c != steps_c - 1):
                        m.d.sync += l_c.eq(l_c + 1)
                    with m.Else():
                        m.d.sync += l_c.eq(0)
                        with m.If(~tile_last):
                            m.d.sync += [l_p0.eq(l_p0 + geom.n), l_oy0.eq(geom.next_oy), l_ox0.eq(geom.next_ox)]
                        with m.Else():
                            m.d.sync += [l_p0.eq(0), l_oy0.eq(0), l_ox0.eq(0), l_g.eq(l_g + 1)]
                            with m.If(l_g == groups - 1):
                                m.d.sync += [l_active.eq(0), l_done.eq(1)]

        # write the landed read into the segment buffer (padding outside the map)
        pad_value = Mux(p.pool, INT16_MIN, 0)
        for e in range(LOAD_WORDS):
            x = p_x + e
            inside = p_yv & (x >= 0) & (x < p.in_w)
            m.d.comb += [
                seg_w[e].addr.eq(p_buf * seg_size + p_row * SEG_WIDTH + p_chunk * 16 + e),
                seg_w[e].data.eq(Mux(inside, self.rd_data[e], pad_value)),
                seg_w[e].en.eq(p_valid),
            ]
        m.d.comb += [pp.set.eq(p_valid & p_last), pp.set_buf.eq(p_buf)]

        # consumer side: the record of the buffer being consumed, its lanes at kx
        c_buf = pp.buf
        cur = self.rec
        m.d.comb += [cur.eq(Mux(c_buf, recs[1].as_value(), recs[0].as_value())),
                     self.rec_ready.eq(pp.ready), pp.release.eq(self.consume)]
        for j in range(L):
            m.d.comb += [seg_r[j].addr.eq(c_buf * seg_size + cur.base[j] + self.kx),
                         self.lane[j].eq(Mux(j < cur.n, seg_r[j].data, 0))]
        # (the last read may still be landing when `done` rises: until it has, the step is not yet full)
        m.d.comb += [self.done.eq(l_done), self.empty.eq(pp.empty & ~p_valid)]
        return m
