"""The bit packer, bit-exact with ``golden.entropy.BitWriter``: words -> bytes, MSB first.

Each accepted word appends ``length`` (0..32) bits to a bit accumulator; the oldest bits leave as bytes.
In JPEG mode (``stuffing``) every 0xFF byte is followed by a stuffed 0x00 (T.81 F.1.2.3); the lossless
container has none. After the word flagged ``last`` (the end of an image) the final partial byte is
padded with 1-bits and the beat holding the image's final byte (a stuffed 0x00 if that byte is 0xFF) is
flagged ``last``; then the packer takes the next image's words.

Output width: ``out_bytes`` (1, 2 or 4) bytes per beat. With 1 the output is a plain byte stream
``{data: 8, last}``; wider outputs carry ``{data: 8 * out_bytes, count, last}``, byte 0 (the first in the
stream) in ``data[0:8]``, ``count`` valid bytes (always ``out_bytes`` except in an image's final beat).

Shape (why), two stages:

* **Bit accumulator** (``8 out_bytes + 40`` bits): accepts a word whenever it holds at most
  ``8 out_bytes + 8`` bits, i.e. whenever the worst-case word (16-bit code + 16 extra bits = 32 bits)
  is sure to fit, and hands up to ``out_bytes`` raw bytes per cycle to the second stage. Every byte
  comes from one formula: with 8 padding 1-bits below the ``n`` valid bits, byte ``j`` is bits
  ``n - 8j .. n - 8j + 7`` of that value (for the final partial byte this is the padded byte).
* **Stuffing and realignment**: a raw beat of ``k`` bytes becomes ``k`` plus the number of its 0xFF bytes
  (0x00 inserted after each), placed behind the bytes already waiting in a ``4 out_bytes``-byte buffer
  (a prefix count gives each byte its place); full beats of ``out_bytes`` bytes leave from the front.
  The buffer takes a raw beat whenever it holds at most ``2 out_bytes`` bytes, so it never overflows
  (a raw beat expands to at most ``2 out_bytes``) and never starves the output.

Only registers drive ``out`` and ``inp.ready``. Throughput: ``out_bytes`` bytes per cycle (stuffed
0x00 bytes included), and a word per cycle on the input while the words average at most
``8 out_bytes`` bits; longer words make the output the bottleneck and back-pressure the word stream.

Ports
-----
inp : In(stream)    ``{bits: 32, length: 6, last}`` (``hw.jpeg.entropy.word_layout``), ``length <= 32``
out : Out(stream)   ``byte_layout(out_bytes)``
stuffing : In(1)    insert 0x00 after 0xFF (JPEG). Change only while idle.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .entropy import WORD_BITS, word_layout

__all__ = ["BitPacker", "byte_layout", "OUT_BYTES"]

OUT_BYTES = (1, 2, 4)


def byte_layout(out_bytes: int = 1) -> data.StructLayout:
    if out_bytes == 1:
        return data.StructLayout({"data": unsigned(8), "last": 1})
    return data.StructLayout({"data": unsigned(8 * out_bytes), "count": range(out_bytes + 1), "last": 1})


class BitPacker(wiring.Component):
    def __init__(self, out_bytes: int = 1):
        if out_bytes not in OUT_BYTES:
            raise ValueError(f"BitPacker out_bytes must be one of {OUT_BYTES}, got {out_bytes!r}")
        self.out_bytes = out_bytes
        super().__init__({
            "inp": In(stream.Signature(word_layout())),
            "out": Out(stream.Signature(byte_layout(out_bytes))),
            "stuffing": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        W = self.out_bytes
        acc_bits = 8 * W + 8 + WORD_BITS

        # ---- stage 1: bit accumulator -> raw bytes ---------------------------------------------------
        acc = Signal(acc_bits)            # the valid bits are acc[0:n], oldest at n-1
        n = Signal(range(acc_bits + 1))
        flushing = Signal()               # the image's last word is in: pad and finish

        m.d.comb += self.inp.ready.eq(~flushing & (n <= acc_bits - WORD_BITS))
        accept = Signal()
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)

        padded = Signal(acc_bits + 8)
        m.d.comb += padded.eq(Cat(Const(0xFF, 8), acc))
        raw = [Signal(8, name=f"raw{j}") for j in range(W)]
        for j in range(W):
            shift = Signal(range(acc_bits + 1), name=f"shift{j}")   # wraps for j >= raw_count: unused then
            m.d.comb += [shift.eq(n - 8 * j), raw[j].eq(padded >> shift)]
        final = Signal()   # this raw beat drains the accumulator and ends the image
        m.d.comb += final.eq(flushing & (n <= 8 * W))
        raw_count = Signal(range(W + 1))
        with m.If(final):
            # the last byte padded with 1-bits (n = 0 only after a word without a code, which golden
            # rejects: one 0xFF byte then, so the image still ends)
            m.d.comb += raw_count.eq(Mux(n == 0, 1, (n + 7) >> 3))
        with m.Elif(n >= 8 * W):
            m.d.comb += raw_count.eq(W)
        with m.Else():
            m.d.comb += raw_count.eq(n >> 3)
        raw_take = Signal()   # stage 2 takes the raw beat this cycle
        taken_bits = Signal(range(acc_bits + 1))
        m.d.comb += taken_bits.eq(Mux(raw_take, Mux(final, n, raw_count << 3), 0))

        word = self.inp.payload
        with m.If(accept):
            m.d.sync += [acc.eq((acc << word.length) | word.bits), n.eq(n - taken_bits + word.length)]
            with m.If(word.last):
                m.d.sync += flushing.eq(1)
        with m.Else():
            m.d.sync += n.eq(n - taken_bits)
        with m.If(raw_take & final):
            m.d.sync += flushing.eq(0)

        # ---- stage 2: stuffing, realignment into beats ------------------------------------------------
        depth = 4 * W
        buf = Signal(8 * depth)           # bytes buf[0:cnt] wait, byte 0 first; bytes above cnt are 0
        cnt = Signal(range(depth + 1))
        fin = Signal()                    # the buffer holds an image's final byte
        # a raw beat expands to at most 2W bytes: take one while at most 2W bytes wait; none after a
        # final one until it has left (a beat never mixes two images)
        m.d.comb += raw_take.eq((raw_count != 0) & (cnt <= 2 * W) & ~fin)

        ff = [Signal(name=f"ff{j}") for j in range(W)]
        pos = [Signal(range(2 * W), name=f"pos{j}") for j in range(W)]
        for j in range(W):
            m.d.comb += ff[j].eq(self.stuffing & (raw[j] == 0xFF) & (j < raw_count))
            m.d.comb += pos[j].eq(j + sum(ff[i] for i in range(j)) if j else 0)
        expanded_count = Signal(range(2 * W + 1))
        m.d.comb += expanded_count.eq(raw_count + sum(ff))
        expanded = [Signal(8, name=f"exp{p}") for p in range(2 * W)]
        for p in range(2 * W):
            for j in range(min(p + 1, W)):
                with m.If((pos[j] == p) & (j < raw_count)):
                    m.d.comb += expanded[p].eq(raw[j])   # a stuffed 0x00 is just a byte left at 0

        slot = Signal()
        m.d.comb += slot.eq(~self.out.valid | self.out.ready)
        emit = Signal()
        m.d.comb += emit.eq(slot & ((cnt >= W) | (fin & (cnt != 0))))
        emit_count = Signal(range(W + 1))
        m.d.comb += emit_count.eq(Mux(emit, Mux(cnt >= W, W, cnt), 0))
        is_final_beat = Signal()
        m.d.comb += is_final_beat.eq(fin & (cnt <= W))

        with m.If(emit):
            m.d.sync += [self.out.valid.eq(1), self.out.payload.data.eq(buf[:8 * W]),
                         self.out.payload.last.eq(is_final_beat)]
            if W > 1:
                m.d.sync += self.out.payload.count.eq(emit_count)
            with m.If(is_final_beat):
                m.d.sync += fin.eq(0)
        with m.Elif(slot):
            m.d.sync += self.out.valid.eq(0)

        buf_after = Signal(8 * depth)
        cnt_after = Signal(range(depth + 1))
        m.d.comb += [buf_after.eq(buf >> (emit_count << 3)), cnt_after.eq(cnt - emit_count)]
        with m.If(raw_take):
            m.d.sync += [buf.eq(buf_after | (Cat(*expanded) << (cnt_after << 3))),
                         cnt.eq(cnt_after + expanded_count)]
            with m.If(final):
                m.d.sync += fin.eq(1)
        with m.Else():
            m.d.sync += [buf.eq(buf_after), cnt.eq(cnt_after)]
        return m
