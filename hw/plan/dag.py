"""The buffer plan of a branchy network: which maps stay in the feature buffer between layers (:func:`plan_dag`),
and where a tensor is stored straight into a concatenation (:func:`concat_slots`)."""

from __future__ import annotations

from dataclasses import dataclass

from hw.plan.bands import WORDS_PER_CYCLE, BandShape, banded_estimate, resident_estimate


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

    def units_of(la: PlanLayer) -> tuple[list[str], list[str], list[str]]:
        """A layer's distinct inputs, those placed in the buffer for it, and the allocation units it needs (in
        that order: its inputs' units, then its output's; a list, so that the plan never depends on the order
        of a set, which changes with Python's string hashing from one process to the next)."""
        ins = list(dict.fromkeys(la.inputs))
        placed = [t for t, off in zip(la.inputs, la.offsets, strict=True) if slot.get(t) == (la.name, off)] \
            if la.offsets else ins
        return ins, placed, list(dict.fromkeys([*(root(t)[0] for t in placed), root(la.name)[0]]))

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
            for r in sorted(units, key=lambda u: -words[u]):     # (stable: equal sizes in the order of units)
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


__all__ = ["LayerPlan", "PlanLayer", "concat_slots", "plan_dag"]
