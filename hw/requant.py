"""Requantization in hardware: ``golden.fixedpoint.requantize`` as combinational logic.

``y = sat16((x + round_const(shift)) >> shift)``, then ReLU and, for ReLU6, ``min(y, clamp)``: one adder
(the rounding constant is a one-hot word), an arithmetic barrel shifter, two clamps. Used by the MAC
array's output stage and by the engine's vector unit, so both round exactly alike.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned

from golden.fixedpoint import ACT_BITS, INT16_MAX, INT16_MIN, SHIFT_BITS


def round_const(m: Module, shift, name: str = "rnd") -> Signal:
    """``2**(shift-1)`` (0 for shift 0) for a shift in 0..MAX_SHIFT."""
    rnd = Signal(unsigned(2**SHIFT_BITS), name=name)
    m.d.comb += rnd.eq((Const(1, 2**SHIFT_BITS + 1) << shift) >> 1)
    return rnd


def requantize(m: Module, x, rnd, shift, relu, width: int, name: str, clamp_en=0, clamp=0) -> Signal:
    """int16 result of requantizing the signed value ``x`` (``width`` bits wide, rounding constant
    ``rnd`` from ``round_const``); ``relu`` is a 1-bit value; with ``clamp_en`` the result is at most
    ``clamp`` (unsigned, 15 bits: ReLU6, ``golden.fixedpoint.relu6_clamp``)."""
    xr = Signal(signed(width + 1), name=f"{name}_x")
    y = Signal(signed(width + 1), name=f"{name}_y")
    q = Signal(signed(ACT_BITS), name=f"{name}_q")
    m.d.comb += [xr.eq(x + rnd), y.eq(xr >> shift)]
    with m.If(y > INT16_MAX):
        m.d.comb += q.eq(INT16_MAX)
    with m.Elif(y < INT16_MIN):
        m.d.comb += q.eq(INT16_MIN)
    with m.Else():
        m.d.comb += q.eq(y)
    r = Signal(signed(ACT_BITS), name=f"{name}_r")
    m.d.comb += r.eq(Mux(relu & q[-1], 0, q))
    out = Signal(signed(ACT_BITS), name=f"{name}_out")
    hi = Signal(signed(ACT_BITS), name=f"{name}_hi")
    m.d.comb += [hi.eq(clamp), out.eq(Mux(clamp_en & (r > hi), hi, r))]
    return out
