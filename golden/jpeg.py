"""Bit-exact baseline JPEG encoder (the golden model of the RTL encoder) and a decoder for round trips.

Pipeline, one function per stage so the RTL testbench can check each one:

=================  ===========================================================================  ==========
stage              arithmetic                                                                   output
=================  ===========================================================================  ==========
colour (RGB only)  :func:`rgb_to_ycbcr`: libjpeg's integer JFIF conversion, 16 fractional bits  uint8 x3
subsample (4:2:0)  :func:`downsample_2x2`: ``(a + b + c + d + 2) >> 2``                          uint8
pad + blocks       :func:`pad_plane`, :func:`blockify`: edge replication to whole MCUs            8x8 uint8
level shift        :func:`level_shift`: ``s = p - 128`` (invert the MSB)                          int8
2-D DCT            :func:`dct2_int`: rows then columns with :data:`DCT_MATRIX`, see below         int14
quantize           :func:`quantize_int`: reciprocal multiply, see below                          int11
zigzag             :func:`zigzag`: reorder with :data:`ZIGZAG`                                    64 x int11
DC difference      :func:`dc_differences`: per component, predictor starts at 0                   int12
run length         :func:`golden.entropy.run_length_symbols`: (RRRR, SSSS) + extra bits, ZRL, EOB
Huffman + pack     :func:`golden.entropy.encode_symbols`: codes MSB first, pad with 1-bits
stuff              :func:`golden.entropy.stuff`: 0x00 after each 0xFF
markers            :func:`jfif_header`: SOI APP0(JFIF) DQT SOF0 DHT SOS ... EOI
=================  ===========================================================================  ==========

Fixed-point DCT (all integers, all shifts arithmetic, ``round_shift(x, s) = (x + 2**(s-1)) >> s``,
i.e. round half up as in :mod:`golden.fixedpoint`):

* ``DCT_MATRIX[u, x] = round(2**13 * C(u)/2 * cos((2x+1) u pi / 16))``, ``C(0) = 1/sqrt(2)``, else 1;
  13-bit signed constants, ``|K| <= 4017``; only 7 distinct magnitudes (2896, 4017, 3406, 2276, 799, 3784,
  1567) and ``K[u, 7-x] = (-1)**u K[u, x]`` exactly, so an even/odd butterfly gives the same sums.
* input ``s[y, x]`` = level-shifted samples, int8 (-128..127).
* row pass: ``t[y, u] = round_shift(sum_x K[u, x] s[y, x], 7)``; the sum fits 23 bits signed
  (``|sum| <= 128 * 23168 < 2**22``); ``t`` keeps 6 fractional bits and fits int16 (``|t| <= 23168``).
* column pass: ``c[v, u] = round_shift(sum_y K[v, y] t[y, u], 16)``; the sum fits 30 bits signed
  (``|sum| <= 23168**2 < 2**29``). ``c`` is 8 times the DCT coefficient ``F[v, u]`` (vertical frequency
  ``v``, horizontal ``u``) with 3 fractional bits, as in libjpeg; it fits 14 bits signed: DC in
  -8190..8126, AC within +-8158 (exact bounds: :func:`dct_output_bounds`).
* Accuracy: ``|c/8 - F_float| <= 0.307`` in the worst case (the tests prove the bound from the
  constants' errors, the row rounding and the final rounding); 0.25 on camera.png, 0.13 on noise.

Quantizer (no division): ``q = sign(c) * ((|c| * R[Q] + 2**23) >> 24)``, ``R[Q] = ceil(2**21 / Q)``
(22-bit unsigned, ``R[1] = 2**21``); ``|c| * R <= 2**34`` (35-bit product). This equals the rounding
division of the DCT coefficient, ``sign(c) * floor(|c| / (8 Q) + 1/2)`` (round half away from zero), for
every ``|c| <= 8192`` and ``Q`` in 1..255, checked exhaustively by the tests. Rounding ``R`` to nearest
(``round(2**21/Q)``) is never exact, whatever the shift: when ``R`` rounds down, exact ties fall below
the half; rounding ``R`` up fixes that, and ``S = 24`` is the smallest shift with no other error.
Quantized values: DC -1024..1016, AC within +-1020, so SSSS <= 10 for AC (the standard tables suffice)
and <= 11 for DC differences. Keeping 3 fractional bits before the quantizer (instead of rounding the
DCT to integers) matters: double rounding biases ties away from zero and cost 1% in size at QF 75.

Quantization tables are T.81 K.1 scaled by the IJG rule (libjpeg's ``jpeg_quality_scaling``):
``scale = 5000 // QF`` for ``QF < 50`` else ``200 - 2 QF``; ``entry = clamp((T * scale + 50) // 100, 1, 255)``.

Colour images: JFIF YCbCr, component ids 1, 2, 3; Y uses table set 0 (luminance quantization and
Huffman tables), Cb and Cr table set 1; 4:4:4 (all sampling factors 1) or 4:2:0 (Y 2x2). The scan is
interleaved: an MCU holds Y blocks in raster order, then Cb, then Cr. Grayscale is one component
(id 1) in a non-interleaved scan. Sizes that are not multiples of the MCU are padded by replicating the
last row/column (a decoder crops them away). No restart markers.

Speed: the DCT of all blocks is one float64 matrix product, exact because every product and partial sum
is an integer below 2**53; the entropy stage is vectorised (:mod:`golden.entropy`). Because the DCT does
not depend on QF, :func:`forward_dct` is computed once and :func:`quantize_image` plus
:func:`scan_bits` (size only, from symbol counts) run per QF.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from golden import entropy
from golden.entropy import HuffmanTable
from golden.errors import UserError

QF_MIN = 1
QF_MAX = 100

# ---- constants ---------------------------------------------------------------------------------------

LUMINANCE_QTABLE = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61],
    [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77],
    [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101],
    [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=np.int64)
"""T.81 Table K.1, natural (row-major, [v, u]) order."""

CHROMINANCE_QTABLE = np.array([
    [17, 18, 24, 47, 99, 99, 99, 99],
    [18, 21, 26, 66, 99, 99, 99, 99],
    [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
    [99, 99, 99, 99, 99, 99, 99, 99],
], dtype=np.int64)
"""T.81 Table K.2, natural order."""


def _zigzag_order() -> np.ndarray:
    # Walk the anti-diagonals d = v + u; odd diagonals go down-left (v increasing), even ones up-right.
    order = sorted(((v, u) for v in range(8) for u in range(8)),
                   key=lambda p: (p[0] + p[1], p[0] if (p[0] + p[1]) % 2 else p[1]))
    return np.array([8 * v + u for v, u in order], dtype=np.int64)


ZIGZAG = _zigzag_order()
"""``ZIGZAG[k]`` = natural index (``8 v + u``) of the coefficient sent ``k``-th (T.81 Figure A.6)."""
UNZIGZAG = np.argsort(ZIGZAG)
"""``UNZIGZAG[n]`` = zigzag position of natural index ``n``."""

DCT_CONST_BITS = 13
"""Fractional bits of the DCT constants."""
DCT_ROW_FRAC_BITS = 6
"""Fractional bits kept between the row and the column pass."""
DCT_ROW_SHIFT = DCT_CONST_BITS - DCT_ROW_FRAC_BITS  # 7
DCT_OUT_FRAC_BITS = 3
"""Fractional bits of the DCT output (it is 8 times the DCT coefficient, like libjpeg's)."""
DCT_COL_SHIFT = DCT_CONST_BITS + DCT_ROW_FRAC_BITS - DCT_OUT_FRAC_BITS  # 16


def _dct_basis() -> np.ndarray:
    k = np.arange(8)
    c = np.where(k == 0, 1 / math.sqrt(2), 1.0)
    return (c[:, None] / 2) * np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16)


