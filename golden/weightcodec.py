"""Bit-exact JPEG-style weight codec: the golden model of the engine's weight decoder (hw/jpeg/wdecoder.py).

Each layer's int16 weights ``W[O, K]`` (``weight.reshape(O, -1)``: K = in_c*k*k for a conv in im2col order,
in_features for an FC layer) are stored in DRAM as twelve JPEG-like entropy-coded *lane streams* (lane
``j`` holds output channels ``12 g + j``, one per weight-buffer lane, so twelve decoders restore them in
parallel) and restored on chip before they reach the weight buffer. Full description: ``docs/weights.md``.

Pipeline (encoder: float, need not be bit-exact; decoder: integers, the RTL copies it exactly). Every stage
is its own function so the RTL tests can check each one:

===============  ==========================================================================  ============
stage            function                                                                    output
===============  ==========================================================================  ============
pre-shift        :func:`pre_shift`, :func:`to_samples`: ``p`` in 0..4, ``s = clamp((w +      int12
                 2**(p-1)) >> p)``
blocks           :func:`to_blocks`: O padded to 12 (lanes), K to 64; order (g, kb, j)        8x8 int12
forward DCT      :func:`forward_dct`: JPEG DCT-II in float64                                 float
quantize         :func:`quantize`: round half away from zero of ``F / Q``, Q = IJG luminance    int
                 table at QF (:func:`qtable`)
zigzag           :func:`golden.jpeg.zigzag`                                                  64 x int
lanes            :func:`lane_order`: lane ``j`` takes blocks (g, kb, j) in order (g, kb)       12 x blocks
DC difference    :func:`dc_differences`: predictor 0 at each lane's first block of a group   int
Huffman          :func:`huffman_tables` (optimal over all lanes, lengths <= 16),             12 x bytes
                 :func:`entropy_encode` per lane: no byte stuffing, padded with 1-bits to 16
                 bits
---------------  --------------------------------------------------------------------------  ------------
Huffman decode   :func:`huffman_decode` per lane: stream -> quantized coefficients (zigzag,   64 x int
                 DC undone); :func:`decode_zz` puts the lanes back in block order
dequantize       :func:`dequantize`: ``F' = q * Q`` (natural order)                          int
IDCT pass 1      :func:`idct_pass1`: ``t[u][x] = (sum_v F'[u][v] C[v][x] + 2**10) >> 11``   int
IDCT pass 2      :func:`idct_pass2`: ``r[y][x] = (sum_u t[u][x] C[u][y] + 2**14) >> 15``     int
restore          :func:`restore`: ``clamp(clamp(r, -2048, 2047) << p, -32768, 32767)``     int16
unblock          :func:`from_blocks`: drop the padding                                       W[O, K]
===============  ==========================================================================  ============

``C[u][x] = round(2**13 * c(u)/2 * cos((2x+1) u pi / 16))``, ``c(0) = 1/sqrt(2)``, else 1: the same 13-bit
constants as the feature encoder's forward DCT (:data:`golden.jpeg.DCT_MATRIX`). ``u`` is the vertical
frequency (pairs with the row ``y``), ``v`` the horizontal one (pairs with the column ``x``); natural order
is ``F[u][v]`` row-major, ``8 u + v``.

Fast paths for the QF search: :class:`Prepared` does pre-shift, blocks and DCT once per layer;
:meth:`Prepared.at_qf` gives the exact compressed size (from symbol counts) and the decoded weights (with
the integer decoder, vectorised) without packing or Huffman-decoding the stream. The tests check that both
agree with :func:`encode_layer` / :func:`decode_layer`.

All integer arrays are numpy int64 unless stated; all functions are pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from golden import entropy, jpeg
from golden.entropy import HuffmanTable
from golden.errors import UserError

SAMPLE_BITS = 12
SAMPLE_MIN = -(1 << (SAMPLE_BITS - 1))  # -2048
SAMPLE_MAX = (1 << (SAMPLE_BITS - 1)) - 1  # 2047
MAX_PRE_SHIFT = 4
"""``p`` is 0..4: int16 weights need at most 4 bits of pre-shift to reach 12-bit samples (32767 >> 4 rounds
to 2048, which the clamp takes to 2047)."""
INT16_MIN, INT16_MAX = -32768, 32767

LANES = 12
"""Output channels per group: the engine's weight-buffer lanes (one weight per lane per row)."""
BLOCK = 64
"""Weights per 8x8 block: 64 consecutive K-indices of one output channel, raster order (row = index // 8)."""

