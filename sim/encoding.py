"""The driver side of the engine's encode unit: what to encode, how, and what must come out.

``plan_encoding(name, values, spec)`` decides the per-layer settings the hardware needs and computes
the golden answer with the reference codecs, so ``sim.program`` can emit ``ENC_TABLES`` / ``ENCODE``
commands and the run can be checked byte for byte:

* JPEG (``spec.mode == "jpeg"``): the map becomes the 8-bit mosaic of ``golden.featpack`` with a
  power-of-two scale: ``code = clamp(((x + 2^(s-1)) >> s) + 128 * offset, 0, 255)``, i.e.
  ``featpack.quantize_to_codes`` with ``scale = 2^s`` and ``offset = -128 * 2^s`` (maps with negative
  values) or ``0``. ``s`` is the smallest shift that maps this frame's range into 0..255 (a deployment
  would fix it per layer from calibration data; the side information carries it either way). The
  tables are the standard Annex K tables at ``spec.qf``; the transmitted size is the side information
  + JFIF header + scan + EOI.
* Lossless: the int16 values in ``golden.lossless`` block order, the default table, signed mode iff the
  map has a negative value; the transmitted size is the ESLL container (header + payload).

``read_encoding(dram, plan)`` reads what the engine wrote (the record beat and the payload).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden import featpack, jpeg, lossless
from golden.errors import UserError
from hw.descriptor import DRAM_BEAT_WORDS
from hw.encode_unit import RECORD_WORDS
from hw.jpeg import host

MODES = ("jpeg", "lossless")
MAX_SHIFT = 8   # -128 * 2^8 is the largest offset a float16 holds exactly within range; int16 needs no more


@dataclass(frozen=True)
class EncodeSpec:
    """What ``make sim ENCODE=...`` asks for: the mode, the JPEG quality, and which layers (None: all)."""

    mode: str
    qf: int = 75
    layers: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"encoding {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == "jpeg":
            jpeg.check_qf(self.qf)


@dataclass
class LayerEncoding:
    """One layer's encoding: settings for the hardware and the golden result."""

    name: str
    shape: tuple[int, int, int]
    mode: str
    qf: int
    shift: int                    # JPEG code shift
    offset: int                   # JPEG: 1 if codes are offset by 128 (signed map)
    signed: bool                  # lossless: signed extra bits
    grid_cols: int
    expected: bytes               # the entropy-coded bytes the unit must write
    bits: int                     # golden's coded bits before padding (and stuffing)
    container_bytes: int          # bytes around the coded ones (side info, headers, EOI)
    tables: np.ndarray            # [n, 2] table-port writes
    out_addr: int = -1            # DRAM word address of the record beat (set by the compiler)

    @property
    def lossless(self) -> bool:
        return self.mode == "lossless"

    @property
    def raw_bytes(self) -> int:
        return 2 * int(np.prod(self.shape))

    @property
    def transmitted_bytes(self) -> int:
        return self.sent_bytes(len(self.expected))

    def sent_bytes(self, coded_bytes: int) -> int:
        """Bytes the host sends for a map coded into ``coded_bytes``: the container around them, or for a
        lossless map whose coded container is longer than its samples the raw container
        (``golden.lossless`` raw mode: header and CRC-32 around the int16 samples)."""
        coded = self.container_bytes + coded_bytes
        if self.lossless:
            return min(coded, lossless.RAW_OVERHEAD_BYTES + self.raw_bytes)
        return coded

    @property
    def area_words(self) -> int:
        """DRAM words to reserve: the record beat, the payload, one spare beat."""
        return RECORD_WORDS + -(-len(self.expected) // 2) + DRAM_BEAT_WORDS

    @property
    def enc_mode(self) -> int:
        return (1 if self.lossless else 0) | (2 if self.lossless and self.signed else 0)


def jpeg_shift(values: np.ndarray) -> tuple[int, int]:
    """(shift, offset) of the power-of-two code mapping for a map (see the module docstring)."""
    lo, hi = int(values.min()), int(values.max())
    offset = 1 if lo < 0 else 0
    for s in range(MAX_SHIFT + 1):
        r = (1 << (s - 1)) if s else 0
        if ((hi + r) >> s) + 128 * offset <= 255 and ((lo + r) >> s) + 128 * offset >= 0:
            return s, offset
    return MAX_SHIFT, offset


def jpeg_codes(values: np.ndarray, shift: int, offset: int) -> np.ndarray:
    """The 8-bit codes, computed by the golden packer with ``scale = 2^shift``."""
    scales = np.array([2.0 ** shift], dtype=np.float16)
    offsets = np.array([-128.0 * 2.0 ** shift if offset else 0.0], dtype=np.float16)
    return featpack.quantize_to_codes(values, offsets, scales)


def plan_encoding(name: str, values: np.ndarray, spec: EncodeSpec) -> LayerEncoding:
    x = np.asarray(values)
    if x.ndim != 3 or x.dtype != np.int16:
        raise UserError(f"layer {name}: the encode unit takes int16 C x H x W maps, got {x.dtype} {x.shape}")
    shape = tuple(int(v) for v in x.shape)
    if spec.mode == "jpeg":
        shift, offset = jpeg_shift(x)
        cols = featpack.grid_columns(shape[0])
        mosaic = featpack.tile_mosaic(jpeg_codes(x, shift, offset), cols)
        job = host.jpeg_job(mosaic, spec.qf)
        side = featpack.SideInfo(shape=shape, mode="layer", optimal_tables=False, dtype=np.dtype(np.int16),
                                 qf=spec.qf, grid_cols=cols,
                                 offsets=np.array([-128.0 * 2 ** shift if offset else 0.0], dtype=np.float16),
                                 scales=np.array([2.0 ** shift], dtype=np.float16))
        container = side.nbytes + len(job.header) + len(job.trailer)
        return LayerEncoding(name, shape, "jpeg", spec.qf, shift, offset, False, cols, job.expected, job.bits,
                             container, job.tables)
    signed = bool(x.min() < 0)
    job = host.lossless_job(x, "default", signed)
    return LayerEncoding(name, shape, "lossless", 0, 0, 0, signed, 1, job.expected, job.bits,
                         len(job.header) + len(job.trailer), job.tables)


def table_words(tables: np.ndarray) -> np.ndarray:
    """Table-port writes (addresses 0..n-1 in order) -> the DRAM image ENC_TABLES reads (low, high)."""
    addrs = tables[:, 0]
    if not np.array_equal(addrs, np.arange(len(addrs))):
        raise ValueError("table writes must cover addresses 0..n-1 in order")
    data = tables[:, 1].astype(np.int64)
    return np.stack([data & 0xFFFF, data >> 16], axis=1).reshape(-1).astype(np.uint16)


@dataclass(frozen=True)
class Part:
    """A piece of the mosaic walk that fits the buffer: tile rows ``tr0 ..`` (``tile_rows`` of them),
    block rows ``yb0 .. yb0 + ybn - 1`` of each tile, i.e. channels ``c0 .. c1 - 1`` and map rows
    ``y0 .. y1 - 1``."""

    tr0: int
    tile_rows: int
    yb0: int
    ybn: int
    c0: int
    c1: int
    y0: int
    y1: int


def parts(shape: tuple[int, int, int], grid_cols: int, buffer_words: int) -> list[Part]:
    """Cut a map into parts of whole tile rows, or of block rows of one tile row, that fit
    ``buffer_words`` (a map already in the buffer is one part)."""
    c, h, w = shape
    th8 = -(-h // 8)
    grid_rows = -(-c // grid_cols)
    row_words = grid_cols * h * w          # one whole tile row
    out = []
    if row_words <= buffer_words:
        per = max(1, buffer_words // row_words)
        for tr0 in range(0, grid_rows, per):
            n = min(per, grid_rows - tr0)
            out.append(Part(tr0, n, 0, th8, tr0 * grid_cols, min(c, (tr0 + n) * grid_cols), 0, h))
        return out
    band = grid_cols * 8 * w               # one block row of a tile row
    if band > buffer_words:
        raise UserError(f"a {grid_cols}-channel block row of {band} words does not fit the buffer "
                        f"({buffer_words} words) for the encode unit")
    per = buffer_words // band
    for tr0 in range(grid_rows):
        for yb0 in range(0, th8, per):
            n = min(per, th8 - yb0)
            out.append(Part(tr0, 1, yb0, n, tr0 * grid_cols, min(c, (tr0 + 1) * grid_cols), 8 * yb0,
                            min(h, 8 * (yb0 + n))))
    return out


def read_encoding(dram: np.ndarray, plan: LayerEncoding) -> dict:
    """What the engine wrote for ``plan``: the record fields and the coded bytes (compared with golden)."""
    rec = dram[plan.out_addr:plan.out_addr + RECORD_WORDS].astype(np.int64)
    fields = ("bytes", "bits", "cycles", "stall_in", "stall_out", "samples")
    record = {f: int(rec[2 * i] | (rec[2 * i + 1] << 16)) for i, f in enumerate(fields)}
    n = record["bytes"]
    start = plan.out_addr + RECORD_WORDS
    words = dram[start:start + -(-n // 2)].astype(np.uint16)
    data = words.astype("<u2").tobytes()[:n]
    return {**record, "data": data, "match": data == plan.expected and record["bits"] == plan.bits}
