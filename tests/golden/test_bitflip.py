"""Bit-flip fuzz of the streams a radio link carries (issue 17): every byte of a few lossless containers and
JPEG feature streams, flipped in one bit, in the top bit and in all bits, and every truncation.

* Lossless (``golden.lossless``, version 2 with its CRC-32): every damaged container, coded or raw (dense maps
  are sent as their samples), is a one-line UserError, never a wrong map, another exception or a hang.
* JPEG feature streams (``edgesplit encode`` files: the JFIF with the side information in APP9): a damaged
  side-information record is always an error (its CRC-32); any other damaged byte gives an error or a map of
  the right shape and dtype (the JPEG payload carries no checksum), never another exception or a hang.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from golden import featpack, jpeg, lossless
from golden.errors import UserError
from hw.jpeg import host
from model import cli_codec
from model.cli import main

MASKS = (0x01, 0x80, 0xFF)
SLOW_S = 5.0   # one decode of these small streams takes milliseconds: anything near this is a hang


def _maps() -> dict[str, tuple[np.ndarray, str]]:
    rng = np.random.default_rng(7)
    relu = lossless.synthetic_relu_maps(skimage.data.camera()[64:77, 64:85], 3, 1)          # int16 3 x 13 x 21
    signed = rng.integers(-300, 300, size=(2, 8, 8)).astype(np.int16)
    sparse = np.where(rng.random((9, 17)) < 0.9, 0, rng.integers(1, 255, size=(9, 17))).astype(np.uint8)
    return {"relu-default": (relu, "default"), "signed-optimal": (signed, "optimal"),
            "uint8-2d-auto": (sparse, "auto")}


MAPS = _maps()


def _raw_maps() -> dict[str, np.ndarray]:
    """Dense maps whose coded container would be longer than their samples: sent in raw mode."""
    rng = np.random.default_rng(18)
    return {"int16-dense": rng.integers(-32768, 32768, size=(2, 8, 8)).astype(np.int16),
            "fc-10x1x1": rng.integers(-32768, 32768, size=(10, 1, 1)).astype(np.int16),
            "pool-64x1x1-unsigned": rng.integers(1, 32768, size=(64, 1, 1)).astype(np.int16),
            "uint8-2d-dense": rng.integers(0, 256, size=(7, 9)).astype(np.uint8)}


RAW_MAPS = _raw_maps()


def _flips(data: bytes):
    for i in range(len(data)):
        for m in MASKS:
            bad = bytearray(data)
            bad[i] ^= m
            yield i, bytes(bad)


@pytest.mark.parametrize("name", list(MAPS))
def test_every_damaged_lossless_container_is_an_error(name):
    x, table = MAPS[name]
    data = lossless.encode(x, table)
    assert np.array_equal(lossless.decode(data), x)
    job = host.lossless_job(x, table)
    assert job.wrap(job.expected) == data          # the host-side wrapper of the RTL's payload: the same bytes
    worst = 0.0
    for i, bad in _flips(data):
        t0 = time.monotonic()
        with pytest.raises(UserError) as e:
            lossless.decode(bad)
        worst = max(worst, time.monotonic() - t0)
        assert "\n" not in str(e.value), (i, str(e.value))
    for n in range(len(data)):
        with pytest.raises(UserError):
            lossless.decode(data[:n])
    with pytest.raises(UserError):
        lossless.decode(data + b"\x00")
    assert worst < SLOW_S


@pytest.mark.parametrize("name", list(RAW_MAPS))
def test_every_damaged_raw_container_is_an_error(name):
    x = RAW_MAPS[name]
    data = lossless.encode(x)
    assert data[5] & lossless.FLAG_RAW and len(data) == lossless.RAW_OVERHEAD_BYTES + x.nbytes
    assert np.array_equal(lossless.decode(data), x) and lossless.decode(data).dtype == x.dtype
    # the host-side wrapper of the RTL's payload (golden's, byte for byte) sends the same raw container
    feats = lossless.check_features(x)
    payload, _ = lossless.encode_payload(lossless.to_blocks(feats.values), lossless.DEFAULT_TABLE, feats.signed)
    assert lossless.wrap(x, payload) == data
    worst = 0.0
    for i, bad in _flips(data):
        t0 = time.monotonic()
        with pytest.raises(UserError) as e:
            lossless.decode(bad)
        worst = max(worst, time.monotonic() - t0)
        assert "\n" not in str(e.value), (i, str(e.value))
    for n in range(len(data)):
        with pytest.raises(UserError):
            lossless.decode(data[:n])
    with pytest.raises(UserError):
        lossless.decode(data + b"\x00")
    assert worst < SLOW_S


def _feature_file(x: np.ndarray, qf: int) -> tuple[bytes, range]:
    """The ``edgesplit encode`` file of a feature map and the byte range of its side-information record."""
    mosaic, side = featpack.pack(x, "layer", qf)
    data = cli_codec.add_side_info(jpeg.encode(mosaic, qf).data, side.to_bytes())
    start = data.index(cli_codec.SIDE_INFO_ID)
    return data, range(start, start + len(cli_codec.SIDE_INFO_ID) + side.nbytes)


FEATURES = {
    "relu-int16-qf80": (lossless.synthetic_relu_maps(skimage.data.camera()[100:112, 90:110], 3, 2), 80),
    "float32-qf30": ((np.random.default_rng(3).standard_normal((2, 9, 10)) * 20).astype(np.float32), 30),
}


@pytest.mark.parametrize("name", list(FEATURES))
def test_every_damaged_jpeg_feature_stream_is_an_error_or_the_right_shape(name, tmp_path):
    x, qf = FEATURES[name]
    data, side_bytes = _feature_file(x, qf)
    src, out = Path("features.jpg"), str(tmp_path / "out.npy")
    _, payload, _ = cli_codec.decode_data(data, src, out)
    assert np.load(io.BytesIO(payload)).shape == x.shape
    decoded, errors, worst = 0, 0, 0.0
    for i, bad in _flips(data):
        t0 = time.monotonic()
        try:
            _, payload, _ = cli_codec.decode_data(bad, src, out)
        except UserError as e:
            errors += 1
            assert "\n" not in str(e), (i, str(e))
        else:
            assert i not in side_bytes, f"a damaged side-information byte {i} was not detected"
            y = np.load(io.BytesIO(payload))
            assert y.shape == x.shape and y.dtype == x.dtype, (i, y.shape, y.dtype)
            decoded += 1
        worst = max(worst, time.monotonic() - t0)
    assert errors >= len(side_bytes) * len(MASKS) and decoded > 0   # scan bytes mostly decode, damaged
    assert worst < SLOW_S
    for n in range(0, len(data), 7):
        with pytest.raises(UserError):
            cli_codec.decode_data(data[:n], src, out)


def test_damaged_side_information_alone_is_always_an_error():
    x, qf = FEATURES["relu-int16-qf80"]
    side, jfif = featpack.encode_jpeg(x, qf, "channel")
    assert featpack.decode_jpeg(side, jfif).shape == x.shape
    for _, bad in _flips(side):
        with pytest.raises(UserError):
            featpack.decode_jpeg(bad, jfif)


def test_damaged_files_through_the_command_line(tmp_path, capsys):
    """A sample of the flipped files through ``edgesplit decode``: exit 2 with one line, or exit 0 with the
    right shape; the output exists only after a successful decode."""
    x, qf = FEATURES["relu-int16-qf80"]
    data, _ = _feature_file(x, qf)
    esll = lossless.encode(x)
    raw = lossless.encode(RAW_MAPS["int16-dense"])          # a raw-mode container
    for name, blob in (("f.jpg", data), ("f.esll", esll), ("raw.esll", raw)):
        for i in range(0, len(blob), max(1, len(blob) // 25)):
            bad = bytearray(blob)
            bad[i] ^= 0xFF
            src, out = tmp_path / name, tmp_path / "out.npy"
            src.write_bytes(bytes(bad))
            out.unlink(missing_ok=True)
            rc = main(["decode", str(src), "-o", str(out)])
            o, err = capsys.readouterr()
            if rc == 0:
                assert name.endswith(".jpg") and np.load(out).shape == x.shape
            else:
                assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err and not out.exists(), err
