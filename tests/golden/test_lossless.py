"""golden.lossless: exact round trips, the symbol definition, tables, size-only agreement, bad input, raw mode."""

from __future__ import annotations

import hashlib
import struct
import zlib

import numpy as np
import pytest
import skimage.data

from golden import entropy, lossless
from golden.errors import UserError

TABLES = ("default", "optimal", "auto")


@pytest.fixture(scope="module")
def relu_maps() -> np.ndarray:
    """Real-looking sparse ReLU maps (int16, 12 x 64 x 72), a third of the channels made very sparse."""
    maps = lossless.synthetic_relu_maps(skimage.data.coffee()[::6, ::8], 12, seed=7)[:, :64, :72]
    maps[::3] = np.where(maps[::3] > np.quantile(maps[::3], 0.95), maps[::3], 0)
    return maps


def _cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    int16 = rng.integers(-32768, 32768, (3, 17, 23)).astype(np.int16)
    int16[0, 0, :4] = [-32768, 32767, -1, 1]
    uint16 = rng.integers(0, 65536, (2, 9, 31)).astype(np.uint16)
    uint16[0, 0, :3] = [65535, 32768, 1]
    runs = np.zeros((2, 16, 16), dtype=np.int16)
    runs[0, 0, 7] = 5                      # run 7 in the first block
    runs[0, 2, 0] = -3                     # run 16 + 8 -> ZRL + (8, 2)
    runs[0, 7, 7] = 1                      # last sample of the block is nonzero: no EOB
    runs[1, 8:, 8:].flat[[15, 31, 47, 63]] = 32767  # runs of exactly 15 each
    runs[1, :8, :8].flat[[16, 63]] = [2, -32768]    # run 16 (one ZRL + run 0), then run 46
    return {
        "int16": int16, "uint16": uint16, "zeros": np.zeros((4, 8, 8), dtype=np.int16),
        "long_runs": runs, "int8": rng.integers(-128, 128, (5, 7, 3)).astype(np.int8),
        "uint8_2d": rng.integers(0, 256, (13, 11)).astype(np.uint8),
        "sparse_uint16": (rng.integers(0, 65536, (3, 40, 40)) * (rng.random((3, 40, 40)) < 0.02)).astype(np.uint16),
        "int64_in_int16": rng.integers(-300, 300, (2, 8, 24)),
    }


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("name", list(_cases()))
def test_round_trip_is_exact(name, table):
    x = _cases()[name]
    data = lossless.encode(x, table)
    y = lossless.decode(data)
    expected_dtype = np.int16 if x.dtype == np.int64 else x.dtype
    assert y.dtype == expected_dtype and y.shape == x.shape and (y == x).all()
    assert len(data) == lossless.encoded_size(x, table)  # size-only path is exact


@pytest.mark.parametrize("table", TABLES)
def test_round_trip_relu_maps(relu_maps, table):
    data = lossless.encode(relu_maps, table)
    assert (lossless.decode(data) == relu_maps).all()
    assert len(data) == lossless.encoded_size(relu_maps, table)
    assert len(data) < relu_maps.nbytes / 2  # sparse maps compress well
    # unsigned mode is chosen automatically and saves one bit per nonzero sample
    nonzero = int((relu_maps != 0).sum())
    assert lossless.payload_bits(relu_maps, table, signed=True) - lossless.payload_bits(relu_maps, table) == nonzero


def test_signed_relu_maps_in_signed_mode(relu_maps):
    x = relu_maps.astype(np.int32) - 2000
    x = x.clip(-32768, 32767).astype(np.int16)
    data = lossless.encode(x, "optimal")
    assert data[5] & lossless.FLAG_SIGNED and (lossless.decode(data) == x).all()


def test_symbol_definition():
    block = np.zeros((1, 64), dtype=np.int64)
    block[0, [20, 21, 63]] = [5, -1, 40000]
    rls = lossless.run_length_symbols(block)
    # run 20 = ZRL + run 4; size(5) = 3; run 0 size 1; run 41 = 2 ZRL + run 9, size(40000) = 16; no EOB
    assert rls.symbols(lossless.SIZE_FIELD_BITS).tolist() == [0x1E0, (4 << 5) | 3, 1, 0x1E0, 0x1E0, (9 << 5) | 16]
    assert lossless.ZRL == 0x1E0 and lossless.EOB == 0
    assert len(lossless.all_symbols()) == 258 and lossless.all_symbols().max() == 0x1F0


