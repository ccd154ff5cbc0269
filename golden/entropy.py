"""Bit-exact entropy coding shared by the JPEG and the lossless feature codec (the RTL's golden model).

Both codecs turn blocks of 64 integers into the same kind of stream, so both use this one code path:

1. **Run-length symbols** (:func:`run_length_symbols`, T.81 F.1.2). Each nonzero sample becomes a
   symbol ``(RRRR, SSSS)``: ``RRRR`` = the number of zeros before it (0..15) and ``SSSS`` = its magnitude
   category (the bit length of ``|v|``, :func:`magnitude_category`), followed by ``SSSS`` *extra bits*
   that give the value (:func:`extra_bits`). A run of 16 zeros that is followed by another nonzero
   sample is one ZRL symbol ``(15, 0)``; when the block ends in zeros an EOB symbol ``(0, 0)`` closes it
   (there is no EOB after a block whose last sample is nonzero). JPEG codes the block's first sample (the
   DC coefficient) apart: its *difference* from the previous block's DC of the same component is coded
   as ``SSSS`` with a DC table plus extra bits, and the runs start at sample 1. The lossless codec has no
   DC: its runs start at sample 0.
   The symbol number is ``(RRRR << size_field_bits) | SSSS``: JPEG uses ``size_field_bits = 4`` (8-bit
   symbols, SSSS <= 15, the DHT format); the lossless codec needs SSSS up to 16 and uses 5 (9-bit symbols).
2. **Huffman codes** (:class:`HuffmanTable`): a table is given as JPEG's ``BITS`` (the number of codes
   of each length 1..16) and ``HUFFVAL`` (the symbols in order of increasing code length); the codes are
   the canonical codes of T.81 Annex C (:func:`generate_size_table`, :func:`generate_code_table`,
   :func:`order_codes`). The four tables of T.81 Annex K.3 are ``STD_DC_LUMINANCE`` etc.; optimal tables
   for given symbol counts, code lengths limited to 16, follow the procedure of T.81 Annex K.2
   (:func:`optimal_table`), which is also what libjpeg does, so the tables are the same as libjpeg's.
3. **Bit packing** (:func:`huffman_encode`, :func:`pack_bits`, or word by word :class:`BitWriter`): every
   symbol becomes one word ``(code << extra_len) | extra`` of ``code_len + extra_len <= 32`` bits, written
   MSB first; the stream is padded to a whole byte with 1-bits (T.81 F.1.2.3).
4. **Byte stuffing** (:func:`stuff`, JPEG only): after every 0xFF byte of the entropy-coded segment a 0x00
   byte is inserted, so a decoder can find markers. The lossless container states its payload length
   instead and does not stuff.

The size of a stream follows from the symbol counts alone, so :func:`coded_bits` gives the exact bit
count (before padding and stuffing) without ordering or packing anything; the study uses it to sweep many
quality factors quickly.

Decoding (:class:`BitReader`, :meth:`HuffmanTable.decode_lut`) reads 16 bits ahead and looks the symbol
up in a 65536-entry table, which gives the same result as T.81's bit-serial DECODE procedure (F.2.2.3).

All arrays are numpy int64 unless stated; all functions are pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from golden.errors import UserError

MAX_CODE_LENGTH = 16
"""Longest Huffman code (T.81: BITS has 16 entries)."""

KIND_DC = 0
"""Symbol class of a DC difference (coded with a DC table)."""
KIND_AC = 1
"""Symbol class of everything else: (run, size), ZRL and EOB (coded with an AC table)."""

ZRL_RUN = 15
"""ZRL is the symbol (run=15, size=0): sixteen zeros followed by more samples."""


# ---- magnitude categories and extra bits (T.81 F.1.2.1, F.1.2.2) ------------------------------------


def magnitude_category(values: np.ndarray) -> np.ndarray:
    """SSSS: the number of bits of ``|v|`` (0 for 0, 1 for +-1, 2 for +-2..3, ..., 16 for +-32768..65535).

    Equivalently the smallest ``s`` with ``|v| < 2**s``. Works for any integer array (computed in int64).
    """
    a = np.abs(np.asarray(values, dtype=np.int64))
    # frexp gives a = m * 2**e with 0.5 <= m < 1, so e is the bit length; exact for |a| < 2**53.
    _, exponent = np.frexp(a.astype(np.float64))
    return exponent.astype(np.int64)


def extra_bits(values: np.ndarray, sizes: np.ndarray, unsigned: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The extra bits after a symbol and how many there are: ``(bits, length)``.

    Signed (JPEG, T.81 F.1.2.1): ``length = SSSS``; a positive ``v`` sends its low ``SSSS`` bits, a
    negative one the low ``SSSS`` bits of ``v - 1`` (its one's complement), so the first extra bit is 1
    for positive and 0 for negative values.
    ``unsigned=True`` (lossless codec, all values >= 0): the leading bit is always 1 and is not sent:
    ``length = SSSS - 1`` and ``bits = v - 2**(SSSS-1)``.
    ``SSSS = 0`` sends nothing.
    """
    v = np.asarray(values, dtype=np.int64)
    s = np.asarray(sizes, dtype=np.int64)
    if unsigned:
        length = np.maximum(s - 1, 0)
        bits = v & ((np.int64(1) << length) - 1)
        return bits, length
    bits = np.where(v < 0, v - 1, v) & ((np.int64(1) << s) - 1)
    return bits, s


