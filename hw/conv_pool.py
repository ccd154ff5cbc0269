"""The CONV / POOL unit: issues the beats of a step to the MAC array (CONV) or the max unit (POOL), and writes
back the array's drained rows and the max unit's results.

``lanes`` (``L``) is the engine's lane count (``golden.arch.EngineArch.lanes``, 4..24; 12 by default).

CONV: for each group of ``L`` output channels ``g`` (weights in one weight-buffer bank, the next group
prefetched into the other bank while this one computes), for each tile of up to ``L`` consecutive output
pixels (``hw.tile_geometry``), for each input channel ``c`` and kernel row ``ky`` (a *step*): the window
loader (``hw.window_loader``) copies the tile's input row segments from the feature buffer into a free segment
buffer (one 16-word read per cycle; two buffers, so loading the next step overlaps computing this one); this
unit then issues ``k`` beats (``kx = 0..k-1``) to the MAC array, lane ``j`` taking the segment word at
``base[j] + kx`` and the weight row at the running weight index. The beat order (c, ky, kx) is the
order of ``weight.reshape(out, -1)``, so the array sums exactly the im2col dot products of the golden
model. Drained rows (one output channel, ``L`` pixels: contiguous in CHW) are written back in one cycle.

POOL: the same loader and lanes with one channel per tile, the max unit instead of the array, padding
read as -32768; the tile's maximum is written back with its last beat.

Two pipeline stages:

* stage A (the issue): with a step ready (``rec_ready``), its weight bank full (CONV) and stage B free or being
  taken, it reads the weight row ``row`` of the bank in use (``w_rd_*``; the weight banks answer a cycle
  later), latches the ``L`` lanes at ``kx`` and the tile's flags into stage B, and steps ``kx``; with the
  step's last beat it releases the loader's buffer (``consume``). The weight row steps with every beat and
  goes back to 0 after a tile's last beat; the bank is released (``w_release``) after the group's last tile, or
  after every tile and every ``depth`` rows when a group is deeper than a bank (``k_rows > depth``: the weight
  fetcher streams such a group in chunks through the two banks; fully-connected layers, one tile per group).
  The group's biases are latched from the bank with its first beat.
* stage B (the beat): ``L`` activations, the bank's row read in stage A, ``last`` on a tile's last beat. CONV:
  offered to the array (``arr``), taken when it is ready; a tile's ``(g, p0, n)`` goes into a 4-deep FIFO with
  its last beat, and the array's drained rows (``arr_out``, always taken) are written at
  ``out_addr + (g L + row) out_ch_stride + p0`` (channels ``>= out_c`` dropped), the FIFO popped with the last
  row. POOL: taken at once by the max unit (a running maximum per lane, restarted by a tile's first beat),
  which writes ``L`` maxima at ``out_addr + g out_ch_stride + p0`` with the tile's last beat.

Ports (``L`` lanes)
-------------------
start : In(1)           one-cycle pulse: reset for a new command (``p`` valid; held during it)
run : In(1)             a CONV or POOL is executing (held until ``done``)
p : In(PARAMS)          ``pool`` (0 CONV, 1 POOL), the descriptor fields ``k``, ``out_c``, ``out_addr``,
                        ``out_ch_stride`` (``hw.descriptor``), and ``k_rows`` (CONV: weight rows per group,
                        ``in_c k k``; valid from the cycle after ``start``)
rec, rec_ready : In     the window loader's step record (``hw.window_loader.rec_layout``) and its valid
lane : In(L words)      the loader's lanes at ``kx`` (combinational on ``kx``)
kx : Out(4)             the kernel column of the next beat
consume : Out(1)        the step's last beat is issued this cycle: the loader releases its buffer
loader_done, loader_empty : In(1)   the loader's ``done`` and ``empty`` (every step loaded and taken)
w_full : In(2)          the weight banks' full flags (``hw.weight_banks``)
w_bank : Out(1)         the bank in use (0 after ``start``)
w_rd_en, w_rd_addr : Out   read row ``w_rd_addr`` of bank ``w_bank`` (CONV beats only)
w_rd_data : In(2 x L)   each bank's last read row (a cycle after ``w_rd_en``)
w_bias : In(2 x L)      each bank's bias registers (48 bits, as fetched; the array takes ``BIAS_BITS``)
w_release : Out(2)      one-cycle pulse: the bank (bit) is released to the weight fetcher
arr : Out(stream)       the beats to the MAC array (``hw.mac_array.input_layout``); ``arr_bias`` (Out) the
                        group's biases, sampled by the array with a ``last`` beat
arr_out : In(stream)    the array's drained rows (``hw.mac_array.output_layout``; ``ready`` always high)
arr_busy : In(1)        the array is accumulating or draining a tile
wr_en, wr_addr, wr_mask, wr_data : Out   the feature buffer's write port (``L`` words; all 0 unless ``wr_en``)
macs, pool_ops, wb_read_words : Out   this cycle's increments of the counters of those names
                        (``hw.perf_counters``): ``n x rows_valid`` per beat the array takes, ``n`` per POOL beat,
                        ``L`` per weight row read
busy, wait_w, wait_fetch, drain : Out(1)   the cycle classes (while ``run``): a beat taken; a step waits for
                        its weight bank (DRAM); no step loaded yet (feature-buffer reads); stage B held by the
                        array, or every step loaded (the array draining at the end of the layer)
done : Out(1)           the command has finished (combinational, while ``run``): every step taken, stage B and
                        the array empty, every tile written back
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.arch import MAX_LANES, MIN_LANES
from golden.fixedpoint import ACT_BITS, BIAS_BITS

from .mac_array import input_layout, output_layout
from .weight_banks import ADDR_BITS, BIAS_BEATS
from .window_loader import rec_layout

PARAMS = data.StructLayout({
    "pool": 1, "k": 4, "out_c": 16, "out_addr": 24, "out_ch_stride": 24, "k_rows": 24,
})


class ConvPoolUnit(wiring.Component):
    """The CONV / POOL beat issue, max unit and write-back (module docstring). ``fb_addr_bits``: the feature
    buffer's address width (8..24); ``lanes``: the array's rows = columns (4..24); ``depth``: rows per
    weight-buffer bank (16..65536)."""

    def __init__(self, fb_addr_bits: int = 18, lanes: int = 12, depth: int = 1024):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_LANES:
            raise ValueError(f"ConvPoolUnit lanes must be an integer in {MIN_LANES}..{MAX_LANES}, got {lanes!r}")
        if not isinstance(fb_addr_bits, int) or isinstance(fb_addr_bits, bool) or not 8 <= fb_addr_bits <= 24:
            raise ValueError(f"ConvPoolUnit fb_addr_bits must be an integer in 8..24, got {fb_addr_bits!r}")
        if not isinstance(depth, int) or isinstance(depth, bool) or not 16 <= depth <= 2**ADDR_BITS:
            raise ValueError(f"ConvPoolUnit depth must be an integer in 16..{2**ADDR_BITS}, got {depth!r}")
        self.lanes, self.fb_addr_bits, self.depth = lanes, fb_addr_bits, depth
        L = lanes
        words = data.ArrayLayout(signed(ACT_BITS), L)
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS),
            "rec": In(rec_layout(L)), "rec_ready": In(1), "lane": In(words), "kx": Out(4), "consume": Out(1),
            "loader_done": In(1), "loader_empty": In(1),
            "w_full": In(2), "w_bank": Out(1), "w_rd_en": Out(1), "w_rd_addr": Out(ADDR_BITS),
            "w_rd_data": In(data.ArrayLayout(data.ArrayLayout(signed(16), L), 2)),
            "w_bias": In(data.ArrayLayout(data.ArrayLayout(signed(BIAS_BEATS * 16), L), 2)),
            "w_release": Out(2),
            "arr": Out(stream.Signature(input_layout(L, L))),
            "arr_bias": Out(data.ArrayLayout(signed(BIAS_BITS), L)),
            "arr_out": In(stream.Signature(output_layout(L, L))),
            "arr_busy": In(1),
            "wr_en": Out(1), "wr_addr": Out(fb_addr_bits), "wr_mask": Out(L), "wr_data": Out(words),
            "macs": Out(range(L * L + 1)), "pool_ops": Out(range(L + 1)), "wb_read_words": Out(range(L + 1)),
            "busy": Out(1), "wait_w": Out(1), "wait_fetch": Out(1), "drain": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        L, W, p = self.lanes, self.depth, self.p
        pool_mode = p.pool

        # ---- stage A: the issue ----------------------------------------------------------------------
        c_kx = Signal(4)
        c_row = Signal(24)         # weight row within the current chunk
        c_bank = Signal()          # weight bank in use
        g_bias = Signal(data.ArrayLayout(signed(BIAS_BEATS * 16), L))
        with m.If(self.start):
            m.d.sync += [c_kx.eq(0), c_row.eq(0), c_bank.eq(0)]
        cur = self.rec             # the step being consumed (the loader's segment buffer in use)
        w_ready = pool_mode | self.w_full.bit_select(c_bank, 1)

        # stage B: the beat presented to the array / max unit
        b_valid = Signal()
        b_a = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        b_last, b_first, b_n, b_rows, b_g, b_p0 = (Signal(), Signal(), Signal(range(L + 1)),
                                                   Signal(range(L + 1)), Signal(16), Signal(32))
        b_take = Signal()  # stage B is consumed this cycle
        a_go = Signal()    # stage A issues a beat this cycle
        m.d.comb += a_go.eq(self.run & ~self.start & self.rec_ready & w_ready & (~b_valid | b_take))

        m.d.comb += [self.kx.eq(c_kx), self.w_bank.eq(c_bank), self.w_rd_addr.eq(c_row),
                     self.w_rd_en.eq(a_go & ~pool_mode)]
        with m.If(a_go & ~pool_mode):
            m.d.comb += self.wb_read_words.eq(L)

        release = Mux(c_bank, 0b10, 0b01)
        step_last_beat = c_kx == p.k - 1
        with m.If(a_go):
            m.d.sync += [
                b_valid.eq(1),
                b_first.eq(cur.first_step & (c_kx == 0)),
                b_last.eq(cur.last_step & step_last_beat),
                b_n.eq(cur.n), b_rows.eq(cur.rows_valid), b_g.eq(cur.g), b_p0.eq(cur.p0),
            ]
            m.d.sync += [b_a[j].eq(self.lane[j]) for j in range(L)]
            with m.If(cur.first_step & cur.first_tile & (c_kx == 0) & ~pool_mode):
                m.d.sync += g_bias.eq(Mux(c_bank, self.w_bias[1].as_value(), self.w_bias[0].as_value()))
            # weights: next row; chunk switch for layers deeper than a bank
            with m.If(~pool_mode):
                with m.If(cur.last_step & step_last_beat):
                    m.d.sync += c_row.eq(0)
                    with m.If(cur.last_tile | (p.k_rows > W)):
                        m.d.comb += self.w_release.eq(release)
                        m.d.sync += c_bank.eq(~c_bank)
                with m.Elif(c_row == W - 1):
                    m.d.comb += self.w_release.eq(release)
                    m.d.sync += [c_row.eq(0), c_bank.eq(~c_bank)]
                with m.Else():
                    m.d.sync += c_row.eq(c_row + 1)
            with m.If(step_last_beat):
                m.d.sync += c_kx.eq(0)
                m.d.comb += self.consume.eq(1)
            with m.Else():
                m.d.sync += c_kx.eq(c_kx + 1)
        with m.Elif(b_take):
            m.d.sync += b_valid.eq(0)
        with m.If(self.start):
            m.d.sync += b_valid.eq(0)

        # ---- stage B, CONV: the MAC array's input -------------------------------------------------------
        c_bank_d = Signal()  # the bank the weight row in stage B was read from
        with m.If(a_go):
            m.d.sync += c_bank_d.eq(c_bank)
        arr = self.arr
        m.d.comb += [
            arr.valid.eq(b_valid & ~pool_mode & self.run),
            arr.payload.w.eq(Mux(c_bank_d, self.w_rd_data[1].as_value(), self.w_rd_data[0].as_value())),
            arr.payload.a.eq(b_a),
            arr.payload.last.eq(b_last),
        ]
        m.d.comb += [self.arr_bias[j].eq(g_bias[j][:BIAS_BITS]) for j in range(L)]
        with m.If(self.run):
            m.d.comb += b_take.eq(b_valid & Mux(pool_mode, 1, arr.ready))
        with m.If(arr.valid & arr.ready):
            m.d.comb += self.macs.eq(b_n * b_rows)

        # write-back of drained rows: the tile's (g, p0, n), pushed with its last beat
        info_layout = data.StructLayout({"g": 16, "p0": 32, "n": range(L + 1)})
        m.submodules.info = info = SyncFIFOBuffered(width=info_layout.size, depth=4)
        info_w = data.View(info_layout, info.w_data)
        info_r = data.View(info_layout, info.r_data)
        m.d.comb += [info.w_en.eq(arr.valid & arr.ready & b_last),
                     info_w.g.eq(b_g), info_w.p0.eq(b_p0), info_w.n.eq(b_n)]
        out = self.arr_out
        m.d.comb += out.ready.eq(1)
        with m.If(out.valid & self.run & ~pool_mode):
            chan = info_r.g * L + out.payload.row
            m.d.comb += [self.wr_en.eq(chan < p.out_c),
                         self.wr_addr.eq(p.out_addr + chan * p.out_ch_stride + info_r.p0),
                         self.wr_mask.eq((Const(1, L + 1) << info_r.n) - 1)]
            m.d.comb += [self.wr_data[j].eq(out.payload.data[j]) for j in range(L)]
            with m.If(out.payload.row == L - 1):
                m.d.comb += info.r_en.eq(1)

        # ---- stage B, POOL: the max unit --------------------------------------------------------------
        mx = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        new_mx = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        m.d.comb += [new_mx[j].eq(Mux(b_first | (b_a[j] > mx[j]), b_a[j], mx[j])) for j in range(L)]
        with m.If(self.run & pool_mode & b_take):
            m.d.sync += mx.eq(new_mx)
            m.d.comb += self.pool_ops.eq(b_n)
            with m.If(b_last):
                m.d.comb += [self.wr_en.eq(1), self.wr_addr.eq(p.out_addr + b_g * p.out_ch_stride + b_p0),
                             self.wr_mask.eq((Const(1, L + 1) << b_n) - 1)]
                m.d.comb += [self.wr_data[j].eq(new_mx[j]) for j in range(L)]

        # ---- cycle classes and completion --------------------------------------------------------------
        m.d.comb += [self.busy.eq(b_take), self.wait_w.eq(self.rec_ready & ~w_ready),
                     self.wait_fetch.eq(~self.rec_ready & ~self.loader_done),
                     self.drain.eq(b_valid | self.loader_done)]
        m.d.comb += self.done.eq(self.run & ~self.start & self.loader_done & self.loader_empty & ~b_valid
                                 & ~self.arr_busy & ~info.r_rdy)
        return m