def test_hand_encoded_payload():
    # one block [0, 0, 3, 0...]: symbol (2, 2) = 0x42 then unsigned extra '1' (3 = 0b11, leading 1 implied),
    # then EOB; padded with 1-bits
    x = np.zeros((1, 8, 8), dtype=np.uint16)
    x[0, 0, 2] = 3
    table = lossless.DEFAULT_TABLE
    bits = table.code(0x42) + "1" + table.code(lossless.EOB)
    bits += "1" * (-len(bits) % 8)
    payload, nbits = lossless.encode_payload(lossless.to_blocks(x.astype(np.int64)), table, signed=False)
    assert payload == int(bits, 2).to_bytes(len(bits) // 8, "big")
    assert nbits == len(table.code(0x42)) + 1 + len(table.code(lossless.EOB))


def test_block_order():
    x = np.arange(2 * 9 * 10).reshape(2, 9, 10)
    blocks = lossless.to_blocks(x)
    assert blocks.shape == (2 * 2 * 2, 64)
    assert blocks[0, :10].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]  # raster inside the block
    assert blocks[1, 0] == 8 and blocks[1, 2] == 0  # zero padding right of column 9
    assert blocks[4, 0] == 90  # channel 1 follows channel 0
    assert (lossless.from_blocks(blocks, x.shape) == x).all()


def test_default_table():
    t = lossless.DEFAULT_TABLE
    lengths = t.lengths(lossless.ALPHABET_SIZE)
    assert set(t.huffval) == set(lossless.all_symbols().tolist())
    assert 0 < lengths[lengths > 0].min() and lengths.max() <= 16
    assert sum(b << (16 - i - 1) for i, b in enumerate(t.bits)) < 2**16  # all-ones code unused
    assert lossless.derive_default_table() == t  # the frozen table is what its recipe gives


def test_optimal_tables_from_sample_data(relu_maps):
    sample, other = relu_maps[:6], relu_maps[6:]
    table = lossless.optimal_table_for(sample)
    assert table.lengths(512).max() <= 16
    own = lossless.payload_bits(sample, table)
    assert own <= lossless.payload_bits(sample, "default")
    assert own == lossless.payload_bits(sample, "optimal")
    # a table built from one map codes another if it has all its symbols, else it refuses clearly
    try:
        data = lossless.encode(other, table)
        assert (lossless.decode(data) == other).all()
    except UserError as e:
        assert "has no code" in str(e)
    with pytest.raises(UserError, match="has no code"):
        lossless.encode(np.full((1, 8, 8), 40000, dtype=np.uint16), table)


def test_optimal_table_respects_16_bits_on_skewed_sample():
    x = np.zeros((1, 8, 8 * 4096), dtype=np.uint16)
    x[0, 0, ::8] = 1  # one symbol dominates...
    x[0, 1, :26 * 8:8] = 2 ** np.arange(0, 16).repeat(2)[:26]  # ...others are rare
    table = lossless.optimal_table_for(x)
    assert table.lengths(512).max() <= 16
    assert (lossless.decode(lossless.encode(x, table)) == x).all()


def test_auto_picks_the_smaller_container(relu_maps):
    small = relu_maps[:1, :8, :8]
    assert lossless.encoded_size(small, "auto") == min(lossless.encoded_size(small, "default"),
                                                       lossless.encoded_size(small, "optimal"))
    assert lossless.encoded_size(relu_maps, "auto") == min(lossless.encoded_size(relu_maps, "default"),
                                                           lossless.encoded_size(relu_maps, "optimal"))


