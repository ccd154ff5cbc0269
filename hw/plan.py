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


__all__ = ["BandPlan", "BandShape", "add_bands", "band_rows", "band_work", "banded_estimate", "plan_bands",
           "resident_estimate", "subsampled_conv"]


# ---- which maps stay in the buffer: the plan of a branchy network ------------------------------------------


@dataclass(frozen=True)
class PlanLayer:
    """A layer as the buffer plan sees it: its input tensors (``"input"`` is the network's), their words, its
    output words, whether it has a whole-map command (``resident_ok``), for a concatenation the word offset of
    each input in its output (``offsets``), and for a tensor stored straight into a concatenation the
    concatenation and its word offset there (``slot``, ``offset``)."""

    name: str
    inputs: tuple[str, ...]
    in_words: tuple[int, ...]
    out_words: int
    resident_ok: bool = True
    offsets: tuple[int, ...] = ()
    slot: str | None = None
    offset: int = 0
    band: BandShape | None = None      # a layer that can also run from DRAM in bands (one conv, pool or depthwise)


@dataclass
class LayerPlan:
    """What the engine does for one layer: STORE ``spills`` (maps in the buffer written back to DRAM, to make
    room or because a banded layer needs them there), LOAD ``loads`` (whole maps into the buffer), LOAD
    ``copies`` (a concatenation's inputs that were not stored into it, each from DRAM into its place), then run
    the layer with its maps in the buffer at ``fb`` (``resident``) or from DRAM in bands."""

    name: str
    resident: bool
    spills: list[tuple[str, int]]       # (tensor, its buffer address)
    loads: list[str]
    copies: list[tuple[str, int]]       # (tensor, the buffer address of its place in the concatenation)
    fb: dict[str, int]


class _Alloc:
    """First-fit allocation of buffer words."""

    def __init__(self, words: int) -> None:
        self.free = [(0, words)]

    def take(self, n: int, top: bool = False) -> int | None:
        """``n`` words from the lowest free block that holds them, or with ``top`` from the end of the
        highest."""
        blocks = list(enumerate(self.free))
        for i, (a, size) in reversed(blocks) if top else blocks:
            if size >= n:
                if top:
                    self.free[i] = (a, size - n)
                    a += size - n
                else:
                    self.free[i] = (a + n, size - n)
                if self.free[i][1] == 0:
                    del self.free[i]
                return a
        return None

    def give(self, a: int, n: int) -> None:
        merged: list[tuple[int, int]] = []
        for x, size in sorted([*self.free, (a, n)]):
            if merged and merged[-1][0] + merged[-1][1] == x:
                merged[-1] = (merged[-1][0], merged[-1][1] + size)
            else:
                merged.append((x, size))
        self.free = merged


