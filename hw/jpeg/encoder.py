"""The feature encoder top: sample stream in, entropy-coded byte stream out (JPEG scan or lossless payload).

Pipeline (one sample per cycle through every stage; ``[buffer]`` = double-buffered 8x8 block):

JPEG mode::

    inp -> level shift -> Dct2d: rows [transpose] columns -> Quantizer -> ZigzagBuffer [block]
        -> RunLengthCoder -> HuffmanCoder -> word FIFO -> BitPacker (stuffing) -> out

Colour build, RGB input: ``inp -> ColourConverter [MCU] -> level shift -> ...`` (see "Colour images").

Lossless mode: ``inp -> ZigzagBuffer (raster order) -> ...`` -- level shift, DCT and quantizer are
bypassed and the packer does not stuff.

Input (``inp``): ``{data: 16, last}``. JPEG mode: 8-bit samples in ``data[0:8]``, 8x8 blocks one after
another in the golden scan order (``golden.jpeg.blockify`` of the padded plane: blocks in raster order,
samples in raster order inside a block; the host pads sizes that are not multiples of 8 by edge
replication, as golden does). Lossless mode: 16-bit values (int16 if ``lossless_signed`` else uint16) in the
block order of ``golden.lossless.to_blocks`` (zero-padded, channel by channel). ``last`` marks the final
sample of an image (it must be the 64th sample of a block): the DC predictor restarts after it, the
packer pads the final byte with 1-bits and flags it ``last``.

Output (``out``): ``{data: 8, last}`` (``out_bytes = 1``, the byte stream) or ``{data: 8 * out_bytes,
count, last}`` beats (byte 0 first, in ``data[0:8]``; ``count < out_bytes`` only in an image's final beat):
golden's ``encode_scan(...).data`` (JPEG: stuffed scan) or ``encode_payload(...)`` (lossless payload),
byte for byte; the host adds the JFIF header + EOI or the ESLL container header (``hw.jpeg.host``).

Tables (``tbl_we``, ``tbl_addr``, ``tbl_data``, one entry per cycle, only while ``busy`` is low):
``tbl_addr`` 0..511: Huffman entry ``tbl_data = length << 16 | code`` (JPEG mode: AC symbols at 0..255,
DC at 256 + SSSS; lossless: the 9-bit symbol); 512..575: quantizer reciprocal ``R[tbl_addr - 512]``
(natural order, ``ceil(2**21 / Q)``). Reset values: luminance tables at QF 50 (``hw.jpeg.host``
makes the images for any QF or lossless table). ``lossless``/``lossless_signed`` change only while idle.

Colour images (``colour=True``; ``golden.jpeg`` colour path, T.81 A.2.3 interleaved scan). The input is
``{data: 24, last}`` and takes one of two forms (``rgb``, change only while idle):

* ``rgb = 1``: RGB pixels (``R = data[0:8]``, ``G = data[8:16]``, ``B = data[16:24]``) in MCU order
  (``golden.jpeg.mcu_pixels``: padded to whole MCUs by edge replication, MCUs in raster order, pixels in
  raster order inside each 8 x 8 / 16 x 16 MCU). The colour stage (:class:`hw.jpeg.colour.ColourConverter`,
  golden twin ``golden.jpeg.colour_stage``) converts them to YCbCr with golden's integer JFIF formula,
  averages 4:2:0 chroma over 2 x 2 and sends the MCU's blocks to the level shift: the whole colour
  pipeline is on chip, the host only pads and orders pixels.
* ``rgb = 0``: the YCbCr sample stream in ``data[0:8]``, converted on the host
  (``hw.jpeg.host.jpeg_samples``), already in MCU block order (``golden.jpeg.mcu_order``: per MCU the Y
  blocks in raster order, then Cb, then Cr; 4:4:4: Y Cb Cr, 4:2:0: Y0 Y1 Y2 Y3 Cb Cr per 16x16 MCU).

``sampling`` (change only while idle) says how blocks map to components: ``SAMPLING_GRAY``
(0: one component, what the non-colour encoder does; ``rgb`` is ignored), ``SAMPLING_444`` (1) or
``SAMPLING_420`` (2). Two MCU counters (:class:`McuCounter`, one at the quantizer's input, one at the
run-length coder's; both restart after an image's last block) give each block its component: it selects
the quantizer's table set
and the Huffman table set (0: luminance for Y; 1: chrominance for Cb and Cr), and the run-length coder keeps
one DC predictor per component. The table port grows by one address bit: ``tbl_addr[10]`` is the table set,
so the chrominance Huffman entries sit at ``CHROMA_BASE + 0..511`` and its reciprocals at ``CHROMA_BASE +
512..575`` (reset values: QF 50 and the K.3 tables for both sets). The rates are those of grayscale: one
sample per cycle, so an image of ``H x W`` pixels takes about ``3 H W`` (4:4:4) or ``1.5 H W`` (4:2:0)
cycles plus the pipeline's latency; with ``rgb`` the input takes 1 pixel per 3 cycles (4:4:4) or 2 per 3
(4:2:0), and the ``samples`` counter counts pixels.

Counters (cleared by ``clear``): ``cycles`` while an image is in flight (from its first accepted sample
to its last byte), ``blocks`` entering the entropy coder, ``samples`` accepted, ``out_bits`` coded bits
before padding and stuffing (golden's ``bits``), ``stall_cycles`` with ``inp.valid`` but not
``inp.ready``.

Throughput and what limits it: every block stage takes 64 cycles per block and hands over through
ping-pong buffers without a bubble, and the entropy coder needs at most 64 cycles per block (at most one
symbol per cycle, trailing zeros never read), so the encoder takes 1 sample per cycle as long as the
output keeps up: ``8 * out_bytes`` bits per cycle, stuffed 0x00 bytes included. A word FIFO
(``fifo_depth`` words of up to 32 bits) between the Huffman coder and the packer lets short bursts average
out; a stream that needs more than ``8 * out_bytes`` coded bits per sample over longer spans runs at about
``8 * out_bytes / (bits per sample)`` samples per cycle. Measured (``tests/hw/test_encoder_cocotb.py``,
``build/bench/jpeg_encoder*_throughput.json``): with the byte stream, JPEG on real feature mosaics and photos
at 1.000 samples per cycle up to QF 100, lossless int16 ReLU maps 0.84 (6.1 bits per sample on average,
dense channels well above 8), uniform noise at QF 100 0.74 (12.7 bits per sample), full-range 16-bit
lossless noise 0.38 (24.6 bits per sample); the worst case is one 32-bit word per sample (16-bit code + 16
extra bits, lossless), 0.25 samples per cycle. With ``out_bytes = 4`` every one of these runs at 1.000:
a 32-bit word per cycle is exactly what the output carries; only a JPEG stream with very many stuffed
bytes could fall below.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .bitpacker import OUT_BYTES, BitPacker, byte_layout
from .colour import ColourConverter
from .dct import Dct2d
from .entropy import HuffmanCoder, RunLengthCoder, word_layout
from .quantizer import RECIPROCAL_BITS, Quantizer
from .zigzag import ZigzagBuffer

__all__ = ["Encoder", "McuCounter", "input_layout", "output_layout", "TABLE_ADDR_BITS", "QUANT_BASE",
           "CHROMA_BASE", "COUNTER_BITS", "SAMPLING_GRAY", "SAMPLING_444", "SAMPLING_420", "SAMPLING_MODES"]

TABLE_ADDR_BITS = 10       # 11 in the colour build (CHROMA_BASE)
QUANT_BASE = 512
CHROMA_BASE = 1024         # colour build: table set 1 (chrominance) at CHROMA_BASE + the set-0 address
SAMPLING_GRAY, SAMPLING_444, SAMPLING_420 = 0, 1, 2
SAMPLING_MODES = {"gray": SAMPLING_GRAY, "444": SAMPLING_444, "420": SAMPLING_420}
"""``sampling`` input values by name (``golden.jpeg.SUBSAMPLINGS`` for colour images, "gray" for one component)."""
COUNTER_BITS = 32
INPUT_BITS = 16
COLOUR_INPUT_BITS = 24     # the colour build: an RGB pixel
COUNTERS = ("cycles", "blocks", "samples", "out_bits", "stall_cycles")


def input_layout(colour: bool = False) -> data.StructLayout:
    """``{data: 16, last}``; the colour build's ``{data: 24, last}`` (an RGB pixel in ``rgb`` mode)."""
    return data.StructLayout({"data": unsigned(COLOUR_INPUT_BITS if colour else INPUT_BITS), "last": 1})


