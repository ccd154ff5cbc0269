"""One 16-bit signed multiply-accumulate processing element."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from golden.fixedpoint import ACC_BITS, ACT_BITS, WEIGHT_BITS


class MacPE(wiring.Component):
    """``acc <= (fresh ? 0 : acc) + a * w`` on every cycle with ``en``.

    ``fresh`` starts a new dot product without a separate clear cycle, so back-to-back tiles keep the
    multiplier busy every cycle. The accumulator is ``ACC_BITS`` wide (see ``golden.fixedpoint`` for why
    it cannot overflow on any dot product up to ``MAX_DOT_LENGTH`` terms).

    Ports
    -----
    a, w : In(signed(16))      operands
    en : In(1)                 accumulate this cycle
    fresh : In(1)              this product starts a new dot product (discard the old accumulator)
    acc : Out(signed(ACC_BITS)) the accumulator register
    """

    a: In(signed(ACT_BITS))
    w: In(signed(WEIGHT_BITS))
    en: In(1)
    fresh: In(1)
    acc: Out(signed(ACC_BITS))

    def elaborate(self, platform):
        m = Module()
        # The product is at most 2**30 in magnitude (31 bits signed); the sum is truncated to ACC_BITS,
        # which is exact by the accumulator bound.
        product = self.a * self.w
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(self.fresh, 0, self.acc) + product)
        return m