IDCT_CONST_BITS = 13
IDCT_MATRIX = jpeg.DCT_MATRIX
"""``C[u, x] = round(2**13 * c(u)/2 * cos((2x+1) u pi / 16))`` (int64 [8, 8], ``|C| <= 4017``)."""
IDCT_PASS1_SHIFT = 11
"""Pass 1 keeps 2 fractional bits: ``t = (sum + 2**10) >> 11``."""
IDCT_PASS2_SHIFT = 15
"""Pass 2 removes the 2 + 13 fractional bits: ``r = (sum + 2**14) >> 15``."""

QTABLE_BASE = jpeg.LUMINANCE_QTABLE
"""The quantization table at QF is T.81 Table K.1 (luminance) scaled by the IJG rule."""

MAX_SSSS = 15
"""DC difference and AC magnitude categories are 0..15 (12-bit JPEG). The encoder's coefficients satisfy
``|q| <= |F| <= 16384`` (DC of an all -2048 block), so DC differences stay within +-32760 (SSSS <= 15)."""

LANE_LENGTH_BYTES = 4
HEADER_BYTES = 4 + LANES * LANE_LENGTH_BYTES
"""Per-layer header: p (1 byte), QF (1 byte), 2 bytes reserved (0), then each lane stream's length in
16-bit words (uint32 little-endian, 12 of them). O and K come from the layer's descriptor."""
QTABLE_BYTES = 64


# ---- argument checks and shapes --------------------------------------------------------------------------


def check_qf(qf: int) -> int:
    return jpeg.check_qf(qf)


def weight_matrix(w: np.ndarray) -> np.ndarray:
    """``w.reshape(O, -1)`` as int64, checked: integer, int16 range, O >= 1, K >= 1."""
    w = np.asarray(w)
    if w.ndim < 2:
        raise UserError(f"weight tensor shape {w.shape} is not allowed: need [O, K] or [O, C, KH, KW]")
    if not np.issubdtype(w.dtype, np.integer):
        raise UserError(f"weight dtype {w.dtype} is not allowed: need int16 values")
    w = w.reshape(w.shape[0], -1).astype(np.int64)
    if w.shape[0] < 1 or w.shape[1] < 1:
        raise UserError(f"weight matrix shape {w.shape} is empty")
    if w.min() < INT16_MIN or w.max() > INT16_MAX:
        bad = int(w.min()) if w.min() < INT16_MIN else int(w.max())
        raise UserError(f"weight value {bad} is outside int16 ({INT16_MIN}..{INT16_MAX})")
    return w


