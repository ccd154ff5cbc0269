"""How a layer that does not fit the feature buffer is cut into bands of output rows: the one rule that the
compiler (``sim.program``) follows and the cost model (``model.counts``) counts.

A band holds its input rows (all its input channels) and its output rows in the buffer. Sequential bands
(LOAD, compute, STORE, one after the other) use the whole buffer; double-buffered bands use half each (band
``i + 1``'s LOAD and band ``i - 1``'s STORE run in the background while band ``i`` computes: ``hw.dma``),
so there are about twice as many, each paying a compute command's fixed costs (descriptor fetch, the first
weight group's fetch, the array's drain). :func:`plan_bands` picks double buffering when a coarse estimate of
the layer's cycles says it wins: the transfers hide behind the compute, minus those fixed costs.
"""

from __future__ import annotations

from dataclasses import dataclass

WORDS_PER_CYCLE = 8.0      # the DRAM model's default: 16 bytes per cycle
COMMAND_CYCLES = 30.0      # a descriptor fetch and decode
LATENCY = 20.0             # DRAM read latency
BEAT_CYCLES = 1.5          # a 12-word beat at 8 words per cycle


def band_rows(oh: int, gh: int, s: int, k: int, cin: int, gw: int, oc: int, ow: int, words: int) -> int | None:
    """The most output rows per band whose input rows (``cin`` channels of ``gw`` words, a ``k``-row kernel at
    stride ``s`` over ``gh`` input rows) and output rows (``oc`` channels of ``ow``) fit ``words``; None if one
    row does not."""
    for rows in range(oh, 0, -1):
        rows_in = min(gh, (rows - 1) * s + k)
        if cin * rows_in * gw + oc * rows * ow <= words:
            return rows
    return None


def band_work(kind: str, cin: int, oc: int, ow: int, k: int, s: int, lanes: int = 12, bias_beats: int = 3
               ) -> tuple[float, int]:
    """(compute cycles per output row, weight beats per compute command) of a band: the coarse figures
    :func:`plan_bands` weighs. ``kind``: ``conv`` (the MAC array, ``cin`` input channels per output channel),
    ``dw`` (the depthwise unit: 12 pixels of a channel per cycle at stride 1, 4 reads per row at stride 2) or
    ``pool`` (12 outputs per ``k * k`` beats)."""
    if kind == "dw":
        return oc * -(-ow // lanes) * (1 if s == 1 else 4), -(-oc // lanes) * (9 + bias_beats)
    if kind == "pool":
        return oc * -(-ow // lanes) * k * k, 0
    return oc * ow * cin * k * k / (lanes * lanes), -(-oc // lanes) * (cin * k * k + bias_beats)


@dataclass(frozen=True)
class BandPlan:
    rows: int            # output rows per band (the last band may have fewer)
    double: bool         # double-buffered (background transfers) or sequential


def plan_bands(oh: int, gh: int, s: int, k: int, pad: int, cin: int, gw: int, oc: int, ow: int, fb_words: int,
               row_cycles: float, weight_beats: int, overlap: bool = True) -> BandPlan | None:
    """The band plan of a layer: sequential bands as large as the buffer allows, or double-buffered ones in half
    of it when ``overlap`` and the estimate favours them. ``row_cycles``: compute cycles per output row (a
    coarse figure: MACs over the array's rate, or the pool or depthwise unit's); ``weight_beats``: DRAM beats of
    weights each compute command fetches. None when one output row does not fit."""
    rb = band_rows(oh, gh, s, k, cin, gw, oc, ow, fb_words)
    if rb is None:
        return None
    if not overlap or rb >= oh:
        return BandPlan(rb, False)
    half = band_rows(oh, gh, s, k, cin, gw, oc, ow, fb_words // 2)
    if half is None or -(-oh // half) < 2:
        return BandPlan(rb, False)

    def estimate(rows: int, double: bool) -> float:
        t = 0.0
        for oy_a in range(0, oh, rows):
            oy_b = min(oh, oy_a + rows)
            rows_in = min(gh, (oy_b - 1) * s - pad + k) - max(0, oy_a * s - pad)
            dma = (cin * rows_in * gw + oc * (oy_b - oy_a) * ow) / WORDS_PER_CYCLE + LATENCY
            compute = row_cycles * (oy_b - oy_a)
            fixed = 3 * COMMAND_CYCLES + weight_beats * BEAT_CYCLES + LATENCY
            t += fixed + (max(compute, dma) if double else compute + dma)
        return t

    return BandPlan(half, True) if estimate(half, True) < estimate(rb, False) else BandPlan(rb, False)


__all__ = ["BandPlan", "band_rows", "band_work", "plan_bands"]
