"""golden.jpeg: tables, the fixed-point DCT and quantizer, JFIF output that libjpeg (Pillow) opens,
quality and size against Pillow's own encoder, the size-only path, edge cases and bad input."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from golden import entropy, jpeg
from golden.errors import UserError

QFS = (1, 10, 30, 50, 75, 90, 100)


def _pillow_encode(image: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **kw)
    return buf.getvalue()


def _pillow_decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _dqt(data: bytes) -> list[np.ndarray]:
    """Quantization tables of a JPEG file, natural order."""
    tables, i = [], 2
    while data[i + 1] != 0xDA:
        length = int.from_bytes(data[i + 2:i + 4], "big")
        seg = data[i + 4:i + 2 + length]
        for j in range(0, len(seg) if data[i + 1] == 0xDB else 0, 65):
            tables.append(jpeg.unzigzag(np.frombuffer(seg[j + 1:j + 65], dtype=np.uint8).astype(np.int64)))
        i += 2 + length
    return tables


@pytest.fixture(scope="module")
def noise_image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)


# ---- tables and orders -------------------------------------------------------------------------------


def test_zigzag_order():
    assert jpeg.ZIGZAG[:10].tolist() == [0, 1, 8, 16, 9, 2, 3, 10, 17, 24]
    assert jpeg.ZIGZAG[-3:].tolist() == [55, 62, 63]
    assert sorted(jpeg.ZIGZAG.tolist()) == list(range(64))
    x = np.arange(128).reshape(2, 8, 8)
    assert (jpeg.unzigzag(jpeg.zigzag(x)) == x).all()


@pytest.mark.parametrize("qf", [1, 10, 25, 50, 75, 90, 100])
def test_quant_tables_equal_libjpeg(qf):
    luma, chroma = _dqt(_pillow_encode(np.zeros((8, 8, 3), dtype=np.uint8), quality=qf, subsampling=0))
    ours = jpeg.quant_tables(qf)
    assert (ours[0] == luma).all() and (ours[1] == chroma).all()
    if qf == 50:
        assert (ours[0] == jpeg.LUMINANCE_QTABLE).all()
    if qf == 100:
        assert (ours[0] == 1).all()


# ---- fixed-point DCT ---------------------------------------------------------------------------------


def test_dct_constants():
    k = jpeg.DCT_MATRIX
    assert np.abs(k).max() == 4017 < 2**12  # 13-bit signed
    assert set(np.abs(k).ravel().tolist()) == {2896, 4017, 3406, 2276, 799, 3784, 1567}
    for u in range(8):  # exact even/odd symmetry: a butterfly implementation gives the same sums
        assert (k[u, ::-1] == (-1) ** u * k[u]).all()
    assert (k == np.round(jpeg.DCT_BASIS * 8192)).all()


def _dct_error_bound() -> float:
    """Worst-case |c/8 - F_float|: constants' error over an int8 block, plus the row rounding carried
    through the column pass, plus the final rounding (1/16)."""
    k, a = jpeg.DCT_MATRIX, jpeg.DCT_BASIS
    e = np.einsum("vy,ux->vuyx", k, k) / 2**26 - np.einsum("vy,ux->vuyx", a, a)
    row = np.abs(k).sum(axis=1)[:, None] / 2**13 * 2.0**-7
    return float((128 * np.abs(e).sum(axis=(2, 3)) + row + 1 / 16).max())


def test_dct_against_float_dct():
    bound = _dct_error_bound()
    assert bound < 0.31
    rng = np.random.default_rng(1)
    blocks = [rng.integers(-128, 128, (5000, 8, 8))]
    for name in ("camera", "astronaut"):
        image = skimage.data.camera() if name == "camera" else skimage.data.astronaut()[..., 1]
        blocks.append(jpeg.level_shift(jpeg.blockify(image).reshape(-1, 8, 8)))
    blocks = np.concatenate(blocks)
    c = jpeg.dct2_int(blocks)
    err = np.abs(c / 8 - jpeg.dct2_float(blocks))
    assert err.max() <= bound
    assert 0.1 < err.max()  # the bound is not vacuous: real data comes within a factor of ~1.2 of it
    assert np.sqrt((err**2).mean()) < 0.05


def _extreme_block(v: int, u: int, high: bool) -> np.ndarray:
    """The int8 block whose DCT coefficient (v, u) is the largest (or smallest) possible."""
    k = jpeg.DCT_MATRIX
    row_up = np.where(k[u] > 0, 127, -128)    # maximises row-pass output t[y, u]
    row_down = np.where(k[u] > 0, -128, 127)  # minimises it
    up = (k[v] > 0) == high
    return np.where(up[:, None], row_up[None, :], row_down[None, :])


def test_dct_output_bounds_are_exact_and_fit_14_bits():
    lo, hi = jpeg.dct_output_bounds()
    assert lo.min() >= -8192 and hi.max() <= 8191  # 14-bit signed
    assert lo[0, 0] == -8190 and hi[0, 0] == 8126
    ac = np.ones((8, 8), dtype=bool)
    ac[0, 0] = False
    assert np.abs(lo[ac]).max() == np.abs(hi[ac]).max() == 8158
    for v in range(8):
        for u in range(8):
            assert jpeg.dct2_int(_extreme_block(v, u, True))[v, u] == hi[v, u]
            assert jpeg.dct2_int(_extreme_block(v, u, False))[v, u] == lo[v, u]
            rows = jpeg.dct_rows(_extreme_block(v, u, True))
            assert np.abs(rows).max() <= 23168 < 2**15  # int16 between the passes
    # quantized at Q = 1: DC -1024..1016, AC within +-1020 -> SSSS <= 10 (standard AC table suffices)
    assert jpeg.quantize_int(np.array([lo[0, 0], hi[0, 0], 8158]), np.ones((8, 8))[0, :3]).tolist() == [
        -1024, 1016, 1020]


def test_level_shift_and_blocks():
    plane = np.arange(256, dtype=np.uint8).reshape(16, 16)
    blocks = jpeg.blockify(plane)
    assert blocks.shape == (2, 2, 8, 8) and (blocks[0, 1] == plane[:8, 8:]).all()
    assert (jpeg.unblockify(blocks) == plane).all()
    assert jpeg.level_shift(np.array([0, 128, 255], dtype=np.uint8)).tolist() == [-128, 0, 127]
    padded = jpeg.pad_plane(np.array([[1, 2], [3, 4]]), 3, 4)
    assert padded.tolist() == [[1, 2, 2, 2], [3, 4, 4, 4], [3, 4, 4, 4]]


# ---- quantizer ---------------------------------------------------------------------------------------


def test_reciprocal_quantizer_equals_rounding_division_exhaustively():
    c = np.arange(-8192, 8193)[:, None]
    q = np.arange(1, 256)[None, :]
    r = jpeg.reciprocal(q)
    assert r.max() == 2**21 and r.min() >= 2**21 // 255  # 22-bit unsigned multiplier
    ours = np.where(c < 0, -1, 1) * ((np.abs(c) * r + 2**23) >> 24)
    exact = np.where(c < 0, -1, 1) * ((2 * np.abs(c) + 8 * q) // (16 * q))  # floor(|c|/(8Q) + 1/2)
    assert (ours == exact).all()
    assert (np.abs(c) * r).max() <= 2**34  # 35-bit product
    # quantize_int applies it per table entry
    table = jpeg.quant_tables(75)[0]
    coeffs = np.random.default_rng(2).integers(-8192, 8193, (50, 8, 8))
    expected = np.sign(coeffs) * np.floor(np.abs(coeffs) / (8.0 * table) + 0.5)
    assert (jpeg.quantize_int(coeffs, table) == expected).all()


def test_rounding_the_reciprocal_to_nearest_would_not_be_exact():
    # documents why R is rounded up: with round(2**21 / Q) some ties come out one too small
    c = np.arange(8193)[:, None]
    q = np.arange(1, 256)[None, :]
    r = np.floor(2.0**21 / q + 0.5).astype(np.int64)
    assert (((c * r + 2**23) >> 24) != (2 * c + 8 * q) // (16 * q)).any()


# ---- files that libjpeg opens ------------------------------------------------------------------------


@pytest.mark.parametrize("qf", QFS)
@pytest.mark.parametrize("colour", [False, True])
def test_pillow_decodes_our_jfif(qf, colour, noise_image):
    image = skimage.data.astronaut()[100:137, 200:253]  # 37 x 53: not multiples of 8
    if not colour:
        image = image[..., 1].copy()
    enc = jpeg.encode(image, qf)
    decoded = _pillow_decode(enc.data)
    assert decoded.shape == image.shape
    ours = jpeg.reconstruct(enc.quantized)  # float IDCT from the same coefficients
    assert np.abs(decoded.astype(int) - ours).max() <= (2 if not colour else 4)
    # our own decoder recovers the quantized coefficients exactly
    assert (jpeg.decode_coefficients(enc.data).zz == enc.quantized.zz).all()
    assert jpeg.psnr(image, decoded) > {1: 15, 10: 22, 30: 25}.get(qf, 27)
    # noise image, colour only: many 0xFF bytes, largest categories at QF 100
    if colour:
        enc = jpeg.encode(noise_image, qf)
        assert (_pillow_decode(enc.data).astype(int) - jpeg.reconstruct(enc.quantized)).std() < 1.0


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "camera"])
def test_quality_and_size_match_pillow_at_qf75(name):
    image = getattr(skimage.data, name)()
    ours = jpeg.encode_jpeg(image, 75)
    theirs = _pillow_encode(image, quality=75, subsampling=0, optimize=False)
    psnr_ours = jpeg.psnr(image, _pillow_decode(ours))
    psnr_theirs = jpeg.psnr(image, _pillow_decode(theirs))
    # measured: PSNR differences <= 0.02 dB, sizes 0.1 % smaller (Pillow writes one DHT per table)
    assert abs(psnr_ours - psnr_theirs) < 0.5
    assert abs(len(ours) / len(theirs) - 1) < 0.05
    assert abs(psnr_ours - psnr_theirs) < 0.05 and abs(len(ours) / len(theirs) - 1) < 0.01


def test_420_subsampling_decodes_and_is_smaller():
    image = skimage.data.chelsea()[:75, :101]
    e444 = jpeg.encode_jpeg(image, 75, "444")
    e420 = jpeg.encode_jpeg(image, 75, "420")
    assert len(e420) < len(e444)
    decoded = _pillow_decode(e420)
    assert decoded.shape == image.shape
    pil420 = _pillow_decode(_pillow_encode(image, quality=75, subsampling=2))
    assert jpeg.psnr(image, decoded) > jpeg.psnr(image, pil420) - 0.5
    own = jpeg.decode_jpeg(e420)
    assert jpeg.psnr(decoded, own) > 35


def test_our_decoder_reads_pillow_files():
    image = skimage.data.coffee()[:64, :80]
    data = _pillow_encode(image, quality=80, subsampling=0)
    assert np.abs(jpeg.decode_jpeg(data).astype(int) - _pillow_decode(data)).max() <= 4


# ---- size-only path ----------------------------------------------------------------------------------


@pytest.mark.parametrize("optimize", [False, True])
def test_scan_bits_agree_with_real_encodes(optimize, noise_image):
    for image in (skimage.data.camera()[:96, :80], noise_image, noise_image[..., 0].copy()):
        dct = jpeg.forward_dct(image)
        for qf in QFS:
            qimg = jpeg.quantize_image(dct, qf)
            bits = jpeg.scan_bits(qimg, optimize)
            enc = jpeg.encode_quantized(qimg, optimize)
            assert enc.scan.bits == bits
            assert len(enc.scan.data) == -(-bits // 8) + enc.scan.stuffed
            assert len(enc.data) == jpeg.header_size(qimg, optimize) + len(enc.scan.data) + 2
            assert enc.data == jpeg.encode_jpeg(image, qf, optimize=optimize)


def test_optimal_tables_are_smaller_and_decode():
    image = skimage.data.camera()[:128, :128]
    std = jpeg.encode(image, 50)
    opt = jpeg.encode(image, 50, optimize=True)
    assert opt.scan.bits < std.scan.bits
    assert (_pillow_decode(opt.data) == _pillow_decode(std.data)).all()


# ---- edge cases --------------------------------------------------------------------------------------


def test_all_zero_blocks():
    image = np.full((16, 24), 128, dtype=np.uint8)  # level shift -> 0: every coefficient is 0
    enc = jpeg.encode(image, 75)
    assert not enc.quantized.zz.any()
    # 6 blocks x (DC size 0 "00" + EOB "1010") = 36 bits
    assert enc.scan.bits == 36 and len(enc.scan.data) == 5
    assert (_pillow_decode(enc.data) == 128).all()


def test_max_amplitude_checkerboards_use_the_largest_categories():
    # 16 x 24, six extreme blocks; the DC maximum ends row 0 and the DC minimum starts row 1
    freqs = ((7, 7), (4, 4), (0, 0))
    rows = [np.concatenate([_extreme_block(v, u, True) for v, u in freqs], axis=1),
            np.concatenate([_extreme_block(v, u, False) for v, u in freqs[::-1]], axis=1)]
    image = (np.concatenate(rows) + 128).astype(np.uint8)
    enc = jpeg.encode(image, 100)
    zz = enc.quantized.zz
    assert np.abs(zz[:, 1:]).max() == 1020  # SSSS 10: the largest AC category
    assert enc.quantized.dc_diff()[3] == -2040  # 1016 -> -1024
    assert entropy.magnitude_category(enc.quantized.dc_diff()).max() == 11  # the largest DC category
    assert np.abs(_pillow_decode(enc.data).astype(int) - image).max() <= 2
    # a plain pixel checkerboard, largest (7, 7) frequency
    board = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)
    assert np.abs(_pillow_decode(jpeg.encode_jpeg(board, 100)).astype(int) - board).max() <= 1


def test_byte_stuffing_occurs_and_decodes(noise_image):
    enc = jpeg.encode(noise_image, 100)
    assert enc.scan.stuffed > 10
    assert enc.scan.data.count(b"\xff\x00") == enc.scan.stuffed
    assert (jpeg.decode_coefficients(enc.data).zz == enc.quantized.zz).all()
    assert _pillow_decode(enc.data).shape == noise_image.shape


def test_tiny_images():
    for shape in ((1, 1), (1, 1, 3), (9, 1), (1, 17, 3)):
        image = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
        for sub in ("444", "420"):
            assert _pillow_decode(jpeg.encode_jpeg(image, 90, sub)).shape == image.shape


# ---- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("qf", [0, 101, -5, 75.5, True, "75"])
def test_bad_qf_raises(qf):
    with pytest.raises(UserError, match=r"quality factor .* is outside 1\.\.100"):
        jpeg.encode_jpeg(np.zeros((8, 8), dtype=np.uint8), qf)


@pytest.mark.parametrize("image, match", [
    (np.zeros((8, 8), dtype=np.float32), "dtype float32"),
    (np.zeros((8, 8), dtype=np.uint16), "dtype uint16"),
    (np.zeros((8, 8, 2), dtype=np.uint8), r"shape \(8, 8, 2\)"),
    (np.zeros((8,), dtype=np.uint8), r"shape \(8,\)"),
    (np.zeros((0, 8), dtype=np.uint8), "outside 1..65535"),
])
def test_bad_image_raises(image, match):
    with pytest.raises(UserError, match=match):
        jpeg.encode_jpeg(image, 75)


def test_bad_subsampling_and_dct_input_raise():
    with pytest.raises(UserError, match="'422'"):
        jpeg.encode_jpeg(np.zeros((8, 8, 3), dtype=np.uint8), 75, "422")
    with pytest.raises(UserError, match="-129"):
        jpeg.dct2_int(np.full((8, 8), -129))
    with pytest.raises(UserError, match="8x8"):
        jpeg.dct2_int(np.zeros((4, 4)))


def test_golden_colour_stage_is_golden_encoder_path():
    """The RTL colour stage's golden twin (issue 16, item 6), ``colour_stage`` on ``mcu_pixels``, gives exactly
    the YCbCr block stream golden's encoder codes (``component_planes`` + ``mcu_order``: convert, pad,
    subsample, interleave), for odd sizes too."""
    rng = np.random.default_rng(37)
    for shape in [(21, 35, 3), (1, 1, 3), (16, 16, 3), (33, 17, 3)]:
        image = rng.integers(0, 256, size=shape).astype(np.uint8)
        for sub in ("444", "420"):
            planes, sampling, my, mx = jpeg.component_planes(image, sub)
            blocks, _ = jpeg.mcu_order([jpeg.blockify(p) for p in planes], sampling, my, mx)
            assert np.array_equal(jpeg.colour_stage(jpeg.mcu_pixels(image, sub), sub), blocks.reshape(-1))
    with pytest.raises(UserError, match="colour image"):
        jpeg.mcu_pixels(image[..., 0], "444")
    assert jpeg.RGB_TO_YCC.sum(axis=1).tolist() == [65536, 0, 0]   # gray in, Cb = Cr = 128 out
    assert np.array_equal(jpeg.rgb_to_ycbcr(np.array([[0, 0, 0], [255, 255, 255]], np.uint8)),
                          [[0, 128, 128], [255, 128, 128]])
