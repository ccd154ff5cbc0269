"""Constant look-up tables as plain continuous logic (no combinational process).

Why not ``with m.Switch(sel): m.d.comb += out.eq(table[i])``: Amaranth turns that into a Verilog
``always @*`` block, and a simulator evaluates such a block only when one of its inputs changes. Yosys adds a
time-zero trigger for it (a ``reg ... = 0`` read inside the block), but under SystemVerilog rules (Icarus
``-g2012``, what cocotb's Icarus runner uses) a declaration initialiser fires no event, so the block's output
stays X until ``sel`` first changes. A select that sits at its reset value from power-up until its first use
(the DCT's ``x`` and ``d_y``, the zigzag buffer's read position ``p``) then hands X to the first block's
arithmetic, and from there X reaches data-dependent control (zero tests, end-of-block tracking, the run-length
coder's ``valid``). :func:`const_lut` selects a word of a constant with ``word_select`` instead: a
continuous assignment, evaluated at time zero by every simulator, and the same multiplexer in hardware.
"""

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value

__all__ = ["const_lut", "bank_pulse"]


def const_lut(m: Module, table, sel: Value, shape, name: str) -> Signal:
    """A signal of ``shape`` equal to ``table[sel]``: one continuous ``word_select`` of a constant.

    ``sel`` must not exceed ``len(table) - 1`` (an out-of-range index gives an undefined word)."""
    shape = Shape.cast(shape)
    words = Cat(*(Const(int(v), shape) for v in table))
    out = Signal(shape, name=name)
    m.d.comb += out.eq(words.word_select(sel, shape.width))
    return out


def bank_pulse(cond: Value, bank: Value) -> Value:
    """The 2-bit one-hot ``1 << bank`` when ``cond``, else 0: a ping-pong buffer's set / release pulse.

    Plain logic on purpose (a continuous assignment), not ``with m.If(cond): m.d.comb +=
    pulse.bit_select(bank, 1).eq(1)``: that becomes an ``always @*`` block which, on Icarus, stays X until one
    of its inputs changes; where they are all registers idling at their reset values (the weight IDCT's
    ``cset``/``cclr``/``tset``/``tclr``) the X goes straight into the ``full`` flags at the first clock."""
    return Cat(cond & ~bank, cond & bank)
