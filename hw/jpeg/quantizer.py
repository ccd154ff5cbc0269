"""The quantizer, bit-exact with ``golden.jpeg.quantize_int``: ``q = sign(c) * ((|c| R + 2**23) >> 24)``.

``R[n] = ceil(2**21 / Q[n])`` (``golden.jpeg.reciprocal``) per natural position ``n = 8 v + u``, held in
a loadable 64-entry table: no divider, one 14 x 22-bit multiply per coefficient. The coefficient's
``index`` field addresses the table, so the coefficients may arrive in any order (the DCT sends them
column by column).

Shape (why): two register stages with one enable. Stage 1 registers the coefficient while the table's
synchronous read port looks up ``R`` (a RAM, not 64 x 22 flip-flops); stage 2 multiplies, rounds and
restores the sign into the output register. Both advance whenever the output register is empty or
being taken, so the quantizer takes one coefficient per cycle and adds 2 cycles of latency.

Ports
-----
inp : In(stream)   ``{data: signed(14), index, block_last, image_last}`` (``hw.jpeg.dct.coeff_layout``)
out : Out(stream)  the same fields, ``data`` now the quantized value, ``signed(12)`` (|q| <= 1024)
r_we, r_addr, r_data : table write port: ``R[r_addr] = r_data`` (22 bits, ``1 <= R <= 2**21``).
                   Write only while no block is in flight. With ``tables = 2`` the address has 7 bits:
                   ``r_addr[6]`` is the table set (0 luminance, 1 chrominance), ``r_addr[:6]`` the position.
tset : In(1)       only with ``tables = 2``: the table set of the coefficient offered on ``inp`` (colour
                   images: 0 for Y blocks, 1 for Cb and Cr; ``golden.jpeg.DctImage.table_set``)
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.jpeg import DCT_OUT_FRAC_BITS, QUANT_SHIFT, quant_tables, reciprocal

from .dct import COEFF_BITS, coeff_layout

__all__ = ["Quantizer", "QUANT_BITS", "RECIPROCAL_BITS"]

RECIPROCAL_BITS = QUANT_SHIFT - DCT_OUT_FRAC_BITS + 1  # 22: R <= 2**21
QUANT_BITS = 12   # |q| <= (8192 * 2**21 + 2**23) >> 24 = 1024


class Quantizer(wiring.Component):
    """Reciprocal-multiply quantizer with a loadable table (initialised to QF 50: luminance, and with
    ``tables = 2`` chrominance as table set 1).

    ``tables``: 1 (one 64-entry table: grayscale images and feature maps) or 2 (luminance and
    chrominance, selected per coefficient by ``tset``: colour images)."""

    def __init__(self, tables: int = 1):
        if tables not in (1, 2):
            raise ValueError(f"Quantizer tables must be 1 or 2, got {tables!r}")
        self.tables = tables
        ports = {
            "inp": In(stream.Signature(coeff_layout(COEFF_BITS))),
            "out": Out(stream.Signature(coeff_layout(QUANT_BITS))),
            "r_we": In(1),
            "r_addr": In(unsigned(6 + (tables - 1))),
            "r_data": In(unsigned(RECIPROCAL_BITS)),
        }
        if tables == 2:
            ports["tset"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        init = [int(r) for t in quant_tables(50)[:self.tables] for r in reciprocal(t).reshape(64)]
        table = Memory(shape=unsigned(RECIPROCAL_BITS), depth=64 * self.tables, init=init)
        m.submodules.table = table
        wp = table.write_port()
        rp = table.read_port()
        m.d.comb += [wp.en.eq(self.r_we), wp.addr.eq(self.r_addr), wp.data.eq(self.r_data)]

        advance = Signal()
        m.d.comb += advance.eq(~self.out.valid | self.out.ready)
        m.d.comb += self.inp.ready.eq(advance)

        # stage 1: the coefficient, while the RAM reads R[index]
        s1_valid = Signal()
        s1 = Signal(coeff_layout(COEFF_BITS))
        index = self.inp.payload.index
        m.d.comb += [rp.addr.eq(index if self.tables == 1 else Cat(index, self.tset)), rp.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(self.inp.valid), s1.eq(self.inp.payload)]

        # stage 2: |c| * R (14 x 22 bits -> at most 2**34), round, shift, sign
        c = s1.data
        mag = Signal(unsigned(COEFF_BITS))
        m.d.comb += mag.eq(Mux(c < 0, -c, c))
        q = Signal(unsigned(QUANT_BITS))
        m.d.comb += q.eq((mag * rp.data + (1 << (QUANT_SHIFT - 1))) >> QUANT_SHIFT)
        with m.If(advance):
            m.d.sync += [
                self.out.valid.eq(s1_valid),
                self.out.payload.data.eq(Mux(c < 0, -q, q)),
                self.out.payload.index.eq(s1.index),
                self.out.payload.block_last.eq(s1.block_last),
                self.out.payload.image_last.eq(s1.image_last),
            ]
        return m
