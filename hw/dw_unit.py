"""The depthwise unit: 3 x 3 depthwise convolutions at up to ``9 * lanes`` MACs per cycle (108 at the default
12 lanes), beside the MAC array.

``lanes`` is the architecture's lane count (``golden.arch.EngineArch.lanes``, a constructor argument, 12 by
default); the numbers below are for 12 lanes. Why a unit of its own: the MAC array is an outer product (12
output channels x 12 output pixels, one activation vector shared by all rows), and a depthwise output channel
reads one input channel only, so the array can run a depthwise layer only as block-diagonal packs, at 1/12 of
its rate (``sim.program.conv_packs``). This unit computes one channel at a time, 12 output pixels per cycle,
all 9 taps at once (108 multipliers).

Dataflow (``DWCONV``; ``golden.layers.conv2d_int`` with ``groups`` = channels, kernel 3, stride 1 or 2,
padding 0 or 1). For each group of 12 channels (one weight-buffer bank: 9 rows of 12 weights, tap-major,
and the 12 biases, as the weight fetcher leaves them for a CONV with ``K = 9``) the unit copies the 108
weights and 12 biases into registers in 9 cycles and releases the bank. Then for each channel, for each
*strip* of up to 12 output columns, it walks down the band's output rows keeping the three input-row
segments the window needs in registers: a segment is ``lanes * s + 2`` words (14 or 26 at 12 lanes), ``R``
16-word feature-buffer reads (:func:`seg_reads`: one or two at 12 lanes; at 16 lanes two or three, at 24
two or four). A strip starts with three rows, then every output row needs ``s`` new rows, so
a strip takes ``(3 + (rows - 1) * s) * R`` read cycles; each output row goes through the multipliers, an
adder tree with the bias and the requantize stage (shift, ReLU, ReLU6 clamp: ``hw.requant``) and is written as
12 words. Rows and columns outside the map read as zeros (padding). The schedule does not depend on the data,
so the cost model counts it exactly (``model.counts``).

Max-pool mode (``DWPOOL``, ``maxpool``): a 3 x 3 max-pool (stride 1 or 2, padding 0 or 1, torch's ceil mode
too) through the same window: the 9 taps are compared instead of multiplied and added, padding reads as
-32768, no weights and no requantization (``golden.layers.maxpool2d_int``).

Ports
-----
start : In(1)          one-cycle pulse: begin a command with the parameters ``p`` (held during it)
p : In(PARAMS)         the command (feature-buffer geometry as for CONV: ``hw.descriptor``)
busy, done : Out(1)    a command is running / its last output was written (one cycle)
grp_ready : In(1)      the weight bank of the next group of ``lanes`` channels is full
w_en, w_addr : Out     read row ``w_addr`` (a tap, 0..8) of that bank; ``w_data`` (``lanes`` weights) a cycle
                       later
bias : In(lanes x s40) that bank's biases
grp_release : Out(1)   the unit has copied the bank (one cycle)
rd_en, rd_addr, rd_data : the feature buffer's read port (16 words, a cycle later)
wr_en, wr_addr, wr_mask, wr_data : its write port (``lanes`` words)
beat, macs : Out       an output row was issued this cycle, and its multiply-accumulates (9 x valid lanes; in
                       max-pool mode the compares)
wait_w : Out(1)        waiting for a weight bank (the engine counts it as a DRAM stall)
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.arch import DEFAULT_ARCH, MAX_LANES, MIN_LANES
from golden.fixedpoint import ACT_BITS, BIAS_BITS, INT16_MIN, SHIFT_BITS

from .requant import requantize, round_const

LANES = DEFAULT_ARCH.lanes   # the default lane count (output pixels per cycle, channels per weight group)
TAPS = 9
READ_WORDS = 16


def check_lanes(lanes, who: str = "DwUnit") -> int:
    """``lanes`` if it is a lane count the RTL is built for (``golden.arch``), else a ValueError naming it."""
    if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_LANES:
        raise ValueError(f"{who} lanes must be an integer in {MIN_LANES}..{MAX_LANES}, got {lanes!r}")
    return lanes


def seg_words(lanes: int = LANES) -> int:
    """The widest row segment (stride 2): ``2 * lanes + 2`` words (26 at 12 lanes)."""
    return 2 * check_lanes(lanes, "seg_words") + 2


def seg_reads(stride: int, lanes: int = LANES) -> int:
    """16-word feature-buffer reads per row segment of ``lanes * stride + 2`` words (1 or 2 at 12 lanes)."""
    return -(-(check_lanes(lanes, "seg_reads") * stride + 2) // READ_WORDS)


SEG = seg_words(LANES)       # 26 words
ACC = 48

PARAMS = data.StructLayout({
    "in_addr": 24, "in_ch_stride": 24, "in_w": 16, "in_y0": 16, "in_h_total": 16,
    "out_addr": 24, "out_ch_stride": 24, "out_w": 16, "out_h": 16, "out_y0": 16,
    "channels": 16, "stride2": 1, "pad": 1,
    "shift": SHIFT_BITS, "relu": 1, "clamp_en": 1, "clamp": ACT_BITS - 1,
    "maxpool": 1,
})


def ref_dw_cycles(channels: int, out_w: int, out_h: int, stride: int, maxpool: bool = False,
                  lanes: int = LANES) -> int:
    """Cycles of a command by the unit's schedule: per group of ``lanes`` channels, 9 weight-row reads (after
    the bank is ready) and a release (one cycle per group in max-pool mode, which has no weights); per channel
    one cycle to select its taps; per strip of ``lanes`` output columns ``(3 + (out_h - 1) * s) * R`` row reads
    (``R`` = :func:`seg_reads`); four more cycles for the last output to leave the pipeline. (Waiting for a
    bank is extra.)"""
    reads = seg_reads(stride, lanes)
    strips = -(-out_w // lanes)
    groups = -(-channels // lanes)
    return groups * (1 if maxpool else TAPS + 1) + channels * (1 + strips * (3 + (out_h - 1) * stride) * reads) + 4


class DwUnit(wiring.Component):
    def __init__(self, fb_addr_bits: int = 18, lanes: int = LANES):
        if not isinstance(fb_addr_bits, int) or not 4 <= fb_addr_bits <= 24:
            raise ValueError(f"DwUnit fb_addr_bits must be in 4..24, got {fb_addr_bits!r}")
        self.fb_addr_bits = fb_addr_bits
        self.lanes = check_lanes(lanes)
        self.seg = seg_words(lanes)                                  # the widest segment (stride 2)
        self.row_reads = (seg_reads(1, lanes), seg_reads(2, lanes))  # 16-word reads per segment, by stride
        super().__init__({
            "start": In(1),
            "p": In(PARAMS),
            "busy": Out(1),
            "done": Out(1),
            "grp_ready": In(1),
            "w_en": Out(1),
            "w_addr": Out(range(TAPS)),
            "w_data": In(data.ArrayLayout(signed(ACT_BITS), lanes)),
            "bias": In(data.ArrayLayout(signed(BIAS_BITS), lanes)),
            "grp_release": Out(1),
            "rd_en": Out(1),
            "rd_addr": Out(fb_addr_bits),
            "rd_data": In(data.ArrayLayout(signed(ACT_BITS), READ_WORDS)),
            "wr_en": Out(1),
            "wr_addr": Out(fb_addr_bits),
            "wr_mask": Out(lanes),
            "wr_data": Out(data.ArrayLayout(signed(ACT_BITS), lanes)),
            "beat": Out(1),
            "macs": Out(range(lanes * TAPS + 1)),
            "wait_w": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, seg = self.lanes, self.seg
        p = self.p
        s2 = p.stride2
        reads = Mux(s2, self.row_reads[1], self.row_reads[0])  # 16-word reads per row segment

        # ---- the weights of the current group ---------------------------------------------------------------
        wreg = [[Signal(signed(ACT_BITS), name=f"w{j}_{t}") for t in range(TAPS)] for j in range(lanes)]
        breg = [Signal(signed(BIAS_BITS), name=f"b{j}") for j in range(lanes)]
        taps = [Signal(signed(ACT_BITS), name=f"tap{t}") for t in range(TAPS)]   # the current channel's
        ch_bias = Signal(signed(BIAS_BITS))

        # ---- loop counters ------------------------------------------------------------------------------------
        c = Signal(16)            # channel
        lane = Signal(range(lanes))
        x0 = Signal(16)           # first output column of the strip
        oy = Signal(16)           # output row (band-local) whose rows are being loaded
        row = Signal(range(4))    # row slot being loaded for that output row (0..2 at a strip start)
        n_parts = max(2, *self.row_reads)  # (one bit at 12 lanes)
        part = Signal(range(n_parts))  # which 16-word read of the row segment
        t_w = Signal(range(TAPS + 1))

        # the segment being assembled, and the 3-row window
        seg_new = Signal(data.ArrayLayout(signed(ACT_BITS), seg))
        win = [Signal(data.ArrayLayout(signed(ACT_BITS), seg), name=f"win{r}") for r in range(3)]

        rows_needed = Mux(oy == 0, 3, Mux(s2, 2, 1))   # rows to load for this output row

        # global input row of the slot being loaded: the window's top row is oy_g * s - pad
        oy_g = Signal(16)
        m.d.comb += oy_g.eq(p.out_y0 + oy)
        iy = Signal(signed(20))
        # at a strip start the slots are the window rows 0, 1, 2; later the s new rows at the bottom
        m.d.comb += iy.eq(Mux(s2, oy_g * 2, oy_g) - p.pad + Mux(oy == 0, row, Mux(s2, row + 1, 2)))
        iy_ok = (iy >= 0) & (iy < p.in_h_total)
        xs = Signal(signed(20))   # first input column of the segment
        m.d.comb += xs.eq(Mux(s2, x0 * 2, x0) - p.pad + part * READ_WORDS)
        rd_addr = Signal(signed(42))
        m.d.comb += rd_addr.eq(p.in_addr + c * p.in_ch_stride + (iy - p.in_y0) * p.in_w + xs)

        # the read lands a cycle later: remember where it goes
        l_valid, l_part, l_ok, l_x, l_last = (Signal(), Signal(range(n_parts)), Signal(), Signal(signed(20)),
                                              Signal())
        l_fire = Signal()         # the row completes an output row's window: issue it
        l_shift = Signal()        # the landed row is pushed into the window
        m.d.sync += l_valid.eq(0)  # (set below in the cycles that read)

        with m.FSM(name="dw"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [c.eq(0), lane.eq(0), x0.eq(0), oy.eq(0), row.eq(0), part.eq(0), t_w.eq(0),
                                 self.busy.eq(1)]
                    m.next = "GROUP"
            with m.State("GROUP"):          # wait for the bank, read its 9 rows
                m.d.comb += self.wait_w.eq(~self.grp_ready & (t_w == 0) & ~p.maxpool)
                with m.If(p.maxpool):       # no weights
                    m.next = "CHANNEL"
                with m.Elif(self.grp_ready & (t_w < TAPS)):
                    m.d.comb += [self.w_en.eq(1), self.w_addr.eq(t_w)]
                    m.d.sync += t_w.eq(t_w + 1)
                with m.If(t_w == TAPS):
                    m.d.comb += self.grp_release.eq(1)
                    m.d.sync += [breg[j].eq(self.bias[j]) for j in range(lanes)]
                    m.d.sync += t_w.eq(0)
                    m.next = "CHANNEL"
            with m.State("CHANNEL"):        # select the channel's taps and bias
                for t in range(TAPS):
                    with m.Switch(lane):
                        for j in range(lanes):
                            with m.Case(j):
                                m.d.sync += taps[t].eq(wreg[j][t])
                with m.Switch(lane):
                    for j in range(lanes):
                        with m.Case(j):
                            m.d.sync += ch_bias.eq(breg[j])
                m.next = "ROWS"
            with m.State("ROWS"):           # one 16-word read per cycle
                m.d.comb += [self.rd_en.eq(iy_ok), self.rd_addr.eq(rd_addr[:self.fb_addr_bits])]
                last_part = part == reads - 1
                last_row = row == rows_needed - 1
                m.d.sync += [l_valid.eq(1), l_part.eq(part), l_ok.eq(iy_ok), l_x.eq(xs), l_last.eq(last_part),
                             l_fire.eq(last_part & last_row)]
                with m.If(~last_part):
                    # (up to two reads, as at 12 lanes: the next one is the second)
                    m.d.sync += part.eq(part + 1 if n_parts > 2 else 1)
                with m.Else():
                    m.d.sync += part.eq(0)
                    with m.If(~last_row):
                        m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += row.eq(0)
                        with m.If(oy != p.out_h - 1):
                            m.d.sync += oy.eq(oy + 1)
                        with m.Else():      # the strip is done
                            m.d.sync += oy.eq(0)
                            with m.If(x0 + lanes < p.out_w):
                                m.d.sync += x0.eq(x0 + lanes)
                            with m.Else():  # the channel is done
                                m.d.sync += [x0.eq(0), c.eq(c + 1),
                                             lane.eq(Mux(lane == lanes - 1, 0, lane + 1))]
                                with m.If(c == p.channels - 1):
                                    m.next = "DRAIN"
                                with m.Elif(lane == lanes - 1):
                                    m.next = "GROUP"
                                with m.Else():
                                    m.next = "CHANNEL"
            with m.State("DRAIN"):          # the last output leaves the pipeline (written in the done cycle)
                drain = Signal(range(4))
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == 3):
                    m.d.sync += [drain.eq(0), self.busy.eq(0)]
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

        # the weight rows land a cycle after their read
        w_pend, w_row = Signal(), Signal(range(TAPS))
        m.d.sync += [w_pend.eq(self.w_en), w_row.eq(self.w_addr)]
        with m.If(w_pend):
            for t in range(TAPS):
                with m.If(w_row == t):
                    m.d.sync += [wreg[j][t].eq(self.w_data[j]) for j in range(lanes)]

        # ---- landed reads: assemble the segment, push it into the window ----------------------------------------
        assembled = Signal(data.ArrayLayout(signed(ACT_BITS), seg))
        for e in range(seg):
            k, off = divmod(e, READ_WORDS)      # word e of the segment comes from read k, at word off
            src = Signal(signed(ACT_BITS), name=f"src{e}")
            x = Signal(signed(20), name=f"x{e}")
            m.d.comb += x.eq(l_x + off)
            inside = l_ok & (x >= 0) & (x < p.in_w)
            word = self.rd_data[off]
            mine = l_part == k
            m.d.comb += src.eq(Mux(inside, word, Mux(p.maxpool, INT16_MIN, 0)))
            m.d.comb += assembled[e].eq(Mux(l_valid & mine, src, seg_new[e]))
        m.d.sync += seg_new.eq(assembled)
        m.d.comb += l_shift.eq(l_valid & l_last)
        with m.If(l_shift):
            m.d.sync += [win[0].eq(win[1]), win[1].eq(win[2]), win[2].eq(assembled)]

        # ---- the pipeline: products (stage 1), sum + bias (stage 2), requantize + write (stage 3) ----------------
        # l_fire is seen a cycle after the window's last row landed; keep the geometry of that output row
        f1, f2, f3 = Signal(), Signal(), Signal()
        geo = data.StructLayout({"addr": 42, "n": range(lanes + 1)})
        g1, g2, g3 = Signal(geo), Signal(geo), Signal(geo)
        fire_now = Signal()
        m.d.comb += fire_now.eq(l_shift & l_fire)
        # the output row and strip of the landed row: the counters have moved on by then, so they were saved
        o_row, o_x0, o_c = Signal(16), Signal(16), Signal(16)
        m.d.sync += [o_row.eq(oy), o_x0.eq(x0), o_c.eq(c)]
        n_valid = Signal(range(lanes + 1))
        rem = Signal(signed(18))
        m.d.comb += [rem.eq(p.out_w - o_x0), n_valid.eq(Mux(rem > lanes, lanes, rem))]

        # the window of the fired row: the top two rows are the window's lower two, the bottom row lands now
        rows3 = (win[1], win[2], assembled)
        prods = [[Signal(signed(2 * ACT_BITS), name=f"pr{j}_{t}") for t in range(TAPS)] for j in range(lanes)]
        bias1 = Signal(signed(BIAS_BITS))    # the channel's bias travels with its products
        with m.If(fire_now):
            m.d.sync += bias1.eq(ch_bias)
        for j in range(lanes):
            for ky in range(3):
                for kx in range(3):
                    t = ky * 3 + kx
                    a = Mux(s2, rows3[ky][2 * j + kx], rows3[ky][j + kx])
                    with m.If(fire_now):
                        m.d.sync += prods[j][t].eq(Mux(p.maxpool, a, a * taps[t]))
        m.d.sync += [f1.eq(fire_now), f2.eq(f1), f3.eq(f2)]
        with m.If(fire_now):
            m.d.sync += [g1.addr.eq(p.out_addr + o_c * p.out_ch_stride + o_row * p.out_w + o_x0), g1.n.eq(n_valid)]
        m.d.sync += [g2.eq(g1), g3.eq(g2)]

        sums = [Signal(signed(ACC), name=f"sum{j}") for j in range(lanes)]
        with m.If(f1):
            for j in range(lanes):
                best = prods[j][0]
                for t in range(1, TAPS):
                    best = Mux(prods[j][t] > best, prods[j][t], best)
                m.d.sync += sums[j].eq(Mux(p.maxpool, best, sum(prods[j][1:], prods[j][0]) + bias1))
        rnd = round_const(m, p.shift, name="dw_rnd")
        outs = Signal(data.ArrayLayout(signed(ACT_BITS), lanes))
        with m.If(f2):
            for j in range(lanes):
                q = requantize(m, sums[j], rnd, p.shift, p.relu, ACC, name=f"dwq{j}", clamp_en=p.clamp_en,
                               clamp=p.clamp)
                m.d.sync += outs[j].eq(Mux(p.maxpool, sums[j][:ACT_BITS], q))
        m.d.comb += [
            self.wr_en.eq(f3),
            self.wr_addr.eq(g3.addr[:self.fb_addr_bits]),
            self.wr_mask.eq((Const(1, lanes + 1) << g3.n) - 1),
            self.wr_data.eq(outs),
            self.beat.eq(fire_now),
            self.macs.eq(Mux(fire_now, n_valid * TAPS, 0)),
        ]
        return m
