"""The weight decoder's back end: dequantize, 2-D integer IDCT and restore, bit-exact with
``golden.weightcodec`` (:func:`dequantize`, :func:`idct_pass1`, :func:`idct_pass2`, :func:`restore`).

Arithmetic (all integers, shifts arithmetic = floor; ``C`` = ``golden.weightcodec.IDCT_MATRIX`` =
``golden.jpeg.DCT_MATRIX``, ``|C| <= 4017``):

* dequantize ``F'[u][v] = q[u][v] * Q[u][v]``;
* pass 1 (along v) ``t[u][x] = (sum_v F'[u][v] C[v][x] + 2**10) >> 11``;
* pass 2 (along u) ``r[y][x] = (sum_u t[u][x] C[u][y] + 2**14) >> 15``;
* restore ``w = clamp(clamp(r, -2048, 2047) << p, -32768, 32767)``.

Widths (exact for every ``q`` an SSSS <= 15 category can hold, ``|q| <= 32767``, a DC kept in int16,
``-32768 <= q``, and every ``Q`` in 1..255; the bounds are computed below from the constants; the
64 inputs can take any signs independently, so they are reached up to int16's one-count asymmetry and
the widths are the minimal ones: tests/hw/test_wdecoder.py checks both on the extreme blocks):
``|F'| <= 32768 * 255 < 2**23`` (int24); every column of ``C`` has ``sum |C| = 21641``, so
``|sum_v| <= 8355840 * 21641 < 2**38`` (39-bit accumulator), ``|t| <= 88295280 < 2**27`` (int28),
``|sum_u| <= 88295280 * 21641 < 2**41`` (42-bit accumulator). Keeping ``t`` exact (no saturation) is
what makes ``r`` equal golden's for out-of-range coefficients too; only the final clamp limits it.

Shape (why):

* **Coefficient buffer**: events from :class:`hw.jpeg.huffdec.HuffmanDecoder` write their value at
  its natural position into one of two banks (one memory, 2 x 64 x 16 bits). Only nonzero
  coefficients arrive, so each bank has a 64-bit *written* mask; reads of unwritten positions give 0,
  and the mask is cleared in one cycle when the bank is released, so no cycle goes to zero-filling.
  A bank is full from its block's final event until pass 1 has issued its last read; the entropy
  stage waits (``inp.ready`` low) only when it reaches a bank that is still full.
* **Pass 1**, one coefficient per cycle in natural order (row ``u``, then ``v``): a synchronous read
  of ``q`` and ``Q[n]`` (the same address), the dequantizing multiply (16 x 9 bits) into a pipeline
  register, then eight accumulators (one per ``x``) add ``F' * C[v][x]`` (eight 24 x 14 multipliers
  with constant-select muxes). After ``v = 7`` row ``u`` of ``t`` is complete and is written as one
  8 x 28-bit word of the transpose buffer.
* **Transpose buffer**: 2 banks x 8 row words (one memory, 16 x 224 bits), ping-pong between the
  passes as in :mod:`hw.jpeg.dct`. Pass 1 needs its bank free only when it writes row 0 (8 cycles into
  a block); pass 2 releases a bank when it issues its last read.
* **Pass 2** produces the block in **raster order** without another buffer: for output row ``y`` it
  reads the 8 rows ``t[u][0..7]`` and eight accumulators (one per ``x``) add ``t[u][x] * C[u][y]``;
  all eight use the same constant ``C[u][y]`` (a 64-entry constant mux), eight 28 x 14 multipliers.
  After ``u = 7`` row ``y`` is done: rounded, clamped, shifted by ``p`` into an 8-entry output shift
  register that sends ``w[y][0..7]`` one per cycle (index ``8 y + x``) while row ``y + 1`` accumulates.
  Each ``t`` row is read 8 times per block, 64 reads, one per cycle.

Throughput: 64 cycles per block in each pass and no bubble between blocks, so 1 weight per cycle when
the output is ready and the entropy stage delivers a block every 64 cycles. Latency from a block's
final event to its first weight: 64 + 3 (pass 1) + 8 + 2 (first row of pass 2) cycles.
Back-pressure on ``out`` stalls pass 2 (only when a finished row finds the shift register busy), then
pass 1 (only when it must write row 0 into a bank still being read), then the entropy stage.

Multipliers: 1 (16 x 9) + 8 (24 x 14) + 8 (28 x 14) = 17. Memories: 128 x 16 (coefficients), 64 x 8
(Q), 16 x 224 (transpose); registers: 2 x 64 mask bits, 16 accumulators, 8 x 16-bit output register.

Ports
-----
inp : In(stream)    :func:`hw.jpeg.huffdec.event_layout` coefficient events
out : Out(stream)   ``{data: signed(16), index: 6, block_last}``: restored weights in raster order
                    (``index = 8 y + x``), ``block_last`` on the block's 64th
q_we, q_addr, q_data : Q table write port (natural order, 1..255); only while idle
pre_shift : In(3)   ``p`` (0..4 in golden; the int16 clamp makes 5..7 well defined too); only while idle
"""

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.weightcodec import (
    IDCT_MATRIX,
    IDCT_PASS1_SHIFT,
    IDCT_PASS2_SHIFT,
    INT16_MAX,
    INT16_MIN,
    SAMPLE_MAX,
    SAMPLE_MIN,
)