def output_layout(out_bytes: int = 1) -> data.StructLayout:
    return byte_layout(out_bytes)


class McuCounter(wiring.Component):
    """The component of each block in an interleaved scan: a block slot counter per MCU.

    Blocks of one MCU: ``SAMPLING_GRAY`` 1 (component 0), ``SAMPLING_444`` 3 (components 0, 1, 2),
    ``SAMPLING_420`` 6 (0, 0, 0, 0, 1, 2): ``golden.jpeg.mcu_order``'s ``component`` array. The slot advances
    with ``step`` (a block ends) and restarts at 0 when ``restart`` is high with it (the image's last block).

    Ports
    -----
    sampling : In(2)   the mode (see :data:`SAMPLING_MODES`)
    step, restart : In(1)
    comp : Out(2)      the current block's component; ``tset`` : Out(1) its table set (``comp != 0``)
    """

    def __init__(self):
        super().__init__({"sampling": In(2), "step": In(1), "restart": In(1), "comp": Out(2), "tset": Out(1)})

    def elaborate(self, platform):
        m = Module()
        slot = Signal(range(6))
        period_end = Signal()
        m.d.comb += period_end.eq(Mux(self.sampling == SAMPLING_420, slot == 5,
                                      Mux(self.sampling == SAMPLING_444, slot == 2, 1)))
        with m.If(self.step):
            m.d.sync += slot.eq(Mux(self.restart | period_end, 0, slot + 1))
        # continuous selects (no Switch: see hw.jpeg.lut)
        m.d.comb += self.comp.eq(Mux(self.sampling == SAMPLING_444, slot,
                                     Mux(self.sampling == SAMPLING_420, Mux(slot >= 4, slot - 3, 0), 0)))
        m.d.comb += self.tset.eq(self.comp != 0)
        return m