DCT_BASIS = _dct_basis()
"""Orthonormal float DCT-II matrix ``A[u, x]`` (the reference; ``F = A s A^T``)."""
DCT_MATRIX = np.round(DCT_BASIS * 2**DCT_CONST_BITS).astype(np.int64)
"""Integer DCT constants ``K[u, x] = round(2**13 A[u, x])`` (13-bit signed)."""

QUANT_SHIFT = 24
"""``S`` of the reciprocal quantizer: ``q = (|c| R + 2**(S-1)) >> S``, ``R = ceil(2**(S-3) / Q)``."""
MAX_DCT_MAGNITUDE = 8192
"""Largest ``|F|`` the integer DCT produces (the DC of an all-0 block is -8192 = 8 * -1024)."""

SUBSAMPLINGS = ("444", "420")


# ---- argument checks ---------------------------------------------------------------------------------


def check_qf(qf: int) -> int:
    if isinstance(qf, bool) or not isinstance(qf, (int, np.integer)) or not QF_MIN <= qf <= QF_MAX:
        raise UserError(f"JPEG quality factor {qf!r} is outside {QF_MIN}..{QF_MAX}")
    return int(qf)


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as uint8 [H, W] or [H, W, 3]; anything else raises UserError."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UserError(f"JPEG input dtype {image.dtype} is not allowed: need uint8 samples (0..255)")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise UserError(f"JPEG input shape {image.shape} is not allowed: need [H, W] or [H, W, 3]")
    h, w = image.shape[:2]
    if not (1 <= h <= 65535 and 1 <= w <= 65535):
        raise UserError(f"JPEG image size {h}x{w} is outside 1..65535 per side")
    return image


def check_subsampling(subsampling: str) -> str:
    if subsampling not in SUBSAMPLINGS:
        raise UserError(f"chroma subsampling {subsampling!r} is not one of {', '.join(SUBSAMPLINGS)}")
    return subsampling


# ---- quantization tables -----------------------------------------------------------------------------


