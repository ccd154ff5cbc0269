"""Action counts per layer: from the RTL's performance counters when simulated, else an analytical model.

Sources
-------
* **RTL** (:func:`rtl_layer_counts`): ``build/sim/<net>.json`` and ``<net>_<split>.json`` written by ``make sim``
  (``sim/run.py``): per engine layer the counters of ``hw.engine.COUNTERS``. A layer is taken from the RTL
  (the newest file that has it) when its ``module`` names a layer of :mod:`golden.splits` with the same MAC
  count and the run used the same DRAM bandwidth and engine size; FC layers simulated on a slice of their
  channels and scaled up are compared (:func:`rtl_error`) but not used as counts.
* **Analytical** (:func:`analytical_layer_counts`): the same engine, modelled from its documented behaviour
  (``hw/engine.py``, ``hw/tile_geometry.py``, ``sim/program.py``), for every layer and network:

  - *Feature-buffer plan* (as ``sim.program.compile_program``). Linear networks (AlexNet, VGG): the input is
    loaded once if it fits half the buffer; a layer whose input is resident and whose output fits beside it
    stays resident (no DRAM traffic); otherwise the resident input is spilled and the layer runs in bands of
    output rows, each band's input rows LOADed and its output rows STOREd. Networks with branches (ResNets;
    ``_compile_dag``): every layer LOADs bands of its inputs from DRAM, computes, STOREs its output; a 1x1
    stride-1 convolution sees a band as one long row.
  - *Tiles*: up to 12 consecutive output pixels spanning at most 3 output rows; per group of 12 output
    channels, per tile, one *step* per (input channel, kernel row) and one *beat* per kernel column. The
    window loader needs ``R`` 16-word reads per step (the tile's row segments) and has two segment
    buffers, refilled in the cycle they are released, so a step takes ``max(k, R)`` cycles (1x1 layers one
    step per cycle; before d9dab0d a buffer was free a cycle later: ``max(k, R, (k + R + 1) / 2)``,
    ``EngineParams(early_release=False)``). Pools are timed by stepping the same two-buffer recurrence
    over one channel's steps.
  - *Weights*: a group of 12 output channels is ``K + 3`` DRAM beats of 12 words (``K = C k^2`` rows and
    three bias beats), fetched at the DRAM bandwidth into the free weight bank while the previous group
    computes: a group costs ``max(compute, fetch of the next group)``; the first group's fetch (plus the
    DRAM latency) is exposed. Fully-connected layers (one pixel, ``K`` deeper than a bank: chunks through
    both banks) are DRAM-bound: ``K * O * 2`` bytes at the DRAM bandwidth, plus the last chunk's compute.
  - *Vector unit*: a residual ADD reads 12 elements of each input per 2 cycles; a global average pool one
    16-word read per cycle. A CIFAR option-A shortcut is a 1x1 stride-2 convolution (as ``sim.networks``).
  - *DMA*: a LOAD or STORE of ``W`` words takes ``2 W / bandwidth`` cycles (+ the read latency for LOADs);
    every command costs a descriptor fetch (3 DRAM beats + latency + decode, about 27 cycles); the MAC
    array drains 15 cycles at the end of a convolution.

:func:`rtl_error` compares the two per layer (cycles and every shared counter).
:func:`net_counts` merges them (RTL where present) and gives prefix sums per split.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path

from golden.errors import UserError
from golden.splits import INPUT, Layer, input_shape, layers, split_names

REPO = Path(__file__).resolve().parents[1]
SIM_DIR = REPO / "build" / "sim"

#: counters carried per layer (RTL names where the RTL has them; seg_*/outputs are derived)
COUNT_FIELDS = (
    "cycles", "busy", "macs", "pool_ops", "outputs",
    "stall_dram", "stall_compute",
    "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
    "seg_read_words", "seg_write_words", "dram_read_words", "dram_write_words",
)
#: the RTL counters the analytical model is compared on
RTL_COMPARED = (
    "cycles", "busy", "macs", "pool_ops", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
    "dram_read_words", "dram_write_words",
)


@dataclass(frozen=True)
class EngineParams:
    """The engine as the model sees it (defaults = ``hw.engine.Engine()`` and ``make sim``'s DRAM model)."""

    lanes: int = 12
    seg_rows: int = 3
    fb_words: int = 2**18
    fb_banks: int = 16
    wb_depth: int = 4608
    dram_beat_words: int = 12
    dram_bytes_per_cycle: float = 16.0
    dram_latency_cycles: int = 20
    desc_beats: int = 3
    decode_cycles: float = 2.5
    drain_cycles: int = 15
    bias_beats: int = 3
    early_release: bool = True     # segment buffer refilled in the cycle it is released (RTL since d9dab0d)

    @property
    def words_per_cycle(self) -> float:
        return self.dram_bytes_per_cycle / 2

    @property
    def beat_cycles(self) -> float:
        """Cycles of DRAM bandwidth per full 12-word beat."""
        return self.dram_beat_words * 2 / self.dram_bytes_per_cycle

    @property
    def command_cycles(self) -> float:
        """Descriptor fetch + decode per command."""
        return self.desc_beats * self.beat_cycles + self.dram_latency_cycles + self.decode_cycles


DEFAULT_ENGINE = EngineParams()


@dataclass
class LayerCounts:
    """Counts of one engine layer for one image. ``layer`` is the golden layer name, ``split`` its stage."""

    layer: str
    split: str
    name: str
    type: str
    source: str                     # "rtl" or "analytical"
    cycles: float = 0.0
    busy: float = 0.0
    macs: float = 0.0
    pool_ops: float = 0.0
    outputs: float = 0.0
    stall_dram: float = 0.0
    stall_compute: float = 0.0      # loader / drain / control cycles (analytical: everything not busy or DRAM)
    fb_read_words: float = 0.0
    fb_write_words: float = 0.0
    wb_read_words: float = 0.0
    wb_write_words: float = 0.0
    seg_read_words: float = 0.0
    seg_write_words: float = 0.0
    dram_read_words: float = 0.0
    dram_write_words: float = 0.0
    output_resident: bool = True
    bands: int = 1
    commands: int = 0
    slice_channels: int = 0         # RTL: an FC layer simulated on this many output channels ...
    scale: float = 1.0              # ... and its counts scaled up by this factor (sim/run.py)

    def as_dict(self) -> dict:
        return asdict(self)


# ---- tile geometry (pure-Python twin of hw.tile_geometry.ref_tile_geometry) ------------------------------


@dataclass(frozen=True)
class _Tile:
    n: int                            # valid lanes (output pixels)
    rows: tuple[tuple[int, int], ...]  # per present segment row: (tile-relative output row, 16-word reads)


def _tiles(m: int, out_w: int, stride: int, k: int, lanes: int = 12, seg_rows: int = 3) -> list[_Tile]:
    """The tiles of a band of ``m`` output pixels (``out_w`` per row), in the engine's order."""
    tiles = []
    p0, ox0 = 0, 0
    while p0 < m:
        n, ox, r = 0, ox0, 0
        ox_max = {}
        while n < lanes and p0 + n < m:
            if r >= seg_rows:
                break
            ox_max[r] = ox
            n += 1
            ox += 1
            if ox == out_w:
                ox, r = 0, r + 1
        rows = []
        for row in sorted(ox_max):
            ox_min = ox0 if row == 0 else 0
            width = (ox_max[row] - ox_min) * stride + k
            rows.append((row, -(-width // 16)))
        tiles.append(_Tile(n, tuple(rows)))
        # next tile start: lane n's position
        p0 += n
        ox0 = ox
    return tiles


@cache
def _tile_summary(m: int, out_w: int, stride: int, k: int, pad: int, in_h: int, oy_first: int,
                  lanes: int = 12, seg_rows: int = 3) -> tuple:
    """Per band: ``(tiles, [(n, R, valid_reads_summed_over_ky), ...] grouped by (n, R, valid))``.

    ``oy_first`` is the band's first global output row (for the padding rows whose reads are skipped).
    """
    groups: dict[tuple[int, int, int], int] = {}
    seq = []
    p0, oy0 = 0, 0
    for t in _tiles(m, out_w, stride, k, lanes, seg_rows):
        reads = sum(r for _, r in t.rows)
        valid = 0
        for ky in range(k):
            for row, r in t.rows:
                y = (oy_first + oy0 + row) * stride + ky - pad
                if 0 <= y < in_h:
                    valid += r
        key = (t.n, reads, valid)
        groups[key] = groups.get(key, 0) + 1
        seq.append(reads)
        p0 += t.n
        oy0 = p0 // out_w
    return tuple(sorted(groups.items())), tuple(seq)


def step_cycles(k: int, reads: int, early_release: bool = True) -> float:
    """Steady-state cycles per (channel, kernel-row) step: ``k`` beats, ``reads`` loader cycles, 2 buffers.

    ``early_release`` (the RTL since d9dab0d): a segment buffer is refilled in the cycle its last beat issues,
    so a step costs ``max(k, reads)``; before, it was free a cycle later: ``max(k, reads, (k + reads + 1) / 2)``.
    """
    if early_release:
        return float(max(k, reads))
    return max(float(k), float(reads), (k + reads + 1) / 2)


def _two_buffer_time(seq: Iterable[tuple[int, int]], early_release: bool = True) -> float:
    """Cycles to run steps ``(reads, beats)`` through the loader -> 2 segment buffers -> compute pipeline."""
    s_prev_end = 0      # loader free from this cycle
    c_hist = [-10**9, -10**9]   # the cycle each buffer may be refilled from
    c_end = 0
    lag = 1 if early_release else 0
    for i, (reads, beats) in enumerate(seq):
        s = max(s_prev_end, c_hist[i % 2])
        ready = s + reads + 1
        c = max(c_end, ready)
        c_end = c + beats
        c_hist[i % 2] = c_end - lag
        s_prev_end = s + reads
    return float(c_end)


# ---- engine layers, feature-buffer plans and per-layer counts ---------------------------------------------


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


@dataclass
class _Geom:
    cin: int          # input channels the loader iterates (per conv group)
    ih: int
    iw: int
    k: int
    s: int
    pad: int
    oc: int
    oh: int
    ow: int
    groups: int = 1
    pointwise: bool = False   # DAG compiler: 1x1 stride-1 unpadded conv, a band seen as one long row


def _geom(layer: Layer) -> _Geom:
    if layer.type == "linear":
        return _Geom(_numel(layer.in_shape), 1, 1, 1, 1, 0, layer.out_shape[0], 1, 1)
    c, h, w = (tuple(layer.in_shape) + (1, 1))[:3]
    if layer.type in ("conv", "maxpool", "shortcut_a"):
        oc, oh, ow = layer.out_shape
        k = max(layer.kernel) if layer.type != "shortcut_a" else 1
        return _Geom(c // max(layer.groups, 1), h, w, k, layer.stride[0], layer.padding[0], oc, oh, ow,
                     max(layer.groups, 1))
    if layer.type == "avgpool":
        return _Geom(c, h, w, 1, 1, 0, c, 1, 1)
    return _Geom(c, h, w, 1, 1, 0, c, h, w)


def _band_rows(g: _Geom, in_words_per_row: int, fbw: int) -> int | None:
    """Largest number of output rows per band that fits the buffer with its input rows (sim.program)."""
    for rows in range(g.oh, 0, -1):
        rows_in = min(g.ih, (rows - 1) * g.s + g.k)
        if in_words_per_row * rows_in + g.oc * rows * g.ow <= fbw:
            return rows
    return None


class _Acc:
    """Accumulates one layer's counts."""

    def __init__(self, layer: Layer, eng: EngineParams):
        self.c = LayerCounts(layer=layer.name, split=layer.split, name=layer.name, type=layer.type,
                             source="analytical")
        self.eng = eng

    def command(self, n: int = 1) -> None:
        self.c.commands += n
        self.c.cycles += n * self.eng.command_cycles
        self.c.stall_compute += n * self.eng.command_cycles
        self.c.dram_read_words += n * self.eng.desc_beats * self.eng.dram_beat_words

    def load(self, rows: int, row_len: int) -> None:
        words = rows * row_len
        t = words / self.eng.words_per_cycle + self.eng.dram_latency_cycles
        self.command()
        self.c.cycles += t
        self.c.stall_dram += t
        self.c.dram_read_words += words
        self.c.fb_write_words += words

    def store(self, rows: int, row_len: int) -> None:
        words = rows * row_len
        t = words / self.eng.words_per_cycle
        self.command()
        self.c.cycles += t
        self.c.stall_dram += t
        self.c.dram_write_words += words
        self.c.fb_read_words += 16 * rows * -(-row_len // self.eng.dram_beat_words)


def _conv_band(acc: _Acc, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    """Counts and cycles of one CONV command (a band of output rows ``oy_a..oy_b-1``)."""
    eng = acc.eng
    c = acc.c
    acc.command()
    m = (oy_b - oy_a) * g.ow
    if g.pointwise:   # one long row of m pixels
        summary, _ = _tile_summary(m, m, 1, 1, 0, 1, 0, eng.lanes, eng.seg_rows)
    else:
        summary, _ = _tile_summary(m, g.ow, g.s, g.k, g.pad, ih_total, oy_a, eng.lanes, eng.seg_rows)
    og = g.oc // g.groups
    g12 = -(-og // eng.lanes) * g.groups           # weight groups of 12 output channels
    kk = g.cin * g.k * g.k                           # dot-product length K
    early = eng.early_release
    t_group = sum(cnt * g.cin * g.k * step_cycles(g.k, reads, early) for (n, reads, valid), cnt in summary)
    beats_group = sum(cnt * g.cin * g.k * g.k for _, cnt in summary)
    fbr_group = sum(cnt * g.cin * valid * 16 for (n, reads, valid), cnt in summary)
    segw_group = sum(cnt * g.cin * g.k * reads * 16 for (n, reads, valid), cnt in summary)
    fetch = (kk + eng.bias_beats) * eng.beat_cycles
    first = (min(kk, eng.wb_depth) + eng.bias_beats) * eng.beat_cycles + eng.dram_latency_cycles
    if kk <= eng.wb_depth:
        # a group per bank: group g computes while group g+1 streams into the other bank
        compute = (g12 - 1) * max(t_group, fetch) + t_group
        total = first + compute
    else:
        # rows stream in chunks of wb_depth through both banks (FC layers, one tile per group)
        total = _chunk_pipeline(g12, kk, t_group / kk, eng)
    c.cycles += total + eng.drain_cycles
    c.stall_dram += total - g12 * t_group
    c.stall_compute += eng.drain_cycles + g12 * t_group - g12 * beats_group
    c.busy += g12 * beats_group
    c.wb_read_words += g12 * beats_group * eng.lanes
    c.seg_read_words += g12 * beats_group * eng.lanes
    c.fb_read_words += g12 * fbr_group
    c.seg_write_words += g12 * segw_group
    c.wb_write_words += g12 * kk * eng.lanes
    c.dram_read_words += g12 * (kk + eng.bias_beats) * eng.dram_beat_words
    c.fb_write_words += g.oc * m
    c.outputs += g.oc * m


def _chunk_pipeline(groups: int, kk: int, t_row: float, eng: EngineParams) -> float:
    """Cycles of ``groups`` weight groups of ``kk`` rows streamed in chunks of ``wb_depth`` rows through the
    two weight banks: chunk j is fetched (its group's bias beats with its first chunk) once chunk j - 1's
    requests are out and chunk j - 2 has released the bank, and computed once it has landed and chunk
    j - 1 is done (``t_row`` compute cycles per row)."""
    w = eng.wb_depth
    sizes = [min(w, kk - i * w) for i in range(-(-kk // w))]
    f_end, c_prev = 0.0, 0.0
    c_end = [-1e18, -1e18]
    j = 0
    for _ in range(groups):
        for i, r in enumerate(sizes):
            fs = max(f_end, c_end[j % 2] + 1)
            f_end = fs + (r + (eng.bias_beats if i == 0 else 0)) * eng.beat_cycles
            c_prev = max(c_prev, f_end + eng.dram_latency_cycles) + r * t_row
            c_end[j % 2] = c_prev
            j += 1
    return c_prev


def _pool_band(acc: _Acc, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    """One POOL command over a band: the loader recurrence stepped over one channel, times the channels."""
    eng = acc.eng
    c = acc.c
    acc.command()
    m = (oy_b - oy_a) * g.ow
    summary, seq = _tile_summary(m, g.ow, g.s, g.k, g.pad, ih_total, oy_a, eng.lanes, eng.seg_rows)
    steps = [(r, g.k) for r in seq for _ in range(g.k)]
    one = _two_buffer_time(steps, eng.early_release)
    per_channel = _two_buffer_time(steps * 2, eng.early_release) - one if g.cin > 1 else one
    t = one + (g.cin - 1) * per_channel
    beats = g.cin * sum(cnt * g.k * g.k for _, cnt in summary)
    c.cycles += t + 1
    c.stall_compute += t + 1 - beats
    c.busy += beats
    c.pool_ops += g.cin * sum(cnt * n * g.k * g.k for (n, _, _), cnt in summary)
    c.fb_read_words += g.cin * sum(cnt * valid * 16 for (_, _, valid), cnt in summary)
    c.seg_write_words += g.cin * sum(cnt * g.k * reads * 16 for (_, reads, _), cnt in summary)
    c.seg_read_words += beats * eng.lanes
    c.fb_write_words += g.cin * m
    c.outputs += g.cin * m


def _add_cmd(acc: _Acc, n: int) -> None:
    """ADD of ``n`` contiguous elements on the vector unit: reads A then B per 12 outputs (2 cycles)."""
    c = acc.c
    acc.command()
    chunks = -(-n // acc.eng.lanes)
    t = 2 * chunks + 2
    c.cycles += t
    c.busy += t
    c.macs += 2 * n
    c.fb_read_words += 2 * chunks * 16
    c.fb_write_words += n
    c.outputs += n


def _gap_cmd(acc: _Acc, channels: int, hw: int) -> None:
    """GAP of ``channels`` maps of ``hw`` elements: one 16-word read per cycle into a running sum."""
    c = acc.c
    acc.command()
    reads = channels * -(-hw // 16)
    c.cycles += reads + 2
    c.busy += reads + 2
    c.macs += channels * hw
    c.fb_read_words += 16 * reads
    c.fb_write_words += channels
    c.outputs += channels


def _compute(acc: _Acc, layer: Layer, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    """The compute command(s) of a conv / linear / max-pool layer over a band (chain compiler)."""
    if layer.type in ("conv", "linear", "shortcut_a"):
        _conv_band(acc, g, oy_a, oy_b, ih_total)
        acc.c.macs += _numel(layer.out_shape) * g.cin * g.k * g.k * (oy_b - oy_a) / max(g.oh, 1)
    elif layer.type == "maxpool":
        _pool_band(acc, g, oy_a, oy_b, ih_total)
    elif layer.type == "add":
        _add_cmd(acc, round(_numel(layer.out_shape) * (oy_b - oy_a) / max(g.oh, 1)))
    elif layer.type == "avgpool":
        _gap_cmd(acc, g.cin, g.ih * g.iw)
    else:  # pragma: no cover - the table has no other types with work
        raise NotImplementedError(layer.type)


def _engine_layers(net: str) -> tuple[list[Layer], dict[str, str]]:
    """The layers the engine runs (flatten dropped) and the alias of every dropped output."""
    alias: dict[str, str] = {INPUT: INPUT}
    out = []
    for la in layers(net):
        if la.type == "flatten":
            alias[la.name] = alias.get(la.inputs[0], la.inputs[0])
            continue
        alias[la.name] = la.name
        out.append(la)
    return out, alias


def _is_linear(lays: list[Layer], alias: dict[str, str]) -> bool:
    """sim.program.is_linear: every layer reads only the previous layer's output, and no residual add."""
    prev = INPUT
    for la in lays:
        if la.type == "add" or tuple(alias.get(i, i) for i in la.inputs) != (prev,):
            return False
        prev = la.name
    return True


def _chain_plan(lays: list[Layer], net: str, eng: EngineParams) -> list[LayerCounts]:
    """sim.program.compile_program for linear networks: keep maps resident when they fit."""
    fbw = eng.fb_words
    in_words0 = _numel(input_shape(net))
    resident: tuple[int, int] | None = None       # (address, words) of the resident map
    pending_input_load = in_words0 <= fbw // 2
    out = []
    for la in lays:
        acc = _Acc(la, eng)
        if pending_input_load:
            acc.load(1, in_words0)
            resident = (0, in_words0)
            pending_input_load = False
        g = _geom(la)
        out_words = _numel(la.out_shape)
        in_words = _numel(la.in_shape)
        placed = False
        if resident is not None:
            r_addr = resident[0]
            r_end = r_addr + in_words
            o_addr = 0 if out_words <= r_addr else (r_end if r_end + out_words <= fbw else None)
            if o_addr is not None:
                _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
                resident = (o_addr, out_words)
                placed = True
            else:
                acc.store(1, in_words)
                resident = None
        if not placed:
            row_words = in_words if la.type == "linear" else la.in_shape[0] * g.iw
            rb = _band_rows(g, row_words, fbw)
            if (rb is None or rb >= g.oh) and in_words + out_words <= fbw:
                acc.load(1, in_words)
                _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
                resident = (in_words, out_words)
            else:
                _banded(acc, la, g, rb or 1)
                resident = None
        acc.c.output_resident = resident is not None
        out.append(acc.c)
    return out


def _banded(acc: _Acc, la: Layer, g: _Geom, rb: int) -> None:
    """Bands of output rows: LOAD the band's input rows, compute, STORE the band's output rows."""
    nb = 0
    for oy_a in range(0, max(g.oh, 1), rb):
        oy_b = min(g.oh, oy_a + rb)
        y_a = max(0, oy_a * g.s - g.pad)
        y_b = min(g.ih, (oy_b - 1) * g.s - g.pad + g.k)
        rows_in = max(y_b - y_a, 1)
        acc.load(la.in_shape[0], rows_in * g.iw)
        _compute(acc, la, g, oy_a, oy_b, g.ih)
        acc.store(g.oc, (oy_b - oy_a) * g.ow)
        nb += 1
    acc.c.bands = nb
    acc.c.output_resident = False


def _dag_plan(lays: list[Layer], eng: EngineParams) -> list[LayerCounts]:
    """sim.program._compile_dag for networks with branches: every layer DRAM -> bands -> DRAM."""
    fbw = eng.fb_words
    out = []
    for la in lays:
        acc = _Acc(la, eng)
        g = _geom(la)
        if la.type == "add":
            ci, ih, iw = la.in_shape
            rb = max(1, min(ih, fbw // (3 * ci * iw)))
            nb = 0
            for ya in range(0, ih, rb):
                rows = min(ih, ya + rb) - ya
                acc.load(ci, rows * iw)
                acc.load(ci, rows * iw)
                _add_cmd(acc, ci * rows * iw)
                acc.store(ci, rows * iw)
                nb += 1
            acc.c.bands = nb
        elif la.type == "avgpool":
            ci, ih, iw = la.in_shape
            hw = ih * iw
            cb = max(1, min(ci, fbw // (hw + 1)))
            nb = 0
            for c0 in range(0, ci, cb):
                n = min(ci, c0 + cb) - c0
                acc.load(1, n * hw)
                _gap_cmd(acc, n, hw)
                acc.store(1, n)
                nb += 1
            acc.c.bands = nb
        elif la.type == "linear":
            acc.load(1, g.cin)
            _compute(acc, la, g, 0, 1, 1)
            acc.store(1, g.oc)
        else:
            g.pointwise = la.type == "conv" and g.k == 1 and g.s == 1 and g.pad == 0
            rb = _band_rows(g, la.in_shape[0] * g.iw, fbw) or 1
            _banded(acc, la, g, rb)
        acc.c.output_resident = False
        out.append(acc.c)
    return out


def analytical_layer_counts(net: str, eng: EngineParams = DEFAULT_ENGINE) -> tuple[LayerCounts, ...]:
    """Per-layer counts of ``net`` (every layer of :func:`golden.splits.layers`), by the analytical model."""
    return _analytical(net, eng)


@cache
def _analytical(net: str, eng: EngineParams) -> tuple[LayerCounts, ...]:
    lays, alias = _engine_layers(net)
    plan = _chain_plan(lays, net, eng) if _is_linear(lays, alias) else _dag_plan(lays, eng)
    by_name = {lc.layer: lc for lc in plan}
    out = []
    for la in layers(net):
        if la.type == "flatten":
            src = by_name.get(alias[la.name])
            out.append(LayerCounts(layer=la.name, split=la.split, name=la.name, type=la.type, source="analytical",
                                   output_resident=bool(src and src.output_resident)))
        else:
            out.append(by_name[la.name])
    return tuple(out)


# ---- RTL counts -----------------------------------------------------------------------------------------


def rtl_json_path(net: str) -> Path:
    """``make sim``'s default output for ``net`` (``make sim SPLIT=s`` writes ``<net>_<s>.json``)."""
    return SIM_DIR / f"{net}.json"


def rtl_json_paths(net: str, directory: str | Path | None = None) -> list[Path]:
    """Every ``make sim`` result of ``net`` (``<net>.json``, ``<net>_<split>.json``), oldest first."""
    d = Path(directory) if directory is not None else SIM_DIR
    found = [p for p in [d / f"{net}.json", *d.glob(f"{net}_*.json")] if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns)


def _read_rtl(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@cache
def _rtl_cached(path: str, mtime_ns: int) -> dict | None:
    return _read_rtl(Path(path))


def rtl_result(net: str, path: str | Path | None = None) -> dict | None:
    """The parsed ``make sim`` JSON at ``path`` (default ``build/sim/<net>.json``; None if absent)."""
    p = Path(path) if path is not None else rtl_json_path(net)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    return _rtl_cached(str(p), mtime)


def _rtl_rows(net: str, path: Path, eng: EngineParams) -> dict[str, LayerCounts]:
    data = rtl_result(net, path)
    if not data or data.get("net") != net:
        return {}
    if float(data.get("dram_bytes_per_cycle", 16.0)) != float(eng.dram_bytes_per_cycle):
        return {}
    e = data.get("engine", {})
    if e.get("fb_words", eng.fb_words) != eng.fb_words or e.get("wb_depth", eng.wb_depth) != eng.wb_depth:
        return {}
    golden = {la.name: la for la in layers(net)}
    result = {}
    for row in data.get("layers", []):
        la = golden.get(row.get("module", ""))
        ctr = row.get("counters") or {}
        if la is None or int(ctr.get("macs", -1)) != la.macs:
            continue
        lc = LayerCounts(layer=la.name, split=la.split, name=row.get("name", la.name), type=la.type, source="rtl")
        for f in RTL_COMPARED:
            setattr(lc, f, float(ctr.get(f, 0)))
        lc.stall_dram = float(ctr.get("stall_dram", 0))
        lc.stall_compute = float(ctr.get("stall_fetch", 0) + ctr.get("stall_drain", 0) + ctr.get("stall_control", 0))
        lc.seg_read_words = lc.busy * eng.lanes
        lc.seg_write_words = lc.fb_read_words  # every loader read lands 16 words in a segment buffer
        lc.outputs = _numel(la.out_shape) if la.type in ("conv", "linear", "maxpool", "add", "avgpool") else 0
        lc.bands = int(row.get("bands", 1))
        lc.output_resident = lc.bands == 1 and lc.dram_write_words == 0
        sl = row.get("scaled_from_slice")
        if isinstance(sl, dict):
            lc.slice_channels = int(sl.get("simulated_output_channels", 0))
            lc.scale = float(sl.get("scale", 1.0))
        result[la.name] = lc
    return result


def rtl_layer_counts(net: str, path: str | Path | None = None, eng: EngineParams = DEFAULT_ENGINE,
                     include_scaled: bool = True) -> dict[str, LayerCounts]:
    """``{golden layer name: counts}`` for the layers the RTL ran (empty when there is no usable JSON).

    ``path``: one JSON; default every ``build/sim/<net>*.json``, a layer taken from the newest file that has
    it. Layers whose MAC count differs from the golden table, or runs at another DRAM bandwidth or engine
    size than ``eng``, are not used; ``include_scaled=False`` also leaves out FC layers that ``make sim``
    simulated on a slice of their output channels and scaled up (an extrapolation, not a measurement).
    """
    paths = [Path(path)] if path is not None else rtl_json_paths(net)
    result: dict[str, LayerCounts] = {}
    for p in paths:
        result.update(_rtl_rows(net, p, eng))
    if not include_scaled:
        result = {k: v for k, v in result.items() if v.scale == 1.0}
    return result


# ---- merged counts per network and per split -------------------------------------------------------------


@dataclass(frozen=True)
class NetCounts:
    """Per-layer counts of a network (RTL where simulated, else analytical) and prefix sums per split."""

    net: str
    layers: tuple[LayerCounts, ...]
    edge: dict[str, dict[str, float]]       # split -> summed COUNT_FIELDS over the edge layers
    resident: dict[str, bool]               # split -> is the split feature in the feature buffer
    provenance: dict[str, str]              # split -> "rtl" | "analytical" | "rtl+analytical" | "none"
    rtl_layers: tuple[str, ...] = field(default=())
    rtl_files: tuple[str, ...] = field(default=())


def net_counts(net: str, eng: EngineParams = DEFAULT_ENGINE, source: str = "auto",
               rtl_path: str | Path | None = None) -> NetCounts:
    """Counts of ``net``; ``source``: ``auto`` (RTL where a ``build/sim/<net>*.json`` has the layer), ``analytical``
    or ``rtl`` (same as auto; layers the RTL did not run stay analytical). A JSON simulated on the engine
    before d9dab0d (:func:`rtl_error_auto` says stale) is not used: the analytical model of today's RTL is."""
    if source not in ("auto", "analytical", "rtl"):
        raise UserError(f"unknown counts source {source!r}; allowed: auto, analytical, rtl")
    if source == "analytical":
        files: tuple[tuple[str, int], ...] = ()
    else:
        paths = [Path(rtl_path)] if rtl_path is not None else rtl_json_paths(net)
        files = tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.exists())
    return _net_counts(net, eng, source, files)


@cache
def _net_counts(net: str, eng: EngineParams, source: str, files: tuple[tuple[str, int], ...]) -> NetCounts:
    rtl: dict[str, LayerCounts] = {}
    for p, _ in files:
        if eng.early_release and rtl_error_auto(net, p, eng=eng)[1]:
            continue   # simulated on the engine before d9dab0d: its counts no longer describe the RTL
        rtl.update(rtl_layer_counts(net, p, eng, include_scaled=False))
    merged = tuple(rtl.get(lc.layer, lc) for lc in _analytical(net, eng))
    names = split_names(net)
    edge: dict[str, dict[str, float]] = {}
    resident: dict[str, bool] = {}
    prov: dict[str, str] = {}
    run = dict.fromkeys(COUNT_FIELDS, 0.0)
    srcs: set[str] = set()
    by_split: dict[str, list[LayerCounts]] = {s: [] for s in names}
    for lc in merged:
        by_split[lc.split].append(lc)
    last_resident = False
    for s in names:
        for lc in by_split[s]:
            for f in COUNT_FIELDS:
                run[f] += getattr(lc, f)
            if lc.type != "flatten":
                srcs.add(lc.source)
            last_resident = lc.output_resident
        edge[s] = dict(run)
        resident[s] = last_resident if s != INPUT else False
        prov[s] = "+".join(sorted(srcs, key=lambda x: x != "rtl")) if srcs else "none"
    return NetCounts(net=net, layers=merged, edge=edge, resident=resident, provenance=prov,
                     rtl_layers=tuple(rtl), rtl_files=tuple(p for p, _ in files) if rtl else ())


# ---- analytical vs RTL -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerError:
    name: str
    layer: str
    rtl_cycles: float
    model_cycles: float
    cycle_error: float                      # (model - rtl) / rtl
    counters: dict[str, tuple[float, float]]  # counter -> (rtl, model)


def rtl_error(net: str, path: str | Path | None = None, eng: EngineParams = DEFAULT_ENGINE,
              verification_stores: bool = True) -> list[LayerError]:
    """Analytical vs RTL per layer the RTL ran (empty when there is no JSON for ``net``).

    ``verification_stores``: ``make sim`` dumps every resident layer output with a ``nocount`` STORE whose
    descriptor fetch the counters still see (about 27 cycles per layer); add it to the model for a like-
    for-like comparison.
    """
    rtl = rtl_layer_counts(net, path, eng)
    out = []
    for lc in _analytical(net, eng):
        r = rtl.get(lc.layer)
        if r is None:
            continue
        if r.scale != 1.0 and r.slice_channels:
            lc = _fc_slice(next(la for la in layers(net) if la.name == lc.layer), r.slice_channels, r.scale, eng)
        model = lc.as_dict()
        if verification_stores and lc.output_resident:
            model["cycles"] += eng.command_cycles
            model["dram_read_words"] += eng.desc_beats * eng.dram_beat_words
        err = (model["cycles"] - r.cycles) / r.cycles if r.cycles else 0.0
        out.append(LayerError(r.name, lc.layer, r.cycles, model["cycles"], err,
                              {f: (getattr(r, f), model[f]) for f in RTL_COMPARED}))
    return out


def _fc_slice(la: Layer, channels: int, scale: float, eng: EngineParams) -> LayerCounts:
    """What ``make sim`` reports for an FC layer run on ``channels`` outputs and scaled by ``scale``: its own
    program (LOAD of the input, the sliced CONV, resident output), every count multiplied by ``scale``."""
    acc = _Acc(la, eng)
    g = _geom(la)
    g.oc = channels
    acc.load(1, g.cin)
    _conv_band(acc, g, 0, 1, 1)
    acc.c.macs += channels * g.cin
    c = acc.c
    for f in COUNT_FIELDS:
        setattr(c, f, getattr(c, f) * scale)
    c.output_resident = True
    return c


PRE_EARLY_RELEASE = replace(DEFAULT_ENGINE, early_release=False)


def rtl_error_auto(net: str, path: str | Path | None = None, target: float = 0.05,
                   eng: EngineParams = DEFAULT_ENGINE) -> tuple[list[LayerError], bool]:
    """:func:`rtl_error` against the current engine model; if that misses ``target`` on some layer but the
    model of the engine before d9dab0d (segment buffers released a cycle later) meets it everywhere, the
    JSON predates that change: return that comparison and ``True`` (stale)."""
    errs = rtl_error(net, path, eng)
    if errs and any(abs(e.cycle_error) > target for e in errs):
        old = rtl_error(net, path, replace(eng, early_release=False))
        if all(abs(e.cycle_error) <= target for e in old):
            return old, True
    return errs, False


def format_rtl_error(errors: list[LayerError]) -> str:
    head = f"{'layer':12} {'RTL cycles':>11} {'model':>11} {'error':>7} {'fb rd err':>9} {'DRAM rd err':>11}"
    lines = [head, "-" * len(head)]
    for e in errors:
        def rel(key: str, e: LayerError = e) -> str:
            r, m = e.counters[key]
            return f"{(m - r) / r:+.1%}" if r else "-"
        lines.append(f"{e.name:12} {e.rtl_cycles:>11,.0f} {e.model_cycles:>11,.0f} {e.cycle_error:>+7.2%} "
                     f"{rel('fb_read_words'):>9} {rel('dram_read_words'):>11}")
    return "\n".join(lines)


def ci_requires_rtl() -> bool:
    """True under CI (``CI`` set to a true value): RTL comparisons must not be skipped there."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


__all__ = [
    "COUNT_FIELDS", "DEFAULT_ENGINE", "PRE_EARLY_RELEASE", "EngineParams", "LayerCounts", "LayerError", "NetCounts",
    "analytical_layer_counts", "ci_requires_rtl", "format_rtl_error", "net_counts", "rtl_error", "rtl_error_auto",
    "rtl_json_paths", "rtl_layer_counts", "rtl_json_path", "rtl_result", "step_cycles",
]