def extend(bits: int, size: int) -> int:
    """T.81 F.2.2.1 EXTEND: extra bits of a signed value back to the value."""
    if size == 0:
        return 0
    return bits if bits >= (1 << (size - 1)) else bits - (1 << size) + 1


# ---- Huffman tables (T.81 Annex C and K.3) ----------------------------------------------------------


def generate_size_table(bits: list[int] | tuple[int, ...]) -> list[int]:
    """T.81 Figure C.1: HUFFSIZE, the code length of each HUFFVAL entry (BITS[i] entries of length i+1)."""
    return [length for length in range(1, MAX_CODE_LENGTH + 1) for _ in range(bits[length - 1])]


def generate_code_table(huffsize: list[int]) -> list[int]:
    """T.81 Figure C.2: HUFFCODE, the canonical code of each entry (codes of one length are consecutive;
    moving to the next length appends a 0 bit)."""
    codes: list[int] = []
    code = 0
    si = huffsize[0] if huffsize else 0
    k = 0
    while k < len(huffsize):
        while k < len(huffsize) and huffsize[k] == si:
            codes.append(code)
            code += 1
            k += 1
        code <<= 1
        si += 1
    return codes


def order_codes(huffval: list[int], huffsize: list[int], huffcode: list[int],
                alphabet_size: int) -> tuple[np.ndarray, np.ndarray]:
    """T.81 Figure C.3: EHUFCO and EHUFSI indexed by symbol (length 0 = symbol not in the table)."""
    ehufco = np.zeros(alphabet_size, dtype=np.int64)
    ehufsi = np.zeros(alphabet_size, dtype=np.int64)
    ehufco[huffval] = huffcode
    ehufsi[huffval] = huffsize
    return ehufco, ehufsi


