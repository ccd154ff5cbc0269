"""The vector unit: residual ADD and global average pool (GAP) on the feature buffer, beside the MAC array.

``lanes`` is the engine's lane count (``golden.arch.EngineArch.lanes``, 4..24; 12 by default); ``read_words``
the words of one feature-buffer read (its banks: 16, or 32 above 16 lanes; at least ``lanes``).

ADD (``golden.layers.add_int``): ``out[i] = requantize(a[i] * wa + b[i] * wb)`` over ``row_len`` words. The
unit alternates two reads of the feature buffer (``a`` at ``in_addr + off``, then ``b`` at
``in2_addr + off``), latches ``a`` and writes ``lanes`` results the cycle ``b`` arrives: ``lanes`` outputs
per two cycles, the write of chunk ``off`` overlapping the read of chunk ``off + lanes``.

GAP (``golden.layers.global_avgpool_int``): for each of ``in_c`` channels (``in_ch_stride`` words apart) the
``row_len`` words of the channel are read 16 per cycle (``STREAM_WORDS``, the first 16 of each read, at any
``read_words``) into a running sum; the cycle after the last read the
unit writes ``requantize(sum * wa)`` (no ReLU) at ``out_addr + channel``. One read per cycle, one write per
channel.

Both requantize exactly like the MAC array (``hw.requant``: round half up, shift, saturate, ReLU, ReLU6 clamp).
The schedule depends only on the parameters: ADD takes ``2 * ceil(row_len / lanes) + 2`` cycles from ``run``
to ``done``, GAP ``in_c * ceil(row_len / 16) + 2``.

Ports
-----
start : In(1)             one-cycle pulse: reset the unit for a new command (before ``run``)
run : In(1)               the command is executing (held until ``done``); ``p`` is held meanwhile
p : In(PARAMS)            the command: ``gap`` (0: ADD, 1: GAP) and the descriptor fields of ``hw.descriptor``
done : Out(1)             the last result was written (combinational, in the last ``run`` cycle)
rd_en, rd_addr : Out      the feature buffer's read port; ``rd_data`` (In, ``read_words``) comes a cycle later and
                          holds while ``rd_en`` is low
wr_en, wr_addr, wr_mask, wr_data : Out   its write port (``lanes`` words; GAP writes word 0)
macs : Out                multiply-accumulates this cycle (ADD: 2 per output, GAP: 1 per word summed)
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.arch import MAX_LANES, MIN_LANES
from golden.fixedpoint import ACT_BITS

from .dma import count_bits, min_beat
from .requant import requantize, round_const

STREAM_WORDS = 16        # words GAP sums per read (the first of the read's ``read_words``)
GAP_ACC_BITS = 48        # the running sum of a channel (the engine's counter width)

PARAMS = data.StructLayout({
    "gap": 1,
    "in_addr": 24, "in2_addr": 24, "in_ch_stride": 24, "in_c": 16, "row_len": 24, "out_addr": 24,
    "wa": 16, "wb": 16, "shift": 5, "relu": 1, "clamp_en": 1, "clamp": 15,
})


def ref_vector_cycles(gap: bool, row_len: int, in_c: int = 1, lanes: int = 12) -> int:
    """Cycles of a command from the first ``run`` cycle to ``done`` (inclusive)."""
    if gap:
        return in_c * -(-row_len // STREAM_WORDS) + 2
    return 2 * -(-row_len // lanes) + 2


class VectorUnit(wiring.Component):
    """ADD and GAP on the feature buffer (module docstring). ``fb_addr_bits``: the buffer's address width;
    ``lanes``: words written per ADD result (4..24); ``read_words``: words per buffer read (16 or 32, at least
    ``lanes``)."""

    def __init__(self, fb_addr_bits: int = 18, lanes: int = 12, read_words: int = 16):
        if not isinstance(lanes, int) or isinstance(lanes, bool) or not MIN_LANES <= lanes <= MAX_LANES:
            raise ValueError(f"VectorUnit lanes must be an integer in {MIN_LANES}..{MAX_LANES}, got {lanes!r}")
        if read_words not in (16, 32) or read_words < lanes:
            raise ValueError(f"VectorUnit read_words must be 16 or 32 and at least lanes ({lanes}), "
                             f"got {read_words!r}")
        self.read_words = read_words
        if not isinstance(fb_addr_bits, int) or isinstance(fb_addr_bits, bool) or not 8 <= fb_addr_bits <= 24:
            raise ValueError(f"VectorUnit fb_addr_bits must be an integer in 8..24, got {fb_addr_bits!r}")
        self.lanes = lanes
        self.fb_addr_bits = fb_addr_bits
        super().__init__({
            "start": In(1), "run": In(1), "p": In(PARAMS), "done": Out(1),
            "rd_en": Out(1), "rd_addr": Out(fb_addr_bits),
            "rd_data": In(data.ArrayLayout(signed(ACT_BITS), read_words)),
            "wr_en": Out(1), "wr_addr": Out(fb_addr_bits), "wr_mask": Out(lanes),
            "wr_data": Out(data.ArrayLayout(signed(ACT_BITS), lanes)),
            "macs": Out(range(2 * max(lanes, STREAM_WORDS) + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        p = self.p
        rd = self.rd_data
        is_add = self.run & ~p.gap
        is_gap = self.run & p.gap
        v_off, v_c, v_phase = Signal(24), Signal(16), Signal()
        a_lat = Signal(data.ArrayLayout(signed(ACT_BITS), L))
        w_pend, w_off, w_cnt = Signal(), Signal(24), Signal(count_bits(L))
        g_pend, g_cnt, g_last, g_c = Signal(), Signal(5), Signal(), Signal(16)
        g_acc = Signal(signed(GAP_ACC_BITS))
        with m.If(self.start):
            m.d.sync += [v_off.eq(0), v_c.eq(0), v_phase.eq(0), w_pend.eq(0), g_pend.eq(0), g_acc.eq(0)]
        wa = p.wa.as_signed()
        wb = p.wb.as_signed()
        rnd = round_const(m, p.shift, name="v_rnd")

        # ADD: phase 0 reads a (and writes the previous chunk, whose b is on the read port), phase 1 reads b
        with m.If(is_add & ~self.start):
            with m.If(v_phase == 0):
                with m.If(w_pend):
                    m.d.comb += [self.wr_en.eq(1), self.wr_addr.eq(p.out_addr + w_off),
                                 self.wr_mask.eq((Const(1, L + 1) << w_cnt) - 1),
                                 self.macs.eq(2 * w_cnt)]
                    for t in range(L):
                        q = requantize(m, a_lat[t] * wa + rd[t] * wb, rnd, p.shift, p.relu, 34,
                                       name=f"add{t}", clamp_en=p.clamp_en, clamp=p.clamp)
                        m.d.comb += self.wr_data[t].eq(q)
                    m.d.sync += w_pend.eq(0)
                with m.If(v_off < p.row_len):
                    m.d.comb += [self.rd_en.eq(1), self.rd_addr.eq(p.in_addr + v_off)]
                    m.d.sync += v_phase.eq(1)
                with m.Elif(~w_pend):
                    m.d.comb += self.done.eq(1)
            with m.Else():
                m.d.sync += [a_lat.eq(Cat(*(rd[t] for t in range(L)))),
                             w_pend.eq(1), w_off.eq(v_off), w_cnt.eq(min_beat(p.row_len - v_off, L)),
                             v_off.eq(v_off + L), v_phase.eq(0)]
                m.d.comb += [self.rd_en.eq(1), self.rd_addr.eq(p.in2_addr + v_off)]

        # GAP: one 16-word read per cycle, summed the cycle after; the channel's result after its last read
        with m.If(is_gap & ~self.start):
            more = v_c < p.in_c
            with m.If(more):
                rem = p.row_len - v_off
                m.d.comb += [self.rd_en.eq(1), self.rd_addr.eq(p.in_addr + v_c * p.in_ch_stride + v_off)]
                m.d.sync += [g_pend.eq(1), g_cnt.eq(Mux(rem > STREAM_WORDS, STREAM_WORDS, rem)),
                             g_last.eq(rem <= STREAM_WORDS), g_c.eq(v_c)]
                with m.If(rem <= STREAM_WORDS):
                    m.d.sync += [v_off.eq(0), v_c.eq(v_c + 1)]
                with m.Else():
                    m.d.sync += v_off.eq(v_off + STREAM_WORDS)
            with m.Else():
                m.d.sync += g_pend.eq(0)
            with m.If(g_pend):
                part = Signal(signed(24))
                m.d.comb += part.eq(sum(Mux(t < g_cnt, rd[t], 0) for t in range(STREAM_WORDS)))
                m.d.comb += self.macs.eq(g_cnt)
                total = g_acc + part
                with m.If(g_last):
                    q = requantize(m, total * wa, rnd, p.shift, 0, GAP_ACC_BITS + 17, name="gap")
                    m.d.comb += [self.wr_en.eq(1), self.wr_addr.eq(p.out_addr + g_c), self.wr_mask.eq(1),
                                 self.wr_data[0].eq(q)]
                    m.d.sync += g_acc.eq(0)
                with m.Else():
                    m.d.sync += g_acc.eq(total)
            with m.If(~more & ~g_pend):
                m.d.comb += self.done.eq(1)
        return m
