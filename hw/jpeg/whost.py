"""The host side of the RTL weight decoder (pure Python, no hardware): what a driver computes and sends.

* :func:`length_entries`: a Huffman table (JPEG ``BITS``/``HUFFVAL``) as the decoder's per-length
  ``LIMIT``/``OFFSET`` entries, from golden's T.81 ``MINCODE``/``MAXCODE``/``VALPTR``
  (:func:`golden.weightcodec.decoder_tables`);
* :func:`table_writes`: every table-port write for a layer (HUFFVAL, length entries, Q, ``p``,
  ``group_blocks``; the map is in :mod:`hw.jpeg.wdecoder`);
* :class:`DecodeJob`: one lane stream of an encoded layer for the RTL: its words, table writes, block
  count and what the RTL must produce (golden's decoded weights of that lane), built by :func:`decode_job`;
* :func:`block_position`: where a decoded weight of a lane stream goes in the engine's weight buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden import jpeg
from golden import weightcodec as wc
from golden.entropy import HuffmanTable
from golden.errors import UserError

from .wdecoder import (
    AC_LENGTH_BASE,
    DC_HUFFVAL_BASE,
    GROUP_BLOCKS_ADDR,
    HUFFVAL_BASE,
    LENGTH_BASE,
    PRE_SHIFT_ADDR,
    QUANT_BASE,
)

__all__ = ["length_entries", "huffman_writes", "table_writes", "DecodeJob", "decode_job", "expected_blocks",
           "block_position"]


def length_entries(table: HuffmanTable) -> list[tuple[int, int]]:
    """``(LIMIT, OFFSET)`` for code lengths 1..16: ``LIMIT = MAXCODE + 1`` (0 where no code has that
    length, so no prefix matches there), ``OFFSET = (VALPTR - MINCODE) mod 256`` (the decoder adds the
    code to it to index HUFFVAL)."""
    mincode, maxcode, valptr = wc.decoder_tables(table)
    return [(maxcode[i] + 1, (valptr[i] - mincode[i]) & 0xFF) for i in range(16)]


def huffman_writes(dc: HuffmanTable, ac: HuffmanTable) -> list[tuple[int, int]]:
    """Table-port writes of the two Huffman tables."""
    if len(dc.huffval) > 16 or max(dc.huffval) > wc.MAX_SSSS:
        raise UserError(f"DC table symbols must be SSSS 0..{wc.MAX_SSSS}, got {list(dc.huffval)}")
    if len(ac.huffval) > 256 or max(ac.huffval) > 255:
        raise UserError("AC table symbols must be 8-bit RRRR/SSSS values")
    writes = [(HUFFVAL_BASE + i, v) for i, v in enumerate(ac.huffval)]
    writes += [(DC_HUFFVAL_BASE + i, v) for i, v in enumerate(dc.huffval)]
    for base, table in ((LENGTH_BASE, dc), (AC_LENGTH_BASE, ac)):
        writes += [(base + i, limit | offset << 16) for i, (limit, offset) in enumerate(length_entries(table))]
    return writes


def table_writes(dc: HuffmanTable, ac: HuffmanTable, qtable: np.ndarray, p: int, group_blocks: int) -> np.ndarray:
    """All table-port writes ``[n, 2]`` (address, data) for one layer; ``group_blocks``: the DC predictor
    restarts every this many blocks (a lane stream: ``ceil(K / 64)``, ``EncodedLayer.lane_group_blocks``)."""
    q = np.asarray(qtable, dtype=np.int64).reshape(64)
    if q.min() < 1 or q.max() > 255:
        raise UserError(f"Q entries must be 1..255, got {int(q.min())}..{int(q.max())}")
    if not 0 <= p <= wc.MAX_PRE_SHIFT:
        raise UserError(f"pre-shift {p} is outside 0..{wc.MAX_PRE_SHIFT}")
    if not 1 <= group_blocks < 1 << 16:
        raise UserError(f"group_blocks {group_blocks} is outside 1..65535")
    writes = huffman_writes(dc, ac)
    writes += [(QUANT_BASE + n, int(v)) for n, v in enumerate(q)]
    writes += [(PRE_SHIFT_ADDR, int(p)), (GROUP_BLOCKS_ADDR, int(group_blocks))]
    return np.array(writes, dtype=np.int64)


def expected_blocks(enc: wc.EncodedLayer) -> np.ndarray:
    """Golden's decoded weights of ``enc`` in block order: int16 ``[n_blocks, 64]`` (block order
    (g, kb, j), raster order inside a block; padding blocks included)."""
    q = jpeg.unzigzag(wc.decode_zz(enc))
    return wc.restore(wc.idct_int(wc.dequantize(q, enc.qtable)), enc.p).reshape(-1, 64)


@dataclass(frozen=True)
class DecodeJob:
    """One lane stream of an encoded layer for the RTL decoder and what it must produce.

    ``words``: uint16 stream words; ``tables``: ``[n, 2]`` table-port writes; ``expected``: int16
    ``[blocks, 64]`` golden weights in output order (the lane's blocks (g, kb) in order); ``bits``: golden's
    stream bits before padding; ``per_group``: blocks per group in the stream (the DC restart period).
    """

    words: np.ndarray
    tables: np.ndarray
    expected: np.ndarray
    bits: int
    per_group: int
    label: str = ""

    @property
    def blocks(self) -> int:
        return len(self.expected)


def decode_job(enc: wc.EncodedLayer, label: str = "", lane: int = 0) -> DecodeJob:
    """The job of lane ``lane`` of an encoded layer; the expected weights come from golden's decoder, and
    all blocks, unblocked, must equal :func:`golden.weightcodec.decode_layer` (checked here)."""
    if not 0 <= lane < wc.LANES:
        raise UserError(f"lane {lane} is outside 0..{wc.LANES - 1}")
    expected = expected_blocks(enc)
    decoded = wc.decode_layer(enc)
    if not np.array_equal(wc.from_blocks(expected.reshape(-1, 8, 8), enc.out_channels, enc.k), decoded):
        raise AssertionError("expected blocks disagree with golden.weightcodec.decode_layer")
    nb = enc.lane_blocks
    mine = expected[wc.lane_order(enc.out_channels, enc.k)[lane * nb:(lane + 1) * nb]]
    tables = table_writes(enc.dc_table, enc.ac_table, enc.qtable, enc.p, enc.lane_group_blocks)
    return DecodeJob(words=enc.lane_words(lane), tables=tables, expected=mine, bits=enc.lane_bits[lane],
                     per_group=enc.lane_group_blocks, label=f"{label} lane {lane}" if label else f"lane {lane}")


def block_position(block: int, k: int, lane: int) -> tuple[int, int, int]:
    """Block ``block`` of lane stream ``lane`` of a layer with dot-product length ``k`` -> ``(group g,
    weight-buffer row base 64 kb, lane j)``: weight ``i`` of the block goes to row ``64 kb + i``, lane
    ``j = lane`` of group ``g``."""
    kblocks = wc.k_blocks(k)
    return block // kblocks, wc.BLOCK * (block % kblocks), lane
