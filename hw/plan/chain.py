"""The buffer plan of a linear network (every layer reads the one before: AlexNet, VGG-16, the digits net):
which maps stay in the feature buffer, and how each other layer runs.

The network input is LOADed once when it takes at most half the buffer. A layer whose input is in the buffer
and whose output fits beside it (below it, or after it) runs as one whole-map command there. Otherwise the
input in the buffer, if any, is STOREd to DRAM, and the layer runs from DRAM: as one LOAD and one whole-map
command when its input and output fit the buffer together (its output stays), else in bands (FC layers, whose
input is one vector, in sequential bands of :func:`hw.plan.bands.band_rows`; the others in the bands of
:func:`hw.plan.bands.plan_bands`, double-buffered where that wins). ``sim.program.compile_program`` lowers this
plan and ``model.counts`` counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.plan.bands import band_rows


@dataclass(frozen=True)
class ChainLayer:
    """A layer as the chain plan sees it: ``oh`` output rows of ``oc`` channels x ``ow`` from ``ih`` input rows of
    ``cin`` channels x ``iw`` (a ``k``-row kernel at stride ``s``); an FC layer (``fc``) reads its input as one
    vector: ``cin`` = its length, ``ih`` = ``iw`` = ``oh`` = ``ow`` = ``k`` = ``s`` = 1."""

    name: str
    cin: int
    ih: int
    iw: int
    k: int
    s: int
    oc: int
    oh: int
    ow: int
    fc: bool = False

    @property
    def in_words(self) -> int:
        return self.cin * self.ih * self.iw

    @property
    def out_words(self) -> int:
        return self.oc * self.oh * self.ow


@dataclass(frozen=True)
class ChainStep:
    """What the engine does for one layer. ``how``:

    * ``"resident"``: one whole-map command on the input at buffer address ``in_addr``, output at ``out_addr``;
    * ``"whole"``: LOAD the input from DRAM at 0, one whole-map command, output at ``out_addr`` (= its input words);
    * ``"bands"``: from DRAM to DRAM in the bands of :func:`hw.plan.bands.plan_bands`;
    * ``"rows"``: from DRAM to DRAM in sequential bands of ``rows`` output rows (an FC layer).

    ``spill_addr``: first STORE the input, in the buffer there, to DRAM (None: it is in DRAM already). ``rows`` is
    None when one output row does not fit the buffer (the compiler refuses the layer; the cost model counts it as
    bands of one row)."""

    name: str
    how: str
    in_addr: int | None = None
    out_addr: int | None = None
    spill_addr: int | None = None
    rows: int | None = None

    @property
    def output_resident(self) -> bool:
        """Whether the layer's output is in the buffer when it ends."""
        return self.how in ("resident", "whole")


def plan_chain(layers: list[ChainLayer], input_words: int, fb_words: int) -> tuple[bool, list[ChainStep]]:
    """The plan of ``layers`` (in order) over an input of ``input_words`` in a buffer of ``fb_words``: (whether
    the input is LOADed into the buffer at 0 before the first layer, one :class:`ChainStep` per layer)."""
    load_input = input_words <= fb_words // 2
    at = 0 if load_input else None          # buffer address of the current map, None: it is in DRAM
    steps = []
    for la in layers:
        spill_addr = None
        if at is not None:
            end = at + la.in_words
            out_at = 0 if la.out_words <= at else (end if end + la.out_words <= fb_words else None)
            if out_at is not None:
                steps.append(ChainStep(la.name, "resident", in_addr=at, out_addr=out_at))
                at = out_at
                continue
            spill_addr, at = at, None
        rows = band_rows(la.oh, la.ih, la.s, la.k, la.cin, la.iw, la.oc, la.ow, fb_words)
        if rows == la.oh and la.in_words + la.out_words <= fb_words:
            steps.append(ChainStep(la.name, "whole", in_addr=0, out_addr=la.in_words, spill_addr=spill_addr))
            at = la.in_words
        else:
            steps.append(ChainStep(la.name, "rows" if la.fc else "bands", spill_addr=spill_addr, rows=rows))
    return load_input, steps


__all__ = ["ChainLayer", "ChainStep", "plan_chain"]
