"""The engine's weight decoder: JPEG-coded weight words in, restored int16 weights out, bit-exact with
``golden.weightcodec.decode_layer``.

Pipeline (each stage one symbol / coefficient / weight per cycle; ``[bank]`` = ping-pong 8x8 buffer)::

    inp words -> bit buffer -> Huffman (1 symbol / cycle) -> events -> [coefficients] -> dequantize
        -> IDCT pass 1 (along v) -> [transpose] -> IDCT pass 2 (along u) -> restore -> out

:class:`hw.jpeg.huffdec.HuffmanDecoder` (bit buffer, canonical Huffman decode, run lengths, DC
prediction) and :class:`hw.jpeg.idct.WeightIdct` (coefficient banks, dequantizer, the two IDCT passes,
clamp and pre-shift) say why each is shaped so; this top adds the table port, the layer control and
the counters.

Output: the blocks in stream order, 64 weights per block in raster order (``index = i``, the K offset
inside the block), ``block_last`` on each block's 64th and ``last`` on the final weight of the blocks
requested so far. The engine gives each weight-buffer lane ``j`` its own decoder and lane stream
(``golden.weightcodec``: lane ``j`` holds blocks ``(g, kb, j)`` in order (g, kb)), so block ``b`` of lane
``j``'s stream is ``g = b // ceil(K/64)``, ``kb = b % ceil(K/64)`` and weight ``i`` goes to weight-buffer
row ``64 kb + i``, lane ``j`` (:func:`hw.jpeg.whost.block_position`).

Using it (the host side is :mod:`hw.jpeg.whost`):

1. while ``busy`` is low: pulse ``clear`` (empties the bit buffer, restarts the DC predictor and the
   group position, clears ``error`` and the counters) and write the tables through ``tbl_*``
   (:func:`hw.jpeg.whost.table_writes`): HUFFVAL, the per-length LIMIT/OFFSET entries, Q, ``p`` and
   ``group_blocks``;
2. pulse ``start`` with ``blocks`` = the blocks to decode (a whole layer, or one group at a time: the
   decoder continues the stream exactly where it stopped, and ``start`` may come again while busy to
   queue more blocks);
3. feed the layer's stream words on ``inp`` (they may arrive before ``start``: up to 4 words are
   buffered); ``busy`` stays high until the last requested weight has left.

Table port (``tbl_we``, ``tbl_addr``, ``tbl_data``; one entry per cycle, only while ``busy`` is low):

==============  ===========================================================================
``tbl_addr``    ``tbl_data``
==============  ===========================================================================
0x000..0x0FF    AC HUFFVAL[i] (``[0:8]``): the AC table's symbols in code order
0x100..0x10F    DC HUFFVAL[i]
0x200..0x20F    DC code length ``l = addr - 0x1FF``: ``LIMIT = MAXCODE + 1`` in ``[0:16]`` (0 when no
                code has length ``l``), ``OFFSET = (VALPTR - MINCODE) mod 256`` in ``[16:24]``
0x210..0x21F    AC code length ``l = addr - 0x20F``: same
0x240..0x27F    Q[n], natural order (1..255)
0x280           pre-shift ``p`` (0..4)
0x281           ``group_blocks``: the DC predictor restarts every this many blocks (a lane stream:
                ``ceil(K / 64)``)
==============  ===========================================================================

Counters (32 bits, cleared by ``clear``): ``cycles`` with a layer in flight (``busy``), ``blocks_out`` and
``weights_out`` sent, ``bits_in`` stream bits decoded (code + extra bits; golden's ``bits`` for a whole
layer, padding excluded), ``stall_out`` cycles with ``out.valid`` but not ``out.ready``, ``stall_in``
cycles where the Huffman stage waits for stream bits (input starvation), ``stall_cycles`` cycles with
either while busy.

Throughput: 1 weight per cycle when words arrive fast enough (16 stream bits per cycle at most) and the
output is ready, for every block of up to 64 Huffman symbols (ZRLs included); a block of ``n > 64``
symbols takes ``n`` cycles (measured in ``tests/hw/test_wdecoder_cocotb.py``, numbers in
``build/bench/jpeg_wdecoder_throughput.json``).
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .huffdec import (
    BLOCKS_BITS,
    GROUP_BITS,
    HUFFVAL_DEPTH,
    LENGTH_BASE,
    TABLE_ADDR_BITS,
    TABLE_DATA_BITS,
    HuffmanDecoder,
    word_layout,
)
from .idct import WeightIdct, weight_layout

__all__ = ["WeightDecoder", "input_layout", "output_layout", "COUNTERS", "COUNTER_BITS", "QUANT_BASE",
           "PRE_SHIFT_ADDR", "GROUP_BLOCKS_ADDR", "HUFFVAL_BASE", "DC_HUFFVAL_BASE", "LENGTH_BASE",
           "AC_LENGTH_BASE", "TABLE_ADDR_BITS", "TABLE_DATA_BITS", "BLOCKS_BITS"]

HUFFVAL_BASE = 0x000
DC_HUFFVAL_BASE = 0x100
AC_LENGTH_BASE = LENGTH_BASE + 0x10
QUANT_BASE = 0x240
PRE_SHIFT_ADDR = 0x280
GROUP_BLOCKS_ADDR = 0x281
COUNTER_BITS = 32
COUNTERS = ("cycles", "blocks_out", "bits_in", "weights_out", "stall_cycles", "stall_out", "stall_in")

assert DC_HUFFVAL_BASE + 16 == HUFFVAL_DEPTH


def input_layout() -> data.StructLayout:
    return word_layout()


def output_layout() -> data.StructLayout:
    fields = {name: field.shape for name, field in weight_layout()}
    return data.StructLayout({**fields, "last": 1})


class WeightDecoder(wiring.Component):
    """JPEG-style weight decoder (see the module docstring). No parameters: the arithmetic is golden's.

    Ports
    -----
    inp : In(stream)    ``{data: 16}`` stream words (little-endian byte pairs)
    out : Out(stream)   ``{data: signed(16), index: 6, block_last, last}``
    tbl_we, tbl_addr, tbl_data : table port (map in the module docstring)
    start, blocks : In  queue ``blocks`` more blocks
    clear : In          new layer (only while idle)
    busy, error : Out   requested weights still to come; corrupt stream (sticky until ``clear``)
    cycles, blocks_out, bits_in, weights_out, stall_cycles, stall_out, stall_in : Out(32) counters
    bits_step, starved : Out  this cycle's increments of ``bits_in`` and ``stall_in`` (an engine with
                         several decoders sums them into its own counters)
    """

    def __init__(self):
        super().__init__({
            "inp": In(stream.Signature(input_layout())),
            "out": Out(stream.Signature(output_layout())),
            "tbl_we": In(1),
            "tbl_addr": In(unsigned(TABLE_ADDR_BITS)),
            "tbl_data": In(unsigned(TABLE_DATA_BITS)),
            "start": In(1),
            "blocks": In(unsigned(BLOCKS_BITS)),
            "clear": In(1),
            "busy": Out(1),
            "error": Out(1),
            "bits_step": Out(6),
            "starved": Out(1),
            **{name: Out(unsigned(COUNTER_BITS)) for name in COUNTERS},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.huffman = huff = HuffmanDecoder()
        m.submodules.idct = idct = WeightIdct()

        wiring.connect(m, wiring.flipped(self.inp), huff.inp)
        wiring.connect(m, huff.out, idct.inp)

        # ---- tables ---------------------------------------------------------------------------------
        # The Huffman stage decodes its own part of the map (HUFFVAL below 0x110, lengths at 0x200..0x21F);
        # Q goes to the IDCT's memory; p and group_blocks are plain registers. The ranges do not overlap.
        group_blocks = Signal(GROUP_BITS, init=1)
        pre_shift = Signal(3)
        a = self.tbl_addr
        m.d.comb += [
            huff.tbl_we.eq(self.tbl_we),
            huff.tbl_addr.eq(a),
            huff.tbl_data.eq(self.tbl_data),
            idct.q_we.eq(self.tbl_we & (a >= QUANT_BASE) & (a < QUANT_BASE + 64)),
            idct.q_addr.eq(a[:6]),
            idct.q_data.eq(self.tbl_data[:8]),
            idct.pre_shift.eq(pre_shift),
            huff.group_blocks.eq(group_blocks),
        ]
        with m.If(self.tbl_we & (a == PRE_SHIFT_ADDR)):
            m.d.sync += pre_shift.eq(self.tbl_data[:3])
        with m.If(self.tbl_we & (a == GROUP_BLOCKS_ADDR)):
            m.d.sync += group_blocks.eq(self.tbl_data[:GROUP_BITS])

        # ---- layer control --------------------------------------------------------------------------
        m.d.comb += [huff.start.eq(self.start & ~self.clear), huff.blocks.eq(self.blocks),
                     huff.clear.eq(self.clear), self.error.eq(huff.error)]
        out_left = Signal(BLOCKS_BITS)   # blocks requested and not yet sent
        out_accept = Signal()
        m.d.comb += out_accept.eq(self.out.valid & self.out.ready)
        block_sent = Signal()
        m.d.comb += block_sent.eq(out_accept & idct.out.payload.block_last)
        with m.If(self.clear):
            m.d.sync += out_left.eq(0)
        with m.Else():
            m.d.sync += out_left.eq(out_left + Mux(self.start, self.blocks, 0) - block_sent)
        m.d.comb += self.busy.eq(out_left != 0)

        m.d.comb += [
            self.out.valid.eq(idct.out.valid),
            idct.out.ready.eq(self.out.ready),
            self.out.payload.data.eq(idct.out.payload.data),
            self.out.payload.index.eq(idct.out.payload.index),
            self.out.payload.block_last.eq(idct.out.payload.block_last),
            self.out.payload.last.eq(idct.out.payload.block_last & (out_left == 1)),
        ]

        # ---- counters -------------------------------------------------------------------------------
        stall_out = Signal()
        stall_in = Signal()
        m.d.comb += [stall_out.eq(self.out.valid & ~self.out.ready), stall_in.eq(huff.starved),
                     self.bits_step.eq(Mux(self.clear, 0, huff.consumed)),
                     self.starved.eq(Mux(self.clear, 0, huff.starved))]
        increments = {
            "cycles": self.busy,
            "blocks_out": block_sent,
            "bits_in": huff.consumed,
            "weights_out": out_accept,
            "stall_cycles": self.busy & (stall_out | stall_in),
            "stall_out": stall_out,
            "stall_in": stall_in,
        }
        for name, inc in increments.items():
            counter = getattr(self, name)
            with m.If(self.clear):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + inc)
        return m
