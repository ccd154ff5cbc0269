"""The engine's encode unit: feature-buffer map -> sample stream -> feature encoder -> DRAM (the TX buffer).

The engine's second pipeline stage. An ``ENCODE`` command hands the unit a map in the feature buffer
and the sequencer moves on at once: the unit then encodes in the background while the next layers
(or the next frame) compute. It reads the feature buffer only in cycles the engine leaves its read
port idle; its DRAM writes (one 12-word beat per 24 coded bytes) take the DRAM port first, a cycle of
back-pressure for the engine each. The compiler makes a command wait for the unit (``enc_sync``)
only when that command would overwrite the map being read.

Sample order (the golden models' order, so the coded bytes equal golden's byte for byte):

* JPEG: the map is the 8-bit mosaic of ``golden.featpack`` (channel tiles in a grid of ``grid_cols``
  columns, each tile padded to multiples of 8 by edge replication, empty grid cells code 0), cut into
  8x8 blocks in raster order. Codes: ``clamp(((x + 2^(s-1)) >> s) + 128 * offset, 0, 255)``, which is
  ``golden.featpack.quantize_to_codes`` with ``scale = 2^s`` and ``offset = -128 * 2^s`` (signed maps)
  or ``0`` (non-negative maps): both float16 numbers, so the side information is unchanged.
* Lossless: the raw int16 values in ``golden.lossless.to_blocks`` order (channel by channel, zero
  padding). The same walk with one tile column.

The walk goes over (tile row, block row in tile, tile column, block column in tile, row in block): one
16-word buffer read gives a block row of 8 samples, so the unit needs the read port once every 8
cycles to keep the encoder at 1 sample per cycle. A map that does not fit the buffer is encoded in
parts (``first``/``last``): whole tile rows at a time, one continuing image.

Output: the encoder's 32-bit beats are packed little-endian into 16-bit words, 12 per DRAM write, from
``out_addr + 12``; when the image is complete a record beat goes to ``out_addr``: bytes (32 bits), coded
bits (32), cycles (32), input stall cycles (32), output stall cycles (32), samples (32), each as two
16-bit words, low first.

Colour images (``colour=True``, issue 16 item 6: the camera image coded on the engine). The unit holds
``Encoder(colour=True)`` (RGB -> YCbCr, 4:4:4 / 4:2:0, interleaved MCUs, luminance and chrominance table
sets: ``hw.jpeg.encoder``, "Colour images"); its params are :data:`colour_params_layout`, the fields above
and ``sampling`` (``hw.jpeg.encoder.SAMPLING_MODES``):

* ``SAMPLING_GRAY`` (0): a feature map, exactly the walk above (JPEG or lossless, one component).
* ``SAMPLING_444`` (1) / ``SAMPLING_420`` (2): an RGB image of ``h x w`` pixels as three planes R, G, B at
  ``in_addr``, ``in_addr + ch_stride``, ``in_addr + 2 ch_stride`` (8-bit values 0..255 in 16-bit words,
  the low byte is taken; row-major, ``w`` words a row, rows from ``y_base`` on). The compiler sets
  ``channels = 3``, ``grid_cols = grid_rows = 1``, ``shift = offset = 0`` and JPEG mode (``lossless = 0``);
  ``yb0``/``ybn`` count MCU rows (8 or 16 pixel rows), so an image larger than the buffer goes in parts of
  whole MCU rows like a map. The walk: (MCU row, MCU column, pixel row in the MCU, plane): one read per
  plane gives the MCU's pixel row (8 or 16 pixels of a 16-word read), the R and G rows wait in registers,
  the B row completes a FIFO entry of 16 RGB pixels (``R | G << 8 | B << 16``), and the serializer hands
  the encoder one pixel per cycle (``last`` on the final pixel). Rows and columns past the image repeat
  its last row and column: ``golden.jpeg.mcu_pixels`` (padding to whole MCUs by edge replication, MCUs in
  raster order, pixels in raster order inside each MCU), the stream ``hw.jpeg.host.rgb_pixels`` sends the
  standalone colour encoder. The coded bytes are golden's scan (``golden.jpeg.encode(image, qf,
  subsampling).scan.data``) byte for byte; the host adds the JFIF header and EOI (``EncodeJob.wrap``).
  The record's ``samples`` counts pixels (padded to whole MCUs).
* Throughput: the colour stage takes RGB pixels in bursts of an MCU (64 / 256 pixels into one half of
  its ping-pong buffer) and the encoder behind it codes 3 (4:4:4) or 1.5 (4:2:0) samples per pixel at one
  sample per cycle, so the unit needs 3 reads per 8 pixels (4:4:4) or per 16 pixels (4:2:0): 3 reads per
  24 encoder cycles in both modes, 1 in 8 cycles as for a map. An image takes ``3 H W`` (4:4:4) or
  ``1.5 H W`` (4:2:0) cycles (padded sizes) plus one MCU's pixels and the pipeline's latency. Measured
  (the bench of ``tests/hw/test_encode_unit_colour.py``, 32 x 32 random image, QF 50, cycles beyond ``3 H W`` /
  ``1.5 H W``): read port free +221 / +382, granted 1 cycle in 2 +222 / +383, 1 in 4 +283 / +402, 1 in
  8 (the average need) +578 / +693, 1 in 10 +1027 / +973. The buffer reads stay one per 8 encoder cycles
  because a 16-word read covers a whole MCU pixel row; reading each plane once per MCU row (4:4:4: 8 of
  the 16 words used) costs nothing while the engine leaves its read port idle one cycle in four or more.
* The table port is 11 bits (``tbl_addr[10]``: the table set, ``hw.jpeg.encoder.CHROMA_BASE``).
* Area (``sim.synth.synth_block``, flow ``full``, ``hw/tech/28nm.yaml``; ``fb_addr_bits = 18``): the
  default unit 0.0297 mm^2 (63.4 k GE of logic and flip-flops, 19.2 kbit of SRAM), the colour build 0.0436
  mm^2 (80.2 k GE, 38.3 kbit: the chrominance Huffman and quantizer tables 12.2 kbit, the colour stage's
  MCU buffers 6.1 kbit, the row FIFO 385 bits wide instead of 129), +47 %.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACT_BITS

from .jpeg.encoder import SAMPLING_420, SAMPLING_GRAY, TABLE_ADDR_BITS, Encoder
from .jpeg.quantizer import RECIPROCAL_BITS

RECORD_WORDS = 12          # the record beat at out_addr; the payload starts after it
ROW = 8                    # samples per block row
ROW_FIFO_DEPTH = 4
RGB_ROW = 16               # colour build: pixels per FIFO entry (an MCU row of 4:2:0; 4:4:4 uses 8)
RGB_BITS = 24              # an RGB pixel: R | G << 8 | B << 16 (the colour encoder's input)
COUNT_BITS = 32

params_layout = data.StructLayout({
    "in_addr": 24,         # feature-buffer address of channel 0 of this part
    "ch_stride": 24,
    "channels": 16,        # channels present in this part (grid cells beyond are empty)
    "h": 16, "w": 16,
    "grid_cols": 16,       # tile columns (1 for lossless)
    "grid_rows": 16,       # tile rows in this part
    "yb0": 13,             # block rows yb0 .. yb0 + ybn - 1 of each tile are in this part ...
    "ybn": 13,
    "y_base": 16,          # ... and the buffer holds each channel's rows from y_base on
    "shift": 5,            # JPEG: value -> code right shift
    "offset": 1,           # JPEG: signed map, code offset 128
    "first": 1,            # first part of an image: reset the byte stream
    "last": 1,             # last part: mark the final sample, write the record
    "out_addr": 32,        # DRAM word address of the record beat
})

colour_params_layout = data.StructLayout({
    **{name: field.shape for name, field in params_layout},
    "sampling": 2,         # colour build: SAMPLING_GRAY (a feature map, as above), SAMPLING_444 / _420 (RGB image)
})

WRITE_LAYOUT = data.StructLayout({"addr": 32, "count": 4, "wdata": data.ArrayLayout(16, RECORD_WORDS)})


class EncodeUnit(wiring.Component):
    """Feature-buffer reader + :class:`hw.jpeg.encoder.Encoder` (32-bit output) + DRAM writer.

    ``fb_addr_bits``: width of the feature-buffer address; ``fb_words_per_read``: words one read returns
    (the buffer's 16 banks); ``colour``: the colour build (``Encoder(colour=True)``, :data:`colour_params_layout`
    with its ``sampling`` field, an 11-bit table port: see "Colour images" in the module docstring)."""

    def __init__(self, fb_addr_bits: int, fb_words_per_read: int = 16, fifo_depth: int = 64, colour: bool = False):
        if not isinstance(fb_addr_bits, int) or not 8 <= fb_addr_bits <= 24:
            raise ValueError(f"EncodeUnit fb_addr_bits must be in 8..24, got {fb_addr_bits!r}")
        if not isinstance(colour, bool):
            raise ValueError(f"EncodeUnit colour must be True or False, got {colour!r}")
        row = RGB_ROW if colour else ROW
        if fb_words_per_read < row:
            raise ValueError(f"EncodeUnit{'(colour=True)' if colour else ''} needs reads of at least {row} words, "
                             f"got {fb_words_per_read!r}")
        self.fb_addr_bits = fb_addr_bits
        self.fb_words_per_read = fb_words_per_read
        self.fifo_depth = fifo_depth
        self.colour = colour
        self.table_addr_bits = TABLE_ADDR_BITS + int(colour)    # Encoder(colour=...).table_addr_bits
        super().__init__({
            "start": In(1),
            "params": In(colour_params_layout if colour else params_layout),
            "lossless": In(1),
            "lossless_signed": In(1),
            "tbl_we": In(1),
            "tbl_addr": In(unsigned(self.table_addr_bits)),
            "tbl_data": In(unsigned(RECIPROCAL_BITS)),
            # feature-buffer reads: the engine grants the port; data arrive one cycle after the grant
            "rd_req": Out(1),
            "rd_addr": Out(unsigned(fb_addr_bits)),
            "rd_grant": In(1),
            "rd_data": In(data.ArrayLayout(signed(ACT_BITS), fb_words_per_read)),
            "wr": Out(stream.Signature(WRITE_LAYOUT)),
            "reading": Out(1),     # the current part still reads the feature buffer
            "busy": Out(1),        # anything in flight (reading, encoding, writing)
            # per-cycle increments for the engine's counters
            "inc_samples": Out(1),
            "inc_bits": Out(6),
            "stall_in": Out(1),
            "stall_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        colour = self.colour
        if colour:
            m.submodules.enc = enc = Encoder(fifo_depth=self.fifo_depth, out_bytes=4, colour=True)
        else:
            m.submodules.enc = enc = Encoder(fifo_depth=self.fifo_depth, out_bytes=4)
        m.d.comb += [enc.lossless.eq(self.lossless), enc.lossless_signed.eq(self.lossless_signed),
                     enc.tbl_we.eq(self.tbl_we), enc.tbl_addr.eq(self.tbl_addr), enc.tbl_data.eq(self.tbl_data)]

        p = Signal(colour_params_layout if colour else params_layout)
        # colour build: an RGB image (rgb), in MCUs of 16 x 16 (wide, 4:2:0) or 8 x 8; pl: the plane R, G, B
        rgb, wide, pl = Signal(), Signal(), Signal(2)
        if colour:
            m.d.comb += [rgb.eq(p.sampling != SAMPLING_GRAY), wide.eq(p.sampling == SAMPLING_420),
                         enc.sampling.eq(p.sampling), enc.rgb.eq(1)]
        # ---- the walk: (tile row, block row, tile column, block column, row in block) ----------------
        # (colour build, RGB: one tile; block = MCU; each row of an MCU is read three times, plane R, G, B)
        tr, yb, tc, xb, r = Signal(16), Signal(13), Signal(16), Signal(13), Signal(4 if colour else 3)
        ch_base = Signal(32)               # tr * grid_cols
        tw8 = Signal(13)
        if colour:
            m.d.comb += tw8.eq(Mux(wide, (p.w + 15) >> 4, (p.w + 7) >> 3))
        else:
            m.d.comb += tw8.eq((p.w + 7) >> 3)
        reading = self.reading
        with m.If(self.start):
            m.d.sync += [p.eq(self.params), tr.eq(0), yb.eq(self.params.yb0), tc.eq(0), xb.eq(0), r.eq(0),
                         ch_base.eq(0), reading.eq(1)]
            if colour:
                m.d.sync += pl.eq(0)

        ch = Signal(32)
        if colour:
            m.d.comb += ch.eq(ch_base + tc + pl)
        else:
            m.d.comb += ch.eq(ch_base + tc)
        y = Signal(16)
        x0 = Signal(16)
        if colour:
            r_last = Mux(wide, 15, 7)
            m.d.comb += y.eq(Mux(wide, Cat(r, yb), Cat(r[:3], yb)))
        else:
            r_last = 7
            m.d.comb += y.eq(Cat(r, yb))
        empty_cell = ch >= p.channels
        # JPEG replicates the tile's last row; lossless pads with zero rows
        y_src = Mux(y >= p.h, p.h - 1, y)
        zero_row = empty_cell | (self.lossless & (y >= p.h))
        if colour:
            m.d.comb += x0.eq(Mux(wide, Cat(Const(0, 4), xb), Cat(Const(0, 3), xb)))
        else:
            m.d.comb += x0.eq(Cat(Const(0, 3), xb))
        addr = Signal(48)
        m.d.comb += addr.eq(p.in_addr + ch * p.ch_stride + (y_src - p.y_base) * p.w + x0)
        yb_last = Signal(13)
        m.d.comb += yb_last.eq(p.yb0 + p.ybn - 1)
        last_row = ((r == r_last) & (xb == tw8 - 1) & (tc == p.grid_cols - 1) & (yb == yb_last)
                    & (tr == p.grid_rows - 1))
        row_done = Signal()                # the row's last read: one (map), the third (RGB)
        if colour:
            m.d.comb += row_done.eq(~rgb | (pl == 2))
            last_row = last_row & row_done

        if colour:
            m.submodules.rows = rows = SyncFIFOBuffered(width=RGB_ROW * RGB_BITS + 1, depth=ROW_FIFO_DEPTH)
        else:
            m.submodules.rows = rows = SyncFIFOBuffered(width=ROW * 16 + 1, depth=ROW_FIFO_DEPTH)
        in_flight = Signal()               # a granted read lands this cycle
        row_lands = Signal()               # ... and it completes a FIFO entry (colour build)
        if colour:
            space = (rows.level + row_lands) < ROW_FIFO_DEPTH
        else:
            space = (rows.level + in_flight) < ROW_FIFO_DEPTH
        step = Signal()                    # the walk takes its current row this cycle
        m.d.comb += [self.rd_req.eq(reading & space & ~zero_row), self.rd_addr.eq(addr[:self.fb_addr_bits])]
        m.d.comb += step.eq(reading & space & (zero_row | self.rd_grant))
        if colour:
            with m.If(step & rgb):
                m.d.sync += pl.eq(Mux(pl == 2, 0, pl + 1))
        with m.If(step & row_done if colour else step):
            with m.If(r != r_last):
                m.d.sync += r.eq(r + 1)
            with m.Else():
                m.d.sync += r.eq(0)
                with m.If(xb != tw8 - 1):
                    m.d.sync += xb.eq(xb + 1)
                with m.Else():
                    m.d.sync += xb.eq(0)
                    with m.If(tc != p.grid_cols - 1):
                        m.d.sync += tc.eq(tc + 1)
                    with m.Else():
                        m.d.sync += tc.eq(0)
                        with m.If(yb != yb_last):
                            m.d.sync += yb.eq(yb + 1)
                        with m.Else():
                            m.d.sync += [yb.eq(p.yb0), tr.eq(tr + 1), ch_base.eq(ch_base + p.grid_cols)]
            with m.If(last_row):
                m.d.sync += reading.eq(0)

        # the row lands one cycle after the grant: remember how to turn it into samples
        l_zero, l_last, l_valid_w = Signal(), Signal(), Signal(16)
        m.d.sync += in_flight.eq(step)
        with m.If(step):
            m.d.sync += [l_zero.eq(zero_row), l_last.eq(last_row & p.last),
                         l_valid_w.eq(p.w - x0)]   # columns of the map left from x0 (>= 1)
        l_pl, l_rgb = Signal(2), Signal()
        if colour:
            with m.If(step):
                m.d.sync += [l_pl.eq(pl), l_rgb.eq(rgb)]
            m.d.comb += row_lands.eq(in_flight & (~l_rgb | (l_pl == 2)))
        samples = [Signal(16, name=f"smp{e}") for e in range(ROW)]
        rnd = Signal(16)
        m.d.comb += rnd.eq(Mux(p.shift == 0, 0, Const(1, 16) << (p.shift - 1)[:5]))
        n_src = RGB_ROW if colour else ROW
        srcs = []
        for e in range(n_src):
            # JPEG: columns past the map repeat its last column; lossless: zeros
            past = e >= l_valid_w
            src = Signal(signed(ACT_BITS), name=f"src{e}")
            with m.Switch(Mux(past, l_valid_w - 1, e)[:(n_src - 1).bit_length()]):
                for t in range(n_src):
                    with m.Case(t):
                        m.d.comb += src.eq(self.rd_data[t])
            srcs.append(src)
            if e >= ROW:
                continue
            shifted = Signal(signed(18), name=f"shifted{e}")
            m.d.comb += shifted.eq(((src + rnd.as_signed()) >> p.shift) + Mux(p.offset, 128, 0))
            code = Mux(shifted < 0, 0, Mux(shifted > 255, 255, shifted[:8]))
            with m.If(l_zero):
                m.d.comb += samples[e].eq(0)
            with m.Elif(self.lossless):
                m.d.comb += samples[e].eq(Mux(past, 0, src.as_unsigned()))
            with m.Else():
                m.d.comb += samples[e].eq(code)
        if not colour:
            m.d.comb += [rows.w_en.eq(in_flight), rows.w_data.eq(Cat(*samples, l_last))]
        else:
            # RGB: the R and G rows wait in registers for the B row; an entry holds 16 pixels (R | G << 8 |
            # B << 16 each, 4:4:4 uses the first 8), a map's entry its 8 samples; the last flag on top
            hold = [[Signal(8, name=f"hold_{c}{e}") for e in range(RGB_ROW)] for c in "rg"]
            with m.If(in_flight & l_rgb & (l_pl != 2)):
                for c in range(2):
                    with m.If(l_pl == c):
                        m.d.sync += [hold[c][e].eq(srcs[e][:8]) for e in range(RGB_ROW)]
            pixels = Cat(*[Cat(hold[0][e], hold[1][e], srcs[e][:8]) for e in range(RGB_ROW)])
            m.d.comb += [rows.w_en.eq(row_lands),
                         rows.w_data.eq(Cat(Mux(l_rgb, pixels, Cat(*samples)), l_last))]

        # ---- serializer: a row -> 8 samples (or 8 / 16 pixels), one per cycle -------------------------
        row_data = rows.r_data
        if not colour:
            s_idx = Signal(3)
            with m.Switch(s_idx):
                for e in range(ROW):
                    with m.Case(e):
                        m.d.comb += enc.inp.payload.data.eq(row_data[16 * e:16 * e + 16])
            m.d.comb += [enc.inp.valid.eq(rows.r_rdy),
                         enc.inp.payload.last.eq(row_data[ROW * 16] & (s_idx == ROW - 1))]
            with m.If(enc.inp.valid & enc.inp.ready):
                m.d.sync += s_idx.eq(s_idx + 1)
                m.d.comb += rows.r_en.eq(s_idx == ROW - 1)
        else:
            s_idx = Signal(4)
            s_end = Signal()
            m.d.comb += s_end.eq(s_idx == Mux(rgb & wide, RGB_ROW - 1, ROW - 1))
            with m.Switch(s_idx):
                for e in range(RGB_ROW):
                    with m.Case(e):
                        if e < ROW:
                            m.d.comb += enc.inp.payload.data.eq(Mux(rgb, row_data[RGB_BITS * e:RGB_BITS * (e + 1)],
                                                                    row_data[16 * e:16 * e + 16]))
                        else:
                            m.d.comb += enc.inp.payload.data.eq(row_data[RGB_BITS * e:RGB_BITS * (e + 1)])
            m.d.comb += [enc.inp.valid.eq(rows.r_rdy),
                         enc.inp.payload.last.eq(row_data[RGB_ROW * RGB_BITS] & s_end)]
            with m.If(enc.inp.valid & enc.inp.ready):
                m.d.sync += s_idx.eq(Mux(s_end, 0, s_idx + 1))
                m.d.comb += rows.r_en.eq(s_end)

        # ---- output: 32-bit beats -> 12-word DRAM writes, then the record -------------------------------
        buf = Signal(data.ArrayLayout(32, RECORD_WORDS // 2))
        n = Signal(range(RECORD_WORDS // 2 + 1))
        buf_bytes = Signal(range(2 * RECORD_WORDS + 1))
        pending, pending_last, rec_pending = Signal(), Signal(), Signal()
        out_ptr = Signal(32)
        job_bytes, job_cycles, job_stall_in, job_stall_out, job_samples = (Signal(COUNT_BITS) for _ in range(5))
        bits_at_start, bits_prev = Signal(32), Signal(32)
        flushing = Signal()                # an image is open (first part started, record not yet written)

        with m.If(self.start & self.params.first):
            m.d.sync += [out_ptr.eq(self.params.out_addr + RECORD_WORDS), job_bytes.eq(0), job_cycles.eq(0),
                         job_stall_in.eq(0), job_stall_out.eq(0), job_samples.eq(0),
                         bits_at_start.eq(enc.out_bits), flushing.eq(1)]

        wr_ok = self.wr.valid & self.wr.ready
        take = enc.out.valid & enc.out.ready
        m.d.comb += enc.out.ready.eq(~rec_pending & (~pending | (wr_ok & ~pending_last)))
        with m.If(wr_ok):
            m.d.sync += [pending.eq(0), out_ptr.eq(out_ptr + RECORD_WORDS)]
            with m.If(rec_pending):
                m.d.sync += [rec_pending.eq(0), flushing.eq(0)]
            with m.Elif(pending_last):
                m.d.sync += rec_pending.eq(1)
        with m.If(take):
            idx = Mux(pending, 0, n)       # a beat taken while the full buffer leaves starts the next one
            for i in range(RECORD_WORDS // 2):
                with m.If(idx == i):
                    m.d.sync += buf[i].eq(enc.out.payload.data)
            base_bytes = Mux(pending, 0, buf_bytes)
            m.d.sync += [n.eq(idx + 1), buf_bytes.eq(base_bytes + enc.out.payload.count),
                         job_bytes.eq(job_bytes + enc.out.payload.count)]
            with m.If((idx == RECORD_WORDS // 2 - 1) | enc.out.payload.last):
                m.d.sync += [pending.eq(1), pending_last.eq(enc.out.payload.last)]
        with m.Elif(wr_ok & ~rec_pending):
            m.d.sync += [n.eq(0), buf_bytes.eq(0)]

        job_bits = Signal(32)
        m.d.comb += job_bits.eq(enc.out_bits - bits_at_start)
        record = [job_bytes, job_bits, job_cycles, job_stall_in, job_stall_out, job_samples]
        m.d.comb += self.wr.valid.eq(pending | rec_pending)
        with m.If(rec_pending):
            m.d.comb += [self.wr.payload.addr.eq(p.out_addr), self.wr.payload.count.eq(RECORD_WORDS)]
            for i, v in enumerate(record):
                m.d.comb += [self.wr.payload.wdata[2 * i].eq(v[:16]), self.wr.payload.wdata[2 * i + 1].eq(v[16:])]
        with m.Else():
            m.d.comb += [self.wr.payload.addr.eq(out_ptr), self.wr.payload.count.eq((buf_bytes + 1) >> 1)]
            for i in range(RECORD_WORDS // 2):
                m.d.comb += [self.wr.payload.wdata[2 * i].eq(buf[i][:16]),
                             self.wr.payload.wdata[2 * i + 1].eq(buf[i][16:])]

        # ---- status and counters ------------------------------------------------------------------------
        m.d.comb += self.busy.eq(reading | flushing | in_flight | rows.r_rdy)
        starved = flushing & ~rows.r_rdy & (reading | in_flight)
        if colour:
            starved = starved & enc.inp.ready      # the colour stage takes RGB pixels in bursts of an MCU
        m.d.comb += [
            self.inc_samples.eq(enc.inp.valid & enc.inp.ready),
            self.inc_bits.eq(enc.out_bits - bits_prev),
            # starved: the encoder could take a sample but the reader has none (read port busy)
            self.stall_in.eq(starved),
            # blocked: coded output waits for the DRAM port
            self.stall_out.eq(self.wr.valid & ~self.wr.ready),
        ]
        m.d.sync += bits_prev.eq(enc.out_bits)
        with m.If(flushing):
            m.d.sync += [job_cycles.eq(job_cycles + 1), job_stall_in.eq(job_stall_in + self.stall_in),
                         job_stall_out.eq(job_stall_out + self.stall_out),
                         job_samples.eq(job_samples + self.inc_samples)]
        return m
