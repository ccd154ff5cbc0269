"""The bit packer, bit-exact with ``golden.entropy.BitWriter``: words -> bytes, MSB first.

Each accepted word appends ``length`` (0..32) bits to a bit accumulator; every cycle the oldest 8 bits
leave as one byte. In JPEG mode (``stuffing``) a 0xFF byte is followed by a stuffed 0x00 (T.81
F.1.2.3); the lossless container has none. After the word flagged ``last`` (the end of an image) the
final partial byte is padded with 1-bits and flagged ``last`` (the stuffed 0x00 carries it if the final
byte is 0xFF); then the packer takes the next image's words.

Shape (why): the output is one byte per cycle, so the packer's job is to never make the byte stream
wait while bits are available, and to absorb the worst-case word (16-bit code + 16 extra bits = 32 bits)
without losing any. A 48-bit accumulator accepts a word whenever it holds at most 16 bits, i.e. whenever
a 32-bit word is guaranteed to fit after this cycle; with up to 16 bits left and a byte leaving each cycle
the output never starves while words arrive. Every byte comes from one formula: with the accumulator's
``n`` valid bits below 8 padding 1-bits, the next byte is bits ``n .. n+7`` of that 56-bit value (for
``n < 8`` this is the padded final byte). Only registers drive ``out``; ``inp.ready`` depends on
registers only.

Throughput: one output byte per cycle (a stuffed 0x00 takes a cycle of its own); the input side takes a
word per cycle while words average at most 8 bits. Longer words make the byte stream the bottleneck
and back-pressure the word stream.

Ports
-----
inp : In(stream)    ``{bits: 32, length: 6, last}`` (``hw.jpeg.entropy.word_layout``), ``length <= 32``
out : Out(stream)   ``{data: 8, last}``
stuffing : In(1)    insert 0x00 after 0xFF (JPEG). Change only while idle.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .entropy import WORD_BITS, word_layout

__all__ = ["BitPacker", "byte_layout", "ACC_BITS"]

ACC_BITS = 48


def byte_layout() -> data.StructLayout:
    return data.StructLayout({"data": unsigned(8), "last": 1})


class BitPacker(wiring.Component):
    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(word_layout())),
            "out": Out(stream.Signature(byte_layout())),
            "stuffing": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(ACC_BITS)            # the valid bits are acc[0:n], oldest at n-1
        n = Signal(range(ACC_BITS + 1))
        flushing = Signal()               # the image's last word is in: pad and finish
        stuff_pending = Signal()          # a 0xFF just left: a 0x00 is due
        stuff_final = Signal()            # ... and it ends the image

        m.d.comb += self.inp.ready.eq(~flushing & (n <= ACC_BITS - WORD_BITS))
        accept = Signal()
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)

        slot = Signal()   # the output register can take a byte this cycle
        m.d.comb += slot.eq(~self.out.valid | self.out.ready)
        padded = Signal(ACC_BITS + 8)
        m.d.comb += padded.eq(Cat(Const(0xFF, 8), acc))
        byte = Signal(8)
        m.d.comb += byte.eq(padded >> n)
        can_emit = Signal()
        m.d.comb += can_emit.eq((n >= 8) | (flushing & (n != 0)))
        final = Signal()
        m.d.comb += final.eq(flushing & (n <= 8))
        is_ff = Signal()
        m.d.comb += is_ff.eq(self.stuffing & (byte == 0xFF))

        take = Signal(range(9))
        with m.If(slot & stuff_pending):
            m.d.sync += [self.out.valid.eq(1), self.out.payload.data.eq(0), self.out.payload.last.eq(stuff_final),
                         stuff_pending.eq(0)]
        with m.Elif(slot & can_emit):
            m.d.comb += take.eq(Mux(n >= 8, 8, n))
            m.d.sync += [self.out.valid.eq(1), self.out.payload.data.eq(byte),
                         self.out.payload.last.eq(final & ~is_ff), stuff_pending.eq(is_ff), stuff_final.eq(final)]
            with m.If(final):
                m.d.sync += flushing.eq(0)
        with m.Elif(slot):
            m.d.sync += self.out.valid.eq(0)

        word = self.inp.payload
        with m.If(accept):
            m.d.sync += [acc.eq((acc << word.length) | word.bits), n.eq(n - take + word.length)]
            with m.If(word.last):
                m.d.sync += flushing.eq(1)
        with m.Else():
            m.d.sync += n.eq(n - take)
        return m
