"""Feature packing: a ``C x H x W`` feature map <-> one 8-bit grayscale mosaic for the JPEG path.

Why this shape: baseline JPEG codes 8-bit 2-D images, and its 8x8 blocks must not mix channels (an edge
between two unrelated channels would cost many AC coefficients), so each channel becomes one tile whose
sides are padded to multiples of 8. Tiles sit in a near-square grid (``cols = ceil(sqrt(C))``,
``rows = ceil(C / cols)``) so the mosaic stays within JPEG's 65535 x 65535 limit and has short rows.

Scaling to 8 bits (affine, min/max):
    ``code = clamp(floor((x - offset) / scale + 1/2), 0, 255)`` and back ``x' = offset + scale * code``
    (rounded half up and clamped to the dtype's range if the map was integer). ``offset`` and ``scale``
    are IEEE float16 numbers because they are sent: ``offset`` is the largest float16 <= min(x),
    ``scale`` the smallest float16 >= (max(x) - offset) / 255, so the whole range maps into 0..255. Mode
    ``"layer"``: one pair for the whole map (4 bytes); mode ``"channel"``: one pair per channel (4 C
    bytes, better when channels have very different ranges). Values must lie within float16's range
    (|x| <= 65504), which covers every int16 map.
Tile padding and empty tiles:
    the tile's last row and column are replicated (smooth for the DCT); grid cells without a channel are
    code 0.
Side information (:class:`SideInfo`, 15 + 4 n bytes, big-endian; its size counts in the transmitted size):

    ====== ===== =================================================================================
    offset bytes field
    ====== ===== =================================================================================
    0      1     version (2; version 1 had no checksum and is refused: re-encode)
    1      1     flags: bit 0 per-channel scaling, bit 1 optimal Huffman tables, bits 4..7 dtype code
                 (0 float32, 1 float16, 2 float64, 3 int8, 4 uint8, 5 int16, 6 uint16, 7 int32)
    2      1     JPEG quality factor 1..100
    3      2     C
    5      2     H
    7      2     W
    9      2     grid columns (rows = ceil(C / columns); tile = H, W rounded up to multiples of 8)
    11     4 n   n = 1 or C pairs (offset, scale), each an IEEE float16
    11+4n  4     CRC-32 (zlib's) of the bytes before it
    ====== ===== =================================================================================

:meth:`SideInfo.from_bytes` checks the length against the record's own fields, the CRC-32 and every field;
:func:`decode_jpeg` checks the JPEG frame's size against the mosaic the side information describes before
it decodes (a damaged frame header cannot make it allocate a huge image). The checksum protects the side
information, whose damage would silently rescale or reshape the whole map; the JPEG scan itself carries none
(a damaged scan decodes to a map of the right shape, or fails), like the coded stream of the RTL encoder.

The JPEG itself is a complete JFIF file (:func:`golden.jpeg.encode`), so any decoder opens the mosaic;
``docs/bitstream.md`` also counts the smaller "scan only" form. The lossless path needs no packing: the
integer map goes straight into :func:`golden.lossless.encode`, whose container holds the shape.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from golden import jpeg, limits
from golden.errors import UserError

MODES = ("layer", "channel")
TABLES = ("standard", "optimal")
CONTAINERS = ("jfif", "scan")
VERSION = 2
"""Side information version: 2 adds the CRC-32 (version 1 records are refused: re-encode)."""
SIDE_INFO_FORMAT = ">BBBHHHH"
SIDE_INFO_FIXED_BYTES = struct.calcsize(SIDE_INFO_FORMAT)  # 11
PAIR_BYTES = 4
CRC_BYTES = 4
FLAG_PER_CHANNEL = 1
FLAG_OPTIMAL = 2
FLAGS = FLAG_PER_CHANNEL | FLAG_OPTIMAL
MAX_SIDE = 65535
DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16,
                                     np.uint16, np.int32))
"""dtype codes of the side information (index = code)."""
FLOAT16_MAX = 65504.0


@dataclass(frozen=True)
class SideInfo:
    """What the host needs besides the JPEG to rebuild the map (see the module docstring's table)."""

    shape: tuple[int, int, int]
    mode: str
    optimal_tables: bool
    dtype: np.dtype
    qf: int
    grid_cols: int
    offsets: np.ndarray  # float16 [n]
    scales: np.ndarray   # float16 [n]

    @property
    def grid_rows(self) -> int:
        return -(-self.shape[0] // self.grid_cols)

    @property
    def tile(self) -> tuple[int, int]:
        return -(-self.shape[1] // 8) * 8, -(-self.shape[2] // 8) * 8

    @property
    def nbytes(self) -> int:
        return SIDE_INFO_FIXED_BYTES + PAIR_BYTES * len(self.offsets) + CRC_BYTES

    def to_bytes(self) -> bytes:
        flags = (FLAG_PER_CHANNEL if self.mode == "channel" else 0) | (FLAG_OPTIMAL if self.optimal_tables
                                                                       else 0)
        flags |= DTYPES.index(self.dtype) << 4
        head = struct.pack(SIDE_INFO_FORMAT, VERSION, flags, self.qf, *self.shape, self.grid_cols)
        pairs = np.stack([self.offsets, self.scales], axis=1).astype(">f2")
        record = head + pairs.tobytes()
        return record + struct.pack(">I", zlib.crc32(record) & 0xFFFFFFFF)

    @classmethod
    def from_bytes(cls, data: bytes) -> SideInfo:
        """Parse and check a record: its length against its own fields, its CRC-32, then every field."""
        data = bytes(data)
        if len(data) < SIDE_INFO_FIXED_BYTES:
            raise UserError(f"side information of {len(data)} bytes is shorter than {SIDE_INFO_FIXED_BYTES}")
        version, flags, qf, c, h, w, cols = struct.unpack(SIDE_INFO_FORMAT, data[:SIDE_INFO_FIXED_BYTES])
        mode = "channel" if flags & FLAG_PER_CHANNEL else "layer"
        n = c if mode == "channel" else 1
        record = SIDE_INFO_FIXED_BYTES + PAIR_BYTES * n
        if version == 1 and len(data) == record:
            raise UserError("version 1 side information without checksum: re-encode the feature map (version 2 "
                            "adds a CRC-32)")
        if len(data) != record + CRC_BYTES:
            raise UserError(f"side information is {len(data)} bytes, its header says {record + CRC_BYTES}: "
                            "truncated or damaged")
        stored, computed = struct.unpack(">I", data[record:])[0], zlib.crc32(data[:record]) & 0xFFFFFFFF
        if stored != computed:
            raise UserError(f"side information is damaged: CRC-32 {computed:08x} of its bytes differs from the "
                            f"stored {stored:08x}")
        if version != VERSION:
            raise UserError(f"side information version {version} is not supported (only {VERSION})")
        code = flags >> 4
        if code >= len(DTYPES) or flags & 0x0C:
            raise UserError(f"side information flags {flags:#04x} are not allowed (dtype code 0..{len(DTYPES) - 1} "
                            "in bits 4..7, bits 0..1)")
        if not 1 <= qf <= 100:
            raise UserError(f"side information QF {qf} is outside 1..100")
        if min(c, h, w) < 1 or not 1 <= cols <= c:
            raise UserError(f"side information shape {c} x {h} x {w} with {cols} grid columns is not allowed "
                            "(sides >= 1, 1 <= columns <= C)")
        limits.check_array_size((c, h, w), "side information map")
        rows, (th, tw) = -(-c // cols), (-(-h // 8) * 8, -(-w // 8) * 8)
        if rows * th > MAX_SIDE or cols * tw > MAX_SIDE:
            raise UserError(f"side information mosaic {rows * th} x {cols * tw} exceeds JPEG's {MAX_SIDE} per side")
        pairs = np.frombuffer(data[SIDE_INFO_FIXED_BYTES:record], dtype=">f2").reshape(n, 2).astype(np.float16)
        if not np.isfinite(pairs).all() or (pairs[:, 1] < 0).any():
            raise UserError("side information holds a non-finite offset or scale, or a negative scale")
        return cls(shape=(c, h, w), mode=mode, optimal_tables=bool(flags & FLAG_OPTIMAL), dtype=DTYPES[code],
                   qf=qf, grid_cols=cols, offsets=pairs[:, 0].copy(), scales=pairs[:, 1].copy())

    @property
    def mosaic_shape(self) -> tuple[int, int]:
        """``(height, width)`` of the mosaic the JPEG must hold."""
        th, tw = self.tile
        return self.grid_rows * th, self.grid_cols * tw


# ---- scaling -----------------------------------------------------------------------------------------


def _float16_down(x: np.ndarray) -> np.ndarray:
    """Largest float16 <= x (elementwise)."""
    f = np.asarray(x, dtype=np.float64).astype(np.float16)
    above = f.astype(np.float64) > x
    f[above] = np.nextafter(f[above], np.float16(-np.inf))
    return f


def _float16_up(x: np.ndarray) -> np.ndarray:
    """Smallest float16 >= x (elementwise)."""
    f = np.asarray(x, dtype=np.float64).astype(np.float16)
    below = f.astype(np.float64) < x
    f[below] = np.nextafter(f[below], np.float16(np.inf))
    return f


def scale_parameters(features: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, scales)`` as float16 arrays of length 1 (``"layer"``) or C (``"channel"``)."""
    x = np.asarray(features, dtype=np.float64)
    if mode == "layer":
        lo, hi = np.array([x.min()]), np.array([x.max()])
    else:
        lo, hi = x.min(axis=(1, 2)), x.max(axis=(1, 2))
    offsets = _float16_down(lo)
    scales = _float16_up((hi - offsets.astype(np.float64)) / 255.0)
    return offsets, scales


def quantize_to_codes(features: np.ndarray, offsets: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``clamp(floor((x - offset) / scale + 1/2), 0, 255)`` per channel (one pair broadcasts) -> uint8."""
    x = np.asarray(features, dtype=np.float64)
    off = np.broadcast_to(offsets.astype(np.float64), (x.shape[0],))[:, None, None]
    sc = np.broadcast_to(scales.astype(np.float64), (x.shape[0],))[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sc > 0, (x - off) / np.where(sc > 0, sc, 1.0), 0.0)
    return np.clip(np.floor(t + 0.5), 0, 255).astype(np.uint8)


def dequantize_codes(codes: np.ndarray, offsets: np.ndarray, scales: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``offset + scale * code`` per channel; integer dtypes are rounded half up and clamped."""
    c = np.asarray(codes, dtype=np.float64)
    off = np.broadcast_to(offsets.astype(np.float64), (c.shape[0],))[:, None, None]
    sc = np.broadcast_to(scales.astype(np.float64), (c.shape[0],))[:, None, None]
    x = off + sc * c
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.floor(x + 0.5), info.min, info.max).astype(dtype)
    return x.astype(dtype)


# ---- mosaic ------------------------------------------------------------------------------------------


def grid_columns(channels: int) -> int:
    """Columns of the near-square tile grid: ``ceil(sqrt(C))``."""
    return math.isqrt(channels - 1) + 1


def tile_mosaic(codes: np.ndarray, grid_cols: int) -> np.ndarray:
    """uint8 ``[C, H, W]`` -> mosaic ``[rows * Th, cols * Tw]``; tiles padded by edge replication to
    multiples of 8, empty cells 0."""
    c, h, w = codes.shape
    th, tw = -(-h // 8) * 8, -(-w // 8) * 8
    rows = -(-c // grid_cols)
    tiles = np.zeros((rows * grid_cols, th, tw), dtype=np.uint8)
    tiles[:c] = np.pad(codes, ((0, 0), (0, th - h), (0, tw - w)), mode="edge")
    return tiles.reshape(rows, grid_cols, th, tw).swapaxes(1, 2).reshape(rows * th, grid_cols * tw)


def untile_mosaic(mosaic: np.ndarray, shape: tuple[int, int, int], grid_cols: int) -> np.ndarray:
    """Inverse of :func:`tile_mosaic`: ``[C, H, W]`` codes."""
    c, h, w = shape
    th, tw = -(-h // 8) * 8, -(-w // 8) * 8
    rows = -(-c // grid_cols)
    tiles = np.asarray(mosaic).reshape(rows, th, grid_cols, tw).swapaxes(1, 2).reshape(rows * grid_cols, th, tw)
    return tiles[:c, :h, :w]


def check_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features)
    if x.ndim != 3 or x.size == 0:
        raise UserError(f"feature map shape {x.shape} is not allowed: need non-empty [C, H, W]")
    if x.dtype not in DTYPES:
        raise UserError(f"feature map dtype {x.dtype} is not allowed: need one of "
                        f"{', '.join(str(d) for d in DTYPES)}")
    if max(x.shape) > 65535:
        raise UserError(f"feature map shape {x.shape} has a side above 65535")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise UserError("feature map holds NaN or infinite values")
        big = float(np.abs(x).max())
        if big > FLOAT16_MAX:
            raise UserError(f"feature value magnitude {big} is outside the float16 side-info range 0..65504")
    elif x.dtype == np.int32 and (x.min() < -32768 or x.max() > 32767):
        bad = int(x.min()) if x.min() < -32768 else int(x.max())
        raise UserError(f"feature value {bad} (int32) is outside -32768..32767")
    return x


def pack(features: np.ndarray, mode: str = "layer", qf: int = 75,
         optimal_tables: bool = False) -> tuple[np.ndarray, SideInfo]:
    """Feature map ``[C, H, W]`` -> ``(mosaic uint8 [rows*Th, cols*Tw], side information)``."""
    x = check_features(features)
    if mode not in MODES:
        raise UserError(f"feature scaling mode {mode!r} is not one of {', '.join(MODES)}")
    jpeg.check_qf(qf)
    offsets, scales = scale_parameters(x, mode)
    cols = grid_columns(x.shape[0])
    side = SideInfo(shape=x.shape, mode=mode, optimal_tables=bool(optimal_tables), dtype=x.dtype, qf=int(qf),
                    grid_cols=cols, offsets=offsets, scales=scales)
    mosaic = tile_mosaic(quantize_to_codes(x, offsets, scales), cols)
    h, w = mosaic.shape
    if h > 65535 or w > 65535:
        raise UserError(f"mosaic {h}x{w} exceeds JPEG's 65535 per side")
    return mosaic, side


def unpack(mosaic: np.ndarray, side: SideInfo) -> np.ndarray:
    """Mosaic + side information -> feature map ``[C, H, W]`` in the original dtype (dequantized)."""
    codes = untile_mosaic(mosaic, side.shape, side.grid_cols)
    return dequantize_codes(codes, side.offsets, side.scales, side.dtype)


# ---- the JPEG path -----------------------------------------------------------------------------------


def encode_jpeg(features: np.ndarray, qf: int, mode: str = "layer",
                optimal_tables: bool = False) -> tuple[bytes, bytes]:
    """Pack and JPEG-code a feature map: ``(side information bytes, JFIF bytes)``."""
    mosaic, side = pack(features, mode, qf, optimal_tables)
    return side.to_bytes(), jpeg.encode_jpeg(mosaic, qf, optimize=optimal_tables)


def decode_jpeg(side_info: bytes, jfif: bytes) -> np.ndarray:
    """Inverse of :func:`encode_jpeg` (lossy) with the golden decoder. The side information is checked first
    (:meth:`SideInfo.from_bytes`), then the JPEG frame's size against its mosaic, before decoding."""
    side = SideInfo.from_bytes(side_info)
    size = jpeg_frame_size(jfif)
    if size != side.mosaic_shape:
        raise UserError(f"the JPEG frame is {size[0]} x {size[1]}; the side information's mosaic is "
                        f"{side.mosaic_shape[0]} x {side.mosaic_shape[1]}")
    mosaic = jpeg.decode_jpeg(jfif)
    if mosaic.shape != side.mosaic_shape:
        raise UserError(f"the JPEG decodes to {mosaic.shape}, not the {side.mosaic_shape} mosaic of the side "
                        "information (a colour JPEG?)")
    return unpack(mosaic, side)


def jpeg_frame_size(data: bytes) -> tuple[int, int]:
    """``(height, width)`` of a JPEG's SOF0 frame header, read without decoding (UserError if there is none
    before the scan, or the markers run off the end)."""
    data = bytes(data)
    if data[:2] != b"\xff\xd8":
        raise UserError("not a JPEG file: it does not start with SOI (FF D8)")
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker == 0xC0:
            if length < 8 or pos + 2 + length > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return height, width
        if marker == 0xDA or length < 2:
            break
        pos += 2 + length
    raise UserError(f"JPEG file has no baseline frame header (SOF0) before its scan (stopped at byte {pos})")


def transmitted_bytes(side: SideInfo, encoding: jpeg.JpegEncoding, container: str = "jfif") -> int:
    """Bytes on the link. ``"jfif"``: side info + the whole JFIF file. ``"scan"``: side info + the
    entropy-coded segment + the DHT payload if the tables are optimal (the host rebuilds the rest of the
    header from the side info: shape, QF, standard tables)."""
    if container not in CONTAINERS:
        raise UserError(f"container {container!r} is not one of {', '.join(CONTAINERS)}")
    if container == "jfif":
        return side.nbytes + len(encoding.data)
    tables = 0
    if side.optimal_tables:
        tables = sum(17 + len(t.huffval) for t in (*encoding.scan.dc_tables, *encoding.scan.ac_tables))
    return side.nbytes + tables + len(encoding.scan.data)


class JpegSweep:
    """One feature map at many quality factors: packs and runs the DCT once, then per QF quantizes and
    returns exact sizes (:meth:`size`) and the decoded map (:meth:`reconstruct`, float IDCT).

    The mosaic scaling does not depend on QF, so the side information only changes in its QF byte.
    """

    def __init__(self, features: np.ndarray, mode: str = "layer") -> None:
        self.mosaic, self.side = pack(features, mode)
        self.dct = jpeg.forward_dct(self.mosaic)

    def side_info(self, qf: int, optimal_tables: bool = False) -> SideInfo:
        return SideInfo(shape=self.side.shape, mode=self.side.mode, optimal_tables=optimal_tables,
                        dtype=self.side.dtype, qf=jpeg.check_qf(qf), grid_cols=self.side.grid_cols,
                        offsets=self.side.offsets, scales=self.side.scales)

    def encoding(self, qf: int, optimal_tables: bool = False) -> jpeg.JpegEncoding:
        return jpeg.encode_quantized(jpeg.quantize_image(self.dct, qf), optimal_tables)

    def size(self, qf: int, optimal_tables: bool = False, container: str = "jfif") -> int:
        """Exact transmitted bytes (side info included), as :func:`transmitted_bytes` counts them."""
        return transmitted_bytes(self.side_info(qf, optimal_tables), self.encoding(qf, optimal_tables), container)

    def scan_bits(self, qf: int, optimal_tables: bool = False) -> int:
        """Entropy-coded bits before padding and stuffing, from symbol counts only (fastest)."""
        return jpeg.scan_bits(jpeg.quantize_image(self.dct, qf), optimal_tables)

    def reconstruct(self, qf: int) -> np.ndarray:
        """The map the host gets back at this QF."""
        return unpack(jpeg.reconstruct(jpeg.quantize_image(self.dct, qf)), self.side)
