"""Lossless coder for integer feature maps: zero run length + Huffman in the JPEG style (RTL golden model).

Why this shape: feature maps after ReLU are mostly zeros with scattered nonzero values, which JPEG's
AC coder (runs of zeros, then a value) already handles well, and an RTL encoder for it is small: a run
counter, a bit-length (priority) encoder, a table lookup and a bit packer -- the same blocks as the JPEG
entropy stage, which shares :mod:`golden.entropy` with this module.

Samples
    An integer map ``[C, H, W]`` (or ``[H, W]``, stored as C = 1), 16 bits at most: signed
    (-32768..32767) or unsigned (0..65535). Each channel is padded with zeros to multiples of 8 and cut
    into 8x8 blocks; blocks go channel by channel, block rows top to bottom, blocks left to right; the 64
    samples of a block are in raster order (no zigzag: features are not frequencies, and raster order
    needs no reorder table). Zero padding costs nothing after the last nonzero sample (EOB).
Symbols (:func:`golden.entropy.run_length_symbols` without a DC term)
    Every sample of the block is run-length coded, from sample 0: nonzero ``v`` -> symbol
    ``(RRRR << 5) | SSSS`` (RRRR = zeros before it, 0..15; SSSS = bit length of ``|v|``, 1..16), then
    the extra bits; 16 zeros followed by more nonzero samples -> ZRL = ``15 << 5`` (0x1E0); trailing zeros
    -> EOB = 0 (no EOB when sample 63 is nonzero). Symbols are 9 bits so that ``SSSS = 16`` fits (JPEG's
    8-bit symbols stop at 15): the Huffman table is a 512-entry RAM addressed by ``{RRRR, SSSS}``, of
    which 258 entries can occur (16 runs x 16 sizes + EOB + ZRL).
Extra bits
    Signed mode: JPEG's rule (T.81 F.1.2.1), SSSS bits, negative values as the low bits of ``v - 1``.
    Unsigned mode (no negative sample, e.g. after ReLU): the leading 1 of ``v`` is implied, SSSS - 1 bits
    of ``v - 2**(SSSS-1)`` -- one bit per nonzero sample less. The container's flags say which.
Huffman tables
    Canonical, lengths 1..16, as BITS/HUFFVAL (T.81 Annex C). :data:`DEFAULT_TABLE` codes all 258
    symbols; it was built by :func:`derive_default_table` from the symbol statistics of synthetic ReLU
    maps (a random 3x3 convolution of the scikit-image photos, ReLU, power-of-two int16 scaling, at
    several sparsities and scales) with every symbol counted at least once, like the Annex K tables were
    built from typical images. The
    optimal table for a map (:func:`optimal_table_for`) follows T.81 K.2 and must be sent in the
    container.
Payload
    Codes and extra bits MSB first, padded to a byte with 1-bits. There is no byte stuffing: the
    container gives the payload length, so no markers need to be found.

The container (:func:`encode`, :func:`decode`) is specified in ``docs/bitstream.md`` (version 2: version 1
had no checksum):

====== ====== ======================================================================================
offset bytes  field
====== ====== ======================================================================================
0      4      magic ``ESLL``
4      1      version (2)
5      1      flags: bit 0 signed extra bits, bit 1 table follows, bit 2 input was 2-D [H, W], bit 3 raw
6      1      dtype of the decoded map: 0 uint8, 1 int8, 2 uint16, 3 int16
7      1      reserved (0)
8      2      C (big-endian, like every multi-byte field)
10     2      H
12     2      W
14     4      payload length P in bytes
18     16+2N  only with flag bit 1: BITS (16 bytes), HUFFVAL (N = sum of BITS, 2 bytes each)
...    P      payload
end-4  4      CRC-32 (ISO-HDLC, as zlib's ``crc32``) of every byte before it
====== ====== ======================================================================================

Raw mode (flag bit 3): lossless never expands. A dense map (random-looking values, a short FC vector) can code
longer than its samples; then :func:`encode` writes the samples themselves: the same header (flag bit 3 set,
bit 1 clear; bits 0 and 2, dtype and shape as the coded form has them), ``P = C * H * W * w`` with ``w`` the
dtype's width (1 byte for uint8/int8, 2 for uint16/int16), the samples in C order (channel, row, column; no
padding), big-endian, two's complement for the signed dtypes, then the CRC-32. A raw container is
``HEADER_BYTES + C * H * W * w + CRC_BYTES`` bytes (:data:`RAW_OVERHEAD_BYTES` = 22 around the samples). The
choice is the host's (:func:`wrap` around the RTL's payload; :func:`encode` chooses the same way): raw exactly
when the coded container would be longer (a tie stays coded). Coded containers keep their bytes (bit 3 was
always 0). The RTL encoder is not involved: it always writes the coded payload, byte for byte
:func:`encode_payload`'s, and the host wraps it.

:func:`decode` checks the length the header announces against the bytes present, then the CRC-32, then every
field (dimensions against the payload: each block costs at least one bit; a raw payload must be exactly the
map's samples), before it allocates the map; a version 1 container (no checksum) is refused with a one-line
error asking to re-encode it. The checksum is the container's, not the coded stream's: the RTL encoder produces
the payload only, byte for byte equal to :func:`encode_payload`, and the host wraps it (:func:`wrap`;
:meth:`hw.jpeg.host.EncodeJob.wrap`).

:func:`payload_bits` gives the coded payload's exact size from symbol counts alone (no packing);
:func:`encoded_size` the bytes :func:`encode` writes: ``min(`` :func:`coded_size`, :func:`raw_size` ``)``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from golden import entropy, limits
from golden.entropy import HuffmanTable
from golden.errors import UserError

SIZE_FIELD_BITS = 5
"""Symbols are ``(RRRR << 5) | SSSS``."""
ALPHABET_SIZE = 16 << SIZE_FIELD_BITS  # 512
EOB = 0
ZRL = entropy.ZRL_RUN << SIZE_FIELD_BITS  # 0x1E0
MAX_SIZE = 16

MAGIC = b"ESLL"
VERSION = 2
"""Container version: 2 adds the CRC-32 trailer (version 1 files are refused: re-encode them)."""
HEADER_FORMAT = ">4sBBBBHHHI"
HEADER_BYTES = struct.calcsize(HEADER_FORMAT)  # 18
CRC_BYTES = 4
FLAG_SIGNED = 1
FLAG_TABLE = 2
FLAG_2D = 4
FLAG_RAW = 8
"""Raw mode: the payload is the samples themselves (big-endian, the dtype's width), not coded."""
FLAGS = FLAG_SIGNED | FLAG_TABLE | FLAG_2D | FLAG_RAW
RAW_OVERHEAD_BYTES = HEADER_BYTES + CRC_BYTES  # 22
"""Bytes of a raw container around its samples: the header and the CRC-32."""

DTYPES = (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.uint16), np.dtype(np.int16))
"""dtype codes of the container (index = code)."""