def scale_qtable(base: np.ndarray, qf: int) -> np.ndarray:
    """IJG quality scaling of a base table (libjpeg ``jpeg_set_quality`` with ``force_baseline``)."""
    qf = check_qf(qf)
    scale = 5000 // qf if qf < 50 else 200 - 2 * qf
    return np.clip((np.asarray(base, dtype=np.int64) * scale + 50) // 100, 1, 255)


def quant_tables(qf: int) -> tuple[np.ndarray, np.ndarray]:
    """``(luminance, chrominance)`` quantization tables for ``qf``, natural order."""
    return scale_qtable(LUMINANCE_QTABLE, qf), scale_qtable(CHROMINANCE_QTABLE, qf)


def reciprocal(qtable: np.ndarray) -> np.ndarray:
    """``R = ceil(2**21 / Q)``: the quantizer's multiplier per table entry (22 bits unsigned, <= 2**21)."""
    q = np.asarray(qtable, dtype=np.int64)
    if q.min() < 1 or q.max() > 255:
        raise UserError(f"quantization table entry {int(q.min()) if q.min() < 1 else int(q.max())} "
                        "is outside 1..255")
    return -((-(1 << (QUANT_SHIFT - DCT_OUT_FRAC_BITS))) // q)


# ---- pixel stages ------------------------------------------------------------------------------------

_FIX16 = {c: int(c * 65536 + 0.5) for c in (0.29900, 0.58700, 0.11400, 0.16874, 0.33126, 0.5,
                                             0.41869, 0.08131)}
YCC_SHIFT = 16
"""Fractional bits of the colour conversion's constants."""
RGB_TO_YCC = np.array([
    [_FIX16[0.29900], _FIX16[0.58700], _FIX16[0.11400]],
    [-_FIX16[0.16874], -_FIX16[0.33126], _FIX16[0.5]],
    [_FIX16[0.5], -_FIX16[0.41869], -_FIX16[0.08131]],
], dtype=np.int64)
"""``[[19595, 38470, 7471], [-11059, -21709, 32768], [32768, -27439, -5329]]``: rows Y, Cb, Cr; columns R, G, B."""
YCC_OFFSETS = (1 << (YCC_SHIFT - 1), (128 << YCC_SHIFT) + (1 << (YCC_SHIFT - 1)) - 1,
               (128 << YCC_SHIFT) + (1 << (YCC_SHIFT - 1)) - 1)
"""Added before the shift: rounding for Y; the 128 offset and libjpeg's "0.5 - epsilon" rounding for Cb, Cr."""


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JFIF RGB -> YCbCr in integers, bit-exact with libjpeg's ``rgb_ycc_convert``.

    Constants ``FIX(c) = int(c * 2**16 + 0.5)``: Y = 19595 R + 38470 G + 7471 B, Cb = -11059 R - 21709 G
    + 32768 B, Cr = 32768 R - 27439 G - 5329 B. ``Y = (sum + 2**15) >> 16``; ``Cb, Cr = (sum + (128 << 16)
    + 2**15 - 1) >> 16`` (libjpeg's rounding "0.5 - epsilon", so no clamp is needed). Returns uint8
    [H, W, 3].
    """
    r, g, b = (np.asarray(rgb[..., i], dtype=np.int64) for i in range(3))
    k = RGB_TO_YCC
    out = [(k[c, 0] * r + k[c, 1] * g + k[c, 2] * b + YCC_OFFSETS[c]) >> YCC_SHIFT for c in range(3)]
    return np.stack(out, axis=-1).astype(np.uint8)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """JFIF YCbCr -> RGB (float, rounded and clamped to uint8); used by the decoder only."""
    y, cb, cr = (np.asarray(ycc[..., i], dtype=np.float64) for i in range(3))
    cb = cb - 128.0
    cr = cr - 128.0
    rgb = np.stack([y + 1.402 * cr, y - 0.344136286 * cb - 0.714136286 * cr, y + 1.772 * cb], axis=-1)
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)


def pad_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Extend a 2-D plane to ``height x width`` by replicating its last row and column."""
    plane = np.asarray(plane)
    h, w = plane.shape
    return np.pad(plane, ((0, height - h), (0, width - w)), mode="edge")


def downsample_2x2(plane: np.ndarray) -> np.ndarray:
    """Average 2x2 cells (even-sized plane): ``(a + b + c + d + 2) >> 2`` (round half up)."""
    p = np.asarray(plane, dtype=np.int64)
    s = p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2]
    return ((s + 2) >> 2).astype(np.uint8)


def blockify(plane: np.ndarray) -> np.ndarray:
    """A plane whose sides are multiples of 8 -> blocks ``[rows, cols, 8, 8]`` (raster block order)."""
    plane = np.asarray(plane)
    h, w = plane.shape
    if h % 8 or w % 8:
        raise UserError(f"plane size {h}x{w} is not a multiple of 8 (pad it first)")
    return plane.reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2)


def unblockify(blocks: np.ndarray) -> np.ndarray:
    """Inverse of :func:`blockify`."""
    r, c = blocks.shape[:2]
    return blocks.swapaxes(1, 2).reshape(8 * r, 8 * c)


def level_shift(samples: np.ndarray) -> np.ndarray:
    """8-bit unsigned samples -> signed: ``s = p - 128`` (int64 array; hardware: invert the MSB)."""
    return np.asarray(samples, dtype=np.int64) - 128


# ---- DCT and quantization ----------------------------------------------------------------------------


def round_shift(x: np.ndarray, shift: int) -> np.ndarray:
    """``(x + 2**(shift-1)) >> shift``: round half up, arithmetic shift (int64)."""
    return (np.asarray(x, dtype=np.int64) + (1 << (shift - 1))) >> shift


def dct_rows(blocks: np.ndarray) -> np.ndarray:
    """Row pass: ``t[..., y, u] = round_shift(sum_x K[u, x] s[..., y, x], 7)`` (int16 range)."""
    s = np.asarray(blocks, dtype=np.float64)
    # float64 is exact here: |products| < 2**20, |sums| < 2**23.
    return round_shift((s @ DCT_MATRIX.T.astype(np.float64)).astype(np.int64), DCT_ROW_SHIFT)


def dct_columns(rows: np.ndarray) -> np.ndarray:
    """Column pass: ``c[..., v, u] = round_shift(sum_y K[v, y] t[..., y, u], 16)`` (int14 range)."""
    t = np.asarray(rows, dtype=np.float64)
    # float64 is exact here: |sums| < 2**30.
    return round_shift((DCT_MATRIX.astype(np.float64) @ t).astype(np.int64), DCT_COL_SHIFT)


def dct2_int(blocks: np.ndarray) -> np.ndarray:
    """The encoder's 2-D DCT of level-shifted blocks ``[..., 8, 8]`` (int8 values) -> int64 ``[..., 8, 8]``.

    The result is ``8 F`` rounded (3 fractional bits), ``F`` the orthonormal DCT of the block."""
    blocks = np.asarray(blocks)
    if blocks.shape[-2:] != (8, 8):
        raise UserError(f"DCT input shape {blocks.shape} does not end in 8x8 blocks")
    if blocks.size and (blocks.min() < -128 or blocks.max() > 127):
        raise UserError(f"DCT input value {int(blocks.min()) if blocks.min() < -128 else int(blocks.max())} "
                        "is outside the level-shifted range -128..127")
    return dct_columns(dct_rows(blocks))


def dct2_float(blocks: np.ndarray) -> np.ndarray:
    """Reference orthonormal 2-D DCT in float64 (``A s A^T``)."""
    return DCT_BASIS @ np.asarray(blocks, dtype=np.float64) @ DCT_BASIS.T


def idct2_float(coeffs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dct2_float` (``A^T F A``)."""
    return DCT_BASIS.T @ np.asarray(coeffs, dtype=np.float64) @ DCT_BASIS


def dct_output_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(min, max)`` of each coefficient :func:`dct2_int` can output over all int8 blocks.

    Each row's pass is a monotone function of an independent sum, so its extremes are attained; the column
    pass then combines the extremes of independent rows, so these bounds are attained too.
    """
    k = DCT_MATRIX
    row_hi = round_shift(np.maximum(k * 127, k * -128).sum(axis=1), DCT_ROW_SHIFT)  # per u
    row_lo = round_shift(np.minimum(k * 127, k * -128).sum(axis=1), DCT_ROW_SHIFT)
    # column v, row-frequency u: sum_y K[v, y] t[y, u] with t in [row_lo[u], row_hi[u]]
    a = k[:, :, None] * row_lo[None, None, :]
    b = k[:, :, None] * row_hi[None, None, :]
    hi = round_shift(np.maximum(a, b).sum(axis=1), DCT_COL_SHIFT)
    lo = round_shift(np.minimum(a, b).sum(axis=1), DCT_COL_SHIFT)
    return lo, hi


def quantize_int(coeffs: np.ndarray, qtable: np.ndarray) -> np.ndarray:
    """``q = sign(c) * ((|c| * R + 2**23) >> 24)`` with ``R = ceil(2**21 / Q)``.

    Equals the rounding division ``sign(c) * floor(|c| / (8 Q) + 1/2)`` of the DCT output ``c`` (which
    has 3 fractional bits) for all ``|c| <= 8192``. ``coeffs[..., 8, 8]`` natural order, ``qtable[8, 8]``;
    returns int64.
    """
    c = np.asarray(coeffs, dtype=np.int64)
    r = reciprocal(qtable)
    q = (np.abs(c) * r + (1 << (QUANT_SHIFT - 1))) >> QUANT_SHIFT
    return np.where(c < 0, -q, q)


def dequantize(quantized: np.ndarray, qtable: np.ndarray) -> np.ndarray:
    """Decoder side: ``q * Q``."""
    return np.asarray(quantized, dtype=np.int64) * np.asarray(qtable, dtype=np.int64)


def zigzag(blocks: np.ndarray) -> np.ndarray:
    """``[..., 8, 8]`` natural order -> ``[..., 64]`` zigzag order."""
    blocks = np.asarray(blocks)
    return blocks.reshape(*blocks.shape[:-2], 64)[..., ZIGZAG]


def unzigzag(vectors: np.ndarray) -> np.ndarray:
    """``[..., 64]`` zigzag order -> ``[..., 8, 8]`` natural order."""
    vectors = np.asarray(vectors)
    return vectors[..., UNZIGZAG].reshape(*vectors.shape[:-1], 8, 8)


def dc_differences(dc: np.ndarray, component: np.ndarray, n_components: int) -> np.ndarray:
    """DC minus the previous DC of the same component in scan order (the first predictor is 0)."""
    dc = np.asarray(dc, dtype=np.int64)
    diff = np.empty_like(dc)
    for c in range(n_components):
        idx = np.flatnonzero(component == c)
        diff[idx] = np.diff(dc[idx], prepend=0)
    return diff


# ---- frame geometry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DctImage:
    """An image transformed up to the DCT (independent of QF, so compute it once per image).

    ``coeffs[n, 8, 8]``: DCT coefficients of every block in scan (MCU) order; ``component[n]``: the
    component of each block; ``sampling[c] = (H, V)`` factors; ``mcu_rows x mcu_cols`` MCUs.
    """

    height: int
    width: int
    sampling: tuple[tuple[int, int], ...]
    mcu_rows: int
    mcu_cols: int
    coeffs: np.ndarray
    component: np.ndarray

    @property
    def n_components(self) -> int:
        return len(self.sampling)

    @property
    def table_set(self) -> np.ndarray:
        """Table set of each block: 0 (luminance) for component 0, 1 (chrominance) for the others."""
        return (self.component > 0).astype(np.int64)


def component_planes(image: np.ndarray, subsampling: str = "444"
                     ) -> tuple[list[np.ndarray], tuple[tuple[int, int], ...], int, int]:
    """Colour conversion, padding to whole MCUs and subsampling: ``(planes, sampling, mcu_rows, mcu_cols)``.

    Each plane is uint8 with sides ``8 * V * mcu_rows`` x ``8 * H * mcu_cols``.
    """
    image = check_image(image)
    check_subsampling(subsampling)
    h, w = image.shape[:2]
    if image.ndim == 2:
        my, mx = -(-h // 8), -(-w // 8)
        return [pad_plane(image, 8 * my, 8 * mx)], ((1, 1),), my, mx
    ycc = rgb_to_ycbcr(image)
    if subsampling == "444":
        my, mx = -(-h // 8), -(-w // 8)
        planes = [pad_plane(ycc[..., i], 8 * my, 8 * mx) for i in range(3)]
        return planes, ((1, 1), (1, 1), (1, 1)), my, mx
    my, mx = -(-h // 16), -(-w // 16)
    full = [pad_plane(ycc[..., i], 16 * my, 16 * mx) for i in range(3)]
    return [full[0], downsample_2x2(full[1]), downsample_2x2(full[2])], ((2, 2), (1, 1), (1, 1)), my, mx


def mcu_size(subsampling: str) -> int:
    """Side of an MCU in pixels for a colour image: 8 (4:4:4) or 16 (4:2:0)."""
    return 8 if check_subsampling(subsampling) == "444" else 16


def mcu_pixels(image: np.ndarray, subsampling: str = "444") -> np.ndarray:
    """An RGB image -> its pixels in MCU order, uint8 ``[n, 3]``: padded to whole MCUs by edge replication,
    MCUs in raster order, pixels in raster order inside each MCU (8 x 8 or 16 x 16). The input of the
    encoder's colour stage (``hw.jpeg.colour``); :func:`colour_stage` is its golden twin."""
    image = check_image(image)
    if image.ndim != 3:
        raise UserError(f"MCU pixels need a colour image [H, W, 3], got shape {image.shape}")
    m = mcu_size(subsampling)
    h, w = image.shape[:2]
    my, mx = -(-h // m), -(-w // m)
    padded = np.stack([pad_plane(image[..., c], m * my, m * mx) for c in range(3)], axis=-1)
    return padded.reshape(my, m, mx, m, 3).swapaxes(1, 2).reshape(-1, 3)


def colour_stage(pixels: np.ndarray, subsampling: str = "444") -> np.ndarray:
    """The colour stage on MCU-ordered RGB pixels (:func:`mcu_pixels`): per MCU, :func:`rgb_to_ycbcr`, for
    4:2:0 :func:`downsample_2x2` of Cb and Cr, and the MCU's blocks in scan order (Y blocks in raster order,
    Cb, Cr), samples in raster order in each block. uint8 ``[n_mcus * blocks_per_mcu * 64]``: the same stream
    as :func:`mcu_order` of :func:`component_planes` (converting after padding equals padding after
    converting: the conversion is per pixel)."""
    m = mcu_size(subsampling)
    ycc = rgb_to_ycbcr(np.asarray(pixels).reshape(-1, m, m, 3))
    if m == 8:
        blocks = ycc.transpose(0, 3, 1, 2)                             # [n, 3, 8, 8]: Y, Cb, Cr
    else:
        y = ycc[..., 0].reshape(-1, 2, 8, 2, 8).swapaxes(2, 3).reshape(-1, 4, 8, 8)
        chroma = [np.stack([downsample_2x2(p) for p in ycc[..., c]]) for c in (1, 2)]
        blocks = np.concatenate([y, chroma[0][:, None], chroma[1][:, None]], axis=1)
    return blocks.reshape(-1).astype(np.uint8)


def mcu_order(component_blocks: list[np.ndarray], sampling: tuple[tuple[int, int], ...],
              mcu_rows: int, mcu_cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Interleave per-component block grids ``[rows, cols, ...]`` into scan order.

    Returns ``(blocks[n, ...], component[n])``: for each MCU (raster order), each component's ``V x H``
    blocks in raster order.
    """
    parts = []
    comps = []
    for c, (blocks, (hs, vs)) in enumerate(zip(component_blocks, sampling, strict=True)):
        tail = blocks.shape[2:]
        b = blocks.reshape(mcu_rows, vs, mcu_cols, hs, *tail).swapaxes(1, 2)
        parts.append(b.reshape(mcu_rows * mcu_cols, vs * hs, *tail))
        comps.append(np.full(vs * hs, c, dtype=np.int64))
    blocks = np.concatenate(parts, axis=1)
    n_mcu = mcu_rows * mcu_cols
    return blocks.reshape(-1, *blocks.shape[2:]), np.tile(np.concatenate(comps), n_mcu)


def mcu_unorder(blocks: np.ndarray, sampling: tuple[tuple[int, int], ...], mcu_rows: int,
                mcu_cols: int) -> list[np.ndarray]:
    """Inverse of :func:`mcu_order`: per-component block grids ``[rows, cols, ...]``."""
    per_mcu = sum(h * v for h, v in sampling)
    tail = blocks.shape[1:]
    b = blocks.reshape(mcu_rows * mcu_cols, per_mcu, *tail)
    out = []
    start = 0
    for hs, vs in sampling:
        part = b[:, start:start + hs * vs].reshape(mcu_rows, mcu_cols, vs, hs, *tail).swapaxes(1, 2)
        out.append(part.reshape(mcu_rows * vs, mcu_cols * hs, *tail))
        start += hs * vs
    return out


def forward_dct(image: np.ndarray, subsampling: str = "444") -> DctImage:
    """Every stage up to the DCT: colour, subsample, pad, blocks, level shift, :func:`dct2_int`."""
    image = check_image(image)
    planes, sampling, my, mx = component_planes(image, subsampling)
    grids = [blockify(p) for p in planes]
    blocks, component = mcu_order(grids, sampling, my, mx)
    coeffs = dct2_int(level_shift(blocks))
    return DctImage(height=image.shape[0], width=image.shape[1], sampling=sampling, mcu_rows=my,
                    mcu_cols=mx, coeffs=coeffs, component=component)


# ---- quantized image and entropy coding --------------------------------------------------------------


@dataclass(frozen=True)
class QuantizedImage:
    """Quantized coefficients in zigzag order ``zz[n, 64]`` (scan order) plus what the header needs."""

    dct: DctImage
    qf: int
    qtables: tuple[np.ndarray, ...]  # per table set, natural order
    zz: np.ndarray

    def dc_diff(self) -> np.ndarray:
        return dc_differences(self.zz[:, 0], self.dct.component, self.dct.n_components)


def quantize_image(dct: DctImage, qf: int) -> QuantizedImage:
    """Quantize every block with its component's table for ``qf`` and zigzag it."""
    luma, chroma = quant_tables(qf)
    qtables = (luma,) if dct.n_components == 1 else (luma, chroma)
    q = np.empty_like(dct.coeffs)
    for t, table in enumerate(qtables):
        sel = dct.table_set == t
        q[sel] = quantize_int(dct.coeffs[sel], table)
    return QuantizedImage(dct=dct, qf=check_qf(qf), qtables=qtables, zz=zigzag(q))


JPEG_SIZE_FIELD_BITS = 4
"""JPEG AC symbols are ``(RRRR << 4) | SSSS``."""


def symbol_histograms(qimg: QuantizedImage) -> tuple[np.ndarray, np.ndarray, int]:
    """``(dc_hist[set, 16], ac_hist[set, 256], extra_bits)`` of the scan (no ordering, no packing)."""
    n_sets = len(qimg.qtables)
    dc, ac, extra, _ = entropy.symbol_histograms(qimg.zz, qimg.dc_diff(), qimg.dct.table_set, n_sets,
                                                 JPEG_SIZE_FIELD_BITS)
    return dc, ac, extra


def huffman_tables(qimg: QuantizedImage, optimize: bool = False
                   ) -> tuple[list[HuffmanTable], list[HuffmanTable]]:
    """``(dc_tables, ac_tables)`` per table set: Annex K.3 standard ones, or optimal for this image."""
    n_sets = len(qimg.qtables)
    if not optimize:
        return ([entropy.STD_DC_LUMINANCE, entropy.STD_DC_CHROMINANCE][:n_sets],
                [entropy.STD_AC_LUMINANCE, entropy.STD_AC_CHROMINANCE][:n_sets])
    dc, ac, _ = symbol_histograms(qimg)
    return [entropy.optimal_table(h) for h in dc], [entropy.optimal_table(h) for h in ac]


def scan_bits(qimg: QuantizedImage, optimize: bool = False) -> int:
    """Exact bit count of the entropy-coded segment before padding and stuffing, from symbol counts only.

    ``len(scan) == ceil(bits / 8) + number of 0xFF bytes`` (stuffing) for the scan :func:`encode_scan`
    makes; the whole file adds :func:`jfif_header`'s length and 2 bytes of EOI.
    """
    dc_hist, ac_hist, extra = symbol_histograms(qimg)
    dc_tables, ac_tables = huffman_tables(qimg, optimize)
    return entropy.coded_bits(dc_hist, ac_hist, extra, dc_tables, ac_tables)


@dataclass(frozen=True)
class Scan:
    """An entropy-coded segment: ``data`` (padded, stuffed), ``bits`` before padding, ``stuffed`` bytes."""

    data: bytes
    bits: int
    stuffed: int
    dc_tables: tuple[HuffmanTable, ...]
    ac_tables: tuple[HuffmanTable, ...]


def encode_scan(qimg: QuantizedImage, optimize: bool = False) -> Scan:
    """Run length, Huffman code, pack and stuff the quantized image."""
    dc_tables, ac_tables = huffman_tables(qimg, optimize)
    rls = entropy.run_length_symbols(qimg.zz, qimg.dc_diff())
    packed, nbits = entropy.encode_symbols(rls, qimg.dct.table_set, dc_tables, ac_tables, JPEG_SIZE_FIELD_BITS)
    stuffed = entropy.stuff(packed)
    return Scan(data=stuffed, bits=nbits, stuffed=len(stuffed) - len(packed), dc_tables=tuple(dc_tables),
                ac_tables=tuple(ac_tables))


# ---- JFIF container ----------------------------------------------------------------------------------


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jfif_header(height: int, width: int, sampling: tuple[tuple[int, int], ...], qtables: tuple[np.ndarray, ...],
                dc_tables: tuple[HuffmanTable, ...] | list[HuffmanTable],
                ac_tables: tuple[HuffmanTable, ...] | list[HuffmanTable]) -> bytes:
    """SOI, APP0 (JFIF 1.01, no density, no thumbnail), DQT, SOF0, DHT, SOS: everything before the scan.

    Component ``c`` has id ``c + 1`` and uses quantization and Huffman table ``0`` if ``c == 0``, else 1.
    """
    out = [b"\xff\xd8", _segment(0xE0, b"JFIF\x00" + bytes([1, 1, 0, 0, 1, 0, 1, 0, 0]))]
    dqt = b"".join(bytes([t]) + np.asarray(q, dtype=np.uint8).reshape(64)[ZIGZAG].tobytes()
                   for t, q in enumerate(qtables))
    out.append(_segment(0xDB, dqt))
    sof = struct.pack(">BHHB", 8, height, width, len(sampling))
    for c, (hs, vs) in enumerate(sampling):
        sof += bytes([c + 1, (hs << 4) | vs, min(c, 1)])
    out.append(_segment(0xC0, sof))
    dht = b"".join(t.dht_payload(0, i) for i, t in enumerate(dc_tables))
    dht += b"".join(t.dht_payload(1, i) for i, t in enumerate(ac_tables))
    out.append(_segment(0xC4, dht))
    sos = bytes([len(sampling)])
    for c in range(len(sampling)):
        sos += bytes([c + 1, (min(c, 1) << 4) | min(c, 1)])
    sos += bytes([0, 63, 0])
    out.append(_segment(0xDA, sos))
    return b"".join(out)


EOI = b"\xff\xd9"


@dataclass(frozen=True)
class JpegEncoding:
    """A whole JFIF file and its parts: ``data == header + scan.data + EOI``."""

    data: bytes
    header: bytes
    scan: Scan
    quantized: QuantizedImage


def encode_quantized(qimg: QuantizedImage, optimize: bool = False) -> JpegEncoding:
    scan = encode_scan(qimg, optimize)
    d = qimg.dct
    header = jfif_header(d.height, d.width, d.sampling, qimg.qtables, scan.dc_tables, scan.ac_tables)
    return JpegEncoding(data=header + scan.data + EOI, header=header, scan=scan, quantized=qimg)


def encode(image: np.ndarray, qf: int, subsampling: str = "444", optimize: bool = False) -> JpegEncoding:
    """Encode a uint8 grayscale [H, W] or RGB [H, W, 3] image as baseline JFIF (see module docstring)."""
    check_qf(qf)
    return encode_quantized(quantize_image(forward_dct(image, subsampling), qf), optimize)


def encode_jpeg(image: np.ndarray, qf: int, subsampling: str = "444", optimize: bool = False) -> bytes:
    """:func:`encode`, returning just the JFIF bytes."""
    return encode(image, qf, subsampling, optimize).data


def header_size(qimg: QuantizedImage, optimize: bool = False) -> int:
    """Bytes of :func:`jfif_header` for this image (depends on the tables only)."""
    dc_tables, ac_tables = huffman_tables(qimg, optimize)
    d = qimg.dct
    return len(jfif_header(d.height, d.width, d.sampling, qimg.qtables, dc_tables, ac_tables))


# ---- reconstruction and decoding ---------------------------------------------------------------------


def reconstruct(qimg: QuantizedImage) -> np.ndarray:
    """Decoded pixels straight from the quantized coefficients (no entropy decoding): what any decoder
    gives up to its IDCT's rounding. Float IDCT, chroma upsampled by replication. uint8 [H, W(, 3)]."""
    return _pixels(qimg.zz, qimg.dct.component, qimg.qtables, qimg.dct.sampling, qimg.dct.mcu_rows,
                   qimg.dct.mcu_cols, qimg.dct.height, qimg.dct.width)


def _pixels(zz: np.ndarray, component: np.ndarray, qtables: tuple[np.ndarray, ...],
            sampling: tuple[tuple[int, int], ...], mcu_rows: int, mcu_cols: int, height: int,
            width: int, table_of_component: list[int] | None = None) -> np.ndarray:
    if table_of_component is None:
        table_of_component = [min(c, 1) for c in range(len(sampling))]
    coeffs = unzigzag(zz).astype(np.float64)
    for c in range(len(sampling)):
        sel = component == c
        coeffs[sel] *= qtables[table_of_component[c]]
    samples = np.clip(np.floor(idct2_float(coeffs) + 128.5), 0, 255)
    grids = mcu_unorder(samples, sampling, mcu_rows, mcu_cols)
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    planes = []
    for grid, (hs, vs) in zip(grids, sampling, strict=True):
        plane = unblockify(grid)
        plane = np.repeat(np.repeat(plane, vmax // vs, axis=0), hmax // hs, axis=1)
        planes.append(plane[:height, :width])
    if len(planes) == 1:
        return planes[0].astype(np.uint8)
    return ycbcr_to_rgb(np.stack(planes, axis=-1))


@dataclass(frozen=True)
class DecodedJpeg:
    """What :func:`decode_coefficients` finds in a baseline file."""

    height: int
    width: int
    sampling: tuple[tuple[int, int], ...]
    qtables: dict[int, np.ndarray]
    table_of_component: list[int]
    mcu_rows: int
    mcu_cols: int
    zz: np.ndarray          # [n, 64] quantized coefficients, scan order
    component: np.ndarray   # [n]


def decode_coefficients(data: bytes) -> DecodedJpeg:
    """Parse a baseline (SOF0) JFIF/JPEG file and entropy-decode its quantized coefficients.

    Supports 8-bit Huffman baseline with one interleaved scan of all components, any sampling factors up
    to 2, no restart intervals.
    """
    if data[:2] != b"\xff\xd8":
        raise UserError("not a JPEG file: it does not start with SOI (FF D8)")
    pos = 2
    qtables: dict[int, np.ndarray] = {}
    dc_luts: dict[int, tuple[list[int], list[int]]] = {}
    ac_luts: dict[int, tuple[list[int], list[int]]] = {}
    frame = None
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise UserError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + length]
        pos += 2 + length
        if marker == 0xDB:
            i = 0
            while i < len(seg):
                if seg[i] >> 4:
                    raise UserError("16-bit quantization tables are not supported")
                table = np.zeros(64, dtype=np.int64)
                table[ZIGZAG] = np.frombuffer(seg[i + 1:i + 65], dtype=np.uint8)
                qtables[seg[i] & 15] = table.reshape(8, 8)
                i += 65
        elif marker == 0xC4:
            i = 0
            while i < len(seg):
                tc, th = seg[i] >> 4, seg[i] & 15
                bits = tuple(seg[i + 1:i + 17])
                n = sum(bits)
                lut = entropy.fast_lut(HuffmanTable(bits=bits, huffval=tuple(seg[i + 17:i + 17 + n])))
                (dc_luts if tc == 0 else ac_luts)[th] = lut
                i += 17 + n
        elif marker == 0xC0:
            _, height, width, nf = struct.unpack(">BHHB", seg[:6])
            comps = [tuple(seg[6 + 3 * c:9 + 3 * c]) for c in range(nf)]
            frame = (height, width, comps)
        elif marker in (0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            raise UserError(f"JPEG frame type FF{marker:02X} is not supported (baseline SOF0 only)")
        elif marker == 0xDD:
            raise UserError("JPEG restart intervals are not supported")
        elif marker == 0xDA:
            break
    if frame is None:
        raise UserError("JPEG file has no SOF0 frame header before its scan")
    height, width, comps = frame
    ns = seg[0]
    scan_comps = [(seg[1 + 2 * i], seg[2 + 2 * i] >> 4, seg[2 + 2 * i] & 15) for i in range(ns)]
    if ns != len(comps):
        raise UserError("JPEG files with more than one scan are not supported")
    ids = [c[0] for c in comps]
    sampling = tuple((c[1] >> 4, c[1] & 15) for c in comps)
    hmax = max(h for h, _ in sampling)
    vmax = max(v for _, v in sampling)
    if ns == 1:
        sampling = ((1, 1),)
        hmax = vmax = 1
    mcu_rows = -(-height // (8 * vmax))
    mcu_cols = -(-width // (8 * hmax))
    # Entropy-coded data runs to the next marker (FF followed by a non-zero byte).
    end = pos
    while True:
        end = data.index(b"\xff", end)
        if data[end + 1] != 0:
            break
        end += 2
    reader = entropy.BitReader(entropy.unstuff(data[pos:end]))
    order = [(ids.index(cid), td, ta) for cid, td, ta in scan_comps]
    per_mcu = [(c, dc_luts[td], ac_luts[ta]) for c, td, ta in order
               for _ in range(sampling[c][0] * sampling[c][1])]
    n_blocks = mcu_rows * mcu_cols * len(per_mcu)
    zz = np.zeros((n_blocks, 64), dtype=np.int64)
    component = np.zeros(n_blocks, dtype=np.int64)
    pred = [0] * len(comps)
    n = 0
    extend = entropy.extend
    for _ in range(mcu_rows * mcu_cols):
        for c, dc_lut, ac_lut in per_mcu:
            row = [0] * 64
            s = reader.decode(dc_lut)
            pred[c] += extend(reader.read(s), s)
            row[0] = pred[c]
            k = 1
            while k < 64:
                rs = reader.decode(ac_lut)
                r, s = rs >> 4, rs & 15
                if s == 0:
                    if r != 15:
                        break
                    k += 16
                    continue
                k += r
                if k > 63:
                    raise UserError(f"corrupt JPEG scan: AC run past the end of block {n}")
                row[k] = extend(reader.read(s), s)
                k += 1
            zz[n] = row
            component[n] = c
            n += 1
    return DecodedJpeg(height=height, width=width, sampling=sampling, qtables=qtables,
                       table_of_component=[c[2] for c in comps], mcu_rows=mcu_rows, mcu_cols=mcu_cols,
                       zz=zz, component=component)


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode a baseline JPEG to uint8 pixels [H, W] or [H, W, 3] (float IDCT; see :func:`reconstruct`)."""
    d = decode_coefficients(data)
    return _pixels(d.zz, d.component, d.qtables, d.sampling, d.mcu_rows, d.mcu_cols, d.height, d.width,
                   d.table_of_component)


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of 8-bit images (inf when equal)."""
    err = np.mean((np.asarray(reference, dtype=np.float64) - np.asarray(test, dtype=np.float64)) ** 2)
    return float("inf") if err == 0 else 10 * math.log10(255.0**2 / err)
