"""The encoder's 2-D DCT, bit-exact with ``golden.jpeg.dct2_int``: a pipelined block processor.

Arithmetic (``golden.jpeg`` docstring): ``t[y, u] = (sum_x K[u, x] s[y, x] + 2**6) >> 7`` (row pass,
int16), ``c[v, u] = (sum_y K[v, y] t[y, u] + 2**15) >> 16`` (column pass, int14, 3 fractional bits),
``K = golden.jpeg.DCT_MATRIX``, arithmetic shifts. The sums are the same integers as golden's, only
accumulated in another order, so the results are identical.

Shape (why):

* **Row stage**, one sample per cycle: the block arrives in raster order, so the 8 samples of a row
  come one after another. Eight accumulators (one per horizontal frequency ``u``) each add
  ``K[u, x] * s`` per sample; the eighth sample completes the row and its 8 rounded results are written
  at once as one 128-bit word (row ``y``) of the transpose buffer. Eight constant-select multipliers,
  8 x 13 bits.
* **Transpose buffer**: 2 banks x 8 row words (one memory, 16 x 128 bits). While the row stage fills
  one bank, the column stage reads the other (ping-pong), so a new block streams in while the previous
  one is transformed. A bank is "full" from the write of its row 7 until the column stage has *issued*
  its last read; the row stage only needs the bank free when it writes row 0 (after the 8th sample),
  which gives 7 cycles of slack.
* **Column stage**, one word per cycle: for column ``u`` it reads rows ``y = 0..7`` and picks element
  ``u``; eight accumulators (one per vertical frequency ``v``) add ``K[v, y] * t[y, u]``. After 8
  reads column ``u`` is done: its 8 coefficients go into an output shift register and leave one per
  cycle (index ``8 v + u``, natural order) while the next column accumulates. Eight multipliers,
  16 x 13 bits.

Throughput: 64 cycles per block in each stage, no bubble between blocks, so 1 sample per cycle when
the output is ready. Latency: 64 (row) + 8 (first column) + 2 cycles to the first coefficient.
Back-pressure on ``out`` stalls the column stage (only when a finished column finds the shift register
still busy), then the row stage (only when it must write row 0 into a bank still being read).

Ports
-----
inp : In(stream)   ``{data: signed(8), last}``: level-shifted samples (-128..127), 64 per block in
                   raster order; ``last`` on the final sample of the final block of an image
out : Out(stream)  ``{data: signed(14), index: 6, block_last, image_last}``: coefficients in column
                   order (``index = 8 v + u`` natural position); ``block_last`` on the block's final
                   coefficient; ``image_last`` on every coefficient of an image's last block
"""

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.jpeg import DCT_COL_SHIFT, DCT_MATRIX, DCT_ROW_SHIFT

from .lut import bank_pulse, const_lut

__all__ = ["Dct2d", "coeff_layout", "dct_input_layout", "COEFF_BITS", "ROW_BITS"]

SAMPLE_BITS = 8
CONST_BITS = 14      # |K| <= 4017 fits 13 bits signed; 14 keeps the constant's sign handling trivial
ROW_BITS = 16        # |t| <= 23168
COEFF_BITS = 14      # DC -8190..8126, AC within +-8158
ROW_ACC_BITS = 24    # |sum_x K s| < 2**22
COL_ACC_BITS = 31    # |sum_y K t| < 2**29


def dct_input_layout() -> data.StructLayout:
    return data.StructLayout({"data": signed(SAMPLE_BITS), "last": 1})


def coeff_layout(bits: int = COEFF_BITS) -> data.StructLayout:
    return data.StructLayout({"data": signed(bits), "index": unsigned(6), "block_last": 1, "image_last": 1})


def _k_select(m: Module, row: int, sel: Signal, name: str) -> Signal:
    """``K[row, sel]``: the constant one multiplier needs this cycle (an 8-way constant mux).

    A continuous select (:func:`hw.jpeg.lut.const_lut`), not a ``Switch``: ``sel`` (``x``, ``d_y``) sits at
    0 from reset to its first use, and a ``Switch``'s ``always @*`` block stays X on Icarus until ``sel``
    changes, which made the first sample's products (and so the whole first block) X."""
    return const_lut(m, [int(DCT_MATRIX[row, i]) for i in range(8)], sel, signed(CONST_BITS), name)


