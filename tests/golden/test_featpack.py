"""golden.featpack: mosaic layout, 8-bit scaling per layer and per channel, side information, the JPEG
path's transmitted size and the QF sweep helper."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image

from golden import featpack, jpeg, lossless
from golden.errors import UserError


@pytest.fixture(scope="module")
def relu_maps() -> np.ndarray:
    """int16 [10, 29, 37]: sizes not multiples of 8, channels with very different ranges."""
    maps = lossless.synthetic_relu_maps(skimage.data.camera()[::8, ::8], 10, seed=3)[:, :29, :37]
    return (maps // np.arange(1, 11)[:, None, None] ** 2).astype(np.int16)


@pytest.mark.parametrize("mode", featpack.MODES)
def test_round_trip_error_is_half_a_step(relu_maps, mode):
    mosaic, side = featpack.pack(relu_maps, mode)
    assert mosaic.dtype == np.uint8
    back = featpack.unpack(mosaic, featpack.SideInfo.from_bytes(side.to_bytes()))
    assert back.dtype == relu_maps.dtype and back.shape == relu_maps.shape
    step = np.broadcast_to(side.scales.astype(np.float64), (10,))[:, None, None]
    err = np.abs(back.astype(np.float64) - relu_maps)
    assert (err <= step / 2 + 0.5 + 1e-9).all()  # half a code step, plus the rounding to integers
    codes = featpack.untile_mosaic(mosaic, side.shape, side.grid_cols)
    assert codes.max() == 255 or mode == "layer"
    assert codes.min() == 0


def test_per_channel_scaling_is_more_accurate(relu_maps):
    errors = {}
    for mode in featpack.MODES:
        mosaic, side = featpack.pack(relu_maps, mode)
        back = featpack.unpack(mosaic, side).astype(np.float64)
        errors[mode] = np.abs(back[-1] - relu_maps[-1]).mean()  # the channel with the smallest range
    assert errors["channel"] < errors["layer"] / 10


def test_side_info_size_and_format(relu_maps):
    for mode, n in (("layer", 1), ("channel", 10)):
        _, side = featpack.pack(relu_maps, mode, qf=42, optimal_tables=True)
        raw = side.to_bytes()
        assert len(raw) == side.nbytes == 11 + 4 * n + 4   # version 2: the record, then its CRC-32
        assert int.from_bytes(raw[-4:], "big") == zlib.crc32(raw[:-4])
        assert raw[0] == featpack.VERSION and raw[2] == 42
        assert raw[1] & featpack.FLAG_OPTIMAL and bool(raw[1] & featpack.FLAG_PER_CHANNEL) == (mode == "channel")
        assert featpack.DTYPES[raw[1] >> 4] == np.int16
        again = featpack.SideInfo.from_bytes(raw)
        assert again.shape == (10, 29, 37) and again.mode == mode and again.grid_cols == 4 and again.qf == 42
        assert (again.offsets == side.offsets).all() and (again.scales == side.scales).all()
    with pytest.raises(UserError, match="damaged: CRC-32"):
        featpack.SideInfo.from_bytes(b"\x09" + raw[1:])
    resealed = b"\x09" + raw[1:-4]
    with pytest.raises(UserError, match="version 9 is not supported"):
        featpack.SideInfo.from_bytes(resealed + zlib.crc32(resealed).to_bytes(4, "big"))
    with pytest.raises(UserError, match="version 1 side information without checksum: re-encode"):
        featpack.SideInfo.from_bytes(b"\x01" + raw[1:-4])


def test_scale_parameters_are_float16_and_cover_the_range():
    x = np.array([[[-3.3, 1000.7]], [[5.0, 5.0]]], dtype=np.float32)
    offsets, scales = featpack.scale_parameters(x, "channel")
    assert offsets.dtype == np.float16 and scales.dtype == np.float16
    assert (offsets.astype(np.float64) <= [-3.3, 5.0]).all()
    assert (offsets.astype(np.float64) + 255 * scales.astype(np.float64) >= [1000.7, 5.0]).all()
    assert scales[1] == 0  # constant channel: exact, code 0
    back = featpack.unpack(*featpack.pack(x, "channel"))
    assert back.dtype == np.float32 and back[1].tolist() == [[5.0, 5.0]]
    assert np.abs(back[0] - x[0]).max() <= scales[0] / 2 * 1.001


def test_mosaic_layout_keeps_channels_in_their_own_blocks():
    c, h, w = 7, 5, 11
    x = np.broadcast_to(np.arange(c, dtype=np.int16)[:, None, None] * 10, (c, h, w)).copy()
    mosaic, side = featpack.pack(x, "layer")
    assert side.grid_cols == 3 and side.grid_rows == 3 and side.tile == (8, 16)
    assert mosaic.shape == (24, 48)
    blocks = jpeg.blockify(mosaic)
    assert (blocks == blocks[:, :, :1, :1]).all()  # every 8x8 block holds one channel only
    # channel 4 sits in grid cell (1, 1); empty cells (7, 8) are code 0
    assert (mosaic[8:16, 16:32] == featpack.quantize_to_codes(x, side.offsets, side.scales)[4, 0, 0]).all()
    assert (mosaic[16:, 16:] == 0).all()


@pytest.mark.parametrize("mode", featpack.MODES)
def test_jpeg_path_round_trip_and_transmitted_size(relu_maps, mode):
    side_bytes, jfif = featpack.encode_jpeg(relu_maps, 95, mode)
    assert np.asarray(Image.open(io.BytesIO(jfif))).shape == (32 * 3, 40 * 4)  # libjpeg opens the mosaic
    back = featpack.decode_jpeg(side_bytes, jfif)
    assert back.shape == relu_maps.shape and back.dtype == relu_maps.dtype
    assert np.abs(back.astype(float) - relu_maps).mean() < 0.02 * relu_maps.max()
    sweep = featpack.JpegSweep(relu_maps, mode)
    side = featpack.SideInfo.from_bytes(side_bytes)
    assert sweep.size(95) == len(side_bytes) + len(jfif) == side.nbytes + len(jfif)
    for qf in (5, 50, 100):
        s, j = featpack.encode_jpeg(relu_maps, qf, mode, optimal_tables=True)
        assert sweep.size(qf, optimal_tables=True) == len(s) + len(j)
        enc = sweep.encoding(qf)
        assert sweep.scan_bits(qf) == enc.scan.bits
        scan_only = sweep.size(qf, container="scan")
        assert scan_only == side.nbytes + len(enc.scan.data) < sweep.size(qf)
        assert (sweep.reconstruct(qf) == featpack.unpack(jpeg.reconstruct(enc.quantized), side)).all()


def test_lower_qf_means_fewer_bytes(relu_maps):
    sweep = featpack.JpegSweep(relu_maps)
    sizes = [sweep.size(qf) for qf in (10, 50, 90, 100)]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("x, kw, match", [
    (np.zeros((2, 8), dtype=np.int16), {}, r"shape \(2, 8\)"),
    (np.zeros((2, 8, 8), dtype=np.complex64), {}, "dtype complex64"),
    (np.full((1, 2, 2), 1e6, dtype=np.float32), {}, "1000000"),
    (np.full((1, 2, 2), np.nan, dtype=np.float32), {}, "NaN"),
    (np.zeros((1, 8, 8), dtype=np.int16), {"mode": "pixel"}, "'pixel'"),
    (np.zeros((1, 8, 8), dtype=np.int16), {"qf": 0}, r"0 is outside 1\.\.100"),
])
def test_bad_input_raises(x, kw, match):
    with pytest.raises(UserError, match=match):
        featpack.pack(x, **kw)
