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

The camera image (the input split, host-only: the edge only JPEG-codes what its camera sees; issue 16 item
6): ``plan_image(image, qf, subsampling)`` plans an RGB ``[H, W, 3]`` uint8 image for the engine's colour
build (``hw.engine.Engine(colour=True)``, ``hw.encode_unit``): three planes R, G, B of 0..255 values in 16-bit
words, the standard luminance and chrominance tables at ``qf``, 4:4:4 or 4:2:0; the expected bytes are
golden's scan (``hw.jpeg.host.jpeg_job``, ``golden.jpeg.encode``), the transmitted size the JFIF file (header
+ scan + EOI). ``image_parts`` cuts it into parts of whole MCU rows that fit half the buffer
(``sim.program.compile_image``).
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
    sampling: int = 0             # ENCODE's enc_mode: hw.jpeg.encoder.SAMPLING_MODES (0: a map)

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


def table_words(tables: np.ndarray, base: int = 0) -> np.ndarray:
    """Table-port writes (addresses base..base+n-1 in order) -> the DRAM image ENC_TABLES reads (low, high)."""
    addrs = tables[:, 0]
    if not np.array_equal(addrs, base + np.arange(len(addrs))):
        raise ValueError(f"table writes must cover addresses {base}..{base}+n-1 in order")
    data = tables[:, 1].astype(np.int64)
    return np.stack([data & 0xFFFF, data >> 16], axis=1).reshape(-1).astype(np.uint16)


def table_runs(tables: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """The table-port writes as runs of consecutive addresses: ``(base, writes)`` each, one ENC_TABLES
    command apiece (a map's tables: one run from 0; a colour image's: luminance at 0, chrominance at
    ``hw.jpeg.encoder.CHROMA_BASE``)."""
    addrs = tables[:, 0].astype(np.int64)
    cuts = np.flatnonzero(np.diff(addrs) != 1) + 1
    return [(int(t[0, 0]), t) for t in np.split(tables, cuts)]


SUBSAMPLINGS = ("444", "420")


@dataclass
class ImageEncoding(LayerEncoding):
    """The camera image's JPEG on the engine's colour build: ``shape`` (3, H, W), 8-bit pixels; ``job`` the
    golden job (``hw.jpeg.host.EncodeJob``: :meth:`wrap` makes the file)."""

    subsampling: str = "444"
    job: object = None

    @property
    def raw_bytes(self) -> int:
        return int(np.prod(self.shape))      # 8-bit RGB pixels

    @property
    def mcu(self) -> int:
        return jpeg.mcu_size(self.subsampling)

    def wrap(self, coded: bytes) -> bytes:
        """The JFIF file around the engine's coded bytes."""
        return self.job.wrap(coded)


def plan_image(image: np.ndarray, qf: int, subsampling: str = "444", name: str = "input") -> ImageEncoding:
    """Plan the JPEG of an RGB camera image (uint8 ``[H, W, 3]``) at ``qf`` and ``subsampling`` (444 or 420)."""
    x = np.asarray(image)
    if x.ndim != 3 or x.shape[2] != 3 or x.dtype != np.uint8:
        raise UserError(f"the camera image must be uint8 H x W x 3 (RGB), got {x.dtype} {x.shape}")
    if subsampling not in SUBSAMPLINGS:
        raise UserError(f"subsampling {subsampling!r} is not one of {', '.join(SUBSAMPLINGS)}")
    qf = jpeg.check_qf(qf)
    job = host.jpeg_job(x, qf, subsampling)
    h, w, _ = x.shape
    return ImageEncoding(name, (3, h, w), "jpeg", qf, 0, 0, False, 1, job.expected, job.bits,
                         len(job.header) + len(job.trailer), job.tables, sampling=job.sampling,
                         subsampling=subsampling, job=job)


def camera_image(nw) -> tuple[np.ndarray, str]:
    """The camera image of a network's sample input (``golden.quantize.sample_images(nw, 1)`` before its
    normalisation): uint8 ``[H, W, 3]`` and a description. ImageNet networks and 3-channel user networks: the
    first scikit-image photo (``golden.data.PHOTO_NAMES``) resized and centre-cropped to the input size as
    ``golden.data.load_photos`` / ``load_photos_for`` do; CIFAR-10 networks: the first test image."""
    from PIL import Image

    from golden import data as D

    c, h, w = nw.input_shape
    if nw.dataset == "cifar10":
        return D.load_cifar10_u8("test", 1)[0][0], "CIFAR-10 test image 0"
    if c != 3 or nw.dataset == "digits":
        raise UserError(f"network {nw.name}: the camera image's JPEG needs an RGB input (3 channels), its input is "
                        f"{c} x {h} x {w}")
    import skimage.data

    name = D.PHOTO_NAMES[0]
    size = h if nw.dataset == "imagenet" else max(h, w)
    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    img = D.resize_center_crop(Image.fromarray(a.astype(np.uint8)).convert("RGB"), size)
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8), f"scikit-image {name}, {w} x {h}"


@dataclass(frozen=True)
class ImagePart:
    """MCU rows ``yb0 .. yb0 + ybn - 1`` of a camera image: pixel rows ``y0 .. y1 - 1``."""

    yb0: int
    ybn: int
    y0: int
    y1: int


def image_parts(h: int, w: int, subsampling: str, buffer_words: int) -> list[ImagePart]:
    """Cut an ``h x w`` image into parts of whole MCU rows whose three planes fit ``buffer_words`` (half the
    feature buffer: the next part loads into the other half while the encode unit reads this one), at most
    ``ceil(MCU rows / 8)`` MCU rows each (the first part's load is time the encoder waits)."""
    m = jpeg.mcu_size(subsampling)
    my = -(-h // m)
    row_words = 3 * m * w
    if row_words > buffer_words:
        raise UserError(f"a {w}-pixel-wide image's MCU row of {row_words} words (3 planes x {m} rows) does not fit "
                        f"half the feature buffer ({buffer_words} words); allowed: width up to "
                        f"{buffer_words // (3 * m)} pixels")
    per = max(1, min(buffer_words // row_words, -(-my // 8)))
    return [ImagePart(yb0, min(per, my - yb0), yb0 * m, min(h, (yb0 + per) * m)) for yb0 in range(0, my, per)]


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