class Dct2d(wiring.Component):
    """Pipelined 8x8 2-D DCT (see the module docstring). No parameters: the arithmetic is golden's."""

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(dct_input_layout())),
            "out": Out(stream.Signature(coeff_layout())),
        })

    def elaborate(self, platform):
        m = Module()

        row_word = data.ArrayLayout(signed(ROW_BITS), 8)
        tbuf = Memory(shape=row_word, depth=16, init=[])
        m.submodules.tbuf = tbuf
        wp = tbuf.write_port()
        rp = tbuf.read_port()

        # bank b holds a complete row-transformed block waiting for (or under) the column pass
        full = Signal(2)
        bank_image_last = Signal(2)
        set_full = Signal(2)
        clr_full = Signal(2)

        # ---- row stage ---------------------------------------------------------------------
        x = Signal(3)
        y = Signal(3)
        wbank = Signal()
        accept = Signal()
        # The only write that can find its bank busy is row 0's (later rows go to a bank this stage
        # already owns), and it happens on the 8th sample: so only that sample waits.
        m.d.comb += self.inp.ready.eq(~((x == 7) & (y == 0) & full.bit_select(wbank, 1)))
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)

        s = self.inp.payload.data
        row_acc = [Signal(signed(ROW_ACC_BITS), name=f"row_acc{u}") for u in range(8)]
        row_sum = [Signal(signed(ROW_ACC_BITS), name=f"row_sum{u}") for u in range(8)]
        row_out = Signal(row_word)
        for u in range(8):
            k = _k_select(m, u, x, f"row_k{u}")
            prod = Signal(signed(ROW_ACC_BITS), name=f"row_prod{u}")
            m.d.comb += prod.eq(k * s)
            # x == 0 starts a new sum (no clear cycle); the 8th product goes straight into the result
            m.d.comb += row_sum[u].eq(prod + Mux(x == 0, 0, row_acc[u]))
            with m.If(accept):
                m.d.sync += row_acc[u].eq(row_sum[u])
            m.d.comb += row_out[u].eq((row_sum[u] + (1 << (DCT_ROW_SHIFT - 1))) >> DCT_ROW_SHIFT)

        m.d.comb += [
            wp.addr.eq(Cat(y, wbank)),
            wp.data.eq(row_out),
            wp.en.eq(accept & (x == 7)),
        ]
        with m.If(accept):
            m.d.sync += x.eq(x + 1)
            with m.If(x == 7):
                m.d.sync += y.eq(y + 1)
                with m.If(y == 7):
                    m.d.sync += wbank.eq(~wbank)
                    m.d.sync += bank_image_last.bit_select(wbank, 1).eq(self.inp.payload.last)

        # ---- column stage: read issue ---------------------------------------------------------
        rbank = Signal()
        cu = Signal(3)   # column being read
        cy = Signal(3)   # row being read
        d_valid = Signal()   # rp.data holds t[d_y, :] of column d_u
        d_u = Signal(3)
        d_y = Signal(3)
        d_last = Signal()
        stall = Signal()
        issue = Signal()
        m.d.comb += issue.eq(full.bit_select(rbank, 1) & ~stall)
        m.d.comb += [rp.addr.eq(Cat(cy, rbank)), rp.en.eq(~stall)]
        with m.If(~stall):
            m.d.sync += [d_valid.eq(issue), d_u.eq(cu), d_y.eq(cy),
                         d_last.eq(bank_image_last.bit_select(rbank, 1))]
        with m.If(issue):
            m.d.sync += cy.eq(cy + 1)
            with m.If(cy == 7):
                m.d.sync += cu.eq(cu + 1)
                with m.If(cu == 7):
                    # the bank's last read is issued: the row stage may overwrite it from now on
                    m.d.sync += rbank.eq(~rbank)

        m.d.comb += [set_full.eq(bank_pulse(accept & (x == 7) & (y == 7), wbank)),
                     clr_full.eq(bank_pulse(issue & (cy == 7) & (cu == 7), rbank))]
        m.d.sync += full.eq((full | set_full) & ~clr_full)

        # ---- column stage: accumulate ----------------------------------------------------------
        t = Signal(signed(ROW_BITS))
        m.d.comb += t.eq(rp.data[d_u])
        col_acc = [Signal(signed(COL_ACC_BITS), name=f"col_acc{v}") for v in range(8)]
        col_sum = [Signal(signed(COL_ACC_BITS), name=f"col_sum{v}") for v in range(8)]
        ser = [Signal(signed(COEFF_BITS), name=f"ser{v}") for v in range(8)]
        ser_count = Signal(range(9))
        ser_u = Signal(3)
        ser_last = Signal()
        consume = Signal()
        m.d.comb += consume.eq(d_valid & ~stall)
        for v in range(8):
            k = _k_select(m, v, d_y, f"col_k{v}")
            prod = Signal(signed(COL_ACC_BITS), name=f"col_prod{v}")
            m.d.comb += prod.eq(k * t)
            m.d.comb += col_sum[v].eq(prod + Mux(d_y == 0, 0, col_acc[v]))
            with m.If(consume):
                m.d.sync += col_acc[v].eq(col_sum[v])

        # ---- output shift register ----------------------------------------------------------------
        out_accept = Signal()
        m.d.comb += out_accept.eq(self.out.valid & self.out.ready)
        ser_free = Signal()
        m.d.comb += ser_free.eq((ser_count == 0) | ((ser_count == 1) & out_accept))
        # a finished column waits only if the previous column is still leaving
        m.d.comb += stall.eq(d_valid & (d_y == 7) & ~ser_free)

        with m.If(consume & (d_y == 7)):
            m.d.sync += [ser[v].eq((col_sum[v] + (1 << (DCT_COL_SHIFT - 1))) >> DCT_COL_SHIFT) for v in range(8)]
            m.d.sync += [ser_count.eq(8), ser_u.eq(d_u), ser_last.eq(d_last)]
        with m.Elif(out_accept):
            m.d.sync += [ser[v].eq(ser[v + 1]) for v in range(7)]
            m.d.sync += ser_count.eq(ser_count - 1)

        ser_v = Signal(3)
        m.d.comb += ser_v.eq(8 - ser_count)
        m.d.comb += [
            self.out.valid.eq(ser_count != 0),
            self.out.payload.data.eq(ser[0]),
            self.out.payload.index.eq(Cat(ser_u, ser_v)),
            self.out.payload.block_last.eq((ser_u == 7) & (ser_count == 1)),
            self.out.payload.image_last.eq(ser_last),
        ]
        return m