from .huffdec import VALUE_BITS, event_layout
from .lut import bank_pulse, const_lut

__all__ = ["WeightIdct", "weight_layout", "Q_BITS", "F_BITS", "ACC1_BITS", "T_BITS", "ACC2_BITS",
           "idct_bounds"]

Q_BITS = 8           # Q in 1..255
CONST_BITS = 14      # |C| <= 4017 fits 13 bits signed; 14 keeps the constant's sign handling trivial
WEIGHT_BITS = 16


def _bits(lo: int, hi: int) -> int:
    """Width of the smallest signed type holding lo..hi."""
    return max((-lo - 1).bit_length(), hi.bit_length()) + 1


def idct_bounds() -> dict[str, tuple[int, int]]:
    """Exact ranges of every intermediate for ``q`` in int16 and ``Q`` in 1..255 (what the widths are
    derived from; the tests check them against golden on extreme blocks)."""
    q_lo, q_hi = -(1 << (VALUE_BITS - 1)), (1 << (VALUE_BITS - 1)) - 1
    q_max = (1 << Q_BITS) - 1
    f_lo, f_hi = q_lo * q_max, q_hi * q_max
    col = int(np.abs(IDCT_MATRIX).sum(axis=0).max())   # max_x sum_v |C[v][x]| (= max_y sum_u |C[u][y]|)
    fmag = max(-f_lo, f_hi)
    s1 = fmag * col
    r1 = 1 << (IDCT_PASS1_SHIFT - 1)
    t_lo, t_hi = (-s1 + r1) >> IDCT_PASS1_SHIFT, (s1 + r1) >> IDCT_PASS1_SHIFT
    s2 = max(-t_lo, t_hi) * col
    return {"f": (f_lo, f_hi), "acc1": (-s1, s1), "t": (t_lo, t_hi), "acc2": (-s2, s2)}


_B = idct_bounds()
F_BITS = _bits(*_B["f"])          # 24
ACC1_BITS = _bits(*_B["acc1"])    # 39
T_BITS = _bits(*_B["t"])          # 28
ACC2_BITS = _bits(*_B["acc2"])    # 42


def weight_layout() -> data.StructLayout:
    return data.StructLayout({"data": signed(WEIGHT_BITS), "index": unsigned(6), "block_last": 1})


def _const_select(m: Module, values, sel, name: str) -> Signal:
    """``values[sel]`` for constant ``values`` (a constant mux feeding one multiplier).

    A continuous select (:func:`hw.jpeg.lut.const_lut`), not a ``Switch``: the selects (``d2_n``, ``e_u``,
    ``e_y``) sit at 0 from reset to their first use, and a ``Switch``'s ``always @*`` block stays X on Icarus
    until its select changes (the first block's first row would be X)."""
    return const_lut(m, [int(v) for v in values], sel, signed(CONST_BITS), name)


