"""How a layer that does not fit the feature buffer is cut into bands of output rows.

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
READ_WORDS = 16            # the window loader's feature-buffer read (hw.tile_geometry.LOAD_WORDS)


def band_rows(oh: int, gh: int, s: int, k: int, cin: int, gw: int, oc: int, ow: int, words: int,
              scratch_c: int = 0) -> int | None:
    """The most output rows per band whose input rows (``cin`` channels of ``gw`` words, a ``k``-row kernel at
    stride ``s`` over ``gh`` input rows) and output rows (``oc`` channels of ``ow``, plus ``scratch_c`` channels
    of ``ow`` for an intermediate map: a subsampled input) fit ``words``; None if one row does not."""
    for rows in range(oh, 0, -1):
        rows_in = min(gh, (rows - 1) * s + k)
        if cin * rows_in * gw + (oc + scratch_c) * rows * ow <= words:
            return rows
    return None


def band_work(kind: str, cin: int, oc: int, ow: int, k: int, s: int, lanes: int = 12, bias_beats: int = 3
               ) -> tuple[float, int]:
    """(compute cycles per output row, weight beats per compute command) of a band: the coarse figures
    :func:`plan_bands` weighs. ``kind``: ``conv`` (the MAC array, ``cin`` input channels per output channel),
    ``dw`` (the depthwise unit: 12 pixels of a channel per cycle at stride 1, 4 reads per row at stride 2),
    ``dwpool`` (the same unit's max-pool mode) or
    ``pool`` (12 outputs per ``k * k`` beats)."""
    if kind in ("dw", "dwpool"):   # (the depthwise unit's max-pool mode has no weights)
        return oc * -(-ow // lanes) * (1 if s == 1 else 4), -(-oc // lanes) * (9 + bias_beats) if kind == "dw" else 0
    if kind == "pool":
        return oc * -(-ow // lanes) * k * k, 0
    return oc * ow * cin * k * k / (lanes * lanes), -(-oc // lanes) * (cin * k * k + bias_beats)


def subsampled_conv(k: int, s: int, pad: int, oc: int, lanes: int = 12) -> bool:
    """Whether a banded conv runs as a POOL that subsamples its band (kernel 1, stride ``s``) into a scratch map,
    then a 1x1 stride-1 conv over that map as one long row. A 1x1 conv at stride 2 or more needs two 16-word
    buffer reads for a step of one beat (12 outputs at stride 2 span 23 input words), so it runs the MAC array
    at most every other cycle (ResNet-50's downsample convs: 0.38-0.49 utilization); the subsampled map needs one
    read per beat, and the POOL reads each input channel once instead of once per weight group. The POOL costs
    about what two weight groups lose (two reads per 12 outputs of a channel), so: a 1x1, unpadded conv of four
    weight groups or more (``oc`` > 3 ``lanes``) whose tile at its stride spans more than one read (an 8-lane
    array's 8 outputs at stride 2 span 15 words: one read already)."""
    return k == 1 and s >= 2 and pad == 0 and oc > 3 * lanes and (lanes - 1) * s + 1 > READ_WORDS


@dataclass(frozen=True)
class BandPlan:
    rows: int            # output rows per band (the last band may have fewer)
    double: bool         # double-buffered (background transfers) or sequential


@dataclass(frozen=True)
class BandShape:
    """A layer as its bands see it: ``oh`` output rows of ``oc`` channels x ``ow`` from ``gh`` input rows of
    ``cin`` channels x ``gw`` (a ``k``-row kernel, stride ``s``, padding ``pad``), on the unit ``kind`` of
    :func:`band_work`."""

    kind: str
    oh: int
    gh: int
    s: int
    k: int
    pad: int
    cin: int
    gw: int
    oc: int
    ow: int
    lanes: int = 12
    bias_beats: int = 3

    def work(self) -> tuple[float, int]:
        return band_work(self.kind, self.cin, self.oc, self.ow, self.k, self.s, self.lanes, self.bias_beats)


def _estimate(oh: int, gh: int, s: int, k: int, pad: int, cin: int, gw: int, oc: int, ow: int, row_cycles: float,
              weight_beats: int, rows: int, double: bool) -> float:
    """The coarse cycles of a layer in bands of ``rows`` output rows: per band a compute command's fixed costs
    and its compute, then its transfers (sequential) or the larger of the two (double-buffered)."""
    t = 0.0
    for oy_a in range(0, oh, rows):
        oy_b = min(oh, oy_a + rows)
        rows_in = min(gh, (oy_b - 1) * s - pad + k) - max(0, oy_a * s - pad)
        words_in, words_out = cin * rows_in * gw, oc * (oy_b - oy_a) * ow
        dma = (words_in + words_out) / WORDS_PER_CYCLE + LATENCY
        compute = row_cycles * (oy_b - oy_a)
        fixed = 3 * COMMAND_CYCLES + weight_beats * BEAT_CYCLES + LATENCY
        t += fixed + (max(compute, dma) if double else compute + dma)
        if double and oy_a == 0:                # the first LOAD in the foreground
            t += words_in / WORDS_PER_CYCLE + LATENCY
        if double and oy_b == oh:               # and the last STORE
            t += words_out / WORDS_PER_CYCLE
    return t


def plan_bands(oh: int, gh: int, s: int, k: int, pad: int, cin: int, gw: int, oc: int, ow: int, fb_words: int,
               row_cycles: float, weight_beats: int, overlap: bool = True, scratch_c: int = 0) -> BandPlan | None:
    """The band plan of a layer: sequential bands as large as the buffer allows, or double-buffered ones in half
    of it when ``overlap`` and the estimate favours them (even when the whole layer fits: two bands, the first's
    STORE under the second's compute, can beat one). ``row_cycles``: compute cycles per output row (a coarse
    figure: MACs over the array's rate, or the pool or depthwise unit's); ``weight_beats``: DRAM beats of
    weights each compute command fetches; ``scratch_c``: channels of an intermediate map per output row (a band's
    subsampled input, :func:`subsampled_conv`). None when one output row does not fit."""
    rb = band_rows(oh, gh, s, k, cin, gw, oc, ow, fb_words, scratch_c)
    if rb is None:
        return None
    if not overlap:
        return BandPlan(rb, False)
    half = band_rows(oh, gh, s, k, cin, gw, oc, ow, fb_words // 2, scratch_c)
    if half is None or oh < 2:
        return BandPlan(rb, False)
    args = (oh, gh, s, k, pad, cin, gw, oc, ow, row_cycles, weight_beats)
    # double-buffered: the bands that fit half the buffer, from the largest down to a sixteenth of the map (smaller
    # bands expose less of the first LOAD and the last STORE, and pay more fixed costs)
    candidates = sorted({min(half, -(-oh // n)) for n in range(2, 17)}, reverse=True)
    best = min(candidates, key=lambda rows: _estimate(*args, rows, True))
    return BandPlan(best, True) if _estimate(*args, best, True) < _estimate(*args, rb, False) else BandPlan(rb, False)


def add_bands(c: int, h: int, w: int, fb_words: int, overlap: bool = True) -> BandPlan | None:
    """The bands of a residual ADD from DRAM to DRAM (``c`` channels of ``h`` rows of ``w``): each band holds
    its rows of the two inputs and of the output. Sequential bands (LOAD, LOAD, ADD, STORE) use the whole
    buffer; double-buffered ones (``overlap``, two bands or more in half the buffer each) hand the next band's
    first input over to the LOAD engine before this band's ADD and its second input after it, and the STORE to
    the STORE engine, so that the ADD (12 outputs per 2 cycles) runs beside the transfers (3 words of DRAM per
    output, the bound). None when one row does not fit."""
    row = 3 * c * w
    rb = min(h, fb_words // row)
    if rb < 1:
        return None
    half = min(h, (fb_words // 2) // row)
    if overlap and h >= 2 and half >= 1:
        return BandPlan(min(half, -(-h // 2)), True)
    return BandPlan(rb, False)


def banded_estimate(shape: BandShape, fb_words: int, overlap: bool = True) -> float | None:
    """The coarse cycles of ``shape`` from DRAM to DRAM in the bands of :func:`plan_bands` (None: it cannot)."""
    rc, wb = shape.work()
    args = (shape.oh, shape.gh, shape.s, shape.k, shape.pad, shape.cin, shape.gw, shape.oc, shape.ow)
    plan = plan_bands(*args, fb_words, rc, wb, overlap)
    return None if plan is None else _estimate(*args, rc, wb, plan.rows, plan.double)


def resident_estimate(shape: BandShape) -> float:
    """The coarse cycles of ``shape`` as one whole-map command on maps in the buffer."""
    rc, wb = shape.work()
    return 3 * COMMAND_CYCLES + wb * BEAT_CYCLES + LATENCY + rc * shape.oh


def conv_packs(groups: int, out_per_group: int, lanes: int = 12) -> list[tuple[int, int]]:
    """The dense convolutions a grouped conv of ``groups`` groups (``out_per_group`` output channels each) runs
    as: ``(first group, groups)`` of each pack. A pack takes ``max(1, lanes // out_per_group)`` consecutive groups
    with block-diagonal weights, so that its output channels fill the MAC array's ``lanes`` rows; an ungrouped
    conv is one pack."""
    per = max(1, lanes // out_per_group) if groups > 1 else 1
    return [(g0, min(per, groups - g0)) for g0 in range(0, groups, per)]


__all__ = ["BandPlan", "BandShape", "add_bands", "band_rows", "band_work", "banded_estimate", "conv_packs",
           "plan_bands", "resident_estimate", "subsampled_conv"]