@dataclass(frozen=True)
class HuffmanTable:
    """A Huffman table as JPEG's DHT carries it: ``bits[i]`` = number of codes of length ``i + 1``
    (16 entries), ``huffval`` = the symbols, shortest codes first. Codes are canonical (Annex C).

    ``ehufco[s]``/``ehufsi[s]`` give the code and its length of symbol ``s`` (length 0: not coded).
    """

    bits: tuple[int, ...]
    huffval: tuple[int, ...]
    ehufco: np.ndarray = field(init=False, repr=False, compare=False)
    ehufsi: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        bits = tuple(int(b) for b in self.bits)
        huffval = tuple(int(v) for v in self.huffval)
        object.__setattr__(self, "bits", bits)
        object.__setattr__(self, "huffval", huffval)
        if len(bits) != MAX_CODE_LENGTH or min(bits) < 0:
            raise UserError(f"Huffman BITS must be 16 counts >= 0, got {list(bits)}")
        if sum(bits) != len(huffval) or len(huffval) == 0:
            raise UserError(f"Huffman BITS count {sum(bits)} codes but HUFFVAL has {len(huffval)} symbols "
                            "(need equal and >= 1)")
        if len(set(huffval)) != len(huffval) or min(huffval) < 0:
            raise UserError("Huffman HUFFVAL symbols must be distinct and >= 0")
        # Kraft: the codes must fit, and the all-ones code of each length must stay unused (T.81 C).
        kraft = sum(b << (MAX_CODE_LENGTH - (i + 1)) for i, b in enumerate(bits))
        if kraft >= 1 << MAX_CODE_LENGTH:
            raise UserError(f"Huffman BITS {list(bits)} over-full: Kraft sum {kraft}/65536 must be < 65536")
        huffsize = generate_size_table(bits)
        huffcode = generate_code_table(huffsize)
        ehufco, ehufsi = order_codes(list(huffval), huffsize, huffcode, max(huffval) + 1)
        ehufco.setflags(write=False)
        ehufsi.setflags(write=False)
        object.__setattr__(self, "ehufco", ehufco)
        object.__setattr__(self, "ehufsi", ehufsi)

    def code(self, symbol: int) -> str:
        """The code of ``symbol`` as a string of '0'/'1' (for tests and documentation)."""
        if symbol >= len(self.ehufsi) or self.ehufsi[symbol] == 0:
            raise KeyError(f"symbol {symbol:#x} is not in the table")
        return format(int(self.ehufco[symbol]), f"0{int(self.ehufsi[symbol])}b")

    def lengths(self, alphabet_size: int) -> np.ndarray:
        """Code length of every symbol ``0..alphabet_size-1`` (0 where the table has no code)."""
        out = np.zeros(alphabet_size, dtype=np.int64)
        n = min(alphabet_size, len(self.ehufsi))
        out[:n] = self.ehufsi[:n]
        return out

    def decode_lut(self) -> tuple[np.ndarray, np.ndarray]:
        """65536-entry decode tables ``(symbol, length)`` indexed by the next 16 bits of the stream.

        Canonical codes in HUFFVAL order are increasing, so code ``c`` of length ``l`` owns the index range
        ``[c << (16-l), (c+1) << (16-l))`` and the ranges tile ``[0, kraft)``; the rest (the all-ones
        prefix) is invalid (-1, length 0).
        """
        sizes = np.array(generate_size_table(self.bits), dtype=np.int64)
        span = np.int64(1) << (MAX_CODE_LENGTH - sizes)
        total = int(span.sum())
        symbol = np.full(1 << MAX_CODE_LENGTH, -1, dtype=np.int64)
        length = np.zeros(1 << MAX_CODE_LENGTH, dtype=np.int64)
        symbol[:total] = np.repeat(np.array(self.huffval, dtype=np.int64), span)
        length[:total] = np.repeat(sizes, span)
        return symbol, length

    def dht_payload(self, table_class: int, table_id: int) -> bytes:
        """This table as one DHT entry: ``Tc<<4 | Th``, 16 BITS bytes, HUFFVAL bytes (8-bit symbols)."""
        if max(self.huffval) > 255:
            raise UserError(f"symbol {max(self.huffval)} does not fit a JPEG DHT (8-bit symbols only)")
        return bytes([(table_class << 4) | table_id, *self.bits, *self.huffval])