class Encoder(wiring.Component):
    """JPEG / lossless feature encoder (see the module docstring).

    Parameters
    ----------
    fifo_depth : words of the FIFO between the Huffman coder and the bit packer (power of two, 4..4096)
    out_bytes : bytes per output beat, 1 (the byte stream ``{data: 8, last}``), 2 or 4
        (``{data, count, last}``, see ``hw.jpeg.bitpacker``)
    colour : bool, the 3-component build: ``sampling`` (:data:`SAMPLING_MODES`) and ``rgb`` inputs, a 24-bit
        input, the colour stage, luminance and chrominance table sets (``tbl_addr`` of 11 bits), one DC
        predictor per component. Off, the encoder is the one-component one (the engine's encode unit,
        grayscale and feature maps).
    """

    def __init__(self, fifo_depth: int = 64, out_bytes: int = 1, colour: bool = False):
        if not isinstance(fifo_depth, int) or fifo_depth < 4 or fifo_depth > 4096 or fifo_depth & (fifo_depth - 1):
            raise ValueError(f"Encoder fifo_depth must be a power of two in 4..4096, got {fifo_depth!r}")
        if out_bytes not in OUT_BYTES:
            raise ValueError(f"Encoder out_bytes must be one of {OUT_BYTES}, got {out_bytes!r}")
        if not isinstance(colour, bool):
            raise ValueError(f"Encoder colour must be True or False, got {colour!r}")
        self.fifo_depth = fifo_depth
        self.out_bytes = out_bytes
        self.colour = colour
        self.table_addr_bits = TABLE_ADDR_BITS + int(colour)
        ports = {
            "inp": In(stream.Signature(input_layout(colour))),
            "out": Out(stream.Signature(output_layout(out_bytes))),
            "lossless": In(1),
            "lossless_signed": In(1),
            "tbl_we": In(1),
            "tbl_addr": In(unsigned(self.table_addr_bits)),
            "tbl_data": In(unsigned(RECIPROCAL_BITS)),
            "clear": In(1),
            "busy": Out(1),
            "error": Out(1),
            **{name: Out(unsigned(COUNTER_BITS)) for name in COUNTERS},
        }
        if colour:
            ports["sampling"] = In(2)
            ports["rgb"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dct = dct = Dct2d()
        sets = 2 if self.colour else 1
        m.submodules.quant = quant = Quantizer(tables=sets)
        m.submodules.zigzag = zz = ZigzagBuffer()
        m.submodules.rlc = rlc = RunLengthCoder(components=3 if self.colour else 1)
        m.submodules.huffman = huff = HuffmanCoder(tables=sets)
        wlayout = word_layout()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=data.Layout.cast(wlayout).size, depth=self.fifo_depth)
        m.submodules.packer = packer = BitPacker(self.out_bytes)

        jpeg = Signal()
        m.d.comb += jpeg.eq(~self.lossless)
        m.d.comb += [zz.zigzag.eq(jpeg), rlc.jpeg.eq(jpeg), rlc.signed_extra.eq(self.lossless_signed),
                     packer.stuffing.eq(jpeg)]

        # ---- front end: JPEG through level shift + DCT + quantizer, lossless straight to the buffer ----
        inp = self.inp.payload
        # the JPEG sample stream: the input itself, or (colour build, rgb) the colour stage's output
        smp_valid, smp_ready, smp_data, smp_last = self.inp.valid, Signal(), inp.data[:8], inp.last
        jpeg_ready = smp_ready          # the input's ready in JPEG mode
        if self.colour:
            m.submodules.colour = conv = ColourConverter()
            rgb = Signal()
            m.d.comb += [rgb.eq(self.rgb & (self.sampling != SAMPLING_GRAY)), conv.sampling.eq(self.sampling)]
            m.d.comb += [conv.inp.payload.data.eq(inp.data), conv.inp.payload.last.eq(inp.last)]
            smp_valid, smp_data, smp_last = Signal(), Signal(8), Signal()
            with m.If(rgb):
                m.d.comb += [conv.inp.valid.eq(self.inp.valid & ~self.lossless),
                             smp_valid.eq(conv.out.valid), conv.out.ready.eq(smp_ready),
                             smp_data.eq(conv.out.payload.data), smp_last.eq(conv.out.payload.last)]
            with m.Else():
                m.d.comb += [smp_valid.eq(self.inp.valid), smp_data.eq(inp.data[:8]), smp_last.eq(inp.last)]
            jpeg_ready = Mux(rgb, conv.inp.ready, smp_ready)
        m.d.comb += [
            # level shift s = p - 128: inverting the MSB of the unsigned sample gives the signed value
            dct.inp.payload.data.eq(Cat(smp_data[:7], ~smp_data[7]).as_signed()),
            dct.inp.payload.last.eq(smp_last),
            smp_ready.eq(dct.inp.ready),
        ]
        wiring.connect(m, dct.out, quant.inp)
        sample_index = Signal(6)   # position inside the block, lossless mode
        with m.If(self.lossless):
            m.d.comb += [
                zz.inp.valid.eq(self.inp.valid),
                self.inp.ready.eq(zz.inp.ready),
                zz.inp.payload.data.eq(Mux(self.lossless_signed, inp.data[:16].as_signed(), inp.data[:16])),
                zz.inp.payload.index.eq(sample_index),
                zz.inp.payload.block_last.eq(sample_index == 63),
                zz.inp.payload.image_last.eq(inp.last),
            ]
        with m.Else():
            m.d.comb += [
                dct.inp.valid.eq(smp_valid),
                self.inp.ready.eq(jpeg_ready),
                zz.inp.valid.eq(quant.out.valid),
                quant.out.ready.eq(zz.inp.ready),
                zz.inp.payload.data.eq(quant.out.payload.data),
                zz.inp.payload.index.eq(quant.out.payload.index),
                zz.inp.payload.block_last.eq(quant.out.payload.block_last),
                zz.inp.payload.image_last.eq(quant.out.payload.image_last),
            ]
        accept = Signal()
        m.d.comb += accept.eq(self.inp.valid & self.inp.ready)
        with m.If(accept & self.lossless):
            m.d.sync += sample_index.eq(sample_index + 1)

        # ---- back end ------------------------------------------------------------------------
        if self.colour:
            # the component of the block entering the quantizer and of the one entering the run-length coder
            m.submodules.q_mcu = q_mcu = McuCounter()
            m.submodules.r_mcu = r_mcu = McuCounter()
            q_in = quant.inp
            r_in = zz.out
            m.d.comb += [
                q_mcu.sampling.eq(self.sampling),
                q_mcu.step.eq(q_in.valid & q_in.ready & q_in.payload.block_last),
                q_mcu.restart.eq(q_in.payload.image_last),
                quant.tset.eq(q_mcu.tset),
                r_mcu.sampling.eq(self.sampling),
                r_mcu.step.eq(r_in.valid & r_in.ready & r_in.payload.last),
                r_mcu.restart.eq(r_in.payload.image_last),
                rlc.comp.eq(r_mcu.comp),
            ]
        wiring.connect(m, zz.out, rlc.inp)
        wiring.connect(m, rlc.out, huff.inp)
        m.d.comb += [
            fifo.w_data.eq(huff.out.payload.as_value()),
            fifo.w_en.eq(huff.out.valid),
            huff.out.ready.eq(fifo.w_rdy),
            packer.inp.payload.as_value().eq(fifo.r_data),
            packer.inp.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(packer.inp.ready),
        ]
        wiring.connect(m, packer.out, wiring.flipped(self.out))

        # ---- tables ----------------------------------------------------------------------------
        quant_sel = self.tbl_addr[9]                 # QUANT_BASE = 512
        tset = self.tbl_addr[10:]                    # colour build: the table set (CHROMA_BASE = 1024)
        m.d.comb += [
            quant.r_we.eq(self.tbl_we & quant_sel),
            quant.r_addr.eq(Cat(self.tbl_addr[:6], tset)),
            quant.r_data.eq(self.tbl_data),
            huff.tbl_we.eq(self.tbl_we & ~quant_sel),
            huff.tbl_addr.eq(Cat(self.tbl_addr[:9], tset)),
            huff.tbl_code.eq(self.tbl_data[:16]),
            huff.tbl_len.eq(self.tbl_data[16:21]),
            self.error.eq(huff.error),
        ]

        # ---- counters --------------------------------------------------------------------------
        # images in flight: one opens with its first accepted sample and closes with its last byte
        in_image = Signal()
        image_start = Signal()
        m.d.comb += image_start.eq(accept & ~in_image)
        with m.If(accept):
            m.d.sync += in_image.eq(~inp.last)
        image_end = Signal()
        m.d.comb += image_end.eq(self.out.valid & self.out.ready & self.out.payload.last)
        in_flight = Signal(range(256))   # tiny images can queue up in the word FIFO
        m.d.sync += in_flight.eq(in_flight + image_start - image_end)
        m.d.comb += self.busy.eq((in_flight != 0) | in_image)

        increments = {
            "cycles": (in_flight != 0) | image_start,
            "blocks": zz.out.valid & zz.out.ready & zz.out.payload.last,
            "samples": accept,
            "out_bits": Mux(packer.inp.valid & packer.inp.ready, packer.inp.payload.length, 0),
            "stall_cycles": self.inp.valid & ~self.inp.ready,
        }
        for name, inc in increments.items():
            counter = getattr(self, name)
            with m.If(self.clear):
                m.d.sync += counter.eq(0)
            with m.Else():
                m.d.sync += counter.eq(counter + inc)
        return m