def padded_shape(out_channels: int, k: int) -> tuple[int, int]:
    """``(O, K)`` rounded up to multiples of 12 and 64."""
    return -(-out_channels // LANES) * LANES, -(-k // BLOCK) * BLOCK


def n_groups(out_channels: int) -> int:
    return -(-out_channels // LANES)


def k_blocks(k: int) -> int:
    return -(-k // BLOCK)


def blocks_per_group(k: int) -> int:
    """Blocks of one group of 12 output channels: ``12 * ceil(K / 64)``."""
    return LANES * k_blocks(k)


def lane_blocks(out_channels: int, k: int) -> int:
    """Blocks of one lane stream: ``ceil(O / 12) * ceil(K / 64)`` (every lane has the same count: O is
    padded with zero channels)."""
    return n_groups(out_channels) * k_blocks(k)


def lane_order(out_channels: int, k: int) -> np.ndarray:
    """Block indices (order (g, kb, j) of :func:`to_blocks`) in lane-stream order: lane 0's blocks, then
    lane 1's, ...; lane ``j`` takes blocks ``(g, kb, j)`` in order (g, kb). ``zz[lane_order(O, K)]``
    reshaped ``[12, lane_blocks, 64]`` are the twelve lanes' blocks."""
    g, kb = n_groups(out_channels), k_blocks(k)
    return np.arange(g * kb * LANES).reshape(g, kb, LANES).transpose(2, 0, 1).reshape(-1)


# ---- pre-shift and blocks --------------------------------------------------------------------------------


def _round_shift(w: np.ndarray, p: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.int64)
    return (w + (1 << (p - 1))) >> p if p > 0 else w


def pre_shift(w: np.ndarray) -> int:
    """The smallest ``p`` in 0..4 with every ``(w + 2**(p-1)) >> p`` in -2048..2047 (4 if none is)."""
    w = np.asarray(w, dtype=np.int64)
    lo, hi = int(w.min()), int(w.max())
    for p in range(MAX_PRE_SHIFT + 1):
        if int(_round_shift(np.array(lo), p)) >= SAMPLE_MIN and int(_round_shift(np.array(hi), p)) <= SAMPLE_MAX:
            return p
    return MAX_PRE_SHIFT


def to_samples(w: np.ndarray, p: int) -> np.ndarray:
    """``clamp((w + 2**(p-1)) >> p, -2048, 2047)`` (no rounding term for p = 0)."""
    if not 0 <= p <= MAX_PRE_SHIFT:
        raise UserError(f"pre-shift {p} is outside 0..{MAX_PRE_SHIFT}")
    return np.clip(_round_shift(w, p), SAMPLE_MIN, SAMPLE_MAX)


def to_blocks(s: np.ndarray) -> np.ndarray:
    """Samples ``s[O, K]`` -> blocks ``[n, 8, 8]`` in order (g, kb, j), zero padded.

    Block ``(g, kb, j)`` is ``s[12 g + j, 64 kb : 64 kb + 64]`` in raster order, its index is
    ``(g * ceil(K/64) + kb) * 12 + j``. Twelve consecutive blocks are 64 K-rows of the 12 lanes.
    """
    s = np.asarray(s, dtype=np.int64)
    o, k = s.shape
    op, kp = padded_shape(o, k)
    full = np.zeros((op, kp), dtype=np.int64)
    full[:o, :k] = s
    # [G, 12, KB, 64] -> [G, KB, 12, 64]
    b = full.reshape(op // LANES, LANES, kp // BLOCK, BLOCK).transpose(0, 2, 1, 3)
    return b.reshape(-1, 8, 8)


def from_blocks(blocks: np.ndarray, out_channels: int, k: int) -> np.ndarray:
    """Inverse of :func:`to_blocks`: blocks ``[n, 8, 8]`` -> ``[O, K]`` with the padding dropped."""
    op, kp = padded_shape(out_channels, k)
    blocks = np.asarray(blocks)
    if blocks.shape != (op * kp // BLOCK, 8, 8):
        raise UserError(f"{blocks.shape[0]} blocks do not make a {out_channels} x {k} layer "
                        f"(need {op * kp // BLOCK})")
    b = blocks.reshape(op // LANES, kp // BLOCK, LANES, BLOCK).transpose(0, 2, 1, 3)
    return b.reshape(op, kp)[:out_channels, :k]


# ---- forward transform and quantizer (encoder, float64) ---------------------------------------------------


def qtable(qf: int) -> np.ndarray:
    """The quantization table at ``qf`` (natural order, entries 1..255): IJG-scaled T.81 Table K.1."""
    return jpeg.scale_qtable(QTABLE_BASE, qf)


def forward_dct(blocks: np.ndarray) -> np.ndarray:
    """JPEG's 2-D DCT-II in float64: ``F[u, v] = 1/4 c(u) c(v) sum_y sum_x s[y, x] cos((2y+1) u pi/16)
    cos((2x+1) v pi/16)`` (``= A s A^T`` with the orthonormal :data:`golden.jpeg.DCT_BASIS`)."""
    return jpeg.dct2_float(blocks)


def quantize(coeffs: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``q = sign(F/Q) * floor(|F/Q| + 1/2)`` (round half away from zero), int64, natural order."""
    x = np.asarray(coeffs, dtype=np.float64) / np.asarray(table, dtype=np.float64)
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def dc_differences(dc: np.ndarray, per_group: int) -> np.ndarray:
    """DC minus the previous block's DC; the predictor is 0 at the first block of every ``per_group``
    blocks (a lane stream: ``ceil(K / 64)``, the lane's blocks of one group)."""
    dc = np.asarray(dc, dtype=np.int64).reshape(-1, per_group)
    return np.diff(dc, axis=1, prepend=0).reshape(-1)


# ---- entropy coding -------------------------------------------------------------------------------------


def symbol_histograms(zz: np.ndarray, per_group: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(dc_hist[16], ac_hist[256], extra_bits)`` of the quantized blocks ``zz[n, 64]`` (zigzag order)."""
    zz = np.asarray(zz, dtype=np.int64)
    ddc = dc_differences(zz[:, 0], per_group)
    dc, ac, extra, _ = entropy.symbol_histograms(zz, ddc, np.zeros(len(zz), dtype=np.int64), 1,
                                                 jpeg.JPEG_SIZE_FIELD_BITS)
    return dc[0], ac[0], extra


def huffman_tables(zz: np.ndarray, per_group: int) -> tuple[HuffmanTable, HuffmanTable]:
    """The optimal canonical ``(dc_table, ac_table)`` for these blocks (T.81 K.2, lengths <= 16)."""
    dc, ac, _ = symbol_histograms(zz, per_group)
    return entropy.optimal_table(dc), entropy.optimal_table(ac)


def dht_bytes(table: HuffmanTable) -> int:
    """Bytes of a table as in a DHT segment: 16 BITS counts + one byte per HUFFVAL symbol."""
    return entropy.MAX_CODE_LENGTH + len(table.huffval)


def stream_bytes(nbits: int) -> int:
    """Bytes of a stream of ``nbits`` bits padded to a whole 16-bit word."""
    return 2 * (-(-nbits // 16))


def entropy_encode(zz: np.ndarray, per_group: int, dc_table: HuffmanTable,
                   ac_table: HuffmanTable) -> tuple[bytes, int]:
    """Run-length + Huffman code ``zz[n, 64]`` (one lane's blocks) into one stream: ``(bytes, bits before
    padding)``; the DC predictor restarts every ``per_group`` blocks.

    MSB first, no byte stuffing, padded with 1-bits to a multiple of 16 bits.
    """
    zz = np.asarray(zz, dtype=np.int64)
    ddc = dc_differences(zz[:, 0], per_group)
    rls = entropy.run_length_symbols(zz, ddc)
    if rls.size.size and int(rls.size.max()) > MAX_SSSS:
        raise UserError(f"magnitude category {int(rls.size.max())} exceeds {MAX_SSSS}")
    packed, nbits = entropy.encode_symbols(rls, np.zeros(len(zz), dtype=np.int64), [dc_table], [ac_table],
                                           jpeg.JPEG_SIZE_FIELD_BITS)
    if len(packed) % 2:
        packed += b"\xff"
    return packed, nbits


def words_of(stream: bytes) -> np.ndarray:
    """The stream as little-endian 16-bit DRAM words: word i = byte 2i | byte 2i+1 << 8 (uint16)."""
    if len(stream) % 2:
        raise UserError(f"stream length {len(stream)} bytes is not a whole number of 16-bit words")
    return np.frombuffer(bytes(stream), dtype="<u2").astype(np.uint16)


def stream_of(words: np.ndarray) -> bytes:
    """Inverse of :func:`words_of`."""
    return np.asarray(words, dtype=np.uint16).astype("<u2").tobytes()


# ---- decoder (bit-exact integers; the RTL copies these) --------------------------------------------------


def decoder_tables(table: HuffmanTable) -> tuple[list[int], list[int], list[int]]:
    """T.81 F.2.2.3 decode tables ``(MINCODE[16], MAXCODE[16], VALPTR[16])`` indexed by length - 1.

    A code of length ``l`` read so far as ``code`` is complete when ``code <= MAXCODE[l-1]``; its symbol is
    ``HUFFVAL[VALPTR[l-1] + code - MINCODE[l-1]]``. Lengths without codes have MAXCODE = -1 (MINCODE and
    VALPTR 0 there).
    """
    mincode, maxcode, valptr = [0] * 16, [-1] * 16, [0] * 16
    code = 0
    j = 0
    for i, n in enumerate(table.bits):
        if n:
            valptr[i] = j
            mincode[i] = code
            code += n
            j += n
            maxcode[i] = code - 1
        code <<= 1
    return mincode, maxcode, valptr


def huffman_decode(stream: bytes, n_blocks: int, per_group: int, dc_table: HuffmanTable,
                   ac_table: HuffmanTable) -> np.ndarray:
    """Decode ``n_blocks`` blocks from the stream: quantized coefficients ``zz[n, 64]`` in zigzag order
    with the DC differences already summed (predictor reset to 0 at every ``per_group``-th block).

    Per block: DC symbol SSSS then SSSS extra bits; AC symbols ``RRRR << 4 | SSSS``: EOB (0x00) ends the
    block, ZRL (0xF0) skips 16 zeros, else skip RRRR zeros and read SSSS extra bits (EXTEND, T.81 F.2.2.1).
    A block whose last coefficient (zigzag 63) is nonzero has no EOB. Raises ValueError on a corrupt stream.
    """
    if n_blocks % per_group:
        raise UserError(f"{n_blocks} blocks are not a whole number of groups of {per_group}")
    reader = entropy.BitReader(bytes(stream))
    dc_lut, ac_lut = entropy.fast_lut(dc_table), entropy.fast_lut(ac_table)
    out = np.zeros((n_blocks, 64), dtype=np.int64)
    extend = entropy.extend
    pred = 0
    for b in range(n_blocks):
        if b % per_group == 0:
            pred = 0
        row = out[b]
        ssss = reader.decode(dc_lut)
        if ssss > MAX_SSSS:
            raise ValueError(f"DC category {ssss} > {MAX_SSSS} in block {b}")
        pred += extend(reader.read(ssss), ssss)
        row[0] = pred
        k = 1
        while k < 64:
            rs = reader.decode(ac_lut)
            run, size = rs >> 4, rs & 15
            if size == 0:
                if run == 15:
                    k += 16
                    if k > 63:
                        raise ValueError(f"ZRL runs past coefficient 63 in block {b}")
                    continue
                if run == 0:
                    break
                raise ValueError(f"invalid AC symbol {rs:#04x} in block {b}")
            k += run
            if k > 63:
                raise ValueError(f"AC run past coefficient 63 in block {b}")
            row[k] = extend(reader.read(size), size)
            k += 1
    if reader.pos > 8 * len(stream):
        raise ValueError(f"stream ends early: {reader.pos} bits decoded from {8 * len(stream)}")
    return out


def dequantize(q: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``F'[u][v] = q[u][v] * Q[u][v]`` on natural-order blocks ``[..., 8, 8]``."""
    return jpeg.dequantize(q, table)


_EXACT_FLOAT_INPUT = 1 << 30
"""Inputs below this magnitude keep every product and 8-term sum of a pass below 2**53 (|C| <= 4017), so the
matrix product may run in float64 (BLAS) and is still exact; larger inputs use int64 arithmetic."""
_C_FLOAT = IDCT_MATRIX.astype(np.float64)


def idct_pass1(coeffs: np.ndarray) -> np.ndarray:
    """Pass 1 along v: ``t[u][x] = (sum_v F'[u][v] C[v][x] + 2**10) >> 11`` (2 fractional bits)."""
    f = np.asarray(coeffs, dtype=np.int64)
    if f.size and int(np.abs(f).max()) >= _EXACT_FLOAT_INPUT:
        s = f @ IDCT_MATRIX
    else:  # one (n*8, 8) x (8, 8) product
        s = (f.reshape(-1, 8).astype(np.float64) @ _C_FLOAT).astype(np.int64).reshape(f.shape)
    return (s + (1 << (IDCT_PASS1_SHIFT - 1))) >> IDCT_PASS1_SHIFT


def idct_pass2(t: np.ndarray) -> np.ndarray:
    """Pass 2 along u: ``r[y][x] = (sum_u t[u][x] C[u][y] + 2**14) >> 15`` (integers, not clamped)."""
    t = np.asarray(t, dtype=np.int64)
    if t.size and int(np.abs(t).max()) >= _EXACT_FLOAT_INPUT:
        s = IDCT_MATRIX.T @ t
    else:  # r^T = t^T C, as one (n*8, 8) x (8, 8) product
        tt = np.swapaxes(t, -1, -2).reshape(-1, 8).astype(np.float64)
        s = np.swapaxes((tt @ _C_FLOAT).astype(np.int64).reshape(t.shape), -1, -2)
    return (s + (1 << (IDCT_PASS2_SHIFT - 1))) >> IDCT_PASS2_SHIFT


def idct_int(coeffs: np.ndarray) -> np.ndarray:
    """The decoder's integer 2-D IDCT of dequantized blocks ``[..., 8, 8]`` -> ``r[..., y, x]`` (unclamped)."""
    coeffs = np.asarray(coeffs)
    if coeffs.shape[-2:] != (8, 8):
        raise UserError(f"IDCT input shape {coeffs.shape} does not end in 8x8 blocks")
    return idct_pass2(idct_pass1(coeffs))


def restore(r: np.ndarray, p: int) -> np.ndarray:
    """``weight = clamp(clamp(r, -2048, 2047) << p, -32768, 32767)`` as int16."""
    if not 0 <= p <= MAX_PRE_SHIFT:
        raise UserError(f"pre-shift {p} is outside 0..{MAX_PRE_SHIFT}")
    s = np.clip(np.asarray(r, dtype=np.int64), SAMPLE_MIN, SAMPLE_MAX)
    return np.clip(s << p, INT16_MIN, INT16_MAX).astype(np.int16)


def decode_quantized(zz: np.ndarray, table: np.ndarray, p: int, out_channels: int, k: int) -> np.ndarray:
    """Everything after the Huffman decoder: unzigzag, dequantize, IDCT, restore, unblock -> int16 W[O, K]."""
    q = jpeg.unzigzag(np.asarray(zz, dtype=np.int64))
    return from_blocks(restore(idct_int(dequantize(q, table)), p), out_channels, k)


# ---- the per-layer record --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedLayer:
    """One layer's compressed weights and everything the decoder needs.

    ``lanes``: the twelve lane streams (lane ``j``: blocks ``(g, kb, j)`` in order (g, kb), DC predictor
    restarting at each group), each padded with 1-bits to 16 bits; ``lane_bits``: their lengths before
    padding. Sizes: ``compressed_bytes = sum of the lane streams + table_bytes + HEADER_BYTES``;
    ``table_bytes`` = two DHT-style tables (16 + len(HUFFVAL) each) + 64 bytes of Q. The bias is not
    compressed and not counted here.
    """

    p: int
    qf: int
    out_channels: int
    k: int
    dc_table: HuffmanTable
    ac_table: HuffmanTable
    lanes: tuple[bytes, ...]
    lane_bits: tuple[int, ...]

    def __post_init__(self):
        if len(self.lanes) != LANES or len(self.lane_bits) != LANES:
            raise UserError(f"a coded layer has {LANES} lane streams, got {len(self.lanes)}")

    @property
    def qtable(self) -> np.ndarray:
        return qtable(self.qf)

    @property
    def lane_group_blocks(self) -> int:
        """Blocks of one group in a lane stream (``ceil(K / 64)``): the DC predictor restarts this often."""
        return k_blocks(self.k)

    @property
    def lane_blocks(self) -> int:
        """Blocks per lane stream."""
        return lane_blocks(self.out_channels, self.k)

    @property
    def n_blocks(self) -> int:
        return LANES * self.lane_blocks

    @property
    def stream(self) -> bytes:
        """The lane streams one after the other (as in the container)."""
        return b"".join(self.lanes)

    @property
    def bits(self) -> int:
        """Coded bits of all lanes, padding excluded."""
        return sum(self.lane_bits)

    def lane_words(self, lane: int) -> np.ndarray:
        """Lane ``lane``'s stream as little-endian 16-bit DRAM words."""
        return words_of(self.lanes[lane])

    @property
    def words(self) -> np.ndarray:
        """All lane streams as 16-bit words, lane after lane."""
        return words_of(self.stream)

    @property
    def table_bytes(self) -> int:
        return dht_bytes(self.dc_table) + dht_bytes(self.ac_table) + QTABLE_BYTES

    @property
    def compressed_bytes(self) -> int:
        return len(self.stream) + self.table_bytes + HEADER_BYTES

    @property
    def raw_bytes(self) -> int:
        return 2 * self.out_channels * self.k

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.compressed_bytes

    def to_bytes(self) -> bytes:
        """The container: header (p, QF, 0, 0, twelve lane lengths in words), DC BITS[16] + HUFFVAL, AC
        BITS[16] + HUFFVAL, Q in zigzag order (64 bytes, as in a DQT), the lane streams.
        ``len == compressed_bytes``."""
        head = struct.pack("<BBH", self.p, self.qf, 0)
        head += struct.pack(f"<{LANES}I", *(len(lane) // 2 for lane in self.lanes))
        tables = (bytes(self.dc_table.bits) + bytes(self.dc_table.huffval) + bytes(self.ac_table.bits)
                  + bytes(self.ac_table.huffval) + bytes(jpeg.zigzag(self.qtable).astype(np.uint8).tolist()))
        return head + tables + self.stream

    @classmethod
    def from_bytes(cls, data: bytes, out_channels: int, k: int) -> EncodedLayer:
        """Parse :meth:`to_bytes` (O and K come from the layer descriptor)."""
        data = bytes(data)
        if len(data) < HEADER_BYTES + 2 * 16 + QTABLE_BYTES:
            raise UserError(f"weight container of {len(data)} bytes is too short")
        p, qf, _ = struct.unpack_from("<BBH", data, 0)
        lengths = struct.unpack_from(f"<{LANES}I", data, 4)
        pos = HEADER_BYTES
        tables = []
        for _ in range(2):
            bits = tuple(data[pos:pos + 16])
            n = sum(bits)
            tables.append(HuffmanTable(bits=bits, huffval=tuple(data[pos + 16:pos + 16 + n])))
            pos += 16 + n
        q = jpeg.unzigzag(np.frombuffer(data[pos:pos + 64], dtype=np.uint8).astype(np.int64))
        check_qf(qf)
        if not np.array_equal(q, qtable(qf)):
            raise UserError(f"weight container's Q table is not the table of QF {qf}")
        pos += 64
        if pos + 2 * sum(lengths) != len(data):
            raise UserError(f"weight container's lane lengths ({2 * sum(lengths)} bytes) do not match its "
                            f"{len(data) - pos} stream bytes")
        lanes = []
        for n in lengths:
            lanes.append(data[pos:pos + 2 * n])
            pos += 2 * n
        return cls(p=p, qf=qf, out_channels=out_channels, k=k, dc_table=tables[0], ac_table=tables[1],
                   lanes=tuple(lanes), lane_bits=tuple(8 * len(lane) for lane in lanes))


def encode_quantized(zz: np.ndarray, p: int, qf: int, out_channels: int, k: int,
                     tables: tuple[HuffmanTable, HuffmanTable] | None = None) -> EncodedLayer:
    """Entropy-code quantized blocks ``zz[n, 64]`` (block order (g, kb, j), zigzag) into the twelve lane
    streams, with the optimal tables over all lanes unless ``tables = (dc, ac)`` is given."""
    zz = np.asarray(zz, dtype=np.int64)
    nb = lane_blocks(out_channels, k)
    if zz.shape != (LANES * nb, 64):
        raise UserError(f"{zz.shape[0]} blocks do not make a {out_channels} x {k} layer (need {LANES * nb})")
    per_group = k_blocks(k)
    lz = zz[lane_order(out_channels, k)]
    dc_t, ac_t = huffman_tables(lz, per_group) if tables is None else tables
    coded = [entropy_encode(lz[j * nb:(j + 1) * nb], per_group, dc_t, ac_t) for j in range(LANES)]
    return EncodedLayer(p=int(p), qf=int(qf), out_channels=out_channels, k=k, dc_table=dc_t, ac_table=ac_t,
                        lanes=tuple(c[0] for c in coded), lane_bits=tuple(c[1] for c in coded))


def encode_layer(w: np.ndarray, qf: int) -> EncodedLayer:
    """Compress one layer's int16 weights (``w.reshape(O, -1)``) at quality ``qf``."""
    w = weight_matrix(w)
    return Prepared.of(w).encode(qf)


def decode_lane(enc: EncodedLayer, lane: int) -> np.ndarray:
    """Huffman-decode one lane stream: its quantized blocks ``zz[lane_blocks, 64]`` (zigzag, DC summed)."""
    return huffman_decode(enc.lanes[lane], enc.lane_blocks, enc.lane_group_blocks, enc.dc_table, enc.ac_table)


def decode_zz(enc: EncodedLayer) -> np.ndarray:
    """Huffman-decode all lanes: quantized blocks ``zz[n, 64]`` in block order (g, kb, j)."""
    zz = np.zeros((enc.n_blocks, 64), dtype=np.int64)
    zz[lane_order(enc.out_channels, enc.k)] = np.concatenate([decode_lane(enc, j) for j in range(LANES)])
    return zz


def decode_layer(enc: EncodedLayer) -> np.ndarray:
    """The golden decoder: stream -> int16 ``W[O, K]`` (padding dropped), bit-exact with the RTL."""
    return decode_quantized(decode_zz(enc), enc.qtable, enc.p, enc.out_channels, enc.k)


# ---- per-layer analysis: prepared once, evaluated per QF -------------------------------------------------


def lane_histograms(lz: np.ndarray, per_group: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol counts of each lane of ``lz`` (blocks in lane order, :func:`lane_order`):
    ``(dc[12, 16], ac[12, 256], extra_bits[12])``."""
    lz = np.asarray(lz, dtype=np.int64)
    nb = len(lz) // LANES
    hists = [symbol_histograms(lz[j * nb:(j + 1) * nb], per_group) for j in range(LANES)]
    return (np.stack([h[0] for h in hists]), np.stack([h[1] for h in hists]),
            np.array([h[2] for h in hists], dtype=np.int64))


def coded_size(lz: np.ndarray, per_group: int, hists=None) -> tuple[int, int]:
    """Exact ``(stream_bytes, table_bytes)`` of blocks in lane order coded with their optimal tables: the
    twelve lane streams, each padded to 16 bits, without packing them. ``hists`` (from
    :func:`lane_histograms`, possibly summed over chunks of whole groups) skips the counting."""
    dc, ac, extra = lane_histograms(lz, per_group) if hists is None else hists
    dc_t, ac_t = entropy.optimal_table(dc.sum(axis=0)), entropy.optimal_table(ac.sum(axis=0))
    sb = sum(stream_bytes(entropy.coded_bits(dc[j][None], ac[j][None], int(extra[j]), [dc_t], [ac_t]))
             for j in range(LANES))
    return sb, dht_bytes(dc_t) + dht_bytes(ac_t) + QTABLE_BYTES


@dataclass(frozen=True)
class LayerResult:
    """Size and error of one layer at one QF (all sizes in bytes, errors in int16 units)."""

    qf: int
    p: int
    out_channels: int
    k: int
    raw_bytes: int
    stream_bytes: int
    table_bytes: int
    compressed_bytes: int
    rmse: float
    max_abs_error: int
    weight_range: int

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.compressed_bytes

    @property
    def rel_rmse(self) -> float:
        """RMSE over the weight range (max - min of the original weights; 0 for a constant layer)."""
        return self.rmse / self.weight_range if self.weight_range else 0.0

    @property
    def rel_max_abs_error(self) -> float:
        return self.max_abs_error / self.weight_range if self.weight_range else 0.0

    def as_dict(self) -> dict:
        return dict(qf=self.qf, p=self.p, O=self.out_channels, K=self.k, raw_bytes=self.raw_bytes,
                    stream_bytes=self.stream_bytes, table_bytes=self.table_bytes,
                    header_bytes=HEADER_BYTES, compressed_bytes=self.compressed_bytes, ratio=self.ratio,
                    rmse=self.rmse, max_abs_error=self.max_abs_error, rel_rmse=self.rel_rmse,
                    rel_max_abs_error=self.rel_max_abs_error)


def weight_error(w: np.ndarray, decoded: np.ndarray) -> tuple[float, int, int]:
    """``(rmse, max_abs_error, weight_range)`` of decoded weights against the originals (int16 units)."""
    w = np.asarray(w, dtype=np.int64)
    d = np.asarray(decoded, dtype=np.int64) - w
    return float(np.sqrt(np.mean(d.astype(np.float64) ** 2))), int(np.abs(d).max()), int(w.max() - w.min())


@dataclass(frozen=True)
class Prepared:
    """A layer transformed up to the DCT (independent of QF): ``w[O, K]``, ``p`` and ``coeffs[n, 8, 8]``."""

    w: np.ndarray
    p: int
    coeffs: np.ndarray

    @classmethod
    def of(cls, w: np.ndarray) -> Prepared:
        w = weight_matrix(w)
        p = pre_shift(w)
        return cls(w=w, p=p, coeffs=forward_dct(to_blocks(to_samples(w, p))))

    @property
    def out_channels(self) -> int:
        return self.w.shape[0]

    @property
    def k(self) -> int:
        return self.w.shape[1]

    @cached_property
    def order(self) -> np.ndarray:
        return lane_order(self.out_channels, self.k)

    def quantized(self, qf: int) -> np.ndarray:
        """Quantized blocks in zigzag order ``zz[n, 64]``."""
        return jpeg.zigzag(quantize(self.coeffs, qtable(check_qf(qf))))

    def encode(self, qf: int) -> EncodedLayer:
        return encode_quantized(self.quantized(qf), self.p, qf, self.out_channels, self.k)

    def at_qf(self, qf: int, with_weights: bool = True) -> tuple[LayerResult, np.ndarray | None]:
        """Exact size (from symbol counts) and the decoded weights at ``qf`` without packing the streams."""
        zz = self.quantized(qf)
        sb, tb = coded_size(zz[self.order], k_blocks(self.k))
        decoded = decode_quantized(zz, qtable(qf), self.p, self.out_channels, self.k)
        rmse, mx, rng = weight_error(self.w, decoded)
        res = LayerResult(qf=int(qf), p=self.p, out_channels=self.out_channels, k=self.k,
                          raw_bytes=2 * self.w.size, stream_bytes=sb, table_bytes=tb,
                          compressed_bytes=sb + tb + HEADER_BYTES, rmse=rmse, max_abs_error=mx,
                          weight_range=rng)
        return res, (decoded if with_weights else None)


def layer_report(w: np.ndarray, enc: EncodedLayer) -> LayerResult:
    """Size and weight error of an encoded layer, decoded with the bit-exact decoder."""
    w = weight_matrix(w)
    rmse, mx, rng = weight_error(w, decode_layer(enc))
    return LayerResult(qf=enc.qf, p=enc.p, out_channels=enc.out_channels, k=enc.k, raw_bytes=enc.raw_bytes,
                       stream_bytes=len(enc.stream), table_bytes=enc.table_bytes,
                       compressed_bytes=enc.compressed_bytes, rmse=rmse, max_abs_error=mx, weight_range=rng)