# T.81 Annex K.3, Tables K.3 to K.6 (identical to libjpeg's jstdhuff.c).
STD_DC_LUMINANCE = HuffmanTable(
    bits=(0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0),
    huffval=tuple(range(12)),
)
STD_DC_CHROMINANCE = HuffmanTable(
    bits=(0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0),
    huffval=tuple(range(12)),
)
STD_AC_LUMINANCE = HuffmanTable(
    bits=(0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D),
    huffval=(
        0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
        0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xA1, 0x08, 0x23, 0x42, 0xB1, 0xC1, 0x15, 0x52, 0xD1, 0xF0,
        0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0A, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x25, 0x26, 0x27, 0x28,
        0x29, 0x2A, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
        0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
        0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
        0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
        0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3, 0xC4, 0xC5,
        0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xE1, 0xE2,
        0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ),
)
STD_AC_CHROMINANCE = HuffmanTable(
    bits=(0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77),
    huffval=(
        0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
        0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xA1, 0xB1, 0xC1, 0x09, 0x23, 0x33, 0x52, 0xF0,
        0x15, 0x62, 0x72, 0xD1, 0x0A, 0x16, 0x24, 0x34, 0xE1, 0x25, 0xF1, 0x17, 0x18, 0x19, 0x1A, 0x26,
        0x27, 0x28, 0x29, 0x2A, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
        0x49, 0x4A, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
        0x69, 0x6A, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
        0x88, 0x89, 0x8A, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0xA2, 0xA3, 0xA4, 0xA5,
        0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xC2, 0xC3,
        0xC4, 0xC5, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA,
        0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8,
        0xF9, 0xFA,
    ),
)


# ---- optimal tables (T.81 Annex K.2) -----------------------------------------------------------------


def optimal_code_sizes(freqs: np.ndarray) -> np.ndarray:
    """T.81 Figure K.1: Huffman code sizes (unlimited) for ``freqs`` plus one reserved symbol.

    Returns ``codesize`` of length ``len(freqs) + 1``; the last entry is the reserved symbol of frequency
    1 that keeps the all-ones code unused. Ties pick the larger symbol number (as T.81 and libjpeg do).
    """
    freq = np.concatenate([np.asarray(freqs, dtype=np.int64), [1]])
    if freq.min() < 0:
        raise UserError(f"symbol frequencies must be >= 0, got {int(freq.min())}")
    n = len(freq)
    codesize = np.zeros(n, dtype=np.int64)
    others = np.full(n, -1, dtype=np.int64)
    big = np.iinfo(np.int64).max
    # Work on a masked copy so each search is one numpy pass; reversed so argmin's first hit is the
    # largest symbol number among ties.
    work = np.where(freq > 0, freq, big)[::-1].copy()
    while True:
        r1 = int(np.argmin(work))
        if work[r1] == big:
            break
        saved = work[r1]
        work[r1] = big
        r2 = int(np.argmin(work))
        if work[r2] == big:
            break
        v1, v2 = n - 1 - r1, n - 1 - r2
        work[r1] = saved + work[r2]
        work[r2] = big
        codesize[v1] += 1
        while others[v1] != -1:
            v1 = others[v1]
            codesize[v1] += 1
        others[v1] = v2
        codesize[v2] += 1
        while others[v2] != -1:
            v2 = others[v2]
            codesize[v2] += 1
    return codesize


def limit_code_lengths(bits: list[int], max_length: int = MAX_CODE_LENGTH) -> list[int]:
    """T.81 Figure K.3 Adjust_BITS: move codes longer than ``max_length`` up the tree, then drop the
    reserved symbol's code (one code of the longest length). ``bits[i]`` = count of length ``i``."""
    bits = list(bits)
    i = len(bits) - 1
    while i > max_length:
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
        i -= 1
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1
    return bits[: max_length + 1]


