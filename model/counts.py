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
    The two banks are a ring (``_chunk_pipeline``): a bank is refilled only once its group is computed, and
    computed only once its last beat has landed, so two groups take at least one group's fetch + the DRAM
    latency + its compute (+ a release cycle); a fetch starting on a free bank loses a claim cycle when a
    beat takes a cycle or less of DRAM bandwidth (:func:`chunk_claim_cycles`). Both only show where fetch and
    compute are close: an FC group on 8 lanes (a row per cycle either way) pays about 9 cycles per group.
  - *Vector unit*: a residual ADD reads 12 elements of each input per 2 cycles; a global average pool one
    16-word read per cycle. A CIFAR option-A shortcut is a 1x1 stride-2 convolution (as ``sim.networks``).
  - *DMA*: a LOAD or STORE of ``W`` words takes ``2 W / bandwidth`` cycles (+ the read latency for LOADs);
    every command costs a descriptor fetch (3 DRAM beats + latency + decode, about 27 cycles); the MAC
    array drains 15 cycles at the end of a convolution.

* **Compressed weights** (``weights="jpeg"``, issue #8): every layer that has a row in the per-layer
  weight table (:func:`weight_table`: ``build/weights/<net>.json`` of ``edgesplit weights``; trained nets
  at their accuracy-budgeted QF, untrained ones at ``weights_qf``, default :data:`DEFAULT_WEIGHTS_QF`) keeps
  its weights JPEG-coded in DRAM and restores them with the engine's weight decoder
  (``hw/engine.py`` ``_elaborate_wdecoder``, ``hw/jpeg/wdecoder.py``). Per CONV command:

  - DRAM reads: the table writes (``entries`` = the decoders' ``len(hw.jpeg.whost.table_writes(...))`` =
    ``table_bytes + 2``, plus 24 lane-register entries; four per beat: ``ceil(entries / 4)`` beats), the
    twelve lane streams (each starts on a 12-word beat: the table's stream words plus 5.5 words of padding
    per lane on average; an RTL row gives the exact area) and 3 bias beats per group of 12 output channels,
    instead of ``K + 3`` beats per group;
  - timing: the tables go in at one entry per cycle after their beat arrives (5 cycles per beat), then
    twelve decoders (one per lane, ``wdec_weights_per_cycle`` together) restore ``12 * ceil(K / 64) * 64``
    (padded) weights per group, plus a 4-cycle bank hand-off (reserve, 3 bias beats); a group's fill takes
    the longer of that and the DRAM time of its compressed words, so a group costs ``max(compute, fill of
    the next group)``; the first group's fill, the tables and the decoders' pipeline (Huffman start, IDCT
    64 + 3 + 8 + 2, hand-off) are exposed. FC layers (chunks through both banks) run at the decoders' row
    rate (``12 / wdec_weights_per_cycle`` cycles per row) instead of the DRAM's 1.5 cycles per row;
  - weight-buffer writes: 1 word per restored weight (each decoder writes its own lane) instead of 12-word
    rows; ``wdec_weights`` counts the restored (padded) weights, charged at the ``weight_decoder`` energy.

  From RTL: ``build/sim/<net>*_wjpeg.json`` (``make sim WEIGHTS_CODEC=jpeg``), a layer used when its
  QF equals the one the model would use. The int16 counts never read a ``_wjpeg`` file (nor a run with
  ``ENCODE=``: its layers wait for the encode unit, which a real split never does).

:func:`rtl_error` compares the two per layer (cycles and every shared counter).
:func:`net_counts` merges them (RTL where present) and gives prefix sums per split.

Networks
--------
Every function takes a built-in name or a :class:`golden.network.Network` (a user model loaded by
``golden.network.load_network``); the layers and splits are the Network's. Counts are cached per architecture
(:func:`arch`: the Network object, shared by its weight variants), never per name, so two user networks of
one name (``a/net.onnx``, ``b/net.py:make``, or one file at two input shapes) never share counts; result files
named after a network (``build/sim/<net>*.json``, ``build/weights/<net>.json``) are used only when they record
the same source and input shape (:func:`same_network`; files without a source are the built-in's). A layer
type the analytical model does not cover (:data:`MODELLED_TYPES`) is a UserError naming the layer.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from functools import cache, partial
from pathlib import Path

from golden.arch import DEFAULT_ARCH, EngineArch
from golden.arch import from_dict as arch_from_dict
from golden.errors import UserError
from golden.graph import Layer
from golden.network import INPUT, Network, network
from hw.plan import (
    BandShape,
    ChainLayer,
    PlanLayer,
    add_bands,
    band_work,
    concat_slots,
    conv_packs,
    plan_bands,
    plan_chain,
    plan_dag,
    subsampled_conv,
)

REPO = Path(__file__).resolve().parents[1]
SIM_DIR = REPO / "build" / "sim"
WEIGHTS_DIR = REPO / "build" / "weights"

#: how weights are stored in DRAM: ``int16`` (plain rows) or ``jpeg`` (coded, restored by the weight decoder)
WEIGHT_FORMATS = ("int16", "jpeg")
#: the weight QF of untrained networks (= ``sim.run.DEFAULT_WEIGHTS_QF``, what ``make sim`` uses)
DEFAULT_WEIGHTS_QF = 50

#: the layer types the analytical engine model knows (golden.graph types; others: a UserError naming the layer)
MODELLED_TYPES = ("conv", "linear", "maxpool", "avgpool", "avgpool2d", "add", "concat", "flatten", "shortcut_a")

Net = str | Network

#: counters carried per layer (RTL names where the RTL has them; seg_*/outputs are derived)
COUNT_FIELDS = (
    "cycles", "busy", "macs", "pool_ops", "outputs",
    "stall_dram", "stall_compute",
    "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
    "seg_read_words", "seg_write_words", "dram_read_words", "dram_write_words", "wdec_weights",
)
#: the RTL counters the analytical model is compared on
RTL_COMPARED = (
    "cycles", "busy", "macs", "pool_ops", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
    "dram_read_words", "dram_write_words", "wdec_weights",
)


@dataclass(frozen=True)
class EngineParams:
    """The engine as the model sees it. Its size (lanes, buffers, DRAM, clock) comes from one
    :class:`golden.arch.EngineArch` (:meth:`from_arch`; the defaults are ``DEFAULT_ARCH``'s, the engine ``make
    sim`` builds); the rest are the RTL's timing facts the model is calibrated on."""

    lanes: int = DEFAULT_ARCH.lanes
    seg_rows: int = 3
    fb_words: int = DEFAULT_ARCH.fb_words
    fb_banks: int = DEFAULT_ARCH.fb_banks
    wb_depth: int = DEFAULT_ARCH.wb_depth
    dram_bytes_per_cycle: float = DEFAULT_ARCH.dram_bytes_per_cycle
    dram_latency_cycles: int = DEFAULT_ARCH.dram_latency_cycles
    clock_hz: float = DEFAULT_ARCH.clock_hz
    desc_beats: int = 3
    decode_cycles: float = 2.5
    drain_cycles: int = 15
    bias_beats: int = 3
    wfetch_claim_cycles: float = 1.0  # weight fetcher: the cycle it claims a free bank before a chunk's requests
    early_release: bool = True     # segment buffer refilled in the cycle it is released (RTL since d9dab0d)
    dw_unit: bool = DEFAULT_ARCH.dw_unit  # the depthwise unit (hw/dw_unit.py): 3x3 depthwise layers run there
    overlap_dma: bool = True       # double-buffered bands of branchy networks (hw/plan.py, background transfers)
    resident: bool = True          # branchy networks: maps kept in the buffer where they fit (hw.plan.plan_dag)
    subsample: bool = True         # banded 1x1 convs at stride >= 2: POOL-subsampled bands (hw.plan.subsampled_conv)
    dw_start_cycles: float = 2.0   # DWCONV: dispatch to the unit's first weight read, and done to the next fetch
    # the weight decoder (compressed weights); fitted on make sim WEIGHTS_CODEC=jpeg's AlexNet
    wdec_weights_per_cycle: float = 12.0    # twelve decoders (hw/jpeg/wdecoder.py), at most 1 weight per cycle each
    wdec_table_entries_per_beat: int = 4    # table writes of 3 words, 4 per 12-word beat
    wdec_lane_entries: int = 24             # lane registers: each lane stream's start and length
    wdec_lane_pad_words: float = 5.5        # a lane stream starts on a 12-word beat: mean padding per lane
    wdec_table_cycles_per_beat: float = 5.0  # accept the beat, then 4 table-port writes
    wdec_start_cycles: float = 164.0        # first weight row after the tables: Huffman + IDCT pipeline, hand-off
    wdec_group_cycles: float = 4.0          # per group (bank): reserve + 3 bias beats from the bias FIFO

    @classmethod
    def from_arch(cls, arch: EngineArch, **timing) -> EngineParams:
        """The model of the engine ``arch`` describes (``timing``: any of the calibrated fields above)."""
        from hw.descriptor import desc_beats  # a descriptor's beats: DRAM beats are ``lanes`` words

        timing.setdefault("desc_beats", desc_beats(arch.lanes))
        return cls(lanes=arch.lanes, fb_words=arch.fb_words, fb_banks=arch.fb_banks, wb_depth=arch.wb_depth,
                   dram_bytes_per_cycle=arch.dram_bytes_per_cycle, dram_latency_cycles=arch.dram_latency_cycles,
                   clock_hz=arch.clock_hz, dw_unit=arch.dw_unit, **timing)

    @property
    def arch(self) -> EngineArch:
        """The architecture these parameters describe (the cost model refuses RTL counts of another)."""
        return replace(DEFAULT_ARCH, rows=self.lanes, cols=self.lanes, fb_words=self.fb_words,
                       fb_banks=self.fb_banks, wb_depth=self.wb_depth, dram_bytes_per_cycle=self.dram_bytes_per_cycle,
                       dram_latency_cycles=self.dram_latency_cycles, clock_hz=self.clock_hz, dw_unit=self.dw_unit)

    @property
    def dram_beat_words(self) -> int:
        """16-bit words per DRAM beat: one weight row of ``lanes`` output channels."""
        return self.lanes

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
    slice_channels: int = 0         # RTL (older make sim): an FC layer simulated on this many output channels ...
    scale: float = 1.0              # ... and its counts scaled up by this factor; with slice_channels 0, an FC layer
                                    # extrapolated per weight group from slices (sim.fc_slice): whole groups / slice's
    wdec_weights: float = 0.0       # weights restored by the weight decoder (padded blocks; 0: int16 weights)
    weight_qf: int = 0              # QF of the layer's coded weights (0: int16)

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


# ---- networks ----------------------------------------------------------------------------------------------


def arch(net: Net) -> Network:
    """``net`` (a built-in name, a loaded user network's name or a :class:`~golden.network.Network`) as the
    Network of its architecture: the object the caches here are keyed by. Variants of one network with other
    weights (``Network.with_weights``) share it (counts do not depend on weight values); two different networks
    never do, whatever their names (a user network is keyed by its loaded object, not by its file's stem)."""
    nw = network(net)
    return nw.tables.net if nw.tables is not None else nw


def _source_key(source: str) -> str:
    """A network source for comparison: ``builtin``, or the model file resolved (``PATH[:FACTORY]``)."""
    if source == "builtin":
        return source
    path, sep, factory = source.rpartition(":") if ".py:" in source else (source, "", "")
    try:
        path = str(Path(path).resolve())
    except OSError:  # pragma: no cover - an unresolvable path compares as written
        pass
    return path + sep + factory


def same_network(doc: dict, net: Net) -> bool:
    """Whether a result file's ``doc`` (``build/sim``, ``build/weights``, ``build/accuracy`` JSON, named after the
    network) describes ``net``: the same name, the same source (files without one were written for the built-in
    network of that name) and, when recorded, the same input shape."""
    nw = network(net)
    if doc.get("net") != nw.name:
        return False
    if _source_key(str(doc.get("source", "builtin"))) != _source_key(nw.source):
        return False
    shape = doc.get("input_shape")
    return shape is None or [int(v) for v in shape] == list(nw.input_shape)


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
    if layer.type in ("conv", "maxpool", "shortcut_a", "avgpool2d"):
        oc, oh, ow = layer.out_shape
        k = max(layer.kernel) if layer.type != "shortcut_a" else 1
        groups = c if layer.type == "avgpool2d" else max(layer.groups, 1)  # a depthwise conv (sim.networks)
        return _Geom(c // groups, h, w, k, layer.stride[0], layer.padding[0], oc, oh, ow, groups)
    if layer.type == "avgpool":
        return _Geom(c, h, w, 1, 1, 0, c, 1, 1)
    return _Geom(c, h, w, 1, 1, 0, c, h, w)


class _Acc:
    """Accumulates one layer's counts."""

    def __init__(self, layer: Layer, eng: EngineParams, cw: tuple[int, int, int] | None = None):
        self.c = LayerCounts(layer=layer.name, split=layer.split, name=layer.name, type=layer.type,
                             source="analytical")
        self.eng = eng
        self.cw = cw      # compressed weights: (stream words, decoder table entries, QF), None for int16
        self.raw0 = False
        if cw is not None:
            self.c.weight_qf = cw[2]
            # sim.program.raw_first_group: a coded layer with more than one output pixel (the whole layer's,
            # not a band's) and more than 12 output channels keeps its first group plain (the array starts
            # without waiting for the tables and the first decoded block rows)
            pixels = _numel(layer.out_shape[1:]) if layer.type == "conv" else 1
            self.raw0 = pixels > 1 and layer.out_shape[0] > eng.lanes

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

    def gather(self, rows: int, row_len: int = 1) -> None:
        """A foreground LOAD of ``rows`` short runs (a batched FC layer's gather: one word per run): a DRAM request
        per run and beat, at most one request per cycle, else the bandwidth's time."""
        words = rows * row_len
        reqs = rows * -(-row_len // self.eng.dram_beat_words)
        t = max(float(reqs), words / self.eng.words_per_cycle) + self.eng.dram_latency_cycles
        self.command()
        self.c.cycles += t
        self.c.stall_dram += t
        self.c.dram_read_words += words
        self.c.fb_write_words += words

    def bg_load(self, words: int) -> int:
        """A LOAD handed over to move in the background: its descriptor fetch and its words; its time is the
        caller's (``_dag_banded``)."""
        self.command()
        self.c.dram_read_words += words
        self.c.fb_write_words += words
        return words

    def bg_store(self, rows: int, row_len: int) -> int:
        """A STORE handed over to move in the background (see :meth:`bg_load`)."""
        self.command()
        words = rows * row_len
        self.c.dram_write_words += words
        self.c.fb_read_words += self.eng.fb_banks * rows * -(-row_len // self.eng.dram_beat_words)
        return words

    def store(self, rows: int, row_len: int) -> None:
        words = rows * row_len
        t = words / self.eng.words_per_cycle
        self.command()
        self.c.cycles += t
        self.c.stall_dram += t
        self.c.dram_write_words += words
        self.c.fb_read_words += self.eng.fb_banks * rows * -(-row_len // self.eng.dram_beat_words)


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
    fbr_group = sum(cnt * g.cin * valid * eng.fb_banks for (n, reads, valid), cnt in summary)
    segw_group = sum(cnt * g.cin * g.k * reads * 16 for (n, reads, valid), cnt in summary)
    if acc.cw is not None:
        total = _compressed_weights(acc, g12, kk, t_group, acc.raw0)
    else:
        # a group per bank (group g computes while group g+1 streams into the other bank), or, deeper than a
        # bank, chunks of wb_depth rows through both banks (FC layers, one tile per group): the same two-bank ring
        total = _chunk_pipeline(g12, kk, t_group / kk, eng, claim_cycles=eng.wfetch_claim_cycles, t_group=t_group)
        c.wb_write_words += g12 * kk * eng.lanes
        c.dram_read_words += g12 * (kk + eng.bias_beats) * eng.dram_beat_words
    c.cycles += total + eng.drain_cycles
    c.stall_dram += total - g12 * t_group
    c.stall_compute += eng.drain_cycles + g12 * t_group - g12 * beats_group
    c.busy += g12 * beats_group
    c.wb_read_words += g12 * beats_group * eng.lanes
    c.seg_read_words += g12 * beats_group * eng.lanes
    c.fb_read_words += g12 * fbr_group
    c.seg_write_words += g12 * segw_group
    c.fb_write_words += g.oc * m
    c.outputs += g.oc * m


def chunk_claim_cycles(beats: int, beat_cycles: float, claim_cycles: float) -> float:
    """Cycles lost between the requests of two weight chunks when the next chunk's bank is free already.
    The port takes at most one request per cycle, and the fetcher spends ``claim_cycles`` claiming a free bank
    before a chunk's first request (``hw/engine.py``: ``fq_in_chunk`` is set the cycle after ``bank_free``).
    The DRAM's token bucket banks the bandwidth of those idle cycles and spends it on the chunk's ``beats``
    at up to a beat per cycle: hidden when a beat takes more than a cycle of bandwidth (12 and 16 lanes at 16
    bytes per cycle: 1.5 and 2 cycles), lost when it takes a cycle or less (8 lanes: a beat is 16 bytes, the
    DRAM's bytes per cycle)."""
    return min(max(claim_cycles - beats * (max(beat_cycles, 1.0) - 1.0), 0.0), claim_cycles)


def _chunk_pipeline(groups: int, kk: int, t_row: float, eng: EngineParams, row_fetch: float | None = None,
                    bias_fetch: float | None = None, latency: float | None = None, row_pad: int = 1,
                    claim_cycles: float | None = None, t_group: float | None = None) -> float:
    """Cycles of ``groups`` weight groups of ``kk`` rows streamed in chunks of up to ``wb_depth`` rows (one
    chunk per group when the group fits a bank) through the two weight banks: chunk j is fetched (its group's
    bias beats with its first chunk) once chunk j - 1's requests are out and chunk j - 2 has released the bank
    (a cycle after its last row was computed), and computed once it has landed (the bank is full) and chunk
    j - 1 is done (``t_row`` compute cycles per row).

    The two banks make a ring: chunk j + 2's fetch waits for chunk j's compute, which waits for chunk j's
    last beat. Two chunks therefore take at least one chunk's requests + the DRAM latency + its compute
    (+ the release cycle), not just ``2 max(fetch, compute)``: the latency is hidden only when the compute
    or the fetch has that much slack over the other (at 8 lanes an FC group's rows come one per cycle and
    compute one per cycle: (131 + 20 + 128 + 1) / 2 = 140 cycles per group of 128 rows instead of 131).

    Defaults: int16 rows from DRAM (``beat_cycles`` per row and bias beat, the DRAM latency per chunk);
    ``claim_cycles`` (int16 only): rows are requested at most one per cycle, and a chunk whose bank is free
    already starts :func:`chunk_claim_cycles` after the previous chunk's requests (the first chunk's claim is
    part of the command's start). The weight decoder passes its own row time (12 weights per row at its
    rate), its per-group hand-off as ``bias_fetch``, no per-chunk latency and ``row_pad = 64`` (a chunk's rows
    padded to whole blocks). ``t_group``: a group's compute cycles exactly (default ``kk * t_row``)."""
    w = eng.wb_depth
    row_fetch = eng.beat_cycles if row_fetch is None else row_fetch
    bias_fetch = eng.bias_beats * eng.beat_cycles if bias_fetch is None else bias_fetch
    latency = eng.dram_latency_cycles if latency is None else latency
    sizes = [min(w, kk - i * w) for i in range(-(-kk // w))]
    t_group = t_row * kk if t_group is None else t_group
    f_end, c_prev = 0.0, 0.0
    c_end = [-1e18, -1e18]
    j = 0
    for _ in range(groups):
        for i, r in enumerate(sizes):
            fetch = -(-r // row_pad) * row_pad * row_fetch + (bias_fetch if i == 0 else 0)
            f_ready = f_end
            if claim_cycles is not None:
                beats = r + (eng.bias_beats if i == 0 else 0)
                fetch = beats * max(row_fetch, 1.0)
                f_ready += chunk_claim_cycles(beats, row_fetch, claim_cycles) if j > 0 else 0.0
            fs = max(f_ready, c_end[j % 2] + 1)     # the bank claimed the cycle it is seen free
            f_end = fs + fetch
            c_prev = max(c_prev, f_end + latency) + (t_group if r == kk else r * t_row)
            c_end[j % 2] = c_prev
            j += 1
    return c_prev


def compressed_weight_words(stream_words: int, table_entries: int, groups: int,
                            eng: EngineParams = None, area_words: int | None = None) -> int:
    """DRAM words one CONV command reads for compressed weights: the tables (the decoders'
    ``table_entries`` writes and the 24 lane-register entries, 4 per beat), the twelve lane streams (each
    on whole 12-word beats: ``area_words`` when known, else the stream words plus the mean padding) and 3
    bias beats per group, in whole 12-word beats."""
    eng = eng or DEFAULT_ENGINE
    bw = eng.dram_beat_words
    tbl = -(-(table_entries + eng.wdec_lane_entries) // eng.wdec_table_entries_per_beat)
    if area_words is None:
        area_words = stream_words + eng.lanes * eng.wdec_lane_pad_words
    return bw * (tbl + math.ceil(area_words / bw) + groups * eng.bias_beats)


def _compressed_weights(acc: _Acc, g12: int, kk: int, t_group: float, raw0: bool = False) -> float:
    """Cycles of a CONV command whose weights come through the weight decoder (counts added to ``acc``).

    ``raw0``: the first group comes as plain rows (exposed like an int16 layer's), then the tables load and
    the decoder restores group 2 while group 1 computes; the stream then holds the other groups only (its
    words are taken as the layer's in proportion: the table has the whole layer's)."""
    eng, c = acc.eng, acc.c
    stream_words, entries, _ = acc.cw[:3]
    area_words = acc.cw[3] if len(acc.cw) > 3 else None   # exact (an RTL row's), else estimated
    bw = eng.dram_beat_words
    kblocks = -(-kk // 64)
    padded = eng.lanes * kblocks * 64                     # weights restored per group (blocks padded to 64)
    tbl_beats = -(-(entries + eng.wdec_lane_entries) // eng.wdec_table_entries_per_beat)
    tables = eng.dram_latency_cycles + tbl_beats * eng.wdec_table_cycles_per_beat + eng.wdec_start_cycles
    dram_group = (stream_words / g12 + eng.bias_beats * bw) / eng.words_per_cycle
    fill = max(padded / eng.wdec_weights_per_cycle + eng.wdec_group_cycles, dram_group)
    raw0 = raw0 and g12 > 1 and kk <= eng.wb_depth
    coded = g12 - 1 if raw0 else g12
    if raw0:
        first = (kk + eng.bias_beats) * eng.beat_cycles + eng.dram_latency_cycles
        total = first + max(t_group, tables + fill) + (g12 - 2) * max(t_group, fill) + t_group
        stream_words = round(stream_words * coded / g12)
        c.wb_write_words += kk * eng.lanes
        c.dram_read_words += (kk + eng.bias_beats) * bw
    elif kk <= eng.wb_depth:
        total = tables + fill + (g12 - 1) * max(t_group, fill) + t_group
    else:
        total = tables + _chunk_pipeline(g12, kk, t_group / kk, eng, row_fetch=bw / eng.wdec_weights_per_cycle,
                                         bias_fetch=eng.wdec_group_cycles, latency=0.0, row_pad=64)
    c.wdec_weights += coded * padded
    c.wb_write_words += coded * padded
    c.dram_read_words += compressed_weight_words(stream_words, entries, coded, eng, area_words)
    return total


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
    c.fb_read_words += g.cin * sum(cnt * valid * eng.fb_banks for (_, _, valid), cnt in summary)
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
    c.fb_read_words += 2 * chunks * acc.eng.fb_banks
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
    c.fb_read_words += acc.eng.fb_banks * reads
    c.fb_write_words += channels
    c.outputs += channels


def dw_seg_reads(stride: int, lanes: int = 12) -> int:
    """``hw.dw_unit.seg_reads``: 16-word feature-buffer reads per row segment of ``lanes * stride + 2`` words
    (1 at stride 1 and 2 at stride 2 up to 14 lanes)."""
    return -(-(lanes * stride + 2) // 16)


def dw_cycles(channels: int, out_w: int, out_h: int, stride: int, lanes: int = 12, maxpool: bool = False) -> int:
    """The depthwise unit's schedule (``hw.dw_unit.ref_dw_cycles``): per group of 12 channels 9 weight-row
    reads and a release (one cycle in max-pool mode); per channel a tap select and, per strip of 12 output
    columns, ``3 + (rows - 1) * s`` input rows of :func:`dw_seg_reads` 16-word reads each; 4 cycles of pipeline
    at the end."""
    reads = dw_seg_reads(stride, lanes)
    strips = -(-out_w // lanes)
    return (-(-channels // lanes) * (1 if maxpool else 10)
            + channels * (1 + strips * (3 + (out_h - 1) * stride) * reads) + 4)


def _on_dw_unit(layer: Layer, g: _Geom, eng: EngineParams) -> bool:
    """sim.program.on_dw_unit: a 3x3 depthwise conv (or 3x3 average pool), stride 1 or 2, padding 0 or 1."""
    return (eng.dw_unit and layer.type in ("conv", "avgpool2d") and g.groups > 1 and g.cin == 1
            and g.oc == g.groups and g.k == 3 and g.s in (1, 2) and g.pad in (0, 1))


def _pool_on_dw_unit(layer: Layer, g: _Geom, eng: EngineParams) -> bool:
    """sim.program.pool_on_dw_unit: a 3x3 max-pool, stride 1 or 2, padding 0 or 1 (in a branchy network)."""
    return eng.dw_unit and layer.type == "maxpool" and g.k == 3 and g.s in (1, 2) and g.pad in (0, 1)


def _dw_band(acc: _Acc, g: _Geom, oy_a: int, oy_b: int, maxpool: bool = False) -> None:
    """One DWCONV command over a band: the first group's weights (12 beats: 3 bias + 9 rows) are exposed; the
    fetcher brings each next group into the other bank while the unit works (it releases a bank after
    copying it, 9 cycles in), so only the unit's schedule counts after that."""
    eng, c = acc.eng, acc.c
    acc.command()
    rows = oy_b - oy_a
    groups = 0 if maxpool else -(-g.oc // eng.lanes)
    first = 0.0 if maxpool else (9 + eng.bias_beats) * eng.beat_cycles + eng.dram_latency_cycles
    unit = dw_cycles(g.oc, g.ow, rows, g.s, eng.lanes, maxpool)
    strips = -(-g.ow // eng.lanes)
    beats = g.oc * strips * rows
    reads = dw_seg_reads(g.s, eng.lanes)
    in_rows = 0  # input rows inside the map that a strip loads (the others read nothing)
    for oy in range(oy_a, oy_b):
        top = oy * g.s - g.pad
        new = range(top, top + 3) if oy == oy_a else range(top + 3 - g.s, top + 3)
        in_rows += sum(1 for y in new if 0 <= y < g.ih)
    c.cycles += first + unit + eng.dw_start_cycles
    c.stall_dram += first
    c.busy += beats
    c.stall_compute += unit + eng.dw_start_cycles - beats
    if maxpool:
        c.pool_ops += rows * g.ow * g.oc * 9
    else:
        c.macs += rows * g.ow * g.oc * 9
    c.fb_read_words += eng.fb_banks * reads * in_rows * strips * g.oc
    c.fb_write_words += g.oc * rows * g.ow
    c.outputs += g.oc * rows * g.ow
    c.wb_write_words += groups * 9 * eng.lanes
    c.wb_read_words += groups * 9 * eng.lanes
    c.dram_read_words += groups * (9 + eng.bias_beats) * eng.dram_beat_words


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


def _engine_layers(net: Net) -> tuple[list[Layer], dict[str, str]]:
    """The layers the engine runs (flatten dropped) and the alias of every dropped output; UserError for a
    layer type the analytical model does not know (:data:`MODELLED_TYPES`)."""
    nw = network(net)
    alias: dict[str, str] = {INPUT: INPUT}
    out = []
    for la in nw.layers:
        if la.type not in MODELLED_TYPES:
            raise UserError(f"{nw.name}: layer {la.name} is a {la.type} layer, which the cost model does not cover "
                            f"yet; it covers: {', '.join(MODELLED_TYPES)}")
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
        if la.type in ("add", "concat", "avgpool2d") or (la.type == "conv" and la.groups > 1) \
                or tuple(alias.get(i, i) for i in la.inputs) != (prev,):
            return False
        prev = la.name
    return True


def _chain_plan(lays: list[Layer], net: Net, eng: EngineParams, wmap: dict | None = None) -> list[LayerCounts]:
    """Linear networks: the counts of the one plan (``hw.plan.plan_chain``) that sim.program.compile_program
    lowers: maps kept in the buffer where they fit."""
    geoms = [_geom(la) for la in lays]
    chain = [ChainLayer(la.name, g.cin, g.ih, g.iw, g.k, g.s, g.oc, g.oh, g.ow, fc=la.type == "linear")
             for la, g in zip(lays, geoms, strict=True)]
    in_words0 = _numel(network(net).input_shape)
    load_input, steps = plan_chain(chain, in_words0, eng.fb_words)
    out = []
    wmap = wmap or {}
    for i, (la, g, step) in enumerate(zip(lays, geoms, steps, strict=True)):
        acc = _Acc(la, eng, wmap.get(la.name))
        if i == 0 and load_input:
            acc.load(1, in_words0)
        if step.spill_addr is not None:
            acc.store(1, chain[i].in_words)
        if step.how == "whole":
            acc.load(1, chain[i].in_words)
        if step.how in ("resident", "whole"):
            _compute(acc, la, g, 0, max(g.oh, 1), g.ih)
        elif step.how == "rows":
            _banded(acc, la, g, step.rows or 1)
        else:   # bands from DRAM to DRAM in the one planner's bands (as in branchy networks)
            g.pointwise = la.type == "conv" and g.k == 1 and g.s == 1 and g.pad == 0
            kind = "pool" if la.type == "maxpool" else "conv"
            acc.c.bands = _dag_banded(acc, g, la.in_shape[0], g.oc, kind, partial(_compute_band, acc, la, g),
                                      subsampled=_subsampled(acc, g, partial(_compute, acc, la), ih_total=g.oh)
                                      if kind == "conv" else None)
        acc.c.output_resident = step.output_resident
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


def _packs(g: _Geom, lanes: int) -> list[tuple[int, int]]:
    """``(input channels, output channels)`` of each dense pack of a grouped conv (``hw.plan.conv_packs``, as
    sim.program.conv_packs lowers them; one pack of the whole layer when ungrouped)."""
    if g.groups == 1:
        return [(g.cin, g.oc)]
    og = g.oc // g.groups
    return [(n * g.cin, n * og) for _, n in conv_packs(g.groups, og, lanes)]


def _concat_copies(lays: list[Layer], alias: dict[str, str]) -> dict[str, list[int]]:
    """sim.program._dag_addresses: per concatenation, the word counts of the inputs it copies (the network
    input, or a tensor already placed in a later concatenation); the others are stored in place."""
    placed: set[str] = set()
    copies: dict[str, list[int]] = {}
    for la in reversed(lays):
        if la.type == "concat":
            copies[la.name] = []
            for i, t in enumerate(la.inputs):
                t = alias.get(t, t)
                if t == INPUT or t in placed:
                    copies[la.name].append(_numel(la.in_shapes[i]))
                else:
                    placed.add(t)
    return copies


def _band_shape(la: Layer, eng: EngineParams) -> BandShape | None:
    """A layer as its bands see it, when it can run from DRAM in bands as one command per band (a conv, a pool or
    a depthwise conv; not a grouped conv's packs, an add, a pool to 1 x 1 or a fully-connected layer)."""
    if la.type not in ("conv", "maxpool", "shortcut_a", "avgpool2d"):
        return None
    g = _geom(la)
    if _on_dw_unit(la, g, eng):
        kind, cin, oc = "dw", g.oc, g.oc
    elif _pool_on_dw_unit(la, g, eng):
        kind, cin, oc = "dwpool", g.oc, g.oc
    elif la.type == "maxpool":
        kind, cin, oc = "pool", la.in_shape[0], g.oc
    elif g.groups == 1:
        kind, cin, oc = "conv", la.in_shape[0], g.oc
    else:
        return None
    return BandShape(kind, g.oh, g.ih, g.s, g.k, g.pad, cin, g.iw, oc, g.ow, eng.lanes, eng.bias_beats)


def _plan_layers(lays: list[Layer], alias: dict[str, str], eng: EngineParams) -> list:
    """The layers as ``hw.plan.plan_dag`` sees them (as ``sim.program.plan_layer`` builds them)."""
    words = {INPUT: 0}
    ins_of = {}
    for la in lays:
        ins = tuple(alias.get(t, t) for t in la.inputs)
        ins_of[la.name] = ins
        for t, shp in zip(ins, la.in_shapes, strict=True):
            words[t] = _numel(shp)
        words[la.name] = _numel(la.out_shape)
    slots = concat_slots([(la.name, ins_of[la.name], tuple(words[t] for t in ins_of[la.name]))
                          for la in lays if la.type == "concat"])
    out = []
    for la in lays:
        ins = ins_of[la.name]
        offsets: tuple[int, ...] = ()
        if la.type == "concat":
            acc, offs = 0, []
            for t in ins:
                offs.append(acc)
                acc += words[t]
            offsets = tuple(offs)
        extra = {"slot": slots[la.name][0], "offset": slots[la.name][1]} if la.name in slots else {}
        out.append(PlanLayer(la.name, ins, tuple(words[t] for t in ins), words[la.name], offsets=offsets,
                             band=_band_shape(la, eng), **extra))
    return out


def _dag_plan(lays: list[Layer], eng: EngineParams, wmap: dict | None = None,
              alias: dict[str, str] | None = None) -> list[LayerCounts]:
    """sim.program._compile_dag for networks with branches, grouped convolutions or concatenations: the maps
    ``hw.plan.plan_dag`` keeps in the buffer (their STOREs and LOADs of whole maps, whole-map commands), the
    other layers DRAM -> bands -> DRAM (a grouped conv pack by pack; a concatenation free unless it copies)."""
    fbw = eng.fb_words
    out = []
    wmap = wmap or {}
    alias = alias or {}
    copies = _concat_copies(lays, alias)
    words = {la.name: _numel(la.out_shape) for la in lays}
    for la in lays:
        for t, shp in zip(la.inputs, la.in_shapes, strict=True):
            words.setdefault(alias.get(t, t), _numel(shp))
    plans = plan_dag(_plan_layers(lays, alias, eng), fbw) if eng.resident else [None] * len(lays)
    for la, lp in zip(lays, plans, strict=True):
        acc = _Acc(la, eng, wmap.get(la.name))
        g = _geom(la)
        if lp is not None:
            for t, _ in lp.spills:
                acc.store(1, words[t])
            for t in lp.loads:
                acc.load(1, words[t])
            for t, _ in lp.copies:
                acc.load(1, words[t])
        if lp is not None and lp.resident:
            _resident_compute(acc, la, g, eng)
            # (make sim dumps a resident output for verification; a concatenation only if it copied an input,
            # the others are in DRAM from their own dumps)
            acc.c.output_resident = la.type != "concat" or bool(lp.copies)
            out.append(acc.c)
            continue
        if la.type == "add":
            acc.c.bands = _dag_add(acc, *la.in_shape)
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
        elif la.type == "concat":
            nb = 0
            for w in copies.get(la.name, []):
                for a in range(0, w, fbw):
                    n = min(fbw, w - a)
                    acc.load(1, n)
                    acc.store(1, n)
                    nb += 1
            acc.c.bands = nb
        elif la.type == "linear":
            acc.load(1, g.cin)
            _compute(acc, la, g, 0, 1, 1)
            acc.store(1, g.oc)
        elif _on_dw_unit(la, g, eng):
            acc.c.bands = _dag_banded(acc, g, g.oc, g.oc, "dw", partial(_dw_band, acc, g))
        elif _pool_on_dw_unit(la, g, eng):
            acc.c.bands = _dag_banded(acc, g, g.oc, g.oc, "dwpool", partial(_dw_band, acc, g, maxpool=True))
        elif la.type in ("conv", "avgpool2d", "shortcut_a") and g.groups > 1:
            nb = 0
            for cin_p, oc_p in _packs(g, eng.lanes):
                gp = replace(g, cin=cin_p, oc=oc_p, groups=1)
                gp.pointwise = gp.k == 1 and gp.s == 1 and gp.pad == 0
                nb += _dag_banded(acc, gp, cin_p, oc_p, "conv", partial(_pack_band, acc, gp),
                                  subsampled=_subsampled(acc, gp, partial(_pack_band, acc)))
            acc.c.bands = nb
        else:
            g.pointwise = la.type == "conv" and g.k == 1 and g.s == 1 and g.pad == 0
            kind = "pool" if la.type == "maxpool" else "conv"
            acc.c.bands = _dag_banded(acc, g, la.in_shape[0], g.oc, kind, partial(_compute_band, acc, la, g),
                                      subsampled=_subsampled(acc, g, partial(_compute, acc, la), ih_total=g.oh)
                                      if kind == "conv" else None)
        acc.c.output_resident = False
        out.append(acc.c)
    return out


IN_W_MAX = 2**16 - 1   # the descriptor's in_w field: a whole map as one long row only below this


def _resident_compute(acc: _Acc, la: Layer, g: _Geom, eng: EngineParams) -> None:
    """The whole-map command(s) of a layer whose maps are in the buffer (sim.program._resident_cmds)."""
    if la.type == "concat":
        return
    if la.type == "add":
        _add_cmd(acc, _numel(la.out_shape))
    elif la.type == "avgpool":
        _gap_cmd(acc, g.cin, g.ih * g.iw)
    elif la.type == "linear":
        _compute(acc, la, g, 0, 1, 1)
    elif _on_dw_unit(la, g, eng):
        _dw_band(acc, g, 0, g.oh)
    elif _pool_on_dw_unit(la, g, eng):
        _dw_band(acc, g, 0, g.oh, maxpool=True)
    elif la.type in ("conv", "avgpool2d", "shortcut_a") and g.groups > 1:
        for cin_p, oc_p in _packs(g, eng.lanes):
            gp = replace(g, cin=cin_p, oc=oc_p, groups=1)
            gp.pointwise = gp.k == 1 and gp.s == 1 and gp.pad == 0 and gp.ih * gp.iw <= IN_W_MAX
            _pack_band(acc, gp, 0, gp.oh)
    else:
        g.pointwise = la.type == "conv" and g.k == 1 and g.s == 1 and g.pad == 0 and g.ih * g.iw <= IN_W_MAX
        _compute(acc, la, g, 0, max(g.oh, 1), g.ih)


def _compute_band(acc: _Acc, la: Layer, g: _Geom, oy_a: int, oy_b: int) -> None:
    _compute(acc, la, g, oy_a, oy_b, g.ih)


def _pack_band(acc: _Acc, g: _Geom, oy_a: int, oy_b: int) -> None:
    """One band of one dense pack of a grouped conv; the array's MACs include the pack's block-diagonal zeros
    (what the ``macs`` counter counts)."""
    _conv_band(acc, g, oy_a, oy_b, g.ih)
    acc.c.macs += (oy_b - oy_a) * g.ow * g.oc * g.cin * g.k * g.k


def _dag_add(acc: _Acc, ci: int, ih: int, iw: int) -> int:
    """A residual ADD from DRAM to DRAM in the bands of ``hw.plan.add_bands`` (as ``sim.program._dag_add_bands``).
    Sequential: LOAD, LOAD, ADD, STORE. Double-buffered: the sequencer's commands stepped against the two DMA
    engines (each one transfer at a time, a hand-over waiting for its engine) and the DRAM port (the engines'
    words one after the other at its rate, a LOAD's last word landing the latency later). Returns the bands."""
    eng, c = acc.eng, acc.c
    plan = add_bands(ci, ih, iw, eng.fb_words, eng.overlap_dma)
    rows = plan.rows if plan is not None else 1
    bands = [(a, min(ih, a + rows)) for a in range(0, ih, rows)]
    if plan is None or not plan.double:
        for a, b in bands:
            acc.load(ci, (b - a) * iw)
            acc.load(ci, (b - a) * iw)
            _add_cmd(acc, ci * (b - a) * iw)
            acc.store(ci, (b - a) * iw)
        return len(bands)
    wpc, lat, cmd = eng.words_per_cycle, eng.dram_latency_cycles, eng.command_cycles
    acc.load(ci, (bands[0][1] - bands[0][0]) * iw)
    acc.load(ci, (bands[0][1] - bands[0][0]) * iw)
    t0 = c.cycles                       # the sequencer's time; the engines' below
    t, ld_end = t0, t0
    loads: list[tuple[float, float]] = []   # the port's time taken by LOADs (the arbiter serves them first)
    store: tuple[float, int] | None = None  # the STORE moving in the background: (start, words)

    def load(start: float, words: int) -> float:
        loads.append((start, start + words / wpc))
        return start + words / wpc + lat

    def store_end(start: float, words: int) -> float:
        """A STORE's end: its words at the port's rate in the time the LOADs leave it."""
        need, at = words / wpc, start
        for a, b in loads:
            if b <= at:
                continue
            if a > at:
                if a - at >= need:
                    return at + need
                need -= a - at
            at = b
        return at + need

    for i, (a, b) in enumerate(bands):
        last = i == len(bands) - 1
        n = ci * (b - a) * iw
        nxt = 0 if last else ci * (bands[i + 1][1] - bands[i + 1][0]) * iw
        if not last:                     # hand the next band's A over: it starts when this band's B is in
            acc.bg_load(nxt)
            t = max(t + cmd, ld_end)
            ld_end = load(t, nxt)
        busy0 = c.busy
        _add_cmd(acc, n)                 # (its fetch and its cycles, counted busy)
        t = (max(t + cmd, ld_end) if last else t + cmd) + (c.busy - busy0)
        t = max(t + cmd, store_end(*store) if store else t)   # a STORE waits for the one before
        if last:                         # the last STORE in the foreground
            acc.command()
            c.dram_write_words += n
            c.fb_read_words += eng.fb_banks * ci * -(-(b - a) * iw // eng.dram_beat_words)
            t = store_end(t, n)
        else:
            acc.bg_store(ci, (b - a) * iw)
            store = (t, n)
            acc.bg_load(nxt)             # the next band's B, after its A
            t = max(t + cmd, ld_end)
            ld_end = load(t, nxt)
    # the commands above counted their fetches and the ADDs' cycles: the rest of the time waited for DRAM
    rest = (t - t0) - (c.cycles - t0)
    c.cycles += rest
    c.stall_dram += rest
    return len(bands)


def _subsampled(acc: _Acc, g: _Geom, conv_band, ih_total: int | None = None):
    """A band of a 1x1 conv at stride >= 2 as ``sim.program._dag_bands`` computes it (``hw.plan.subsampled_conv``):
    a POOL of kernel 1 at the conv's stride into a scratch map, then ``conv_band(g1, oy_a, oy_b[, ih_total])``
    of the conv at stride 1 over it as one long row (rows of ``ow`` when the row would not fit ``in_w``)."""
    pool = _Geom(g.cin, g.ih, g.iw, 1, g.s, 0, g.cin, g.oh, g.ow)

    def band(oy_a: int, oy_b: int) -> None:
        _pool_band(acc, pool, oy_a, oy_b, g.ih)
        g1 = replace(g, s=1, pointwise=(oy_b - oy_a) * g.ow <= IN_W_MAX)
        if ih_total is None:
            conv_band(g1, oy_a, oy_b)
        else:
            conv_band(g1, oy_a, oy_b, ih_total)
    return band


def _dag_banded(acc: _Acc, g: _Geom, cin: int, oc: int, kind: str, compute, subsampled=None) -> int:
    """A layer (or a pack) from DRAM to DRAM in the bands of ``hw.plan.plan_bands`` (as sim.program._dag_bands):
    ``cin`` channels loaded, ``oc`` stored, ``compute(oy_a, oy_b)`` counting a band's compute command.

    Sequential bands: LOAD, compute, STORE. Double-buffered: the first LOAD, then per band the background LOAD
    of the next band and STORE of this one are handed over (a descriptor fetch each) and move while the band
    computes; the DRAM port serves the compute's weights first, so a band takes ``max(compute, transfers)``
    where the transfers are the next band's input, the previous band's output and the band's weights at the
    DRAM bandwidth; the last STORE runs in the foreground. ``subsampled``: a band's compute when the layer is a
    1x1 conv at stride >= 2 (``hw.plan.subsampled_conv``: its scratch map beside each band, when it fits). Returns
    the bands."""
    eng, c = acc.eng, acc.c
    rc, wb = band_work(kind, cin, oc, g.ow, g.k, g.s, eng.lanes, eng.bias_beats)
    plan = None
    if subsampled is not None and eng.subsample and subsampled_conv(g.k, g.s, g.pad, oc, eng.lanes):
        plan = plan_bands(g.oh, g.ih, g.s, g.k, g.pad, cin, g.iw, oc, g.ow, eng.fb_words, rc, wb, eng.overlap_dma,
                          scratch_c=cin)
        compute = subsampled if plan is not None else compute
    if plan is None:
        plan = plan_bands(g.oh, g.ih, g.s, g.k, g.pad, cin, g.iw, oc, g.ow, eng.fb_words, rc, wb, eng.overlap_dma)
    rows = plan.rows if plan is not None else 1
    bands = [(a, min(g.oh, a + rows)) for a in range(0, max(g.oh, 1), rows)]

    def in_words(a: int, b: int) -> int:
        return cin * max(min(g.ih, (b - 1) * g.s - g.pad + g.k) - max(0, a * g.s - g.pad), 1) * g.iw

    if plan is None or not plan.double:
        for a, b in bands:
            acc.load(1, in_words(a, b))
            compute(a, b)
            acc.store(oc, (b - a) * g.ow)
        return len(bands)
    acc.load(1, in_words(*bands[0]))
    stored = 0
    for i, (a, b) in enumerate(bands):
        last = i == len(bands) - 1
        t0 = c.cycles       # (the STORE handed over last moves while this band's LOAD is handed over, too)
        loaded = 0 if last else acc.bg_load(in_words(*bands[i + 1]))
        w0 = c.dram_read_words
        compute(a, b)
        busy = c.cycles - t0
        moved = (loaded + stored + c.dram_read_words - w0) / eng.words_per_cycle + eng.dram_latency_cycles
        if moved > busy:
            c.cycles += moved - busy
            c.stall_dram += moved - busy
        if last:
            acc.store(oc, (b - a) * g.ow)
        else:
            stored = acc.bg_store(oc, (b - a) * g.ow)
    return len(bands)


def analytical_layer_counts(net: Net, eng: EngineParams = DEFAULT_ENGINE, weights: str = "int16",
                            weights_qf: int | None = None,
                            weights_dir: str | Path | None = None) -> tuple[LayerCounts, ...]:
    """Per-layer counts of ``net`` (every layer of :func:`golden.splits.layers`), by the analytical model;
    ``weights="jpeg"``: compressed weights from :func:`weight_table` (``weights_qf``, ``weights_dir``)."""
    return _analytical(net, eng, _wcodes(net, weights, weights_qf, weights_dir))


def _analytical(net: Net, eng: EngineParams, wcodes: tuple = ()) -> tuple[LayerCounts, ...]:
    """``wcodes``: ``((layer, stream words, table entries, QF[, lane-stream area words]), ...)`` of the
    compressed layers (() = int16). Cached per architecture (:func:`arch`)."""
    return _analytical_of(arch(net), eng, wcodes)


@cache
def _analytical_of(nw: Network, eng: EngineParams, wcodes: tuple = ()) -> tuple[LayerCounts, ...]:
    lays, alias = _engine_layers(nw)
    wmap = {w[0]: tuple(w[1:]) for w in wcodes}
    plan = _chain_plan(lays, nw, eng, wmap) if _is_linear(lays, alias) else _dag_plan(lays, eng, wmap, alias)
    by_name = {lc.layer: lc for lc in plan}
    out = []
    for la in nw.layers:
        if la.type == "flatten":
            src = by_name.get(alias[la.name])
            out.append(LayerCounts(layer=la.name, split=la.split, name=la.name, type=la.type, source="analytical",
                                   output_resident=bool(src and src.output_resident)))
        else:
            out.append(by_name[la.name])
    return tuple(out)


# ---- compressed weights: the per-layer table ------------------------------------------------------------


@dataclass(frozen=True)
class LayerWeights:
    """One layer's JPEG-coded weights as the cost model uses them (from ``build/weights/<net>.json``)."""

    layer: str
    qf: int
    stream_words: int           # 16-bit words of the twelve lane streams (``stream_bytes / 2``)
    table_entries: int          # decoder table writes: len(hw.jpeg.whost.table_writes(...)) = table_bytes + 2
    raw_words: int              # int16 weights (O x K)
    compressed_bytes: int
    ratio: float


def check_weights(weights: str) -> str:
    if weights not in WEIGHT_FORMATS:
        raise UserError(f"unknown weights format {weights!r}; allowed: {', '.join(WEIGHT_FORMATS)}")
    return weights


def check_weights_qf(qf) -> int | None:
    if qf is None:
        return None
    if isinstance(qf, bool) or not isinstance(qf, int | float) or int(qf) != qf or not 1 <= qf <= 100:
        raise UserError(f"weight QF {qf!r} is outside the allowed range 1..100 (an integer)")
    return int(qf)


def weight_table_path(net: Net, directory: str | Path | None = None) -> Path:
    name = net.name if isinstance(net, Network) else net
    return Path(directory if directory is not None else WEIGHTS_DIR) / f"{name}.json"


@cache
def _weights_json(path: str, mtime_ns: int) -> dict | None:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _layer_weights(name: str, row: dict, path: Path) -> LayerWeights:
    try:
        sb, tb = int(row["stream_bytes"]), int(row["table_bytes"])
        return LayerWeights(layer=name, qf=int(row["qf"]), stream_words=sb // 2, table_entries=tb + 2,
                            raw_words=int(row["raw_bytes"]) // 2, compressed_bytes=int(row["compressed_bytes"]),
                            ratio=float(row["ratio"]))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"weight table {path}: layer {name}: expected qf, stream_bytes, table_bytes, raw_bytes, "
                        f"compressed_bytes, ratio") from None


def weight_table(net: Net, qf: int | None = None, directory: str | Path | None = None) -> dict[str, LayerWeights]:
    """``{golden layer: LayerWeights}`` from ``edgesplit weights``' table (``build/weights/<net>.json``).

    Trained networks (a ``layers`` list): each layer at its accuracy-budgeted QF (``qf`` forces one QF for
    every layer, from ``per_qf``); untrained ones (``per_qf`` only): ``qf``, default :data:`DEFAULT_WEIGHTS_QF`
    (what ``make sim WEIGHTS_CODEC=jpeg`` uses). A missing table, one written for another network of the same
    name (:func:`same_network`) or a QF outside its grid: UserError."""
    qf = check_weights_qf(qf)
    nw = network(net)
    name, spec = nw.name, (nw.name if nw.is_builtin else nw.source)
    path = weight_table_path(name, directory)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise UserError(f"no weight table {path} for {name} (weights=jpeg needs it); allowed: a network with "
                        f"one, made by `edgesplit weights --net {spec}`") from None
    doc = _weights_json(str(path), mtime)
    if isinstance(doc, dict) and "net" in doc and not same_network(doc, nw):
        raise UserError(f"weight table {path} was made for network {doc.get('net')} from "
                        f"{doc.get('source', 'builtin')}, not {name} from {nw.source} (rerun `edgesplit weights "
                        f"--net {spec}`)")
    per_qf = (doc or {}).get("per_qf")
    if not isinstance(per_qf, dict) or not per_qf:
        raise UserError(f"weight table {path}: no per_qf section (rerun `edgesplit weights --net {spec}`)")
    chosen = {}
    if qf is None and isinstance(doc.get("layers"), list):
        chosen = {r["name"]: r for r in doc["layers"] if isinstance(r, dict) and r.get("qf") is not None}
    out = {}
    for name, rows in per_qf.items():
        if name in chosen:
            out[name] = _layer_weights(name, chosen[name], path)
            continue
        want = qf if qf is not None else DEFAULT_WEIGHTS_QF
        row = rows.get(str(want)) if isinstance(rows, dict) else None
        if row is None:
            grid = ", ".join(sorted(rows, key=int)) if isinstance(rows, dict) else "none"
            raise UserError(f"weight QF {want} is not in {path}'s grid for {name}; allowed: {grid}")
        out[name] = _layer_weights(name, row, path)
    return out


def _wcodes(net: Net, weights: str, qf: int | None, directory: str | Path | None) -> tuple:
    """The hashable per-layer compressed-weights key of :func:`_analytical` (() for int16)."""
    check_weights(weights)
    qf = check_weights_qf(qf)
    if weights == "int16":
        if qf is not None:
            raise UserError(f"weight QF {qf} applies only to weights=jpeg (got weights int16)")
        return ()
    known = {la.name for la in network(net).layers if la.type in ("conv", "linear")}
    return tuple(sorted((lw.layer, lw.stream_words, lw.table_entries, lw.qf)
                        for lw in weight_table(net, qf, directory).values() if lw.layer in known))


# ---- RTL counts -----------------------------------------------------------------------------------------


def _name(net: Net) -> str:
    return net.name if isinstance(net, Network) else str(net)


def rtl_json_path(net: Net) -> Path:
    """``make sim``'s default output for ``net`` (``make sim SPLIT=s`` writes ``<net>_<s>.json``)."""
    return SIM_DIR / f"{_name(net)}.json"


#: the file stems of batched runs (``make sim BATCH=n``: ``<net>_batch<n>``, ``FC_ONLY=1``: ``..._fconly``): their
#: counts are of n frames (or of the FC layers alone), so :func:`rtl_json_paths` leaves them out (:func:`rtl_error`
#: takes one by its path)
BATCHED_STEM = re.compile(r"_batch\d+(_fconly)?$|_fconly$")


def rtl_json_paths(net: Net, directory: str | Path | None = None, weights: str = "int16") -> list[Path]:
    """Every ``make sim`` result of ``net`` (``<net>.json``, ``<net>_<split>.json``; not batched runs), oldest first;
    ``weights="jpeg"``: the runs with compressed weights (``<net>[_<split>]_wjpeg.json``) instead."""
    check_weights(weights)
    net = _name(net)
    d = Path(directory) if directory is not None else SIM_DIR
    found = [p for p in [d / f"{net}.json", *d.glob(f"{net}_*.json")] if p.is_file()]
    found = [p for p in found if p.stem.endswith("_wjpeg") == (weights == "jpeg") and not BATCHED_STEM.search(p.stem)]
    return sorted(found, key=lambda p: p.stat().st_mtime_ns)


def _read_rtl(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@cache
def _rtl_cached(path: str, mtime_ns: int) -> dict | None:
    return _read_rtl(Path(path))


def rtl_result(net: Net, path: str | Path | None = None) -> dict | None:
    """The parsed ``make sim`` JSON at ``path`` (default ``build/sim/<net>.json``; None if absent)."""
    p = Path(path) if path is not None else rtl_json_path(net)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    return _rtl_cached(str(p), mtime)


def rtl_image_encode(net: Net, eng: EngineParams = DEFAULT_ENGINE, qf: int | None = None, subsampling: str = "444",
                     directory: str | Path | None = None) -> dict | None:
    """The engine's JPEG of the camera image (the host-only split, issue 16 item 6), from ``make sim SPLIT=input
    ENCODE=jpeg`` (``build/sim/<net>_input_jpeg<QF>[_420].json``; ``sim.program.compile_image``: the colour
    tables, the R, G, B planes loaded in MCU rows, one ENCODE per part): ``{"cycles": start to END,
    "dram_read_words", "encoder_cycles", "qf", "path"}``. The run at ``qf`` when there is one, else the newest
    bit-exact run at any QF (the encoder takes a pixel every 3 cycles whatever the QF: 23 stall cycles of
    150,686 on AlexNet's photo at QF 75). None without a usable run: another network, architecture, DRAM rate,
    subsampling or an older RTL (:func:`rtl_refusal`)."""
    d = Path(directory) if directory is not None else SIM_DIR
    name = _name(net)
    found = []
    for path in sorted(d.glob(f"{name}_input_jpeg*.json"), key=lambda p: p.stat().st_mtime_ns):
        data = rtl_result(net, path)
        if not data or data.get("split") != INPUT or not same_network(data, net):
            continue
        enc = data.get("encode") or {}
        rows = data.get("layers") or []
        if enc.get("mode") != "jpeg" or str(enc.get("subsampling", "444")) != subsampling or len(rows) != 1:
            continue
        if float(data.get("dram_bytes_per_cycle", 16.0)) != float(eng.dram_bytes_per_cycle):
            continue
        if rtl_refusal(data, eng, path):
            continue
        row, coded = rows[0], rows[0].get("encoding") or {}
        if not (row.get("bit_exact") and coded.get("bit_exact")):
            continue
        ctr = row.get("counters") or {}
        found.append({"cycles": int(row["cycles"]), "dram_read_words": int(ctr["dram_read_words"]),
                      "encoder_cycles": int(coded["encoder_cycles"]), "qf": int(enc["qf"]), "path": str(path)})
    same_qf = [r for r in found if r["qf"] == qf]
    return (same_qf or found or [None])[-1]


def rtl_refusal(data: dict, eng: EngineParams = DEFAULT_ENGINE, path: str | Path = "") -> str | None:
    """Why the counts of the ``make sim`` result ``data`` cannot be used for ``eng`` (None: they can): it
    records another architecture (``"arch"``, golden.arch) or an older RTL (``"rtl_hash"``, hw.sources). Files
    from before these records carry neither and are judged by their engine fields alone. A refusal is warned
    about once per file, except another architecture's run (``build/sim/<net>_16x16.json`` beside the 12x12 one
    is not a fault: it is simply not this engine's)."""
    from hw.sources import rtl_sources_hash

    why, warn = None, True
    rec = data.get("arch")
    if rec is not None:
        try:
            theirs = arch_from_dict(rec, where=f"{path} arch")
        except UserError as e:
            why = str(e)
        else:
            if theirs != eng.arch:
                why, warn = f"counts of architecture {theirs.name}, not {eng.arch.name}", False
    if why is None and data.get("rtl_hash") not in (None, rtl_sources_hash()):
        why = (f"counts of an older RTL (sources {data.get('rtl_hash')}, today {rtl_sources_hash()}): rerun make sim "
               f"for counts of today's RTL")
    if why is not None and path and warn:
        _warn_once(str(path), why)
    return why


@cache
def _warn_once(path: str, why: str) -> None:
    import warnings
    warnings.warn(f"{path}: not used: {why}", stacklevel=3)


def _rtl_weights(row: dict) -> tuple | None:
    """(stream words, decoder table entries, QF[, lane-stream area words]) of a ``make sim
    WEIGHTS_CODEC=jpeg`` layer row (None: int16)."""
    w = row.get("weights")
    if not isinstance(w, dict):
        return None
    if "table_entries" not in w:
        return None   # a run of the single-decoder engine: _rtl_rows does not use it
    sw = int(w["stream_words"])
    entries = int(w["table_entries"]) - DEFAULT_ENGINE.wdec_lane_entries   # the model adds the lanes' own
    return (sw, entries, int(w["qf"])) + ((int(w["area_words"]),) if "area_words" in w else ())


def _rtl_rows(net: Net, path: Path, eng: EngineParams, wanted: dict[str, int] | None = None,
              batched: bool = False) -> dict[str, LayerCounts]:
    """Layer counts of one ``make sim`` JSON (of this very network: :func:`same_network`). ``wanted`` None:
    int16 weights (runs with ``weights_codec`` or ``encode`` are not used); else ``{layer: QF}``: a
    compressed-weights run, a coded layer used only at the QF given for it (``{}``: any QF). A batched run
    (``make sim BATCH=n`` / ``FC_ONLY=1``: :func:`run_batch`) is used only with ``batched``, its rows as the
    batch's counts (n frames)."""
    nw = network(net)
    data = rtl_result(nw, path)
    if not data or not same_network(data, nw) or data.get("encode") is not None:
        return {}
    if (run_batch(data) != 1 or bool(data.get("fc_only"))) != batched:
        return {}
    n = run_batch(data)
    codec = (data.get("weights_codec") or {}).get("codec") if isinstance(data.get("weights_codec"), dict) else None
    if codec != (None if wanted is None else "jpeg"):
        return {}
    if float(data.get("dram_bytes_per_cycle", 16.0)) != float(eng.dram_bytes_per_cycle):
        return {}
    e = data.get("engine", {})
    if e.get("fb_words", eng.fb_words) != eng.fb_words or e.get("wb_depth", eng.wb_depth) != eng.wb_depth:
        return {}
    if rtl_refusal(data, eng, path):
        return {}
    if any(isinstance(r.get("weights"), dict) and "table_entries" not in r["weights"]
           for r in data.get("layers", [])):
        return {}   # coded by the engine before its twelve lane decoders (one decoder, one stream)
    golden = {la.name: la for la in nw.layers}
    result = {}
    for row in data.get("layers", []):
        la = golden.get(row.get("module", ""))
        ctr = row.get("counters") or {}
        # the network's own MAC count (the counter also counts a grouped conv's block-diagonal zeros)
        if la is None or int(row.get("macs", ctr.get("macs", -1))) != la.macs * n:
            continue
        cw = _rtl_weights(row)
        if wanted is not None and cw is not None and wanted and wanted.get(la.name) != cw[2]:
            continue   # coded at another QF than asked for
        lc = LayerCounts(layer=la.name, split=la.split, name=row.get("name", la.name), type=la.type, source="rtl")
        lc.weight_qf = cw[2] if cw else 0
        for f in RTL_COMPARED:
            setattr(lc, f, float(ctr.get(f, 0)))
        lc.stall_dram = float(ctr.get("stall_dram", 0))
        lc.stall_compute = float(ctr.get("stall_fetch", 0) + ctr.get("stall_drain", 0) + ctr.get("stall_control", 0))
        lc.seg_read_words = lc.busy * eng.lanes
        # every loader read lands 16 of the read's fb_banks words in a segment buffer
        lc.seg_write_words = lc.fb_read_words * 16 / eng.fb_banks
        lc.outputs = _numel(la.out_shape) if la.type in ("conv", "linear", "maxpool", "add", "avgpool",
                                                          "avgpool2d") else 0
        lc.bands = int(row.get("bands", 1))
        lc.output_resident = lc.bands == 1 and lc.dram_write_words == 0
        sl = row.get("scaled_from_slice")   # make sim before its per-group extrapolation: one slice, scaled
        if isinstance(sl, dict):
            lc.slice_channels = int(sl.get("simulated_output_channels", 0))
            lc.scale = float(sl.get("scale", 1.0))
        ex = row.get("extrapolated_from_slices")   # the whole layer's counts from two slices (sim.fc_slice)
        if isinstance(ex, dict):
            groups = ex.get("weight_groups") or [0]
            lc.scale = float(ex.get("whole_weight_groups", 0)) / max(1, int(groups[0]))
        result[la.name] = lc
    return result


def rtl_layer_counts(net: Net, path: str | Path | None = None, eng: EngineParams = DEFAULT_ENGINE,
                     include_scaled: bool = True, weights: str = "int16",
                     wanted: dict[str, int] | None = None, batched: bool = False) -> dict[str, LayerCounts]:
    """``{golden layer name: counts}`` for the layers the RTL ran (empty when there is no usable JSON).

    ``path``: one JSON; default every ``build/sim/<net>*.json``, a layer taken from the newest file that has
    it. Layers whose MAC count differs from the golden table, or runs at another DRAM bandwidth or engine
    size than ``eng``, are not used; ``include_scaled=False`` also leaves out FC layers that ``make sim``
    simulated on slices of their output channels (``sim.fc_slice``: extrapolated per weight group, their DRAM
    words exact, their cycles an extrapolation; an older run's one slice scaled up), not measured whole.
    ``weights="jpeg"``: the compressed-weights runs (``*_wjpeg.json``); ``wanted`` ``{layer: QF}`` keeps a
    coded layer only at that QF (default: any). ``batched``: only batched runs (``make sim BATCH=n``), whose
    counts are of the whole batch; otherwise they are never used.
    """
    check_weights(weights)
    net = network(net)
    paths = [Path(path)] if path is not None else rtl_json_paths(net, weights=weights)
    want = None if weights == "int16" else (wanted or {})
    result: dict[str, LayerCounts] = {}
    for p in paths:
        result.update(_rtl_rows(net, p, eng, want, batched))
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
    weights: str = "int16"
    weight_qfs: dict[str, int] = field(default_factory=dict)   # layer -> QF of its coded weights (jpeg)


def net_counts(net: Net, eng: EngineParams = DEFAULT_ENGINE, source: str = "auto",
               rtl_path: str | Path | None = None, weights: str = "int16", weights_qf: int | None = None,
               weights_dir: str | Path | None = None, batch: int = 1) -> NetCounts:
    """Counts of ``net``; ``source``: ``auto`` (RTL where a ``build/sim/<net>*.json`` has the layer), ``analytical``
    or ``rtl`` (same as auto; layers the RTL did not run stay analytical). A JSON simulated on the engine
    before d9dab0d (:func:`rtl_error_auto` says stale) is not used: the analytical model of today's RTL is.

    ``weights``: ``int16`` (default) or ``jpeg`` (compressed weights: the ``*_wjpeg.json`` runs where they
    coded a layer at the QF of :func:`weight_table`, else the analytical model of the weight decoder;
    ``weights_qf`` one QF for every layer, ``weights_dir`` another folder of weight tables).

    ``batch`` n > 1: the counts per frame when every fully-connected layer runs once for n frames (``make sim
    BATCH=n``): those layers' counts are :func:`fc_batch_counts` / n (analytical; int16 weights only), the
    others' as at batch 1."""
    batch = check_batch(batch, eng.lanes)
    if batch != 1 and weights != "int16":
        raise UserError(f"batch {batch} is modelled for int16 weights only (got weights {weights})")
    if source not in ("auto", "analytical", "rtl"):
        raise UserError(f"unknown counts source {source!r}; allowed: auto, analytical, rtl")
    net = arch(net)
    wcodes = _wcodes(net, weights, weights_qf, weights_dir)
    if source == "analytical":
        files: tuple[tuple[str, int], ...] = ()
    else:
        paths = [Path(rtl_path)] if rtl_path is not None else rtl_json_paths(net, weights=weights)
        files = tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.exists())
    return _net_counts(net, eng, source, files, weights, wcodes, batch)


@cache
def _net_counts(net: Network, eng: EngineParams, source: str, files: tuple[tuple[str, int], ...],
                weights: str = "int16", wcodes: tuple = (), batch: int = 1) -> NetCounts:
    """``net``: the architecture's Network (:func:`arch`), the cache key."""
    rtl: dict[str, LayerCounts] = {}
    wanted = {name: qf for name, _, _, qf in wcodes}
    used = []
    for p, _ in files:
        if eng.early_release and rtl_error_auto(net, p, eng=eng, weights=weights)[1]:
            continue   # simulated on an older engine (d9dab0d, w_raw0): its counts no longer describe the RTL
        rows = rtl_layer_counts(net, p, eng, include_scaled=False, weights=weights, wanted=wanted)
        if rows:
            used.append(p)
        rtl.update(rows)
    if weights == "jpeg":   # a layer the table codes must come coded from the RTL too, and vice versa
        rtl = {k: v for k, v in rtl.items() if (v.weight_qf != 0) == (k in wanted)}
    merged = tuple(rtl.get(lc.layer, lc) for lc in _analytical_of(net, eng, wcodes))
    if batch != 1:
        merged = _batched_per_frame(net, eng, merged, batch)
        rtl = {k: v for k, v in rtl.items() if v.type != "linear"}
    names = net.split_names
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
    return NetCounts(net=net.name, layers=merged, edge=edge, resident=resident, provenance=prov,
                     rtl_layers=tuple(rtl), rtl_files=tuple(used) if rtl else (), weights=weights,
                     weight_qfs=dict(wanted))


def _batched_per_frame(net: Network, eng: EngineParams, merged: tuple[LayerCounts, ...], batch: int
                       ) -> tuple[LayerCounts, ...]:
    """``merged`` with each fully-connected layer's counts replaced by its batched run's per frame."""
    lays, _ = _engine_layers(net)
    batched = {}
    prev = None
    for la in lays:
        if la.type == "linear":
            batched[la.name] = per_frame(fc_batch_counts(la, batch, eng, packed=prev == "linear"), batch)
        prev = la.type
    return tuple(batched.get(lc.layer, lc) for lc in merged)


# ---- analytical vs RTL -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerError:
    name: str
    layer: str
    rtl_cycles: float
    model_cycles: float
    cycle_error: float                      # (model - rtl) / rtl
    counters: dict[str, tuple[float, float]]  # counter -> (rtl, model)


def rtl_error(net: Net, path: str | Path | None = None, eng: EngineParams = DEFAULT_ENGINE,
              verification_stores: bool = True, weights: str = "int16") -> list[LayerError]:
    """Analytical vs RTL per layer the RTL ran (empty when there is no JSON for ``net``).

    ``verification_stores``: ``make sim`` dumps every resident layer output with a ``nocount`` STORE whose
    descriptor fetch the counters still see (about 27 cycles per layer); add it to the model for a like-
    for-like comparison.

    ``weights="jpeg"``: the ``*_wjpeg.json`` runs against the weight-decoder model, each coded layer
    modelled with the stream words, table entries and QF the RTL ran (so the comparison is of the timing
    and traffic model, whatever ``build/weights`` holds).
    """
    check_weights(weights)
    net = network(net)
    if path is not None:
        data = rtl_result(net, path) or {}
        if run_batch(data) != 1 or bool(data.get("fc_only")):
            return _rtl_error_batch(net, Path(path), data, eng, verification_stores)
    paths = [Path(path)] if path is not None else rtl_json_paths(net, weights=weights)
    rtl: dict[str, LayerCounts] = {}
    coded: dict[str, tuple[int, int, int]] = {}
    for p in paths:
        rows = rtl_layer_counts(net, p, eng, weights=weights)
        rtl.update(rows)
        if weights == "jpeg":
            data = rtl_result(net, p) or {}
            for row in data.get("layers", []):
                cw = _rtl_weights(row)
                if row.get("module") in rows:
                    if cw is None:
                        coded.pop(row["module"], None)
                    else:
                        coded[row["module"]] = cw
    wcodes = tuple(sorted((k, *v) for k, v in coded.items())) if weights == "jpeg" else ()
    out = []
    lays, alias = _engine_layers(net)
    own_program = _is_linear(lays, alias)   # make sim runs each FC layer of a linear net as its own program
    for lc in _analytical(net, eng, wcodes):
        r = rtl.get(lc.layer)
        if r is None:
            continue
        if (r.scale != 1.0 and r.slice_channels) or (lc.type == "linear" and own_program):
            # an FC layer's own program: the whole layer (one extrapolated from slices too, sim.fc_slice), or an
            # older make sim's scaled slice as it ran
            la = next(x for x in net.layers if x.name == lc.layer)
            sliced = r.scale != 1.0 and r.slice_channels
            lc = _fc_slice(la, r.slice_channels if sliced else la.out_shape[0], r.scale if sliced else 1.0, eng,
                           coded.get(lc.layer))
        model = lc.as_dict()
        if verification_stores and lc.output_resident:
            model["cycles"] += eng.command_cycles
            model["dram_read_words"] += eng.desc_beats * eng.dram_beat_words
        err = (model["cycles"] - r.cycles) / r.cycles if r.cycles else 0.0
        out.append(LayerError(r.name, lc.layer, r.cycles, model["cycles"], err,
                              {f: (getattr(r, f), model[f]) for f in RTL_COMPARED}))
    return out


def _rtl_error_batch(net: Network, path: Path, data: dict, eng: EngineParams,
                     verification_stores: bool) -> list[LayerError]:
    """:func:`rtl_error` of a batched run (``make sim BATCH=n`` / ``FC_ONLY=1``): its counts (the batch's, n
    frames) against :func:`_batch_plan`'s."""
    n = run_batch(data)
    rtl = rtl_layer_counts(net, path, eng, batched=True)
    slices = {k: (v.slice_channels, v.scale) for k, v in rtl.items() if v.scale != 1.0 and v.slice_channels}
    out = []
    for lc in _batch_plan(arch(net), eng, n, bool(data.get("fc_only")), slices):
        r = rtl.get(lc.layer)
        if r is None:
            continue
        model = lc.as_dict()
        if verification_stores and lc.output_resident:   # one dump per program run: per frame for the head
            k = 1 if lc.type == "linear" else n
            model["cycles"] += k * eng.command_cycles
            model["dram_read_words"] += k * eng.desc_beats * eng.dram_beat_words
        err = (model["cycles"] - r.cycles) / r.cycles if r.cycles else 0.0
        out.append(LayerError(r.name, lc.layer, r.cycles, model["cycles"], err,
                              {f: (getattr(r, f), model[f]) for f in RTL_COMPARED}))
    return out


def _fc_slice(la: Layer, channels: int, scale: float, eng: EngineParams,
              cw: tuple[int, int, int] | None = None) -> LayerCounts:
    """What ``make sim`` reports for an FC layer run on ``channels`` outputs and scaled by ``scale``: its own
    program (LOAD of the input, the sliced CONV, resident output), every count multiplied by ``scale``
    (``cw``: the slice's compressed weights, as :func:`_rtl_weights`)."""
    acc = _Acc(la, eng, cw)
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


# ---- FC batching (make sim BATCH=n; sim.program.compile_fc_batch) -------------------------------------------


def check_batch(batch, lanes: int = DEFAULT_ENGINE.lanes) -> int:
    """Frames per fully-connected pass: an integer in 1..``lanes`` (the frames are the pixels of one tile);
    else a one-line UserError naming the value and the range."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= lanes:
        raise UserError(f"batch {batch!r} is outside 1..{lanes} (the frames of one FC pass are the pixels of one "
                        f"{lanes}-pixel tile); allowed: an integer in 1..{lanes}")
    return batch


def run_batch(data: dict) -> int:
    """The frames per FC pass of a ``make sim`` result (1: an ordinary run)."""
    return int(data.get("batch", 1))


def fc_batch_counts(la: Layer, batch: int, eng: EngineParams = DEFAULT_ENGINE, packed: bool = False,
                    channels: int | None = None, scale: float = 1.0) -> LayerCounts:
    """Counts of the whole batch of a fully-connected layer run once for ``batch`` frames
    (``sim.program.compile_fc_batch``: its own program): the input LOADed as (in_c, 1, n), by one gather LOAD per
    frame (in_c runs of one word: a DRAM request each) or, ``packed`` (the layer before was batched too), one
    contiguous LOAD; one CONV over the 1 x n map (one tile of n pixels per weight group: the same weight stream
    as one frame's); the output resident. ``channels`` / ``scale``: an FC simulated on a slice of its output
    channels, its counts scaled (``make sim``'s huge FC layers). Per frame: divide by ``batch``."""
    batch = check_batch(batch, eng.lanes)
    acc = _Acc(la, eng)
    g = _geom(la)
    g.oc = channels or g.oc
    if packed or batch == 1:
        acc.load(1, g.cin * batch)
    else:
        for _ in range(batch):
            acc.gather(g.cin)
    g.iw = g.ow = batch
    g.pointwise = True   # one row of n pixels: one tile
    _conv_band(acc, g, 0, 1, 1)
    acc.c.macs += g.oc * g.cin * batch
    c = acc.c
    for f in COUNT_FIELDS:
        setattr(c, f, getattr(c, f) * scale)
    c.output_resident = True
    return c


def per_frame(lc: LayerCounts, batch: int) -> LayerCounts:
    """``lc`` (a batch's counts) per frame."""
    out = replace(lc)
    for f in COUNT_FIELDS:
        setattr(out, f, getattr(lc, f) / batch)
    return out


def _batch_plan(nw: Network, eng: EngineParams, batch: int, fc_only: bool = False,
                slices: dict[str, tuple[int, float]] | None = None) -> list[LayerCounts]:
    """What a batched ``make sim`` (``sim.run.batch_parts``) counts, per engine layer and for the whole batch:
    the layers before the first FC layer as their own program (frame 1's, counted ``batch`` times; none with
    ``fc_only``), then each FC layer batched (:func:`fc_batch_counts`)."""
    lays, alias = _engine_layers(nw)
    first = next((i for i, la in enumerate(lays) if la.type == "linear"), None)
    if first is None:
        raise UserError(f"{nw.name}: no fully-connected layer to batch")
    head = [] if fc_only else lays[:first]
    plan = []
    if head:
        plan = _chain_plan(head, nw, eng) if _is_linear(head, alias) else _dag_plan(head, eng, None, alias)
        for lc in plan:
            for f in COUNT_FIELDS:
                setattr(lc, f, getattr(lc, f) * batch)
    slices = slices or {}
    for i, la in enumerate(lays[first:], first):
        ch, sc = slices.get(la.name, (None, 1.0))
        plan.append(fc_batch_counts(la, batch, eng, packed=i > first, channels=ch, scale=sc))
    return plan


PRE_EARLY_RELEASE = replace(DEFAULT_ENGINE, early_release=False)


def rtl_error_auto(net: Net, path: str | Path | None = None, target: float = 0.05,
                   eng: EngineParams = DEFAULT_ENGINE, weights: str = "int16") -> tuple[list[LayerError], bool]:
    """:func:`rtl_error` against the current engine model; if that misses ``target`` on some layer but the
    model of the engine before d9dab0d (segment buffers released a cycle later) meets it everywhere, the
    JSON predates that change: return that comparison and ``True`` (stale)."""
    errs = rtl_error(net, path, eng, weights=weights)
    if errs and any(abs(e.cycle_error) > target for e in errs):
        old = rtl_error(net, path, replace(eng, early_release=False), weights=weights)
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
    "COUNT_FIELDS", "DEFAULT_ENGINE", "DEFAULT_WEIGHTS_QF", "PRE_EARLY_RELEASE", "WEIGHT_FORMATS", "EngineParams",
    "LayerCounts", "LayerError", "LayerWeights", "MODELLED_TYPES", "NetCounts", "analytical_layer_counts", "arch",
    "check_weights",
    "check_batch", "check_weights_qf", "ci_requires_rtl", "compressed_weight_words", "fc_batch_counts", "per_frame",
    "run_batch", "format_rtl_error", "net_counts", "rtl_error",
    "rtl_error_auto", "rtl_json_paths", "rtl_refusal", "rtl_layer_counts", "rtl_json_path", "rtl_result",
    "same_network",
    "step_cycles",
    "weight_table", "weight_table_path",
]