TABLE_CHOICES = ("default", "optimal", "auto")
MODES = ("auto", "coded", "raw")
"""Container modes of :func:`encode`: ``auto`` (raw when the coded container would be longer: what is sent),
``coded`` (always coded, as the RTL's payload is), ``raw`` (always the samples)."""


def all_symbols() -> np.ndarray:
    """The 258 symbols the coder can emit: EOB, ZRL and (run 0..15, size 1..16)."""
    runs, sizes = np.meshgrid(np.arange(16), np.arange(1, MAX_SIZE + 1), indexing="ij")
    return np.sort(np.concatenate([[EOB, ZRL], ((runs << SIZE_FIELD_BITS) | sizes).ravel()]))


# ---- the default table -------------------------------------------------------------------------------

DEFAULT_TABLE = HuffmanTable(
    bits=(0, 0, 1, 10, 2, 3, 1, 2, 25, 55, 21, 14, 47, 40, 2, 35),
    huffval=(
        0x000, 0x004, 0x005, 0x006, 0x007, 0x008, 0x009, 0x00A, 0x00B, 0x00C, 0x00D, 0x003, 0x00E, 0x002,
        0x00F, 0x1E0, 0x001, 0x024, 0x027, 0x022, 0x023, 0x025, 0x026, 0x028, 0x029, 0x02A, 0x02B, 0x02C,
        0x02D, 0x043, 0x044, 0x045, 0x046, 0x047, 0x048, 0x04A, 0x04D, 0x064, 0x0C4, 0x0C7, 0x0CA, 0x0E4,
        0x0E7, 0x0EA, 0x021, 0x041, 0x042, 0x049, 0x04B, 0x04C, 0x062, 0x063, 0x065, 0x066, 0x067, 0x068,
        0x069, 0x06A, 0x06B, 0x06C, 0x06D, 0x083, 0x084, 0x085, 0x086, 0x087, 0x088, 0x089, 0x08A, 0x08B,
        0x08C, 0x08D, 0x0A3, 0x0A4, 0x0A5, 0x0A6, 0x0A7, 0x0A8, 0x0A9, 0x0AA, 0x0AB, 0x0AC, 0x0AD, 0x0C3,
        0x0C5, 0x0C6, 0x0C8, 0x0C9, 0x0CB, 0x0CC, 0x0CD, 0x0E3, 0x0E5, 0x0E6, 0x0E8, 0x0E9, 0x0EB, 0x0EC,
        0x0ED, 0x02E, 0x04E, 0x061, 0x06E, 0x081, 0x082, 0x08E, 0x0A1, 0x0A2, 0x0AE, 0x0C2, 0x0CE, 0x0E2,
        0x0EE, 0x104, 0x105, 0x107, 0x108, 0x10A, 0x10B, 0x10D, 0x0C1, 0x0E1, 0x102, 0x103, 0x106, 0x109,
        0x10C, 0x10E, 0x124, 0x127, 0x12A, 0x1E4, 0x1E7, 0x1EA, 0x0EF, 0x101, 0x122, 0x123, 0x125, 0x126,
        0x128, 0x129, 0x12B, 0x12C, 0x12D, 0x143, 0x144, 0x145, 0x147, 0x14A, 0x14D, 0x164, 0x167, 0x16A,
        0x16D, 0x184, 0x187, 0x18A, 0x18D, 0x1A4, 0x1A7, 0x1AA, 0x1AD, 0x1C3, 0x1C4, 0x1C5, 0x1C6, 0x1C7,
        0x1C8, 0x1CA, 0x1CB, 0x1CD, 0x1E2, 0x1E3, 0x1E5, 0x1E6, 0x1E8, 0x1E9, 0x1EB, 0x1EC, 0x1ED, 0x02F,
        0x04F, 0x08F, 0x0AF, 0x0CF, 0x121, 0x12E, 0x141, 0x142, 0x146, 0x148, 0x149, 0x14B, 0x14C, 0x161,
        0x162, 0x163, 0x165, 0x166, 0x168, 0x169, 0x16B, 0x16C, 0x181, 0x182, 0x183, 0x185, 0x186, 0x188,
        0x189, 0x18B, 0x18C, 0x1A1, 0x1A2, 0x1A3, 0x1A5, 0x1A6, 0x1A8, 0x1A9, 0x1AB, 0x1AC, 0x1C1, 0x1C2,
        0x1C9, 0x1CC, 0x1E1, 0x06F, 0x14E, 0x16E, 0x18E, 0x1AE, 0x1CE, 0x1EE, 0x10F, 0x1CF, 0x1EF, 0x12F,
        0x16F, 0x18F, 0x1AF, 0x14F, 0x010, 0x030, 0x050, 0x070, 0x090, 0x0B0, 0x0D0, 0x0F0, 0x110, 0x130,
        0x150, 0x170, 0x190, 0x1B0, 0x1D0, 0x1F0,
    ),
)
"""The standard table of the lossless coder (all 258 symbols; frozen output of
:func:`derive_default_table`, checked by the tests)."""


