"""golden.entropy: Annex K tables and codes, Annex C canonical codes, K.2 optimal tables, run-length
symbols, bit packing, stuffing, and the size-only path."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image

from golden import entropy, jpeg
from golden.entropy import (
    STD_AC_CHROMINANCE,
    STD_AC_LUMINANCE,
    STD_DC_CHROMINANCE,
    STD_DC_LUMINANCE,
    HuffmanTable,
)
from golden.errors import UserError


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every segment before the scan of a JPEG file."""
    out, i = [], 2
    while True:
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        out.append((marker, data[i + 4:i + 2 + length]))
        if marker == 0xDA:
            return out
        i += 2 + length


def _dht(data: bytes) -> dict[int, HuffmanTable]:
    """Huffman tables of a JPEG file keyed by ``Tc << 4 | Th``."""
    tables = {}
    for marker, seg in _segments(data):
        j = 0
        while marker == 0xC4 and j < len(seg):
            bits = tuple(seg[j + 1:j + 17])
            n = sum(bits)
            tables[seg[j]] = HuffmanTable(bits=bits, huffval=tuple(seg[j + 17:j + 17 + n]))
            j += 17 + n
    return tables


def _pillow_jpeg(image: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", **kw)
    return buf.getvalue()


# ---- Annex K tables and Annex C codes ----------------------------------------------------------------


@pytest.mark.parametrize("table, symbol, code", [
    (STD_DC_LUMINANCE, 0, "00"), (STD_DC_LUMINANCE, 1, "010"), (STD_DC_LUMINANCE, 5, "110"),
    (STD_DC_LUMINANCE, 11, "111111110"),
    (STD_DC_CHROMINANCE, 0, "00"), (STD_DC_CHROMINANCE, 3, "110"), (STD_DC_CHROMINANCE, 11, "11111111110"),
    (STD_AC_LUMINANCE, 0x00, "1010"), (STD_AC_LUMINANCE, 0x01, "00"), (STD_AC_LUMINANCE, 0x03, "100"),
    (STD_AC_LUMINANCE, 0x11, "1100"), (STD_AC_LUMINANCE, 0x31, "111010"),
    (STD_AC_LUMINANCE, 0xF0, "11111111001"), (STD_AC_LUMINANCE, 0x0A, "1111111110000011"),
    (STD_AC_LUMINANCE, 0xFA, "1111111111111110"),
    (STD_AC_CHROMINANCE, 0x00, "00"), (STD_AC_CHROMINANCE, 0x01, "01"), (STD_AC_CHROMINANCE, 0x11, "1011"),
    (STD_AC_CHROMINANCE, 0xF0, "1111111010"), (STD_AC_CHROMINANCE, 0xFA, "1111111111111110"),
])
def test_standard_codes_match_published_tables(table, symbol, code):
    # T.81 Tables K.3 (DC luminance), K.4 (DC chrominance), K.5 (AC luminance), K.6 (AC chrominance)
    assert table.code(symbol) == code


def test_standard_tables_equal_libjpeg():
    # Pillow (libjpeg) writes the Annex K tables into every non-optimized file.
    tables = _dht(_pillow_jpeg(np.zeros((8, 8, 3), dtype=np.uint8), quality=75, subsampling=0))
    assert tables[0x00] == STD_DC_LUMINANCE and tables[0x01] == STD_DC_CHROMINANCE
    assert tables[0x10] == STD_AC_LUMINANCE and tables[0x11] == STD_AC_CHROMINANCE
    # every AC table covers EOB, ZRL and all (run, size 1..10)
    for t in (STD_AC_LUMINANCE, STD_AC_CHROMINANCE):
        assert set(t.huffval) == {0x00, 0xF0} | {(r << 4) | s for r in range(16) for s in range(1, 11)}


def _is_prefix_free(codes: list[str]) -> bool:
    codes = sorted(codes)
    return all(not b.startswith(a) for a, b in itertools.pairwise(codes))


@pytest.mark.parametrize("table", [STD_DC_LUMINANCE, STD_DC_CHROMINANCE, STD_AC_LUMINANCE, STD_AC_CHROMINANCE])
def test_canonical_codes_are_prefix_free_and_never_all_ones(table):
    codes = [table.code(s) for s in table.huffval]
    assert _is_prefix_free(codes)
    assert not any(set(c) == {"1"} for c in codes)
    # Annex C: codes of one length are consecutive and increase along HUFFVAL
    values = [int(c, 2) << (16 - len(c)) for c in codes]
    assert values == sorted(values)


def test_generate_code_table_example():
    # two codes of length 2, one of length 3, two of length 4: 00 01 100 1010 1011
    sizes = entropy.generate_size_table((0, 2, 1, 2) + (0,) * 12)
    assert sizes == [2, 2, 3, 4, 4]
    assert entropy.generate_code_table(sizes) == [0b00, 0b01, 0b100, 0b1010, 0b1011]


def test_bad_table_raises():
    with pytest.raises(UserError, match="BITS"):
        HuffmanTable(bits=(2,) + (0,) * 15, huffval=(0, 1))  # codes 0 and 1: the all-ones code is used
    with pytest.raises(UserError, match="HUFFVAL"):
        HuffmanTable(bits=(1,) + (0,) * 15, huffval=(0, 1))


# ---- optimal tables (K.2) ----------------------------------------------------------------------------


def _cost(table: HuffmanTable, freqs: np.ndarray) -> int:
    return int(freqs @ table.lengths(len(freqs))[: len(freqs)])


def test_optimal_table_respects_16_bits_on_skewed_statistics():
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    for freqs in (np.array(fib[::-1], dtype=np.int64),            # unlimited Huffman would need 39 bits
                  np.array([2**40 >> k for k in range(40)] + [1] * 200, dtype=np.int64)):
        table = entropy.optimal_table(freqs)
        lengths = table.lengths(len(freqs))
        assert lengths.max() == 16
        assert (lengths[: len(freqs)] > 0).sum() == len(freqs)  # every counted symbol gets a code
        codes = [table.code(s) for s in table.huffval]
        assert _is_prefix_free(codes) and not any(set(c) == {"1"} for c in codes)
        # more frequent symbols never get longer codes
        order = np.argsort(-freqs, kind="stable")
        assert (np.diff(lengths[order]) >= 0).all()


def test_optimal_table_beats_or_equals_any_other_table():
    rng = np.random.default_rng(1)
    freqs = np.zeros(256, dtype=np.int64)
    freqs[list(STD_AC_LUMINANCE.huffval)] = rng.integers(1, 10_000, len(STD_AC_LUMINANCE.huffval))
    best = entropy.optimal_table(freqs)
    assert _cost(best, freqs) < _cost(STD_AC_LUMINANCE, freqs)
    # and it is within one bit per symbol of the entropy bound
    p = freqs[freqs > 0] / freqs.sum()
    assert _cost(best, freqs) <= freqs.sum() * (-(p * np.log2(p)).sum() + 1)


def test_optimal_tables_equal_libjpeg_optimize():
    # libjpeg's optimize=True runs the same K.2 procedure: same statistics -> the same tables, bit for bit.
    import skimage.data

    image = skimage.data.chelsea()[:120, :160]
    data = _pillow_jpeg(image, quality=60, subsampling=0, optimize=True)
    dec = jpeg.decode_coefficients(data)
    dc_diff = jpeg.dc_differences(dec.zz[:, 0], dec.component, 3)
    dc, ac, _, _ = entropy.symbol_histograms(dec.zz, dc_diff, (dec.component > 0).astype(np.int64), 2, 4)
    tables = _dht(data)
    for t in (0, 1):
        assert entropy.optimal_table(dc[t]) == tables[t]
        assert entropy.optimal_table(ac[t]) == tables[0x10 | t]


def test_optimal_table_degenerate_inputs():
    one = entropy.optimal_table(np.array([0, 0, 7]))
    assert one.huffval == (2,) and one.code(2) == "0"
    empty = entropy.optimal_table(np.zeros(4, dtype=np.int64))
    assert empty.huffval == (0,)
    with pytest.raises(UserError, match=">= 0"):
        entropy.optimal_table(np.array([1, -1]))


# ---- categories, extra bits --------------------------------------------------------------------------


def test_magnitude_categories_and_extra_bits():
    v = np.array([0, 1, -1, 2, 3, -2, -3, 4, -7, 1023, -1024, 2047, 32767, -32768, 65535])
    s = entropy.magnitude_category(v)
    assert s.tolist() == [0, 1, 1, 2, 2, 2, 2, 3, 3, 10, 11, 11, 15, 16, 16]
    bits, n = entropy.extra_bits(v, s)
    got = [format(int(b), f"0{int(k)}b") if k else "" for b, k in zip(bits, n, strict=True)]
    assert got[:9] == ["", "1", "0", "10", "11", "01", "00", "100", "000"]
    assert got[13] == "0111111111111111"  # -32768: low 16 bits of -32769
    assert all(entropy.extend(int(b), int(k)) == int(x) for b, k, x in zip(bits, n, v, strict=True))
    ubits, un = entropy.extra_bits(np.array([1, 2, 3, 5, 65535]), entropy.magnitude_category([1, 2, 3, 5, 65535]),
                                   unsigned=True)
    assert un.tolist() == [0, 1, 1, 2, 15] and ubits.tolist() == [0, 0, 1, 1, 32767]


# ---- packing and stuffing ----------------------------------------------------------------------------


def test_pack_bits_pads_with_ones():
    assert entropy.pack_bits(np.array([0b101]), np.array([3])) == (bytes([0b10111111]), 3)
    assert entropy.pack_bits(np.array([0, 1]), np.array([8, 1])) == (bytes([0, 0b11111111]), 9)
    assert entropy.pack_bits(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == (b"", 0)


def test_pack_bits_matches_a_bit_string_reference():
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 33, 3000)
    words = rng.integers(0, 2**32, 3000) & ((1 << lengths) - 1)
    ref = "".join(format(int(w), f"0{int(n)}b") if n else "" for w, n in zip(words, lengths, strict=True))
    ref += "1" * (-len(ref) % 8)
    data, nbits = entropy.pack_bits(words, lengths)
    assert nbits == lengths.sum()
    assert data == int(ref, 2).to_bytes(len(ref) // 8, "big")


@pytest.mark.parametrize("stuffing", [True, False])
def test_bit_writer_equals_vectorised_packer(stuffing):
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 33, 2000)
    words = rng.integers(0, 2**32, 2000) & ((1 << lengths) - 1)
    words[::7] = (1 << lengths[::7]) - 1  # plenty of 1-bits, so 0xFF bytes occur
    writer = entropy.BitWriter(stuffing=stuffing)
    for w, n in zip(words.tolist(), lengths.tolist(), strict=True):
        writer.write(w, n)
    packed, nbits = entropy.pack_bits(words, lengths)
    assert writer.flush() == (entropy.stuff(packed) if stuffing else packed)
    assert writer.bits == nbits and packed.count(0xFF) > 0


def test_stuff_and_unstuff():
    assert entropy.stuff(b"\x12\xff\x34\xff") == b"\x12\xff\x00\x34\xff\x00"
    assert entropy.stuff(b"\xff\xff") == b"\xff\x00\xff\x00"
    rng = np.random.default_rng(3)
    raw = rng.choice([0x00, 0xFF, 0x7F], 5000).astype(np.uint8).tobytes()
    stuffed = entropy.stuff(raw)
    assert len(stuffed) == len(raw) + raw.count(0xFF) and entropy.unstuff(stuffed) == raw


def test_bit_reader_decodes_what_was_packed():
    rng = np.random.default_rng(4)
    table = STD_AC_LUMINANCE
    symbols = rng.choice(np.array(table.huffval), 2000)
    sizes = rng.integers(0, 12, 2000)
    extra = rng.integers(0, 2**11, 2000) & ((1 << sizes) - 1)
    code, length = entropy.huffman_encode(symbols, np.zeros(2000, dtype=np.int64), [table])
    data, _ = entropy.pack_bits((code << sizes) | extra, length + sizes)
    reader = entropy.BitReader(data)
    lut = entropy.fast_lut(table)
    for s, k, e in zip(symbols, sizes, extra, strict=True):
        assert reader.decode(lut) == s
        assert reader.read(int(k)) == e


def test_missing_symbol_raises():
    with pytest.raises(UserError, match="no code"):
        entropy.huffman_encode(np.array([0x0B]), np.array([0]), [STD_AC_LUMINANCE])  # size 11 is not AC
    with pytest.raises(UserError, match=r"category 16 does not fit a 4-bit SSSS field \(0\.\.15\)"):
        entropy.run_length_symbols(np.array([[0, 40000] + [0] * 62])).symbols(4)


# ---- run-length symbols ------------------------------------------------------------------------------


def _reference_symbols(block: list[int], dc_diff: int | None):
    """Straight transcription of T.81 Figure F.2 for one block: [(kind, run, size, value)]."""
    out, start = [], 0
    if dc_diff is not None:
        out.append((0, 0, int(entropy.magnitude_category(dc_diff)), dc_diff))
        start = 1
    run = 0
    for v in block[start:]:
        if v == 0:
            run += 1
            continue
        while run > 15:
            out.append((1, 15, 0, 0))
            run -= 16
        out.append((1, run, int(entropy.magnitude_category(v)), v))
        run = 0
    if run:
        out.append((1, 0, 0, 0))
    return out


def _as_tuples(rls: entropy.RunLengthSymbols):
    return list(zip(rls.kind.tolist(), rls.run.tolist(), rls.size.tolist(), rls.value.tolist(), strict=True))


def test_run_length_hand_example():
    block = np.zeros(64, dtype=np.int64)
    block[[0, 1, 18, 63]] = [-5, 3, -1, 2]  # runs: 0, 16 -> ZRL + 0, then 44 -> 2 ZRL + 12, no EOB
    rls = entropy.run_length_symbols(block[None], dc_diff=np.array([-5]))
    assert _as_tuples(rls) == [(0, 0, 3, -5), (1, 0, 2, 3), (1, 15, 0, 0), (1, 0, 1, -1), (1, 15, 0, 0),
                               (1, 15, 0, 0), (1, 12, 2, 2)]
    assert rls.symbols(4).tolist() == [3, 0x02, 0xF0, 0x01, 0xF0, 0xF0, 0xC2]
    # all-zero block: DC symbol then EOB only; lossless (no DC): just EOB
    zero = np.zeros((1, 64), dtype=np.int64)
    assert _as_tuples(entropy.run_length_symbols(zero, np.array([0]))) == [(0, 0, 0, 0), (1, 0, 0, 0)]
    assert _as_tuples(entropy.run_length_symbols(zero)) == [(1, 0, 0, 0)]


@pytest.mark.parametrize("with_dc", [True, False])
def test_run_length_matches_reference_on_random_sparse_blocks(with_dc):
    rng = np.random.default_rng(5)
    blocks = rng.integers(-300, 300, (400, 64)) * (rng.random((400, 64)) < rng.random((400, 1)) ** 3)
    blocks[:20] = 0
    blocks[20:40, 63] = 7
    dc = rng.integers(-2000, 2000, 400) if with_dc else None
    rls = entropy.run_length_symbols(blocks, dc)
    expected = []
    for i, block in enumerate(blocks.tolist()):
        expected += _reference_symbols(block, None if dc is None else int(dc[i]))
    assert _as_tuples(rls) == expected


def test_histogram_size_equals_packed_size():
    rng = np.random.default_rng(6)
    blocks = rng.integers(-500, 500, (300, 64)) * (rng.random((300, 64)) < 0.15)
    dc = rng.integers(-1000, 1000, 300)
    tset = rng.integers(0, 2, 300)
    dc_tables, ac_tables = [STD_DC_LUMINANCE, STD_DC_CHROMINANCE], [STD_AC_LUMINANCE, STD_AC_CHROMINANCE]
    dc_h, ac_h, extra, _ = entropy.symbol_histograms(blocks, dc, tset, 2, 4)
    bits = entropy.coded_bits(dc_h, ac_h, extra, dc_tables, ac_tables)
    data, nbits = entropy.encode_symbols(entropy.run_length_symbols(blocks, dc), tset, dc_tables, ac_tables, 4)
    assert bits == nbits and len(data) == -(-bits // 8)