def optimal_table(freqs: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> HuffmanTable:
    """The optimal length-limited canonical table for symbol counts ``freqs[s]`` (T.81 Annex K.2).

    Figure K.1 (code sizes), K.2 (count BITS), K.3 (limit to ``max_length``, drop the reserved code) and
    K.4 (HUFFVAL = symbols sorted by code size, then by symbol). Symbols with count 0 get no code. With no
    symbol counted at all, symbol 0 gets a code (a DHT needs at least one).
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    if freqs.ndim != 1 or freqs.size == 0:
        raise UserError(f"symbol frequencies must be a non-empty 1-D array, got shape {freqs.shape}")
    if not 1 <= max_length <= MAX_CODE_LENGTH:
        raise UserError(f"max code length {max_length} is outside 1..{MAX_CODE_LENGTH}")
    if int((freqs > 0).sum()) + 1 > (1 << max_length):
        raise UserError(f"{int((freqs > 0).sum())} symbols do not fit codes of at most {max_length} bits")
    if not freqs.any():
        freqs = freqs.copy()
        freqs[0] = 1
    codesize = optimal_code_sizes(freqs)
    longest = int(codesize.max())
    bits = np.bincount(codesize[codesize > 0], minlength=max(longest, max_length) + 1).tolist()
    bits = limit_code_lengths(bits, max_length)
    n = len(freqs)
    used = np.flatnonzero(codesize[:n] > 0)
    huffval = used[np.lexsort((used, codesize[used]))]
    return HuffmanTable(bits=tuple(bits[1:]) + (0,) * (MAX_CODE_LENGTH - max_length), huffval=tuple(huffval))


# ---- run-length symbols (T.81 F.1.2) ----------------------------------------------------------------


@dataclass(frozen=True)
class _Runs:
    """The nonzero samples of a block array and what the run-length coder makes of them (unordered)."""

    block: np.ndarray   # block index of each nonzero sample
    run: np.ndarray     # zeros before it modulo 16 (RRRR)
    zrl: np.ndarray     # number of ZRL symbols before it (run // 16)
    size: np.ndarray    # SSSS
    value: np.ndarray   # the sample
    eob: np.ndarray     # per block: True if the block ends with an EOB symbol


def _runs(samples: np.ndarray, start: int) -> _Runs:
    n, length = samples.shape
    b, k = np.nonzero(samples[:, start:])  # row-major: by block, then by position
    value = samples[:, start:][b, k].astype(np.int64)
    same = np.zeros(len(b), dtype=bool)
    same[1:] = b[1:] == b[:-1]
    prev = np.where(same, np.concatenate([[-1], k[:-1]]), -1)
    run = k - prev - 1
    last = np.full(n, -1, dtype=np.int64)
    last[b] = k  # later (larger) positions overwrite earlier ones
    return _Runs(block=b.astype(np.int64), run=run & 15, zrl=run >> 4, size=magnitude_category(value),
                 value=value, eob=last < length - start - 1)


@dataclass(frozen=True)
class RunLengthSymbols:
    """The symbols of a run-length coded block array, one entry per Huffman symbol in stream order.

    ``kind``: KIND_DC or KIND_AC (which table class codes it); ``run``/``size``: RRRR/SSSS (DC entries
    have run 0 and the DC difference's SSSS; ZRL is (15, 0), EOB is (0, 0)); ``value``: the sample
    (the DC difference for DC entries; 0 for ZRL/EOB); ``block``: the block each symbol belongs to.
    """

    block: np.ndarray
    kind: np.ndarray
    run: np.ndarray
    size: np.ndarray
    value: np.ndarray

    def symbols(self, size_field_bits: int) -> np.ndarray:
        """Symbol numbers: SSSS for DC entries, ``(RRRR << size_field_bits) | SSSS`` for AC entries."""
        _check_size_field(self.size, size_field_bits)
        return np.where(self.kind == KIND_DC, self.size, (self.run << size_field_bits) | self.size)


def _check_size_field(sizes: np.ndarray, size_field_bits: int) -> None:
    if sizes.size and int(sizes.max()) >= 1 << size_field_bits:
        raise UserError(f"magnitude category {int(sizes.max())} does not fit a {size_field_bits}-bit SSSS field "
                        f"(0..{(1 << size_field_bits) - 1})")


def run_length_symbols(samples: np.ndarray, dc_diff: np.ndarray | None = None) -> RunLengthSymbols:
    """Run-length code ``samples[n, 64]`` (each row one block, in coding order: zigzag for JPEG).

    With ``dc_diff[n]`` (JPEG) each block starts with a DC symbol for ``dc_diff`` and column 0 is not run
    coded; without it (lossless) every column is. Vectorised: the emitted order is built from per-block
    symbol counts, not with a Python loop.
    """
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise UserError(f"run-length coder needs a 2-D [blocks, samples] array, got shape {samples.shape}")
    has_dc = dc_diff is not None
    r = _runs(samples, 1 if has_dc else 0)
    n = samples.shape[0]
    per_nonzero = r.zrl + 1
    block_sum = np.bincount(r.block, weights=per_nonzero, minlength=n).astype(np.int64)
    count = int(has_dc) + block_sum + r.eob
    block_start = np.cumsum(count) - count
    total = int(count.sum())

    # Default every slot to ZRL; DC, AC and EOB slots are written over it.
    kind = np.full(total, KIND_AC, dtype=np.int64)
    run = np.full(total, ZRL_RUN, dtype=np.int64)
    size = np.zeros(total, dtype=np.int64)
    value = np.zeros(total, dtype=np.int64)
    block = np.repeat(np.arange(n, dtype=np.int64), count)

    if has_dc:
        dc = np.asarray(dc_diff, dtype=np.int64)
        kind[block_start] = KIND_DC
        run[block_start] = 0
        size[block_start] = magnitude_category(dc)
        value[block_start] = dc
    before_block = (np.cumsum(block_sum) - block_sum)[r.block]
    pos = block_start[r.block] + int(has_dc) + np.cumsum(per_nonzero) - before_block - 1
    run[pos] = r.run
    size[pos] = r.size
    value[pos] = r.value
    eob_pos = (block_start + count - 1)[r.eob]
    run[eob_pos] = 0
    return RunLengthSymbols(block=block, kind=kind, run=run, size=size, value=value)


def symbol_histograms(samples: np.ndarray, dc_diff: np.ndarray | None, table_of_block: np.ndarray,
                      n_tables: int, size_field_bits: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Symbol counts without ordering the stream: ``(dc_hist[t, s], ac_hist[t, s], extra_bits_signed,
    n_nonzero)``.

    ``table_of_block[n]`` selects the table set of each block (JPEG: 0 luminance, 1 chrominance).
    ``extra_bits_signed`` is the total of all SSSS (the extra bits of the signed scheme); the unsigned
    lossless scheme sends one bit less per nonzero sample, i.e. ``extra_bits_signed - n_nonzero``.
    """
    samples = np.asarray(samples)
    has_dc = dc_diff is not None
    r = _runs(samples, 1 if has_dc else 0)
    table_of_block = np.asarray(table_of_block, dtype=np.int64)
    _check_size_field(r.size, size_field_bits)
    alphabet = 16 << size_field_bits
    ac_sym = (r.run << size_field_bits) | r.size
    ac = np.bincount(table_of_block[r.block] * alphabet + ac_sym, minlength=n_tables * alphabet)
    ac = ac.reshape(n_tables, alphabet).copy()
    zrl_sym = ZRL_RUN << size_field_bits
    ac[:, zrl_sym] += np.bincount(table_of_block[r.block], weights=r.zrl, minlength=n_tables).astype(np.int64)
    ac[:, 0] += np.bincount(table_of_block[r.eob], minlength=n_tables)
    extra = int(r.size.sum())
    dc = np.zeros((n_tables, 1 << size_field_bits), dtype=np.int64)
    if has_dc:
        dc_size = magnitude_category(dc_diff)
        if dc_size.size and dc_size.max() >= dc.shape[1]:
            raise UserError(f"DC difference category {int(dc_size.max())} exceeds {dc.shape[1] - 1}")
        dc = np.bincount(table_of_block * dc.shape[1] + dc_size, minlength=dc.size).reshape(dc.shape)
        extra += int(dc_size.sum())
    return dc, ac, extra, len(r.value)


def coded_bits(dc_hist: np.ndarray, ac_hist: np.ndarray, extra: int,
               dc_tables: list[HuffmanTable], ac_tables: list[HuffmanTable]) -> int:
    """Exact bit count of a stream (before padding/stuffing) from its symbol histograms and extra bits."""
    total = extra
    for hist, tables in ((dc_hist, dc_tables), (ac_hist, ac_tables)):
        for t, table in enumerate(tables):
            if t >= hist.shape[0]:
                break
            lengths = table.lengths(hist.shape[1])
            missing = (hist[t] > 0) & (lengths == 0)
            if missing.any():
                raise UserError(f"symbol {int(np.flatnonzero(missing)[0]):#x} has no code in Huffman table {t}")
            total += int(hist[t] @ lengths)
    return total


# ---- Huffman encoding, packing and stuffing ----------------------------------------------------------


def huffman_encode(symbols: np.ndarray, table_index: np.ndarray,
                   tables: list[HuffmanTable]) -> tuple[np.ndarray, np.ndarray]:
    """Codes and code lengths of ``symbols[i]`` in ``tables[table_index[i]]`` (EHUFCO/EHUFSI lookup)."""
    symbols = np.asarray(symbols, dtype=np.int64)
    table_index = np.asarray(table_index, dtype=np.int64)
    width = max(len(t.ehufsi) for t in tables)
    width = max(width, int(symbols.max()) + 1 if symbols.size else 1)
    co = np.zeros((len(tables), width), dtype=np.int64)
    si = np.zeros((len(tables), width), dtype=np.int64)
    for t, table in enumerate(tables):
        co[t, : len(table.ehufco)] = table.ehufco
        si[t, : len(table.ehufsi)] = table.ehufsi
    code = co[table_index, symbols]
    length = si[table_index, symbols]
    if symbols.size and length.min() == 0:
        i = int(np.argmin(length))
        raise UserError(f"symbol {int(symbols[i]):#x} has no code in Huffman table {int(table_index[i])}")
    return code, length


def pack_bits(words: np.ndarray, lengths: np.ndarray) -> tuple[bytes, int]:
    """Concatenate ``words[i]`` (``lengths[i]`` bits each, 0..32, MSB first) into bytes, padding the last
    byte with 1-bits. Returns ``(data, number_of_bits_before_padding)``.

    Vectorised: word ``i`` starts at bit ``p = sum(lengths[:i])``, so it lies in the 5 bytes from ``p >> 3``
    on; its 40-bit placement ``word << (40 - (p & 7) - length)`` is cut into those 5 bytes and added to
    them (the words' bits never overlap, so adding is OR).
    """
    words = np.asarray(words, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    nbits = int(lengths.sum())
    if nbits == 0:
        return b"", 0
    if lengths.min() < 0 or lengths.max() > 32:
        raise ValueError(f"word length {int(lengths.max())} is outside 0..32")
    start = np.cumsum(lengths) - lengths
    first_byte = start >> 3
    placed = (words & ((np.int64(1) << lengths) - 1)) << (40 - (start & 7) - lengths)
    nbytes = -(-nbits // 8)
    out = np.zeros(nbytes + 5, dtype=np.float64)
    for j in range(5):
        part = (placed >> (32 - 8 * j)) & 0xFF
        out += np.bincount(first_byte + j, weights=part, minlength=nbytes + 5)
    data = out[:nbytes].astype(np.uint8)
    if nbits % 8:
        data[-1] |= 0xFF >> (nbits % 8)
    return data.tobytes(), nbits


class BitWriter:
    """The packer one word at a time, as an RTL bit packer works (the vectorised :func:`pack_bits` and
    :func:`stuff` give the same bytes; the tests check it).

    A bit accumulator takes ``length`` bits of ``value`` per :meth:`write`; every completed byte is emitted,
    followed by a 0x00 if it is 0xFF and ``stuffing`` is on. :meth:`flush` fills the last byte with 1-bits.
    """

    def __init__(self, stuffing: bool = True) -> None:
        self.stuffing = stuffing
        self.bits = 0  # bits written, padding excluded
        self._acc = 0
        self._pending = 0
        self._out = bytearray()

    def write(self, value: int, length: int) -> None:
        if not 0 <= length <= 32:
            raise ValueError(f"word length {length} is outside 0..32")
        self._acc = (self._acc << length) | (int(value) & ((1 << length) - 1))
        self._pending += length
        self.bits += length
        while self._pending >= 8:
            self._pending -= 8
            byte = (self._acc >> self._pending) & 0xFF
            self._out.append(byte)
            if self.stuffing and byte == 0xFF:
                self._out.append(0)
        self._acc &= (1 << self._pending) - 1

    def flush(self) -> bytes:
        """Pad to a byte with 1-bits and return everything written."""
        if self._pending:
            pad = 8 - self._pending
            bits = self.bits
            self.write((1 << pad) - 1, pad)
            self.bits = bits
        return bytes(self._out)


def stuff(data: bytes) -> bytes:
    """JPEG byte stuffing (T.81 F.1.2.3): a 0x00 after every 0xFF."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ff = np.flatnonzero(arr == 0xFF)
    if ff.size == 0:
        return bytes(data)
    return np.insert(arr, ff + 1, 0).tobytes()


def unstuff(data: bytes) -> bytes:
    """Remove JPEG byte stuffing: drop the 0x00 after each 0xFF (the data must hold no markers)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ff = np.flatnonzero(arr[:-1] == 0xFF)
    # Consecutive 0xFF 0x00 pairs never overlap, since a stuffed 0x00 is not 0xFF.
    return np.delete(arr, ff + 1).tobytes()


def encode_symbols(rls: RunLengthSymbols, table_of_block: np.ndarray, dc_tables: list[HuffmanTable],
                   ac_tables: list[HuffmanTable], size_field_bits: int,
                   unsigned: bool = False) -> tuple[bytes, int]:
    """Huffman code a symbol stream and pack it: ``(bytes padded with 1-bits, bits before padding)``.

    DC entries of a block with table set ``t`` use ``dc_tables[t]``, the others ``ac_tables[t]``.
    """
    tset = np.asarray(table_of_block, dtype=np.int64)[rls.block]
    # One table list [dc..., ac...]: DC entries index 0..len(dc)-1, AC entries follow.
    table_index = np.where(rls.kind == KIND_DC, tset, len(dc_tables) + tset)
    code, code_len = huffman_encode(rls.symbols(size_field_bits), table_index, [*dc_tables, *ac_tables])
    extra, extra_len = extra_bits(rls.value, rls.size, unsigned=unsigned)
    words = (code << extra_len) | extra
    return pack_bits(words, code_len + extra_len)


# ---- decoding ----------------------------------------------------------------------------------------


class BitReader:
    """Reads an (unstuffed) byte string MSB first; past the end it reads 1-bits (like padding)."""

    def __init__(self, data: bytes) -> None:
        arr = np.frombuffer(bytes(data) + b"\xff\xff\xff\xff", dtype=np.uint8).astype(np.int64)
        # window[i] = bytes i..i+3 as a 32-bit big-endian word, so any 16 bits from bit p are in
        # window[p >> 3] >> (16 - (p & 7)).
        window = (arr[:-3] << 24) | (arr[1:-2] << 16) | (arr[2:-1] << 8) | arr[3:]
        self._window: list[int] = window.tolist()
        self._nbits = 8 * len(data)
        self.pos = 0

    @property
    def bits_left(self) -> int:
        return self._nbits - self.pos

    def peek16(self) -> int:
        p = self.pos
        byte = p >> 3
        if byte >= len(self._window):
            return 0xFFFF
        return (self._window[byte] >> (16 - (p & 7))) & 0xFFFF

    def read(self, n: int) -> int:
        """The next ``n`` (0..16) bits as an unsigned integer."""
        if n == 0:
            return 0
        value = self.peek16() >> (16 - n)
        self.pos += n
        return value

    def decode(self, lut: tuple[np.ndarray, np.ndarray] | tuple[list[int], list[int]]) -> int:
        """Decode one Huffman symbol with a table from :meth:`HuffmanTable.decode_lut` (lists are faster)."""
        symbols, lengths = lut
        index = self.peek16()
        length = lengths[index]
        if length == 0:
            raise ValueError(f"invalid Huffman code at bit {self.pos}")
        self.pos += int(length)
        return int(symbols[index])


def fast_lut(table: HuffmanTable) -> tuple[list[int], list[int]]:
    """:meth:`HuffmanTable.decode_lut` as Python lists (faster indexing in decode loops)."""
    symbol, length = table.decode_lut()
    return symbol.tolist(), length.tolist()