def plan_dag(layers: list[PlanLayer], fb_words: int) -> list[LayerPlan]:
    """Keep maps in the buffer between the layers of a branchy network when they fit: the one plan that
    ``sim.program`` lowers and ``model.counts`` counts.

    Layers run in order. A layer with a whole-map command whose maps fit gets its inputs in the buffer
    (LOADed whole from DRAM if not there) and its output beside them; to make room, maps the layer does not
    touch are evicted, the one read again last first, and STOREd first if still needed and not in DRAM. Any
    other layer runs from DRAM in bands that use the whole buffer: every map still needed is STOREd first. A
    concatenation's region is taken when the first input stored into it is made, so those inputs land in
    place and the concatenation itself moves nothing; an input made from DRAM is LOADed into place. The
    network's last output stays where it was made.

    A layer whose maps would fit but whose readers all run from DRAM (a concatenation too large for the
    buffer, say) is made in bands from DRAM instead, its STOREs under its compute, when the estimate of that
    (``band``: :func:`banded_estimate`, plus its inputs STOREd) beats the whole-map command followed by a STORE
    of its output in the foreground."""
    words = {"input": 0}
    for la in layers:
        for t, w in zip(la.inputs, la.in_words, strict=True):
            words[t] = w
        words[la.name] = la.out_words
    # a tensor is made in its concatenation's region when that region can be in the buffer at all; otherwise
    # it is a map of its own here (and still stored into the concatenation in DRAM)
    slot = {la.name: (la.slot, la.offset) for la in layers if la.slot is not None and words[la.slot] <= fb_words}
    made_at = {la.name: i for i, la in enumerate(layers)}
    end = len(layers)
    uses: dict[str, list[int]] = {}
    for i, la in enumerate(layers):
        for t in la.inputs:
            uses.setdefault(t, []).append(i)
    if layers:
        uses.setdefault(layers[-1].name, []).append(end)

    def root(t: str) -> tuple[str, int]:
        """The allocation unit of ``t`` (the outermost concatenation it is stored into) and its offset there."""
        off = 0
        while t in slot:
            t, o = slot[t][0], off + slot[t][1]
            off = o
        return t, off

    parts: dict[str, list[str]] = {}
    for t in words:
        parts.setdefault(root(t)[0], []).append(t)

    def next_use(r: str, i: int) -> int:
        """The first layer after ``i`` that reads or makes a part of unit ``r`` (``end + 1``: none)."""
        later = [u for t in parts[r] for u in uses.get(t, []) if u > i]
        later += [made_at[t] for t in parts[r] if made_at.get(t, -1) > i]
        return min(later, default=end + 1)

    def units_of(la: PlanLayer) -> tuple[list[str], list[str], set[str]]:
        """A layer's distinct inputs, those placed in the buffer for it, and the allocation units it needs."""
        ins = list(dict.fromkeys(la.inputs))
        placed = [t for t, off in zip(la.inputs, la.offsets, strict=True) if slot.get(t) == (la.name, off)] \
            if la.offsets else ins
        return ins, placed, {root(t)[0] for t in placed} | {root(la.name)[0]}

    def streams(la: PlanLayer) -> bool:
        """Whether ``la``, whose readers all run from DRAM, is better made in bands there."""
        if la.band is None or la.name in slot:
            return False
        banded = banded_estimate(la.band, fb_words)
        if banded is None:
            return False
        # inputs made in the buffer are STOREd for the bands; inputs in DRAM are LOADed for the whole-map command
        stored = sum(w for t, w in zip(la.inputs, la.in_words, strict=True) if t != "input" and t not in from_dram)
        loaded = sum(la.in_words) - stored
        return (banded + stored / WORDS_PER_CYCLE
                < resident_estimate(la.band) + (la.out_words + loaded) / WORDS_PER_CYCLE)

    # layers that run from DRAM in bands: those whose maps cannot be in the buffer, then those the estimate
    # sends there, until no more move (each pass can only add layers: at most one pass per layer)
    from_dram = {la.name for la in layers
                 if not (la.resident_ok and sum(words[u] for u in units_of(la)[2]) <= fb_words)}
    for _ in range(len(layers)):
        before = len(from_dram)
        for i in reversed(range(end - 1)):
            la = layers[i]
            if la.name not in from_dram and all(layers[u].name in from_dram for u in uses.get(la.name, [end])
                                                if u < end) and uses.get(la.name) and streams(la):
                from_dram.add(la.name)
        if len(from_dram) == before:
            break

    alloc = _Alloc(fb_words)
    at: dict[str, int] = {}              # allocation unit -> buffer address
    made: set[str] = set()               # tensors whose values are in the buffer
    in_dram: set[str] = {"input"}        # tensors whose values are in DRAM
    plans = []
    def address(t: str) -> int:
        r, off = root(t)
        return at[r] + off

    for i, la in enumerate(layers):
        spills: list[tuple[str, int]] = []

        def evict(r: str, i: int = i, spills: list[tuple[str, int]] = spills) -> None:
            for t in parts[r]:
                if t in made and t not in in_dram and max(uses.get(t, [-1])) >= i:
                    spills.append((t, address(t)))
                    in_dram.add(t)
                made.discard(t)
            alloc.give(at.pop(r), words[r])

        ins, placed, units = units_of(la)
        copies = [t for t in ins if t not in placed]
        resident = la.name not in from_dram
        if resident:
            # a map made here goes to the end of the buffer away from the layer's first input, so that a chain
            # of layers alternates between the two ends and leaves the middle free
            first = root(placed[0])[0] if placed else None
            top = first in at and at[first] < fb_words // 2
            for r in sorted(units, key=lambda u: -words[u]):
                while r not in at:
                    a = alloc.take(words[r], top=top and r == root(la.name)[0])
                    if a is not None:
                        at[r] = a
                        continue
                    victims = [u for u in at if u not in units]
                    if not victims:
                        resident = False
                        break
                    evict(max(victims, key=lambda u, i=i: next_use(u, i)))
                if not resident:
                    break
        loads: list[str] = []
        copy_at: list[tuple[str, int]] = []
        if resident:
            for t in copies:    # loaded from DRAM into their place in the concatenation
                if t in made and t not in in_dram:
                    spills.append((t, address(t)))
                    in_dram.add(t)
            loads = [t for t in placed if t not in made]
            made.update(loads)
            made.add(la.name)
            fb = {t: address(t) for t in [*placed, la.name]}
            offs = dict(zip(la.inputs, la.offsets, strict=True)) if la.offsets else {}
            copy_at = [(t, fb[la.name] + offs[t]) for t in copies]
        else:
            for r in list(at):
                evict(r)
            in_dram.add(la.name)
            fb = {}
        for r in list(at):       # drop what is not needed any more
            if next_use(r, i) > end:
                made.difference_update(parts[r])
                alloc.give(at.pop(r), words[r])
        plans.append(LayerPlan(la.name, resident, spills, loads, copy_at, fb))
    return plans


def concat_slots(concats: list[tuple[str, tuple[str, ...], tuple[int, ...]]]) -> dict[str, tuple[str, int]]:
    """Where each tensor is stored straight into a concatenation: ``{tensor: (concatenation, word offset)}``
    for ``concats`` = ``[(name, inputs, input words)]`` in network order. A tensor goes into the last
    concatenation that takes it (so a concatenation of concatenations nests); the network input, and a tensor
    taken twice, are copied instead."""
    slot: dict[str, tuple[str, int]] = {}
    for name, inputs, in_words in reversed(concats):
        off = 0
        for t, w in zip(inputs, in_words, strict=True):
            if t != "input" and t not in slot:
                slot[t] = (name, off)
            off += w
    return slot


__all__ += ["LayerPlan", "PlanLayer", "concat_slots", "plan_dag"]