class WeightIdct(wiring.Component):
    """Coefficient events -> restored int16 weights in raster order (see the module docstring)."""

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(event_layout())),
            "out": Out(stream.Signature(weight_layout())),
            "q_we": In(1),
            "q_addr": In(unsigned(6)),
            "q_data": In(unsigned(Q_BITS)),
            "pre_shift": In(unsigned(3)),
        })

    def elaborate(self, platform):
        m = Module()

        # ---- coefficient buffer (written sparsely by the entropy stage) -----------------------------
        m.submodules.cbuf = cbuf = Memory(shape=signed(VALUE_BITS), depth=128, init=[])
        cb_w = cbuf.write_port()
        cb_r = cbuf.read_port()
        m.submodules.qtab = qtab = Memory(shape=unsigned(Q_BITS), depth=64, init=[])
        q_w = qtab.write_port()
        q_r = qtab.read_port()
        m.d.comb += [q_w.addr.eq(self.q_addr), q_w.data.eq(self.q_data), q_w.en.eq(self.q_we)]

        cfull = Signal(2)
        cset = Signal(2)
        cclr = Signal(2)
        mask = [Signal(64, name=f"mask{b}") for b in range(2)]
        wbank = Signal()
        ev = self.inp.payload
        m.d.comb += self.inp.ready.eq(~cfull.bit_select(wbank, 1))
        ev_accept = Signal()
        m.d.comb += ev_accept.eq(self.inp.valid & self.inp.ready)
        m.d.comb += [cb_w.addr.eq(Cat(ev.index, wbank)), cb_w.data.eq(ev.data), cb_w.en.eq(ev_accept & ev.write)]
        with m.If(ev_accept & ev.block_last):
            m.d.sync += wbank.eq(~wbank)

        # ---- pass 1: read issue ---------------------------------------------------------------------
        rbank = Signal()
        n = Signal(6)                    # natural index 8 u + v being read
        stall1 = Signal()
        issue1 = Signal()
        m.d.comb += issue1.eq(cfull.bit_select(rbank, 1) & ~stall1)
        m.d.comb += [cb_r.addr.eq(Cat(n, rbank)), cb_r.en.eq(~stall1), q_r.addr.eq(n), q_r.en.eq(~stall1)]
        d1_valid = Signal()
        d1_n = Signal(6)
        d1_written = Signal()
        with m.If(~stall1):
            m.d.sync += [d1_valid.eq(issue1), d1_n.eq(n),
                         d1_written.eq(Mux(rbank, mask[1], mask[0]).bit_select(n, 1))]
        with m.If(issue1):
            m.d.sync += n.eq(n + 1)
            with m.If(n == 63):
                # the bank's last read is issued: the entropy stage may refill it from the next cycle on
                m.d.sync += rbank.eq(~rbank)
        for b in range(2):
            with m.If(cclr[b]):
                m.d.sync += mask[b].eq(0)
            with m.Elif(ev_accept & ev.write & (wbank == b)):
                m.d.sync += mask[b].bit_select(ev.index, 1).eq(1)
        m.d.comb += [cset.eq(bank_pulse(ev_accept & ev.block_last, wbank)),
                     cclr.eq(bank_pulse(issue1 & (n == 63), rbank))]
        m.d.sync += cfull.eq((cfull | cset) & ~cclr)

        # ---- pass 1: dequantize (one pipeline register after the multiply) ---------------------------
        q = Signal(signed(VALUE_BITS))
        m.d.comb += q.eq(Mux(d1_written, cb_r.data, 0))
        d2_valid = Signal()
        d2_n = Signal(6)
        d2_f = Signal(signed(F_BITS))
        with m.If(~stall1):
            m.d.sync += [d2_valid.eq(d1_valid), d2_n.eq(d1_n), d2_f.eq(q * q_r.data.as_unsigned())]

        # ---- pass 1: accumulate along v -------------------------------------------------------------
        tword = data.ArrayLayout(signed(T_BITS), 8)
        m.submodules.tbuf = tbuf = Memory(shape=tword, depth=16, init=[])
        tb_w = tbuf.write_port()
        tb_r = tbuf.read_port()
        tfull = Signal(2)
        tset = Signal(2)
        tclr = Signal(2)
        twbank = Signal()
        v = d2_n[:3]
        u = d2_n[3:]
        consume1 = Signal()
        m.d.comb += consume1.eq(d2_valid & ~stall1)
        # row 0 is the only write that can find its bank busy (rows 1..7 go to a bank pass 1 owns)
        m.d.comb += stall1.eq(d2_valid & (u == 0) & (v == 7) & tfull.bit_select(twbank, 1))
        acc1 = [Signal(signed(ACC1_BITS), name=f"acc1_{x}") for x in range(8)]
        sum1 = [Signal(signed(ACC1_BITS), name=f"sum1_{x}") for x in range(8)]
        trow = Signal(tword)
        for x in range(8):
            kx = _const_select(m, IDCT_MATRIX[:, x], v, f"c1_{x}")   # C[v][x]
            prod = Signal(signed(ACC1_BITS), name=f"prod1_{x}")
            m.d.comb += prod.eq(d2_f * kx)
            m.d.comb += sum1[x].eq(prod + Mux(v == 0, 0, acc1[x]))
            with m.If(consume1):
                m.d.sync += acc1[x].eq(sum1[x])
            m.d.comb += trow[x].eq((sum1[x] + (1 << (IDCT_PASS1_SHIFT - 1))) >> IDCT_PASS1_SHIFT)
        m.d.comb += [tb_w.addr.eq(Cat(u, twbank)), tb_w.data.eq(trow), tb_w.en.eq(consume1 & (v == 7))]
        with m.If(consume1 & (v == 7) & (u == 7)):
            m.d.sync += twbank.eq(~twbank)

        # ---- pass 2: read issue ---------------------------------------------------------------------
        rb2 = Signal()
        cu = Signal(3)      # row of t being read
        cy = Signal(3)      # output row being accumulated
        stall2 = Signal()
        issue2 = Signal()
        m.d.comb += issue2.eq(tfull.bit_select(rb2, 1) & ~stall2)
        m.d.comb += [tb_r.addr.eq(Cat(cu, rb2)), tb_r.en.eq(~stall2)]
        e_valid = Signal()
        e_u = Signal(3)
        e_y = Signal(3)
        with m.If(~stall2):
            m.d.sync += [e_valid.eq(issue2), e_u.eq(cu), e_y.eq(cy)]
        with m.If(issue2):
            m.d.sync += cu.eq(cu + 1)
            with m.If(cu == 7):
                m.d.sync += cy.eq(cy + 1)
                with m.If(cy == 7):
                    m.d.sync += rb2.eq(~rb2)
        m.d.comb += [tset.eq(bank_pulse(consume1 & (v == 7) & (u == 7), twbank)),
                     tclr.eq(bank_pulse(issue2 & (cu == 7) & (cy == 7), rb2))]
        m.d.sync += tfull.eq((tfull | tset) & ~tclr)

        # ---- pass 2: accumulate along u -------------------------------------------------------------
        cuy = _const_select(m, [IDCT_MATRIX[uu, yy] for yy in range(8) for uu in range(8)], Cat(e_u, e_y), "c2")
        consume2 = Signal()
        m.d.comb += consume2.eq(e_valid & ~stall2)
        acc2 = [Signal(signed(ACC2_BITS), name=f"acc2_{x}") for x in range(8)]
        sum2 = [Signal(signed(ACC2_BITS), name=f"sum2_{x}") for x in range(8)]
        for x in range(8):
            prod = Signal(signed(ACC2_BITS), name=f"prod2_{x}")
            m.d.comb += prod.eq(tb_r.data[x] * cuy)
            m.d.comb += sum2[x].eq(prod + Mux(e_u == 0, 0, acc2[x]))
            with m.If(consume2):
                m.d.sync += acc2[x].eq(sum2[x])

        # ---- restore + output shift register ----------------------------------------------------------
        restored = []
        p = self.pre_shift
        for x in range(8):
            r = Signal(signed(ACC2_BITS - IDCT_PASS2_SHIFT + 1), name=f"r{x}")
            m.d.comb += r.eq((sum2[x] + (1 << (IDCT_PASS2_SHIFT - 1))) >> IDCT_PASS2_SHIFT)
            s = Signal(signed(12), name=f"s{x}")
            m.d.comb += s.eq(Mux(r < SAMPLE_MIN, SAMPLE_MIN, Mux(r > SAMPLE_MAX, SAMPLE_MAX, r)))
            ws = Signal(signed(12 + 7), name=f"ws{x}")
            m.d.comb += ws.eq(s << p)
            w = Signal(signed(WEIGHT_BITS), name=f"w{x}")
            # a no-op for p <= 4 (2047 << 4 = 32752, -2048 << 4 = -32768); kept for golden's definition
            m.d.comb += w.eq(Mux(ws < INT16_MIN, INT16_MIN, Mux(ws > INT16_MAX, INT16_MAX, ws)))
            restored.append(w)

        ser = [Signal(signed(WEIGHT_BITS), name=f"ser{x}") for x in range(8)]
        ser_count = Signal(range(9))
        ser_y = Signal(3)
        out_accept = Signal()
        m.d.comb += out_accept.eq(self.out.valid & self.out.ready)
        ser_free = Signal()
        m.d.comb += ser_free.eq((ser_count == 0) | ((ser_count == 1) & out_accept))
        # a finished row waits only if the previous row is still leaving
        m.d.comb += stall2.eq(e_valid & (e_u == 7) & ~ser_free)
        with m.If(consume2 & (e_u == 7)):
            m.d.sync += [ser[x].eq(restored[x]) for x in range(8)]
            m.d.sync += [ser_count.eq(8), ser_y.eq(e_y)]
        with m.Elif(out_accept):
            m.d.sync += [ser[x].eq(ser[x + 1]) for x in range(7)]
            m.d.sync += ser_count.eq(ser_count - 1)
        ser_x = Signal(3)
        m.d.comb += ser_x.eq(8 - ser_count)
        m.d.comb += [
            self.out.valid.eq(ser_count != 0),
            self.out.payload.data.eq(ser[0]),
            self.out.payload.index.eq(Cat(ser_x, ser_y)),
            self.out.payload.block_last.eq((ser_y == 7) & (ser_count == 1)),
        ]
        return m
