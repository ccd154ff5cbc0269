"""Action counts per layer: from the RTL's performance counters when simulated, else an analytical model.

Sources
-------
* **RTL** (:func:`rtl_layer_counts`): ``build/sim/<net>.json`` written by ``make sim`` (``sim/run.py``): per
  engine layer the counters of ``hw.engine.COUNTERS``. A layer is taken from the RTL when its ``module``
  names a layer of :mod:`golden.splits` with the same MAC count and the run used the same DRAM bandwidth.
* **Analytical** (:func:`analytical_layer_counts`): the same engine, modelled from its documented behaviour
  (``hw/engine.py``, ``hw/tile_geometry.py``, ``sim/program.py``), for every layer and network:

  - *Feature-buffer plan* (as ``sim.program.compile_program``): the input is loaded once if it fits half the
    buffer; a layer whose input is resident and whose output fits beside it stays resident (no DRAM
    traffic); otherwise the resident input is spilled and the layer runs in bands of output rows, each
    band's input rows LOADed and its output rows STOREd. Networks with branches (ResNets) use the same
    rules by capacity (every live tensor either resident or in DRAM, the largest other residents spilled
    first when a layer needs room).
  - *Tiles*: up to 12 consecutive output pixels spanning at most 3 output rows; per group of 12 output
    channels, per tile, one *step* per (input channel, kernel row) and one *beat* per kernel column. The
    window loader needs ``R`` 16-word reads per step (the tile's row segments) and has two segment
    buffers; a step then takes ``max(k, R, (k + R + 1) / 2)`` cycles (the last term: load, one cycle to
    publish, ``k`` beats, release, with two buffers in flight), so 1x1 kernels run at 1.5 cycles per
    beat. Pools are timed by stepping the same two-buffer recurrence over one channel's steps.
  - *Weights*: a group of 12 output channels is ``K + 3`` DRAM beats of 12 words (``K = C k^2`` rows and
    three bias beats), fetched at the DRAM bandwidth into the free weight bank while the previous group
    computes: a group costs ``max(compute, fetch of the next group)``; the first group's fetch (plus the
    DRAM latency) is exposed. Fully-connected layers (one pixel, ``K = inputs``) are DRAM-bound:
    ``K * O * 2`` bytes at the DRAM bandwidth.
  - *DMA*: a LOAD or STORE of ``W`` words takes ``2 W / bandwidth`` cycles (+ the read latency for LOADs);
    every command costs a descriptor fetch (3 DRAM beats + latency + decode, about 27 cycles); the MAC
    array drains 15 cycles at the end of a convolution.
  - Operations the RTL does not run yet are modelled as the engine would run them: global average pool
    as a pool with one output pixel per channel (``H * W`` beats per channel), residual add on the array
    with ``K = 2`` (drain-bound: 13 cycles per 144 outputs), CIFAR option-A shortcut as a 1x1 stride-2 pool.

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


def step_cycles(k: int, reads: int) -> float:
    """Steady-state cycles per (channel, kernel-row) step: ``k`` beats, ``reads`` loader cycles, 2 buffers."""
    return max(float(k), float(reads), (k + reads + 1) / 2)


def _two_buffer_time(seq: Iterable[tuple[int, int]]) -> float:
    """Cycles to run steps ``(reads, beats)`` through the loader -> 2 segment buffers -> compute pipeline."""
    s_prev_end = 0      # loader free from this cycle
    c_hist = [-10**9, -10**9]   # compute end (+1) of the last two steps (buffer release times)
    c_end = 0
    for i, (reads, beats) in enumerate(seq):
        s = max(s_prev_end, c_hist[i % 2])
        ready = s + reads + 1
        c = max(c_end, ready)
        c_end = c + beats
        c_hist[i % 2] = c_end
        s_prev_end = s + reads
    return float(c_end)


# ---- feature-buffer plan and per-layer counts -------------------------------------------------------------


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


def _geom(layer: Layer) -> _Geom:
    if layer.type == "linear":
        return _Geom(_numel(layer.in_shape), 1, 1, 1, 1, 0, layer.out_shape[0], 1, 1)
    if layer.type in ("conv", "maxpool", "shortcut_a"):
        c, h, w = layer.in_shape
        oc, oh, ow = layer.out_shape
        k = max(layer.kernel) if layer.type != "shortcut_a" else 1
        return _Geom(c // max(layer.groups, 1), h, w, k, layer.stride[0], layer.padding[0], oc, oh, ow,
                     max(layer.groups, 1))
    if layer.type == "avgpool":
        c, h, w = layer.in_shape
        return _Geom(c, h, w, max(h, w), 1, 0, c, 1, 1)
    c, h, w = (tuple(layer.out_shape) + (1, 1))[:3]
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


def _conv_band(acc: _Acc, layer: Layer, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    """Counts and cycles of one CONV command (a band of output rows ``oy_a..oy_b-1``)."""
    eng = acc.eng
    c = acc.c
    acc.command()
    m = (oy_b - oy_a) * g.ow
    summary, _ = _tile_summary(m, g.ow, g.s, g.k, g.pad, ih_total, oy_a, eng.lanes, eng.seg_rows)
    og = g.oc // g.groups
    g12 = -(-og // eng.lanes) * g.groups           # weight groups of 12 output channels
    kk = g.cin * g.k * g.k                           # dot-product length K
    t_group = sum(cnt * g.cin * g.k * step_cycles(g.k, reads) for (n, reads, valid), cnt in summary)
    beats_group = sum(cnt * g.cin * g.k * g.k for _, cnt in summary)
    fbr_group = sum(cnt * g.cin * valid * 16 for (n, reads, valid), cnt in summary)
    segw_group = sum(cnt * g.cin * g.k * reads * 16 for (n, reads, valid), cnt in summary)
    fetch = (kk + eng.bias_beats) * eng.beat_cycles
    first = (min(kk, eng.wb_depth) + eng.bias_beats) * eng.beat_cycles + eng.dram_latency_cycles
    compute = (g12 - 1) * max(t_group, fetch) + t_group
    c.cycles += first + compute + eng.drain_cycles
    c.stall_dram += first + (g12 - 1) * max(0.0, fetch - t_group)
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


def _pool_band(acc: _Acc, layer: Layer, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    """One POOL command over a band (max-pool; the avgpool and shortcut models reuse it)."""
    eng = acc.eng
    c = acc.c
    acc.command()
    m = (oy_b - oy_a) * g.ow
    summary, seq = _tile_summary(m, g.ow, g.s, g.k, g.pad, ih_total, oy_a, eng.lanes, eng.seg_rows)
    steps = [(r, g.k) for r in seq for _ in range(g.k)]
    one = _two_buffer_time(steps)
    per_channel = _two_buffer_time(steps * 2) - one if g.cin > 1 else one
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


def _add_layer(acc: _Acc, layer: Layer) -> None:
    eng = acc.eng
    c = acc.c
    acc.command()
    elems = _numel(layer.out_shape)
    tiles = -(-elems // (eng.lanes * eng.lanes))
    c.cycles += tiles * (eng.lanes + 1) + eng.drain_cycles
    c.busy += 2 * tiles
    c.stall_compute += tiles * (eng.lanes - 1) + eng.drain_cycles
    c.macs += layer.macs
    c.fb_read_words += 2 * elems
    c.seg_write_words += 2 * elems
    c.seg_read_words += 2 * tiles * eng.lanes
    c.fb_write_words += elems
    c.outputs += elems


def _compute(acc: _Acc, layer: Layer, g: _Geom, oy_a: int, oy_b: int, ih_total: int) -> None:
    if layer.type in ("conv", "linear"):
        _conv_band(acc, layer, g, oy_a, oy_b, ih_total)
        acc.c.macs += layer.macs * (oy_b - oy_a) / max(g.oh, 1)
    elif layer.type == "maxpool":
        _pool_band(acc, layer, g, oy_a, oy_b, ih_total)
    elif layer.type == "avgpool":
        before = acc.c.pool_ops
        _pool_band(acc, layer, g, 0, 1, ih_total)
        acc.c.pool_ops = before
        acc.c.macs += layer.macs
    elif layer.type == "shortcut_a":
        cin = layer.in_shape[0]
        _pool_band(acc, layer, replace(g, cin=cin, k=1, pad=0), oy_a, oy_b, ih_total)
        pad_words = (g.oc - cin) * (oy_b - oy_a) * g.ow
        acc.c.cycles += pad_words / acc.eng.lanes
        acc.c.fb_write_words += pad_words
        acc.c.outputs += pad_words
    elif layer.type == "add":
        _add_layer(acc, layer)
    else:  # pragma: no cover - the table has no other types with work
        raise NotImplementedError(layer.type)


def _is_chain(lays: tuple[Layer, ...]) -> bool:
    consumers: dict[str, int] = {}
    for la in lays:
        if len(la.inputs) != 1:
            return False
        consumers[la.inputs[0]] = consumers.get(la.inputs[0], 0) + 1
    return all(v == 1 for v in consumers.values())


def _in_row_words(layer: Layer, g: _Geom) -> int:
    """Words of one input row across all inputs (the banding unit)."""
    if layer.type == "add":
        return 2 * layer.in_shape[0] * g.iw
    if layer.type == "linear":
        return _numel(layer.in_shape)
    return layer.in_shape[0] * g.iw


def _run_banded(acc: _Acc, layer: Layer, g: _Geom, eng: EngineParams) -> None:
    """A layer that does not fit resident: bands of output rows through the buffer (sim.program)."""
    row_words = _in_row_words(layer, g)
    rb = _band_rows(g, row_words, eng.fb_words) or 1
    ih = g.ih
    nb = 0
    for oy_a in range(0, max(g.oh, 1), rb):
        oy_b = min(g.oh, oy_a + rb)
        y_a = max(0, oy_a * g.s - g.pad)
        y_b = min(ih, (oy_b - 1) * g.s - g.pad + g.k)
        rows_in = max(y_b - y_a, 1)
        acc.load(row_words // max(g.iw, 1) if g.iw else 1, rows_in * g.iw)
        _compute(acc, layer, g, oy_a, oy_b, ih)
        acc.store(g.oc, (oy_b - oy_a) * g.ow)
        nb += 1
    acc.c.bands = nb
    acc.c.output_resident = False


def analytical_layer_counts(net: str, eng: EngineParams = DEFAULT_ENGINE) -> tuple[LayerCounts, ...]:
    """Per-layer counts of ``net`` (every layer of :func:`golden.splits.layers`), by the analytical model."""
    return _analytical(net, eng)


@cache
def _analytical(net: str, eng: EngineParams) -> tuple[LayerCounts, ...]:
    lays = tuple(la for la in layers(net))
    chain = _is_chain(tuple(la for la in lays if la.type != "flatten"))
    fbw = eng.fb_words
    alias: dict[str, str] = {INPUT: INPUT}
    size: dict[str, int] = {INPUT: _numel(input_shape(net))}
    remaining: dict[str, int] = {}
    for la in lays:
        for i in la.inputs:
            remaining[alias.get(i, i)] = remaining.get(alias.get(i, i), 0) + 1
        if la.type == "flatten":
            alias[la.name] = alias.get(la.inputs[0], la.inputs[0])
    alias = {INPUT: INPUT}
    where: dict[str, int | None] = {}   # resident tensors: name -> address (chain) or None (capacity)
    out: list[LayerCounts] = []
    pending_input_load = size[INPUT] <= fbw // 2
    for la in lays:
        if la.type == "flatten":
            alias[la.name] = alias[la.inputs[0]]
            out.append(LayerCounts(layer=la.name, split=la.split, name=la.name, type=la.type, source="analytical",
                                   output_resident=alias[la.name] in where))
            continue
        acc = _Acc(la, eng)
        if pending_input_load:
            acc.load(1, size[INPUT])
            where[INPUT] = 0
            pending_input_load = False
        ins = [alias[i] for i in la.inputs]
        g = _geom(la)
        out_words = _numel(la.out_shape)
        size[la.name] = out_words
        in_words = sum(size[i] for i in ins)
        placed = False
        if chain:
            src = ins[0]
            if src in where:
                r_addr = where[src] or 0
                r_end = r_addr + in_words
                o_addr = 0 if out_words <= r_addr else (r_end if r_end + out_words <= fbw else None)
                if o_addr is not None:
                    _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
                    where = {la.name: o_addr}
                    placed = True
                else:
                    acc.store(1, in_words)
                    where = {}
            if not placed:
                rb = _band_rows(g, _in_row_words(la, g), fbw)
                if (rb is None or rb >= g.oh) and in_words + out_words <= fbw:
                    acc.load(1, in_words)
                    _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
                    where = {la.name: in_words}
                else:
                    _run_banded(acc, la, g, eng)
                    where = {}
        else:
            others = {t: size[t] for t in where if t not in ins}
            if in_words + out_words <= fbw:
                used = sum(size[t] for t in where)
                missing = [t for t in ins if t not in where]
                need = out_words + sum(size[t] for t in missing)
                for t in sorted(others, key=lambda t: -others[t]):
                    if used + need <= fbw:
                        break
                    acc.store(1, size[t])
                    used -= size[t]
                    del where[t]
                for t in dict.fromkeys(missing):
                    acc.load(1, size[t])
                    where[t] = None
                _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
                where[la.name] = None
            else:
                for t in list(where):
                    if remaining.get(t, 0) > 0:
                        acc.store(1, size[t])
                    del where[t]
                _run_banded(acc, la, g, eng)
        for i in ins:
            remaining[i] -= 1
            if remaining[i] <= 0 and i in where and not chain:
                del where[i]
        alias[la.name] = la.name
        acc.c.output_resident = la.name in where
        out.append(acc.c)
    return tuple(out)


# ---- RTL counts -----------------------------------------------------------------------------------------


def rtl_json_path(net: str) -> Path:
    return SIM_DIR / f"{net}.json"


def _read_rtl(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@cache
def _rtl_cached(path: str, mtime_ns: int) -> dict | None:
    return _read_rtl(Path(path))


def rtl_result(net: str, path: str | Path | None = None) -> dict | None:
    """The parsed ``make sim`` JSON of ``net`` (None if absent or unreadable)."""
    p = Path(path) if path is not None else rtl_json_path(net)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    return _rtl_cached(str(p), mtime)


def rtl_layer_counts(net: str, path: str | Path | None = None,
                     eng: EngineParams = DEFAULT_ENGINE) -> dict[str, LayerCounts]:
    """``{golden layer name: counts}`` for the layers the RTL ran (empty when there is no usable JSON).

    Layers whose MAC count differs from the golden table, or a run at another DRAM bandwidth than ``eng``,
    are not used.
    """
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
        busy = lc.busy
        lc.seg_read_words = busy * eng.lanes
        lc.seg_write_words = lc.fb_read_words  # every loader read lands 16 words in a segment buffer
        lc.outputs = _numel(la.out_shape) if la.type in ("conv", "linear", "maxpool") else 0
        lc.bands = int(row.get("bands", 1))
        lc.output_resident = lc.bands == 1 and lc.dram_write_words == 0
        result[la.name] = lc
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
    rtl_path: str | None = None


def net_counts(net: str, eng: EngineParams = DEFAULT_ENGINE, source: str = "auto",
               rtl_path: str | Path | None = None) -> NetCounts:
    """Counts of ``net``; ``source``: ``auto`` (RTL where ``build/sim/<net>.json`` has the layer), ``analytical``
    or ``rtl`` (same as auto; layers the RTL did not run stay analytical)."""
    if source not in ("auto", "analytical", "rtl"):
        raise UserError(f"unknown counts source {source!r}; allowed: auto, analytical, rtl")
    p = Path(rtl_path) if rtl_path is not None else rtl_json_path(net)
    try:
        mtime = p.stat().st_mtime_ns if source != "analytical" else 0
    except OSError:
        mtime = 0
    return _net_counts(net, eng, source, str(p) if mtime else None, mtime)


@cache
def _net_counts(net: str, eng: EngineParams, source: str, rtl_path: str | None, mtime: int) -> NetCounts:
    rtl = rtl_layer_counts(net, rtl_path, eng) if rtl_path else {}
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
                     rtl_layers=tuple(rtl), rtl_path=rtl_path if rtl else None)


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
        model = lc.as_dict()
        if verification_stores and lc.output_resident:
            model["cycles"] += eng.command_cycles
            model["dram_read_words"] += eng.desc_beats * eng.dram_beat_words
        err = (model["cycles"] - r.cycles) / r.cycles if r.cycles else 0.0
        out.append(LayerError(r.name, lc.layer, r.cycles, model["cycles"], err,
                              {f: (getattr(r, f), model[f]) for f in RTL_COMPARED}))
    return out


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
    "COUNT_FIELDS", "DEFAULT_ENGINE", "EngineParams", "LayerCounts", "LayerError", "NetCounts",
    "analytical_layer_counts", "ci_requires_rtl", "format_rtl_error", "net_counts", "rtl_error",
    "rtl_layer_counts", "rtl_json_path", "rtl_result", "step_cycles",
]

