"""The engine's command descriptors: one layout shared by the RTL and the Python compiler.

The engine executes a list of commands it fetches from DRAM (``DESC_WORDS`` 16-bit words each, in
``DESC_BEATS`` DRAM beats), one after the other, until ``END``:

``LOAD``   DRAM -> feature buffer: ``rows`` runs of ``row_len`` elements; run ``r`` goes from DRAM
           element address ``dram_addr + r * dram_stride`` to buffer address ``fb_addr + r * fb_stride``.
``STORE``  feature buffer -> DRAM, the same 2-D shape. A LOAD and a STORE engine (``hw.dma``) run them; with
           ``bg`` the sequencer hands the transfer over and goes on at once (a band's input or output moving
           while a compute command runs), else it waits for the transfer. A command waits while the engine it
           needs is busy, and, with ``wait_ld`` / ``wait_st``, while that engine is; END waits for both.
``CONV``   convolution (and fully-connected layers, as 1x1 convolutions on a 1x1 map) with bias,
           requantization and optional ReLU, from the buffer's input region to its output region,
           weights streamed from DRAM at ``w_addr``.
``POOL``   max-pooling, the same geometry, no weights; padding reads as -32768.
``ADD``    element-wise residual add of ``row_len`` contiguous elements at ``in_addr`` and ``in2_addr``:
           ``out = requantize(a * wa + b * wb, shift, relu)`` (``golden.layers.add_int``).
``GAP``    global average pool of ``in_c`` channels of ``row_len`` elements (channel stride
           ``in_ch_stride``): ``out[c] = requantize(sum(x[c]) * wa, shift)`` (``golden.layers``).
``ENC_TABLES`` load the encode unit's tables: ``rows`` entries of two words (low, high) from
           ``dram_addr`` to table addresses 0.. (``hw.jpeg.encoder``); ``enc_mode`` bit 0 lossless,
           bit 1 signed lossless samples. Waits until the encode unit is idle. The colour build
           (``hw.engine.Engine(colour=True)``) writes table addresses ``fb_addr ..`` (the chrominance set
           at ``hw.jpeg.encoder.CHROMA_BASE``); the default build takes ``fb_addr = 0`` only.
``ENCODE`` hand a map in the feature buffer (``in_addr``, ``in_c`` channels of ``in_h x in_w``, channel
           stride ``in_ch_stride``) to the encode unit (``hw.encode_unit``), which encodes it in the
           background into DRAM at ``dram_addr``; ``shift``, ``enc_offset``: the 8-bit codes (JPEG);
           ``grid_cols``/``grid_rows``: the mosaic grid (tile rows of this part); ``enc_yb0``,
           ``enc_ybn``: the 8-row block rows of each tile in this part, whose rows start at ``in_y0``
           in the buffer (a tile row too big for the buffer goes in several parts); ``enc_first`` /
           ``enc_last``: parts of one image. Waits until the unit has read its previous part. On the
           colour build ``enc_mode`` is the unit's ``sampling`` (``hw.jpeg.encoder.SAMPLING_MODES``: 0 a map,
           1 / 2 an RGB image, three planes R, G, B of ``in_h x in_w`` 8-bit pixels, 4:4:4 / 4:2:0, whose
           ``enc_yb0`` / ``enc_ybn`` count MCU rows); the default build takes 0 only.
``DWCONV`` a 3x3 depthwise convolution (stride 1 or 2, padding 0 or 1) of ``in_c`` channels on the
           depthwise unit (``hw.dw_unit``), the geometry of CONV (input and output regions, ``in_y0``,
           ``out_y0``), weights at ``w_addr`` as for a CONV with ``K = 9`` (per group of 12 channels 3 bias
           beats, then 9 rows of 12 weights, tap-major), requantized with ``shift``, ``relu``, ``clamp``.
``DWPOOL`` a 3x3 max-pool (stride 1 or 2, padding 0 or 1) of ``in_c`` channels on the depthwise unit in its
           max-pool mode, the geometry of POOL (12 outputs per cycle instead of per 9 beats).
``END``    stop and raise ``done`` once the encode unit is idle.

Any command with ``enc_sync`` waits until the encode unit no longer reads the feature buffer (the
compiler sets it where a command would overwrite a map still being encoded).

Geometry (CONV and POOL). The input region holds ``in_h`` rows of a ``in_c x in_h_total x in_w`` map
starting at global row ``in_y0``: element ``(c, y, x)`` is at ``in_addr + c * in_ch_stride +
(y - in_y0) * in_w + x``. Rows outside ``[0, in_h_total)`` and columns outside ``[0, in_w)`` are
padding. The output region holds ``out_h`` rows (global rows ``out_y0 ..``) of an ``out_c x out_w``
map, channel stride ``out_ch_stride``. A band of output rows (tiling of maps larger than the buffer)
is one command; the compiler adds the LOADs and STOREs around it.

A ``nocount`` command (used only to dump features for verification) leaves every performance
counter unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from amaranth.hdl import Shape
from amaranth.lib import data, enum

from golden.arch import DEFAULT_ARCH

DRAM_BEAT_WORDS = DEFAULT_ARCH.lanes  # 16-bit words per DRAM beat (one weight row of a group of output channels)


class Op(enum.Enum, shape=4):
    END = 0
    LOAD = 1
    STORE = 2
    CONV = 3
    POOL = 4
    ADD = 5
    GAP = 6
    ENC_TABLES = 7
    ENCODE = 8
    DWCONV = 9
    DWPOOL = 10


# field: (width, meaning). Widths bound what the engine can run; `validate` checks them. The descriptor fills
# exactly three DRAM beats (36 words): DRAM addresses are 30-bit word addresses (2 GiB), a mosaic has at most
# 4095 tile columns and 2047 tile rows, an encoded part at most 2047 block rows.
FIELDS: dict[str, int] = {
    "op": 4,
    "nocount": 1,
    "relu": 1,
    "shift": 5,
    "k": 4,
    "stride": 3,
    "pad": 4,
    # feature buffer regions (element addresses)
    "in_addr": 24, "in_c": 16, "in_h": 16, "in_w": 16, "in_ch_stride": 24, "in_y0": 16, "in_h_total": 16,
    "out_addr": 24, "out_c": 16, "out_h": 16, "out_w": 16, "out_ch_stride": 24, "out_y0": 16,
    # weights in DRAM (element address): per group of 12 output channels, 3 bias beats then K rows
    "w_addr": 30,
    # ADD / GAP: the second input and the two int16 weights (two's complement)
    "in2_addr": 24, "wa": 16, "wb": 16,
    # LOAD / STORE
    "dram_addr": 30, "fb_addr": 24, "rows": 16, "row_len": 24, "dram_stride": 30, "fb_stride": 24,
    # the encode unit (ENC_TABLES, ENCODE) and the wait for it (any command)
    "enc_sync": 1, "enc_mode": 2, "enc_offset": 1, "enc_first": 1, "enc_last": 1, "grid_cols": 12,
    "grid_rows": 11, "enc_yb0": 11, "enc_ybn": 11,
    # CONV with compressed weights (see hw.engine: tables + bias at w_addr, `rows` table entries; the
    # stream at dram_addr, dram_stride words; row_len blocks)
    "w_codec": 1, "w_raw0": 1,
    # CONV / ADD: ReLU6 (an upper clamp after the ReLU, golden.fixedpoint.relu6_clamp)
    "clamp_en": 1, "clamp": 15,
    # LOAD / STORE in the background (the sequencer goes on at once); any command: wait for the LOAD / STORE
    # engine to be idle first
    "bg": 1, "wait_ld": 1, "wait_st": 1,
}

layout = data.StructLayout({name: (Op if name == "op" else width) for name, width in FIELDS.items()})
DESC_BITS = Shape.cast(layout).width
DESC_WORDS = -(-DESC_BITS // 16)


def desc_beats(lanes: int = DRAM_BEAT_WORDS) -> int:
    """DRAM beats of one descriptor on an engine of ``lanes`` lanes (a beat is ``lanes`` words): 3 at 12 lanes."""
    return -(-DESC_WORDS // lanes)


def desc_words_padded(lanes: int = DRAM_BEAT_WORDS) -> int:
    """Words a descriptor takes in DRAM on an engine of ``lanes`` lanes (whole beats): 36 at 12 lanes."""
    return desc_beats(lanes) * lanes


DESC_BEATS = desc_beats(DRAM_BEAT_WORDS)
DESC_WORDS_PADDED = desc_words_padded(DRAM_BEAT_WORDS)


@dataclass
class Command:
    """One descriptor, as Python values (unset fields are zero)."""

    op: Op
    nocount: int = 0
    relu: int = 0
    shift: int = 0
    k: int = 1
    stride: int = 1
    pad: int = 0
    in_addr: int = 0
    in_c: int = 0
    in_h: int = 0
    in_w: int = 0
    in_ch_stride: int = 0
    in_y0: int = 0
    in_h_total: int = 0
    out_addr: int = 0
    out_c: int = 0
    out_h: int = 0
    out_w: int = 0
    out_ch_stride: int = 0
    out_y0: int = 0
    w_addr: int = 0
    in2_addr: int = 0
    wa: int = 0
    wb: int = 0
    dram_addr: int = 0
    fb_addr: int = 0
    rows: int = 0
    row_len: int = 0
    dram_stride: int = 0
    fb_stride: int = 0
    enc_sync: int = 0
    enc_mode: int = 0
    enc_offset: int = 0
    enc_first: int = 0
    enc_last: int = 0
    grid_cols: int = 0
    grid_rows: int = 0
    enc_yb0: int = 0
    enc_ybn: int = 0
    w_codec: int = 0
    w_raw0: int = 0
    clamp_en: int = 0
    clamp: int = 0
    bg: int = 0
    wait_ld: int = 0
    wait_st: int = 0

    def to_int(self) -> int:
        word = 0
        for f in fields(self):
            value = getattr(self, f.name)
            value = value.value if isinstance(value, Op) else int(value)
            width = FIELDS[f.name]
            if f.name in ("wa", "wb") and -(2**15) <= value < 0:
                value += 2**16  # int16 weights, two's complement
            if not 0 <= value < 2**width:
                raise ValueError(f"descriptor field {f.name}={value} does not fit {width} bits")
            word |= value << layout[f.name].offset
        return word

    def to_words(self, lanes: int = DRAM_BEAT_WORDS) -> list[int]:
        """The descriptor as ``desc_words_padded(lanes)`` little-endian 16-bit words (its DRAM image on an
        engine of ``lanes`` lanes; DESC_WORDS_PADDED at the default)."""
        v = self.to_int()
        return [(v >> (16 * i)) & 0xFFFF for i in range(desc_words_padded(lanes))]

    @classmethod
    def from_int(cls, word: int) -> Command:
        kw = {}
        for f in fields(cls):
            v = (word >> layout[f.name].offset) & ((1 << FIELDS[f.name]) - 1)
            kw[f.name] = Op(v) if f.name == "op" else v
        return cls(**kw)

    def asdict(self) -> dict:
        d = asdict(self)
        d["op"] = self.op.name
        return d