def test_container_layout():
    x = np.zeros((3, 10, 12), dtype=np.int16)
    data = lossless.encode(x)
    assert data[:4] == b"ESLL" and data[4] == 2 == lossless.VERSION and data[6] == 3
    assert int.from_bytes(data[8:10], "big") == 3 and int.from_bytes(data[10:12], "big") == 10
    # 3 channels x 2 x 2 blocks, each only EOB
    eob = len(lossless.DEFAULT_TABLE.code(lossless.EOB))
    assert int.from_bytes(data[14:18], "big") == -(-12 * eob // 8) == len(data) - lossless.HEADER_BYTES - 4
    # version 2: a CRC-32 (zlib's) of every byte before it closes the container
    assert int.from_bytes(data[-4:], "big") == zlib.crc32(data[:-4])
    with_table = lossless.encode(x, "optimal")
    assert with_table[5] & lossless.FLAG_TABLE
    assert len(with_table) == lossless.HEADER_BYTES + 16 + 2 * 1 + len(entropy.pack_bits([0] * 12, [1] * 12)[0]) + 4


@pytest.mark.parametrize("x, kw, match", [
    (np.zeros((2, 8, 8), dtype=np.float32), {}, "dtype float32"),
    (np.zeros((8,), dtype=np.int16), {}, r"shape \(8,\)"),
    (np.zeros((1, 2, 8, 8), dtype=np.int16), {}, r"shape \(1, 2, 8, 8\)"),
    (np.array([[70000]]), {}, "70000"),
    (np.array([[-1, 2]], dtype=np.int16), {"signed": False}, "-1"),
    (np.array([[40000]], dtype=np.uint16), {"signed": True}, "40000"),
    (np.zeros((1, 8, 8), dtype=np.int16), {"table": "best"}, "'best'"),
])
def test_bad_input_raises(x, kw, match):
    with pytest.raises(UserError, match=match):
        lossless.encode(x, **kw)


def test_corrupt_container_raises():
    data = lossless.encode(np.ones((1, 8, 8), dtype=np.int16))
    with pytest.raises(UserError, match="magic"):
        lossless.decode(b"XXXX" + data[4:])
    with pytest.raises(UserError, match="payload"):
        lossless.decode(data[:-1])
    with pytest.raises(UserError, match="shorter"):
        lossless.decode(data[:5])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    with pytest.raises(UserError, match="damaged: CRC-32"):
        lossless.decode(bytes(flipped))
    with pytest.raises(UserError, match="version 1 lossless container without checksum: re-encode"):
        lossless.decode(data[:4] + b"\x01" + data[5:-4])   # the old format: no CRC
    with pytest.raises(UserError, match="version 3 is not supported"):
        lossless.decode(lossless.seal(data[:4] + b"\x03" + data[5:-4]))
    huge = bytearray(data[:-4])
    huge[8:14] = bytes.fromhex("ffffffffffff")   # 65535^3 values claimed by a 4-byte payload, CRC recomputed
    with pytest.raises(UserError, match="values"):
        lossless.decode(lossless.seal(bytes(huge)))


# ---- raw mode: lossless never expands ---------------------------------------------------------------------


def _dense_cases() -> dict[str, np.ndarray]:
    """Maps that code longer than their samples: the container must be the raw one."""
    rng = np.random.default_rng(18)
    extremes = np.where(rng.random((2, 9, 11)) < 0.5, -32768, 32767).astype(np.int16)
    return {
        "int16_16x8x8": rng.integers(-32768, 32768, (16, 8, 8)).astype(np.int16),
        "fc_10x1x1": rng.integers(-32768, 32768, (10, 1, 1)).astype(np.int16),      # ResNet-20's fc, as a map
        "pool_64x1x1": rng.integers(-32768, 32768, (64, 1, 1)).astype(np.int16),    # a pooled vector
        "pool_64x1x1_relu": rng.integers(1, 32768, (64, 1, 1)).astype(np.int16),    # unsigned mode
        "extremes_2x9x11": extremes,
        "uint16_3x5x7": rng.integers(0, 65536, (3, 5, 7)).astype(np.uint16),
        "uint8_image_3x32x32": rng.integers(0, 256, (3, 32, 32)).astype(np.uint8),   # camera-like: 1 byte/sample
        "int8_2d_13x11": rng.integers(-128, 128, (13, 11)).astype(np.int8),
    }


def _sparse_cases(relu_maps: np.ndarray) -> dict[str, np.ndarray]:
    """Maps that code shorter than their samples: the container stays coded."""
    rng = np.random.default_rng(19)
    relu_vec = np.where(rng.random((64, 1, 1)) < 0.8, 0, rng.integers(1, 300, (64, 1, 1))).astype(np.int16)
    return {"zeros_4x8x8": np.zeros((4, 8, 8), dtype=np.int16), "zeros_1x1x1": np.zeros((1, 1, 1), dtype=np.int16),
            "relu_12x64x72": relu_maps, "relu_odd_3x13x21": relu_maps[:3, :13, :21],
            "relu_vector_64x1x1": relu_vec}


def _raw_bytes(x: np.ndarray) -> int:
    x = np.asarray(x)
    width = 2 if x.dtype == np.int64 else x.dtype.itemsize
    return lossless.RAW_OVERHEAD_BYTES + x.size * width


def test_raw_overhead_is_header_and_crc():
    assert lossless.RAW_OVERHEAD_BYTES == lossless.HEADER_BYTES + lossless.CRC_BYTES == 18 + 4
    assert lossless.FLAG_RAW == 8 and not lossless.FLAG_RAW & (lossless.FLAG_SIGNED | lossless.FLAG_TABLE
                                                                 | lossless.FLAG_2D)


@pytest.mark.parametrize("name", list(_dense_cases()))
def test_dense_maps_are_sent_raw(name):
    x = _dense_cases()[name]
    assert lossless.coded_size(x) > _raw_bytes(x)          # the case: coding would expand it
    for table in TABLES:
        data = lossless.encode(x, table)
        assert len(data) == _raw_bytes(x) == lossless.raw_size(x) == lossless.encoded_size(x, table)
        assert data[5] & lossless.FLAG_RAW and not data[5] & lossless.FLAG_TABLE
        y = lossless.decode(data)
        assert y.dtype == x.dtype and y.shape == x.shape and np.array_equal(y, x)


def test_dense_sizes():
    """The sizes the issue names: raw samples + the 22-byte header and CRC-32, no more."""
    cases = _dense_cases()
    assert len(lossless.encode(cases["int16_16x8x8"])) == 22 + 2 * 16 * 64 == 2070
    assert len(lossless.encode(cases["fc_10x1x1"])) == 22 + 2 * 10 == 42
    assert len(lossless.encode(cases["pool_64x1x1"])) == 22 + 2 * 64 == 150
    assert len(lossless.encode(cases["uint8_image_3x32x32"])) == 22 + 3 * 32 * 32 == 3094


def test_sparse_maps_keep_their_coded_bytes(relu_maps):
    """Coded containers are exactly what they were before raw mode (digests of the version 2 coder's output)."""
    zeros = np.zeros((4, 8, 8), dtype=np.int16)
    pinned = {
        (id(relu_maps), "default"): (35400, "3a949e733ee1f2a5a7afb2ac342c506837fa1aba53dac3aa0fc5c63055698ac9"),
        (id(relu_maps), "optimal"): (33468, "ae7c0b923caa3166b66975f8e3d7a46b1d52a59e31d403c904e8326059a8a29d"),
        (id(zeros), "default"): (24, "2e5f05e98bf64769d5ed678f17d2783da0b540258fe7cfc352b75a09a2dc13ec"),
        (id(zeros), "optimal"): (41, "5522131a9dc2c1dd05139d53c35296cadd30cbcd29e108c06c3e59dca9f0d8d7"),
    }
    for x in (relu_maps, zeros):
        for table in ("default", "optimal"):
            data = lossless.encode(x, table)
            assert (len(data), hashlib.sha256(data).hexdigest()) == pinned[id(x), table]
            assert not data[5] & lossless.FLAG_RAW and data == lossless.encode(x, table, mode="coded")


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("name", ["dense", "sparse", "legacy"])
def test_encoded_size_is_the_bytes_sent(relu_maps, name, table):
    """encoded_size == len(encode) == min(coded, raw) on dense, all-zero, sparse ReLU, odd, 1x1 and extreme maps;
    the raw container is chosen exactly when the coded one is longer."""
    cases = {"dense": _dense_cases(), "sparse": _sparse_cases(relu_maps), "legacy": _cases()}[name]
    for key, x in cases.items():
        data = lossless.encode(x, table)
        coded, raw = lossless.coded_size(x, table), lossless.raw_size(x)
        assert raw == _raw_bytes(x), key
        assert lossless.encoded_size(x, table) == len(data) == min(coded, raw), key
        assert len(lossless.encode(x, table, mode="coded")) == coded, key
        assert len(lossless.encode(x, table, mode="raw")) == raw, key
        assert bool(data[5] & lossless.FLAG_RAW) == (coded > raw), key
        y = lossless.decode(data)
        assert y.dtype == (np.int16 if x.dtype == np.int64 else x.dtype) and np.array_equal(y, x), key


@pytest.mark.parametrize("name", list(_cases()))
def test_raw_mode_round_trip_is_exact(name):
    x = _cases()[name]
    data = lossless.encode(x, mode="raw")
    y = lossless.decode(data)
    assert y.dtype == (np.int16 if x.dtype == np.int64 else x.dtype) and y.shape == x.shape and np.array_equal(y, x)


def test_raw_container_layout():
    # int16, signed mode: big-endian two's complement, C order, no padding to blocks
    x = np.array([[[-2, 300, -32768]], [[32767, 0, 1]]], dtype=np.int16)         # 2 x 1 x 3
    flags = lossless.FLAG_RAW | lossless.FLAG_SIGNED
    body = struct.pack(">4sBBBBHHHI", b"ESLL", 2, flags, 3, 0, 2, 1, 3, 12)
    body += bytes.fromhex("fffe" "012c" "8000" "7fff" "0000" "0001")
    assert lossless.encode(x, mode="raw") == body + zlib.crc32(body).to_bytes(4, "big")
    # uint8 2-D, unsigned mode: one byte per sample, the 2-D flag kept
    img = np.array([[0, 255, 7], [128, 1, 2]], dtype=np.uint8)
    body = struct.pack(">4sBBBBHHHI", b"ESLL", 2, lossless.FLAG_RAW | lossless.FLAG_2D, 0, 0, 1, 2, 3, 6)
    body += bytes([0, 255, 7, 128, 1, 2])
    assert lossless.encode(img, mode="raw") == body + zlib.crc32(body).to_bytes(4, "big")
    assert np.array_equal(lossless.decode(body + zlib.crc32(body).to_bytes(4, "big")), img)
    # uint16 above 32767: unsigned mode, plain 16-bit words
    u = np.array([[[65535, 32768]]], dtype=np.uint16)
    assert lossless.encode(u, mode="raw")[18:-4] == bytes.fromhex("ffff8000")


@pytest.mark.parametrize("table", ["default", "optimal"])
def test_wrap_of_the_payload_is_encode(relu_maps, table):
    """The host's wrapper around the RTL's payload (golden's, byte for byte) gives encode's bytes in both modes."""
    for x in [*_dense_cases().values(), *_sparse_cases(relu_maps).values()]:
        t = lossless.chosen_table(x, table)
        feats = lossless.check_features(x)
        payload, _ = lossless.encode_payload(lossless.to_blocks(feats.values), t, feats.signed)
        assert lossless.wrap(x, payload, t) == lossless.encode(x, table)
    with pytest.raises(UserError, match="HuffmanTable"):
        lossless.wrap(relu_maps, b"", "default")
    with pytest.raises(UserError, match="container mode 'best'"):
        lossless.encode(relu_maps, mode="best")


def test_corrupt_raw_container_raises():
    x = _dense_cases()["int16_16x8x8"]
    data = lossless.encode(x)
    assert data[5] & lossless.FLAG_RAW
    for n in range(len(data)):                              # every truncation
        with pytest.raises(UserError):
            lossless.decode(data[:n])
    flipped = bytearray(data)
    flipped[100] ^= 0x01
    with pytest.raises(UserError, match="damaged: CRC-32"):
        lossless.decode(bytes(flipped))
    body = bytearray(data[:-4])

    def resealed(offset: int, value: int) -> bytes:
        b = bytearray(body)
        b[offset] = value
        return lossless.seal(bytes(b))

    with pytest.raises(UserError, match="flags 0x19 / reserved byte 0 are not allowed"):
        lossless.decode(resealed(5, body[5] | 0x10))        # an unknown mode bit
    # a raw payload one sample short, length field and CRC consistent
    short = body[:14] + struct.pack(">I", len(body) - 18 - 2) + body[18:-2]
    with pytest.raises(UserError, match="2046-byte payload is not the 2048 bytes"):
        lossless.decode(lossless.seal(bytes(short)))
    unsigned = lossless.encode(np.full((1, 2, 2), -5, dtype=np.int16), mode="raw")
    with pytest.raises(UserError, match="negative in unsigned mode"):
        lossless.decode(lossless.seal(unsigned[:5] + bytes([lossless.FLAG_RAW]) + unsigned[6:-4]))
    big = lossless.encode(np.full((1, 2, 2), 40000, dtype=np.uint16), mode="raw")
    with pytest.raises(UserError, match="40000 is outside signed mode"):
        lossless.decode(lossless.seal(big[:5] + bytes([lossless.FLAG_RAW | lossless.FLAG_SIGNED]) + big[6:-4]))
    for samples in (body[18:-1], body[18:] + b"\x00"):     # half a sample short / half a sample too many
        b = body[:14] + struct.pack(">I", len(samples)) + samples
        with pytest.raises(UserError, match=f"{len(samples)}-byte payload is not the 2048 bytes"):
            lossless.decode(lossless.seal(bytes(b)))
