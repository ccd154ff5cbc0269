"""Two buffers used in turn: a producer fills one while a consumer drains the other.

The full flags and the two sides' buffer pointers of a double buffer (the window loader's segment buffers,
``hw.window_loader``). The producer fills ``fill_buf`` while it is free and moves to the other buffer with
``fill_next`` once it has issued the buffer's last write; that write may land later, so the buffer becomes
full with ``set`` (naming ``set_buf``), from the next cycle on. The consumer drains ``buf`` while ``ready``
and hands it back with ``release`` in the cycle it uses it for the last time: the buffer is empty from the
next cycle and counts as free for the producer already in that cycle (the consumer reads it in that cycle,
a refill issued then lands a cycle later), so a producer and a consumer one cycle per fill each never wait
for each other.

Ports
-----
start : In(1)       one-cycle pulse: both buffers empty, both sides at buffer 0 (wins over everything else)
fill_buf : Out(1)   the buffer the producer fills
fill_free : Out(1)  ``fill_buf`` is empty, or the consumer releases it this cycle
fill_next : In(1)   the producer is done with ``fill_buf`` (its last write issued): move to the other buffer
set : In(1)         the fill of ``set_buf`` (In(1)) has landed: that buffer is full from the next cycle
buf : Out(1)        the buffer the consumer drains
ready : Out(1)      ``buf`` is full
release : In(1)     the consumer's last use of ``buf`` (only while ``ready``): empty from the next cycle,
                    move to the other buffer
full : Out(2)       the full flags (bit ``i``: buffer ``i``)
empty : Out(1)      neither buffer is full
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def ref_ping_pong(steps):
    """Python model: ``steps`` is a list of dicts of the inputs per cycle (start, fill_next, set, set_buf,
    release); returns the outputs each cycle (fill_buf, fill_free, buf, ready, full, empty) before its edge."""
    full, fill_buf, buf = [0, 0], 0, 0
    out = []
    for s in steps:
        out.append(dict(fill_buf=fill_buf, fill_free=int(not full[fill_buf] or (s["release"] and buf == fill_buf)),
                        buf=buf, ready=full[buf], full=full[0] | full[1] << 1, empty=int(full == [0, 0])))
        nfull = list(full)
        if s["set"]:
            nfull[s["set_buf"]] = 1
        if s["release"]:
            nfull[buf] = 0
        full = nfull
        fill_buf ^= s["fill_next"]
        buf ^= s["release"]
        if s["start"]:
            full, fill_buf, buf = [0, 0], 0, 0
    return out


class PingPong(wiring.Component):
    """A double buffer's full flags and pointers (module docstring); no parameters."""

    def __init__(self):
        super().__init__({
            "start": In(1),
            "fill_buf": Out(1), "fill_free": Out(1), "fill_next": In(1),
            "set": In(1), "set_buf": In(1),
            "buf": Out(1), "ready": Out(1), "release": In(1),
            "full": Out(2), "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        set_mask = Signal(2)
        clr_mask = Signal(2)
        with m.If(self.set):
            m.d.comb += set_mask.eq(Mux(self.set_buf, 0b10, 0b01))
        with m.If(self.release):
            m.d.comb += clr_mask.eq(Mux(self.buf, 0b10, 0b01))
        m.d.comb += [
            self.fill_free.eq(~self.full.bit_select(self.fill_buf, 1) | clr_mask.bit_select(self.fill_buf, 1)),
            self.ready.eq(self.full.bit_select(self.buf, 1)),
            self.empty.eq(self.full == 0),
        ]
        m.d.sync += self.full.eq((self.full | set_mask) & ~clr_mask)
        with m.If(self.fill_next):
            m.d.sync += self.fill_buf.eq(~self.fill_buf)
        with m.If(self.release):
            m.d.sync += self.buf.eq(~self.buf)
        with m.If(self.start):
            m.d.sync += [self.full.eq(0), self.fill_buf.eq(0), self.buf.eq(0)]
        return m