def synthetic_relu_maps(image: np.ndarray, channels: int, seed: int) -> np.ndarray:
    """Real-looking sparse ReLU feature maps: a random 3x3 convolution of a photo, ReLU, int16.

    The photo (uint8 grayscale or RGB) goes to gray in [0, 1] minus its mean; ``channels`` filters with
    N(0, 1) weights and biases in [-0.1, 0] (seeded), 'same' size with edge padding; ReLU; then the
    power-of-two scale of :mod:`golden.fixedpoint` (the largest value just fits int16). Returns int16
    ``[channels, H, W]``.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    from golden import fixedpoint

    img = np.asarray(image, dtype=np.float64)
    gray = img @ np.array([0.2125, 0.7154, 0.0721]) if img.ndim == 3 else img
    gray = gray / 255.0
    gray -= gray.mean()
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((channels, 3, 3))
    bias = -0.1 * rng.random(channels)
    windows = sliding_window_view(np.pad(gray, 1, mode="edge"), (3, 3))
    y = np.maximum(np.einsum("hwij,cij->chw", windows, weights) + bias[:, None, None], 0.0)
    frac = fixedpoint.frac_bits_for(float(y.max()))
    return fixedpoint.quantize(y, frac)


def derive_default_table() -> HuffmanTable:
    """How :data:`DEFAULT_TABLE` was made (the tests check it still gives the same table).

    Corpus: :func:`synthetic_relu_maps` of the scikit-image photos camera, astronaut, coffee and chelsea
    (every other pixel both ways, 16 channels, seeds 0..3), each in 16 variants so the table suits maps of
    any scale and sparsity: only the largest 100 %, 50 %, 20 % or 5 % of the nonzero values kept (the
    rest set to 0), then shifted right by 0, 3, 6 or 9 bits. Each variant's symbol histogram is normalised
    to the same weight, the sum scaled to 2**24 counts, every one of the 258 possible symbols counted at
    least once, and :func:`golden.entropy.optimal_table` (T.81 K.2, lengths <= 16) applied.
    Against each map's own optimal table it costs 1.08x on the unmodified maps, 1.10x-1.40x on variants
    (the price of one fixed table: use ``table="auto"`` where size matters).
    """
    import skimage.data

    weights = np.zeros(ALPHABET_SIZE, dtype=np.float64)
    for seed, name in enumerate(("camera", "astronaut", "coffee", "chelsea")):
        maps = synthetic_relu_maps(getattr(skimage.data, name)()[::2, ::2], 16, seed).astype(np.int64)
        positive = maps[maps > 0]
        for keep in (1.0, 0.5, 0.2, 0.05):
            threshold = np.quantile(positive, 1 - keep) if keep < 1 else 0
            kept = np.where(maps > threshold, maps, 0)
            for shift in (0, 3, 6, 9):
                h = histogram((kept >> shift).astype(np.int16)).astype(np.float64)
                weights += h / h.sum()
    counts = np.round(weights / weights.sum() * 2**24).astype(np.int64)
    symbols = all_symbols()
    counts[symbols] = np.maximum(counts[symbols], 1)
    return entropy.optimal_table(counts)


# ---- samples to blocks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Features:
    """A checked feature map: ``values[C, H, W]`` (int64), its container dtype code and shape flags."""

    values: np.ndarray
    dtype_code: int
    signed: bool
    was_2d: bool


def check_features(x: np.ndarray, signed: bool | None = None) -> Features:
    """Validate an integer map and choose the extra-bit mode.

    Accepted: int8, uint8, int16, uint16 (kept as the decoded dtype), or wider integer arrays whose
    values fit int16 (decoded as int16). ``signed=None`` picks signed mode iff a value is negative.
    """
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.size == 0:
        raise UserError(f"feature map shape {x.shape} is not allowed: need non-empty [C, H, W] or [H, W]")
    if x.dtype.kind not in "iu" or x.dtype == np.bool_:
        raise UserError(f"feature map dtype {x.dtype} is not allowed: need int8, uint8, int16 or uint16")
    lo, hi = int(x.min()), int(x.max())
    if x.dtype in DTYPES:
        code = DTYPES.index(x.dtype)
    else:
        if lo < -32768 or hi > 32767:
            bad = lo if lo < -32768 else hi
            raise UserError(f"feature value {bad} ({x.dtype}) is outside the int16 range -32768..32767")
        code = DTYPES.index(np.dtype(np.int16))
    if signed is None:
        signed = lo < 0
    elif not signed and lo < 0:
        raise UserError(f"feature value {lo} is negative: unsigned mode needs values in 0..65535")
    if signed and hi > 32767:
        raise UserError(f"feature value {hi} is outside signed mode's range -32768..32767")
    shape = x.shape if x.ndim == 3 else (1, *x.shape)
    if max(shape) > 65535:
        raise UserError(f"feature map shape {x.shape} has a side above 65535")
    return Features(values=x.reshape(shape).astype(np.int64), dtype_code=code, signed=bool(signed),
                    was_2d=x.ndim == 2)


def to_blocks(values: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` -> ``[blocks, 64]``: zero padding to multiples of 8, channel-major block order,
    raster order inside each block."""
    c, h, w = values.shape
    hp, wp = -(-h // 8) * 8, -(-w // 8) * 8
    padded = np.zeros((c, hp, wp), dtype=values.dtype)
    padded[:, :h, :w] = values
    return padded.reshape(c, hp // 8, 8, wp // 8, 8).transpose(0, 1, 3, 2, 4).reshape(-1, 64)


def from_blocks(blocks: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`to_blocks` (drops the padding)."""
    c, h, w = shape
    hb, wb = -(-h // 8), -(-w // 8)
    grid = blocks.reshape(c, hb, wb, 8, 8).transpose(0, 1, 3, 2, 4).reshape(c, 8 * hb, 8 * wb)
    return grid[:, :h, :w]


# ---- symbols, tables, sizes --------------------------------------------------------------------------


def run_length_symbols(blocks: np.ndarray) -> entropy.RunLengthSymbols:
    """The symbol stream of ``blocks[n, 64]`` (no DC term; all 64 samples run-length coded)."""
    return entropy.run_length_symbols(blocks, None)


def histogram(x: np.ndarray) -> np.ndarray:
    """Symbol counts ``[512]`` of a map ``[C, H, W]`` or ``[H, W]`` (or of a checked :class:`Features`)."""
    values = x.values if isinstance(x, Features) else check_features(x).values
    return _histogram(to_blocks(values))[0]


def _histogram(blocks: np.ndarray) -> tuple[np.ndarray, int, int]:
    _, ac, extra, nonzero = entropy.symbol_histograms(blocks, None, np.zeros(len(blocks), dtype=np.int64), 1,
                                                      SIZE_FIELD_BITS)
    return ac[0], extra, nonzero


def optimal_table_for(x: np.ndarray) -> HuffmanTable:
    """The T.81 K.2 optimal table (lengths <= 16) for this map's own symbol counts."""
    return entropy.optimal_table(histogram(x))


def table_bytes(table: HuffmanTable) -> int:
    """Bytes the table takes in the container: 16 BITS + 2 per symbol."""
    return 16 + 2 * len(table.huffval)


def payload_bits(x: np.ndarray, table: HuffmanTable | str = "default", signed: bool | None = None) -> int:
    """Exact payload size in bits before padding, from symbol counts only (``ceil(bits/8)`` bytes)."""
    feats = check_features(x, signed)
    hist, extra, nonzero = _histogram(to_blocks(feats.values))
    table = _resolve_table(table, hist, extra, nonzero, feats.signed)
    return _bits(hist, extra, nonzero, feats.signed, table)


def _bits(hist: np.ndarray, extra: int, nonzero: int, signed: bool, table: HuffmanTable) -> int:
    extra_bits = extra if signed else extra - nonzero
    return entropy.coded_bits(np.zeros((1, 1), dtype=np.int64), hist[None], extra_bits, [], [table])


def _check_table_choice(table: HuffmanTable | str) -> None:
    if not isinstance(table, HuffmanTable) and table not in TABLE_CHOICES:
        raise UserError(f"table choice {table!r} is not one of {', '.join(TABLE_CHOICES)} (or a HuffmanTable)")


def _resolve_table(table: HuffmanTable | str, hist: np.ndarray, extra: int, nonzero: int,
                   signed: bool) -> HuffmanTable:
    _check_table_choice(table)
    if isinstance(table, HuffmanTable):
        return table
    if table == "default":
        return DEFAULT_TABLE
    best = entropy.optimal_table(hist)
    if table == "optimal":
        return best
    # auto: the optimal table only if it pays for its own bytes in the container
    default_bytes = -(-_bits(hist, extra, nonzero, signed, DEFAULT_TABLE) // 8)
    best_bytes = -(-_bits(hist, extra, nonzero, signed, best) // 8) + table_bytes(best)
    return best if best_bytes < default_bytes else DEFAULT_TABLE


def chosen_table(x: np.ndarray, table: HuffmanTable | str = "default", signed: bool | None = None) -> HuffmanTable:
    """The table a coded container of ``x`` uses for the choice ``table`` ("auto": the optimal table only if it
    pays for its own bytes in the coded container; the raw mode does not enter this choice)."""
    feats = check_features(x, signed)
    hist, extra, nonzero = _histogram(to_blocks(feats.values))
    return _resolve_table(table, hist, extra, nonzero, feats.signed)


def _coded_bytes(table: HuffmanTable, payload_bytes: int) -> int:
    """Coded container bytes: header + the table unless it is the default + payload + CRC-32."""
    sent = 0 if table == DEFAULT_TABLE else table_bytes(table)
    return HEADER_BYTES + sent + payload_bytes + CRC_BYTES


def _raw_bytes(feats: Features) -> int:
    """Raw container bytes: header + every sample at its dtype's width + CRC-32."""
    return RAW_OVERHEAD_BYTES + feats.values.size * DTYPES[feats.dtype_code].itemsize


def _raw_wins(coded_bytes: int, raw_bytes: int) -> bool:
    """The host's choice of container: raw exactly when the coded one would be longer (a tie stays coded)."""
    return coded_bytes > raw_bytes


def coded_size(x: np.ndarray, table: HuffmanTable | str = "default", signed: bool | None = None) -> int:
    """Exact size in bytes of the coded container (header + table if not the default + payload + CRC-32),
    from symbol counts alone."""
    feats = check_features(x, signed)
    hist, extra, nonzero = _histogram(to_blocks(feats.values))
    table = _resolve_table(table, hist, extra, nonzero, feats.signed)
    return _coded_bytes(table, -(-_bits(hist, extra, nonzero, feats.signed, table) // 8))


def raw_size(x: np.ndarray, signed: bool | None = None) -> int:
    """Exact size in bytes of the raw container: :data:`RAW_OVERHEAD_BYTES` + the samples at the dtype's width."""
    return _raw_bytes(check_features(x, signed))


def encoded_size(x: np.ndarray, table: HuffmanTable | str = "default", signed: bool | None = None) -> int:
    """Exact size in bytes of what :func:`encode` writes (``mode="auto"``), without encoding: the smaller of
    :func:`coded_size` and :func:`raw_size` (a table that cannot code the map is an error, as in :func:`encode`)."""
    feats = check_features(x, signed)
    hist, extra, nonzero = _histogram(to_blocks(feats.values))
    table = _resolve_table(table, hist, extra, nonzero, feats.signed)
    coded = _coded_bytes(table, -(-_bits(hist, extra, nonzero, feats.signed, table) // 8))
    return min(coded, _raw_bytes(feats))


# ---- encode / decode ---------------------------------------------------------------------------------


def encode_payload(blocks: np.ndarray, table: HuffmanTable, signed: bool) -> tuple[bytes, int]:
    """Blocks ``[n, 64]`` -> payload bytes (padded with 1-bits) and the bit count before padding."""
    rls = run_length_symbols(blocks)
    return entropy.encode_symbols(rls, np.zeros(len(blocks), dtype=np.int64), [], [table], SIZE_FIELD_BITS,
                                  unsigned=not signed)


def encode(x: np.ndarray, table: HuffmanTable | str = "default", signed: bool | None = None,
           mode: str = "auto") -> bytes:
    """Encode an integer map into the container. ``table``: "default" (:data:`DEFAULT_TABLE`, not sent),
    "optimal" (this map's K.2 table, sent), "auto" (whichever makes the smaller coded container) or a table
    (sent unless it equals the default). ``mode`` (:data:`MODES`): "auto" writes the raw container when the
    coded one would be longer -- exactly :func:`wrap` of :func:`encode_payload`'s bytes, what the host sends
    around the RTL's payload; "coded" and "raw" force one form. A table without a code for one of the map's
    symbols is an error in every mode but "raw"."""
    if mode not in MODES:
        raise UserError(f"container mode {mode!r} is not one of {', '.join(MODES)}")
    _check_table_choice(table)
    feats = check_features(x, signed)
    if mode == "raw":
        return _raw_container(feats)
    blocks = to_blocks(feats.values)
    hist, extra, nonzero = _histogram(blocks)
    table = _resolve_table(table, hist, extra, nonzero, feats.signed)
    coded = _coded_bytes(table, -(-_bits(hist, extra, nonzero, feats.signed, table) // 8))
    if mode == "auto" and _raw_wins(coded, _raw_bytes(feats)):
        return _raw_container(feats)   # the payload need not be packed: wrap() would drop it
    payload, _ = encode_payload(blocks, table, feats.signed)
    return _coded_container(feats, table, payload)


def wrap(x: np.ndarray, payload: bytes, table: HuffmanTable = DEFAULT_TABLE, signed: bool | None = None) -> bytes:
    """The container the host sends around the coded ``payload`` of ``x`` (the RTL encoder's bytes, equal to
    :func:`encode_payload`'s, coded with ``table`` in the sign mode ``signed`` picks): the coded container, or
    the raw container when the coded one would be longer. ``wrap(x, encode_payload(...)[0], table, signed)``
    equals ``encode(x, table, signed)`` byte for byte."""
    if not isinstance(table, HuffmanTable):
        raise UserError(f"wrap needs the HuffmanTable the payload was coded with, not {table!r}")
    feats = check_features(x, signed)
    if _raw_wins(_coded_bytes(table, len(payload)), _raw_bytes(feats)):
        return _raw_container(feats)
    return _coded_container(feats, table, bytes(payload))


def choose(coded: bytes, raw: bytes) -> bytes:
    """Of a map's coded and raw containers, the one the host sends: the raw one exactly when the coded one is
    longer (for a host that holds both, e.g. around the RTL's payload)."""
    return raw if _raw_wins(len(coded), len(raw)) else coded


def _header(feats: Features, flags: int, payload_bytes: int) -> bytes:
    flags |= (FLAG_SIGNED if feats.signed else 0) | (FLAG_2D if feats.was_2d else 0)
    c, h, w = feats.values.shape
    return struct.pack(HEADER_FORMAT, MAGIC, VERSION, flags, feats.dtype_code, 0, c, h, w, payload_bytes)


def _coded_container(feats: Features, table: HuffmanTable, payload: bytes) -> bytes:
    """Header + the table unless it is the default + ``payload`` + CRC-32."""
    send_table = table != DEFAULT_TABLE
    table_part = b""
    if send_table:
        table_part = bytes(table.bits) + b"".join(struct.pack(">H", v) for v in table.huffval)
    return seal(_header(feats, FLAG_TABLE if send_table else 0, len(payload)) + table_part + payload)


def _raw_container(feats: Features) -> bytes:
    """Header (flag :data:`FLAG_RAW`) + the samples in C order, big-endian, at the dtype's width + CRC-32."""
    samples = feats.values.astype(DTYPES[feats.dtype_code].newbyteorder(">")).tobytes()
    return seal(_header(feats, FLAG_RAW, len(samples)) + samples)


def crc32(data: bytes) -> int:
    """CRC-32 of ``data`` (ISO-HDLC polynomial 0x04C11DB7 reflected, init and final XOR 0xFFFFFFFF: zlib's)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def seal(body: bytes) -> bytes:
    """``body`` (header, table, payload) followed by its CRC-32: the complete container."""
    return bytes(body) + struct.pack(">I", crc32(body))


def decode_payload(payload: bytes, n_blocks: int, table: HuffmanTable, signed: bool) -> np.ndarray:
    """Payload -> blocks ``[n_blocks, 64]`` (int64)."""
    reader = entropy.BitReader(payload)
    symbols, lengths = entropy.fast_lut(table)
    out = np.zeros((n_blocks, 64), dtype=np.int64)
    extend = entropy.extend
    for b in range(n_blocks):
        row = [0] * 64
        k = 0
        while k < 64:
            index = reader.peek16()
            length = lengths[index]
            if length == 0:
                raise UserError(f"lossless payload: invalid Huffman code at bit {reader.pos}")
            reader.pos += length
            sym = symbols[index]
            run, size = sym >> SIZE_FIELD_BITS, sym & 31
            if size == 0:
                if run != entropy.ZRL_RUN:
                    break  # EOB
                k += 16
                continue
            k += run
            if k >= 64:
                raise UserError(f"lossless payload: run past the end of block {b}")
            if signed:
                row[k] = extend(reader.read(size), size)
            else:
                row[k] = (1 << (size - 1)) | reader.read(size - 1)
            k += 1
        out[b] = row
        if reader.bits_left < 0:
            raise UserError("lossless payload is truncated")
    return out


def _table_from(data: bytes, pos: int) -> tuple[HuffmanTable, int]:
    """The Huffman table sent at ``data[pos:]`` and its size in bytes (every symbol checked)."""
    bits = tuple(data[pos:pos + 16])
    if len(bits) != 16:
        raise UserError("lossless container: the Huffman table is cut short")
    count = sum(bits)
    if not 1 <= count <= len(_SYMBOLS):
        raise UserError(f"lossless container: the Huffman table counts {count} codes; allowed 1..{len(_SYMBOLS)}")
    raw = data[pos + 16:pos + 16 + 2 * count]
    if len(raw) != 2 * count:
        raise UserError("lossless container: the Huffman table is cut short")
    huffval = struct.unpack(f">{count}H", raw)
    bad = sorted(set(huffval) - _SYMBOLS)
    if bad:
        raise UserError(f"lossless container: symbol {bad[0]:#x} of the Huffman table is not a lossless symbol")
    return HuffmanTable(bits=bits, huffval=huffval), 16 + 2 * count


_SYMBOLS = frozenset(int(s) for s in all_symbols())


def decode(data: bytes, max_values: int = limits.MAX_ARRAY_VALUES) -> np.ndarray:
    """Container (coded or raw) -> the map, exactly as encoded (same dtype; ``[H, W]`` if it was 2-D).

    Checked before anything is allocated: the length the header announces against the bytes present, the
    CRC-32, every field (a raw container sets no table flag), and the dimensions against the payload (coded:
    every block costs at least one bit; raw: exactly ``C * H * W`` samples of the dtype) and ``max_values``. A
    version 1 container (no checksum) is refused. Errors are one-line UserErrors."""
    data = bytes(data)
    if len(data) < HEADER_BYTES:
        raise UserError(f"lossless container of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header")
    magic, version, flags, dtype_code, reserved, c, h, w, n = struct.unpack(HEADER_FORMAT, data[:HEADER_BYTES])
    if magic != MAGIC:
        raise UserError(f"lossless container magic {magic!r} is not {MAGIC!r}")
    table, table_len = DEFAULT_TABLE, 0
    if flags & FLAG_TABLE:
        table, table_len = _table_from(data, HEADER_BYTES)
    body = HEADER_BYTES + table_len + n
    if version == 1 and len(data) == body:
        raise UserError("version 1 lossless container without checksum: re-encode it (edgesplit encode --lossless "
                        "writes version 2, with a CRC-32)")
    if len(data) != body + CRC_BYTES:
        raise UserError(f"lossless container is {len(data)} bytes, its header says {body + CRC_BYTES} "
                        f"({HEADER_BYTES}-byte header + {table_len}-byte table + {n}-byte payload + {CRC_BYTES}-byte "
                        "CRC-32): truncated or damaged")
    stored, computed = struct.unpack(">I", data[body:])[0], crc32(data[:body])
    if stored != computed:
        raise UserError(f"lossless container is damaged: CRC-32 {computed:08x} of its bytes differs from the stored "
                        f"{stored:08x}")
    if version != VERSION:
        raise UserError(f"lossless container version {version} is not supported (only {VERSION})")
    if flags & ~FLAGS or reserved:
        raise UserError(f"lossless container flags {flags:#04x} / reserved byte {reserved} are not allowed "
                        f"(flags bits 0..3, reserved 0)")
    if flags & FLAG_RAW and flags & FLAG_TABLE:
        raise UserError(f"lossless container flags {flags:#04x} are not allowed: a raw container (bit 3) carries no "
                        "Huffman table (bit 1)")
    if dtype_code >= len(DTYPES):
        raise UserError(f"lossless container dtype code {dtype_code} is outside 0..{len(DTYPES) - 1}")
    if min(c, h, w) < 1 or (flags & FLAG_2D and c != 1):
        raise UserError(f"lossless container shape {c} x {h} x {w} is not allowed: sides >= 1, C = 1 for a 2-D map")
    limits.check_array_size((c, h, w), "lossless container map")
    if c * h * w > max_values:
        raise UserError(f"lossless container map {c} x {h} x {w} holds more than {max_values:,} values")
    if flags & FLAG_RAW:
        return _raw_samples(data[HEADER_BYTES:body], (c, h, w), DTYPES[dtype_code], flags)
    n_blocks = c * -(-h // 8) * -(-w // 8)
    if n_blocks > 8 * n:
        raise UserError(f"lossless container map {c} x {h} x {w} has {n_blocks:,} blocks; its {n}-byte payload can "
                        f"hold at most {8 * n:,}")
    blocks = decode_payload(data[HEADER_BYTES + table_len:body], n_blocks, table, bool(flags & FLAG_SIGNED))
    dtype = DTYPES[dtype_code]
    info = np.iinfo(dtype)
    if blocks.min() < info.min or blocks.max() > info.max:
        raise UserError(f"lossless container: decoded values {blocks.min()}..{blocks.max()} do not fit its dtype "
                        f"{dtype}")
    values = from_blocks(blocks, (c, h, w)).astype(dtype)
    return values[0] if flags & FLAG_2D else values


def _raw_samples(payload: bytes, shape: tuple[int, int, int], dtype: np.dtype, flags: int) -> np.ndarray:
    """A raw container's payload -> the map: exactly ``C * H * W`` big-endian samples of ``dtype``, within the
    range of the sign mode the flags name (as the coded form's extra bits would be)."""
    c, h, w = shape
    need = c * h * w * dtype.itemsize
    if len(payload) != need:
        raise UserError(f"raw lossless container: its {len(payload)}-byte payload is not the {need} bytes of a "
                        f"{c} x {h} x {w} {dtype} map")
    values = np.frombuffer(payload, dtype=dtype.newbyteorder(">")).astype(dtype).reshape(shape)
    lo, hi = int(values.min()), int(values.max())
    if flags & FLAG_SIGNED and hi > 32767:
        raise UserError(f"raw lossless container: value {hi} is outside signed mode's range -32768..32767")
    if not flags & FLAG_SIGNED and lo < 0:
        raise UserError(f"raw lossless container: value {lo} is negative in unsigned mode")
    return values[0] if flags & FLAG_2D else values
