"""The design-space search behind ``edgesplit dse`` (issue 16 item 5): engine sizes x links x splits.

For each architecture (:class:`golden.arch.EngineArch`: a MAC array size x a feature-buffer size, every other
field at its default) :func:`search` takes

* its **area** (:func:`arch_area`): the 28 nm synthesis table of ``make synth`` (``build/synth/engine.<flow>.json``,
  the 12 x 12 engine), each block scaled to the architecture by the rule in ``docs/dse.md`` (MAC array by
  rows x cols, depthwise unit and weight decoders by the lane count, feature and weight buffers rebuilt as SRAM
  macros of their bits from the technology file's area model, encoder and control as synthesised);
* its **counts** once (:func:`model.counts.net_counts`: ``auto`` for the default architecture, whose RTL counters
  ``build/sim/<net>.json`` may hold, ``analytical`` for every other), and from them every split x encoding x link
  through the cost model (:func:`model.system.evaluate` with those counts): frames per second and energy per
  frame;
* the **accuracy budget** the way :func:`model.api.best_split` applies it: a (split, encoding) is a candidate
  when the accuracy study's loss at it (JPEG at the QF meeting the budget) is within ``budget``.

The **Pareto front** is taken per link (the link is the deployment's condition; the architecture and the split
are the choices): a candidate is on it when no other candidate of the same link has an area, an energy per
frame and a frame time each no worse and one of them strictly better (:func:`pareto_mask`; equal points are all
kept). For each architecture and link the **best** candidate is the one with the least energy per frame (ties:
the most frames per second), as ``best_split(objective="energy")`` picks it.

Pure functions of their inputs (the synthesis table and the technology file are read once per call and cached
by path and modification time); nothing here writes files or imports ``sim``.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from golden.arch import DEFAULT_ARCH, MAX_LANES, MIN_LANES, EngineArch, parse_arch
from golden.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SYNTH_DIR = REPO / "build" / "synth"
DSE_DIR = REPO / "build" / "dse"

DEFAULT_ARRAYS = ("8x8", "12x12", "16x16", "24x24")
#: feature-buffer sizes in 16-bit words: half, equal to and twice today's 2**18 (256 Ki words = 512 KiB)
DEFAULT_BUFFERS = (2**17, 2**18, 2**19)
DEFAULT_LINKS = ("1mbps", "2mbps", "22mbps")
DEFAULT_BUDGET = 0.01
ENCODINGS = ("none", "lossless", "jpeg")

# the engine's parts in the synthesis table (= sim.synth.ENGINE_PARTS, repeated: model does not import sim)
MAC, DWU, ENC, WDEC, FB, WB, CTRL = ("MAC array", "depthwise unit", "feature encoder", "weight decoders",
                                     "feature buffer", "weight buffers", "control")
PARTS: tuple[tuple[str, Callable[[str, str | None], bool]], ...] = (
    (MAC, lambda mod, mem: mod.startswith("engine.array")),
    (DWU, lambda mod, mem: mod == "engine.dw" or mod.startswith("engine.dw.")),
    (ENC, lambda mod, mem: mod.startswith("engine.encode")),
    (WDEC, lambda mod, mem: mod.startswith(("engine.wdec", "engine.cw_"))),
    (FB, lambda mod, mem: mod.startswith("engine.fb")),
    # (the bank memories are engine.wbuf's since hw.weight_banks; the engine's own in tables synthesised before)
    (WB, lambda mod, mem: mod in ("engine", "engine.wbuf") and mem is not None and mem.startswith("wb")),
    (CTRL, lambda mod, mem: True),
)
#: how each part scales with the lane count n (the table is of the 12-lane engine): its exponent of n / 12
SCALING = {MAC: 2, DWU: 1, WDEC: 1, ENC: 0, CTRL: 0}
SCALING_NOTE = {
    MAC: "logic + flip-flops x rows*cols / 144 (one PE per MAC)",
    DWU: "logic + flip-flops x lanes / 12 (lanes x 9 taps of multipliers)",
    WDEC: "logic + flip-flops + SRAM x lanes / 12 (one decoder and lane FIFO per lane)",
    ENC: "as synthesised (one encoder whatever the array)",
    CTRL: "as synthesised (sequencer, DMA, window loader, pool/vector unit; kept constant)",
    FB: "SRAM macros rebuilt: as many macros as synthesised (x fb_banks / 16), each fb_words x 16 bit / macros",
    WB: "SRAM macros rebuilt: 2 banks x lanes macros of wb_depth x 16 bit",
}
#: standalone full-flow reports that give a part's logic area when the engine table is of the coarse flow
FULL_BLOCKS = {MAC: "mac_array", DWU: "dw_unit"}


# ---- inputs --------------------------------------------------------------------------------------------------


def parse_arrays(values: str | Iterable[str]) -> list[str]:
    """``"8x8,12x12"`` or a list of ``RxC``: the array sizes, checked by :class:`EngineArch` (UserError)."""
    items = _items(values, "--arrays")
    out = []
    for v in items:
        m = re.fullmatch(r"\s*(\d{1,3})\s*[xX]\s*(\d{1,3})\s*", v)
        if not m:
            raise UserError(f"array {v!r} is not allowed; allowed: ROWSxCOLS with rows == cols in "
                            f"{MIN_LANES}..{MAX_LANES} (e.g. 16x16)")
        r, c = int(m.group(1)), int(m.group(2))
        if r != c or not MIN_LANES <= r <= MAX_LANES:
            raise UserError(f"array {v.strip()} is not allowed; allowed: square arrays (rows == cols) of "
                            f"{MIN_LANES}x{MIN_LANES} to {MAX_LANES}x{MAX_LANES}")
        name = f"{r}x{c}"
        if name not in out:
            out.append(name)
    return out


def parse_words(text: str) -> int:
    """A buffer size in 16-bit words: ``262144``, ``2**18``, ``2^18``, ``256k``/``256Ki`` (x 1024)."""
    t = str(text).strip().lower().replace(" ", "")
    m = re.fullmatch(r"2(?:\*\*|\^)(\d{1,2})", t)
    if m:
        return 2 ** int(m.group(1))
    m = re.fullmatch(r"(\d+)(k|ki|m|mi)?", t)
    if m:
        return int(m.group(1)) * {None: 1, "k": 1024, "ki": 1024, "m": 2**20, "mi": 2**20}[m.group(2)]
    raise UserError(f"buffer size {text!r} is not allowed; allowed: 16-bit words as an integer, 2**N or "
                    f"NK (x 1024), a multiple of 32 in 256..16777216 (e.g. 2**18)")


def parse_buffers(values: str | Iterable[str | int]) -> list[int]:
    out = []
    for v in _items(values, "--buffers"):
        w = v if isinstance(v, int) else parse_words(v)
        if isinstance(w, bool) or not 256 <= w <= 2**24 or w % 32:
            raise UserError(f"buffer size {v!r} ({w} words) is not allowed; allowed: a multiple of 32 words in "
                            f"256..16777216 (e.g. 2**17, 2**18, 2**19)")
        if w not in out:
            out.append(w)
    return out


def parse_links(values: str | Iterable[str]) -> list:
    from model.system import parse_link

    out = []
    for v in _items(values, "--links"):
        lk = parse_link(v)
        if lk.name not in [x.name for x in out]:
            out.append(lk)
    return out


def check_budget(budget: Any) -> float:
    """The accuracy-loss budget: a number in [0, 1) (absolute top-1), as ``best_split`` takes it."""
    if isinstance(budget, str):
        try:
            budget = float(budget)
        except ValueError:
            raise UserError(f"accuracy-loss budget {budget!r} is not allowed; allowed: a number in [0, 1) "
                            f"(absolute top-1, e.g. 0.01)") from None
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 <= budget < 1 or math.isnan(budget):
        raise UserError(f"accuracy-loss budget {budget!r} is not allowed; allowed: a number in [0, 1) "
                        f"(absolute top-1, e.g. 0.01)")
    return float(budget)


def _items(values, what: str) -> list:
    if isinstance(values, str):
        values = values.split(",")
    items = [v.strip() if isinstance(v, str) else v for v in values]
    items = [v for v in items if v != ""]
    if not items:
        raise UserError(f"{what}: empty list; give at least one value")
    return items


def architectures(arrays: Iterable[str], buffers: Iterable[int]) -> list[EngineArch]:
    """Every array x buffer as an :class:`EngineArch` (other fields at their defaults), arrays outermost."""
    archs = []
    for a in arrays:
        base = parse_arch(a)
        for w in buffers:
            archs.append(EngineArch(**{**base.as_dict(), "fb_words": int(w)}))
    return archs


def words_text(words: int) -> str:
    """``262144`` -> ``256Ki``; sizes that are not whole Ki stay as numbers."""
    return f"{words // 1024}Ki" if words % 1024 == 0 else str(words)


# ---- area ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartArea:
    name: str
    area_m2: float
    table_area_m2: float          # the 12 x 12 table's (or the supplementing full-flow report's) area
    logic_counted: bool           # False: the table has no logic area for it (coarse flow): FF + SRAM only
    source: str                   # the report it comes from
    rule: str


@dataclass(frozen=True)
class AreaBreakdown:
    arch: str
    area_m2: float
    parts: tuple[PartArea, ...]
    table: str                    # build/synth/engine.<flow>.json
    flow: str
    logic_complete: bool          # every part's logic counted

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SynthTableMissing(UserError):
    """No usable ``make synth`` table (the CLI prints one line: run ``make synth``)."""


@dataclass(frozen=True)
class _Macro:
    bits: int
    two_port: bool


@dataclass(frozen=True)
class _Table:
    path: str
    flow: str
    lanes: int
    parts: dict[str, dict[str, float]]      # part -> logic_m2 (None: unknown), ff_m2, sram_m2
    fb_macros: tuple[_Macro, ...]
    wb_macros: tuple[_Macro, ...]
    full: dict[str, tuple[float, str, int]]  # part -> (logic + FF + SRAM area, report path, reference MACs/lanes)


def synth_table_path(synth_dir: str | Path | None = None) -> Path | None:
    """The engine's synthesis report: ``engine.full.json`` when present, else ``engine.coarse.json``."""
    d = Path(synth_dir) if synth_dir is not None else SYNTH_DIR
    for flow in ("full", "coarse"):
        p = d / f"engine.{flow}.json"
        if p.is_file():
            return p
    return None


def _missing(d: Path, why: str) -> SynthTableMissing:
    return SynthTableMissing(f"no usable 28 nm synthesis table in {d} ({why}): run `make synth` first "
                             f"(the coarse flow takes about 90 s)")


def load_table(synth_dir: str | Path | None = None) -> _Table:
    d = Path(synth_dir) if synth_dir is not None else SYNTH_DIR
    p = synth_table_path(d)
    if p is None:
        raise _missing(d, "engine.coarse.json is missing")
    return _load_table(str(p), p.stat().st_mtime_ns)


@cache
def _load_table(path: str, mtime_ns: int) -> _Table:
    d = Path(path).parent
    try:
        rep = json.loads(Path(path).read_text())
        mods = rep["modules"]
        # another architecture's engine (make synth ARCH=...) is the module engine_<arch>: named as the default's
        top = next(m for m in mods if "." not in m)
        mods = {"engine" + m[len(top):]: r for m, r in mods.items()}
        flow = rep["flow"]
        parts = {name: {"logic_m2": 0.0, "ff_m2": 0.0, "sram_m2": 0.0} for name, _ in PARTS}
        known = all(r.get("logic_area_m2") is not None for r in mods.values())
        fb, wb = [], []

        def part(mod, mem=None):
            return next(name for name, f in PARTS if f(mod, mem))

        for mod, r in mods.items():
            k = int(r["instances"])
            p = parts[part(mod)]
            p["ff_m2"] += float(r["ff_area_m2"]) * k
            if known:
                p["logic_m2"] += float(r["logic_area_m2"]) * k
            for m in r["srams"]:
                name = part(mod, m["name"])
                parts[name]["sram_m2"] += float(m["area_m2"]) * k
                macro = _Macro(int(m["bits"]), int(m["read_ports"]) + int(m["write_ports"]) > 1)
                if name == FB:
                    fb += [macro] * k
                elif name == WB:
                    wb += [macro] * k
        if not known:
            for p in parts.values():
                p["logic_m2"] = None
        lanes = int(sum(1 for mod in mods if re.fullmatch(r"engine\.array\.pe_0_\d+", mod))) or DEFAULT_ARCH.lanes
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _missing(d, f"{Path(path).name} cannot be read: {e}") from None
    if not fb or not wb:
        raise _missing(d, f"{Path(path).name} has no feature- or weight-buffer SRAM macros")
    full = {}
    if not known:
        for name, block in FULL_BLOCKS.items():
            fp = d / f"{block}.full.json"
            try:
                fr = json.loads(fp.read_text())
                tot = fr["total"]
                area = float(tot["logic_area_m2"]) + float(tot["ff_area_m2"]) + float(tot["sram_area_m2"])
                prm = fr.get("parameters") or {}
                ref = int(prm.get("rows", lanes)) * int(prm.get("cols", lanes)) if name == MAC else lanes
            except (OSError, ValueError, KeyError, TypeError):
                continue
            full[name] = (area, str(fp), ref)
    return _Table(path=path, flow=flow, lanes=lanes, parts=parts, fb_macros=tuple(fb), wb_macros=tuple(wb), full=full)


def arch_area(arch: EngineArch, tech=None, synth_dir: str | Path | None = None) -> AreaBreakdown:
    """The area of ``arch`` from the synthesis table of the default engine (rule: module docstring, docs/dse.md)."""
    from hw.tech import load_tech

    t = load_tech(tech)
    if t.area is None:
        raise UserError(f"technology file {t.path} has no `area` section (needed for the area of an architecture)")
    base_tab = load_table(synth_dir)
    # an architecture synthesised itself (make synth ARCH=..., build/synth/<arch>/) is read as it is; only the
    # units its build leaves out (the 12-lane encoder and weight decoders of a plain engine) scale from the default
    own_dir = (Path(synth_dir) if synth_dir is not None else SYNTH_DIR) / arch.rtl.name
    own = None
    if arch.rtl != DEFAULT_ARCH and synth_table_path(own_dir) is not None:
        own = load_table(own_dir)
        if own.flow != base_tab.flow or own.lanes != arch.lanes:
            own = None
    n = arch.lanes
    parts = []
    for name, _ in PARTS:
        tab = own if own is not None and name not in (ENC, WDEC) else base_tab
        n0 = tab.lanes
        rel = _rel(tab.path)
        p = tab.parts[name]
        if name in (FB, WB):
            old = tab.fb_macros if name == FB else tab.wb_macros
            two = old[0].two_port
            if name == FB:
                count = max(1, round(len(old) * arch.fb_banks / DEFAULT_ARCH.fb_banks))
                bits = arch.fb_words * 16 / count
            else:
                count = max(1, round(len(old) * n / n0))
                bits = arch.wb_depth * 16 * (2 * n) / count
            sram = count * t.area.sram_macro_m2(bits, two_port=two)
            area = sram + p["ff_m2"] + (p["logic_m2"] or 0.0)
            # the weight buffers are memories of the engine module (their addressing is control's logic)
            counted = p["logic_m2"] is not None or name == WB
            parts.append(PartArea(name, area, p["ff_m2"] + p["sram_m2"] + (p["logic_m2"] or 0.0), counted, rel,
                                  SCALING_NOTE[name]))
            continue
        if name == MAC:
            f = n * n / (n0 * n0)
        else:
            f = (n / n0) ** SCALING[name]
        if p["logic_m2"] is not None:
            base, counted, src = p["logic_m2"] + p["ff_m2"] + p["sram_m2"], True, rel
        elif name in tab.full or name in base_tab.full:
            base, src, ref = tab.full[name] if name in tab.full else base_tab.full[name]
            counted = True
            f = (n * n / ref) if name == MAC else (n / ref) ** SCALING[name]
            src = _rel(src)
        else:
            base, counted, src = p["ff_m2"] + p["sram_m2"], False, rel
        parts.append(PartArea(name, base * f, base, counted, src, SCALING_NOTE[name]))
    return AreaBreakdown(arch=arch.name, area_m2=sum(x.area_m2 for x in parts), parts=tuple(parts),
                         table=_rel((own or base_tab).path), flow=base_tab.flow,
                         logic_complete=all(x.logic_counted for x in parts))


def _rel(path: str | Path) -> str:
    p = Path(path)
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)


# ---- the Pareto front ----------------------------------------------------------------------------------------


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` in every (minimised) objective and strictly better in one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_mask(values: Sequence[Sequence[float]]) -> list[bool]:
    """For each vector of objectives (all minimised), whether no other vector dominates it. Equal vectors
    do not dominate each other, so ties are all kept."""
    order = sorted(range(len(values)), key=lambda i: tuple(values[i]))
    front: list[int] = []
    mask = [False] * len(values)
    for i in order:   # a dominator sorts before what it dominates, so the front so far is all that can dominate
        v = values[i]
        if not any(dominates(values[j], v) for j in front):
            front.append(i)
            mask[i] = True
    return mask


# ---- the search ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DsePoint:
    """One candidate: an architecture, a link, a split and its encoding, with its cost."""

    arch: str            # EngineArch.name (12x12, 16x16-<hash> for another buffer)
    array: str           # 12x12
    fb_words: int
    link: str
    rate_bps: float
    split: str
    encoding: str
    qf: int | None
    fps: float
    time_s: float        # frame time (the longer pipeline stage)
    energy_j: float      # energy per frame
    area_m2: float
    edge_cycles: float
    bottleneck: str
    accuracy_loss: float | None
    counts_source: str
    pareto: bool = False
    best: bool = False   # the least energy (then most fps) of its architecture and link

    @property
    def label(self) -> str:
        return self.split + ("" if self.encoding == "none" else
                             f" {self.encoding}" + (f" QF{self.qf}" if self.qf else ""))

    def objectives(self) -> tuple[float, float, float]:
        return (self.area_m2, self.energy_j, self.time_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DseResult:
    net: str
    budget: float
    links: list[str]
    archs: list[EngineArch]
    areas: dict[str, AreaBreakdown]
    counts_source: dict[str, str]          # arch name -> the source asked for (auto / analytical)
    points: list[DsePoint]
    tech: str
    timings_s: dict[str, float] = field(default_factory=dict)

    def pareto(self, link: str | None = None) -> list[DsePoint]:
        """The front (of one link, or of every link), by area then energy."""
        pts = [p for p in self.points if p.pareto and (link is None or p.link == link)]
        return sorted(pts, key=lambda p: (p.area_m2, p.energy_j, -p.fps))

    def best(self, link: str | None = None) -> list[DsePoint]:
        return [p for p in self.points if p.best and (link is None or p.link == link)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "net": self.net, "accuracy_loss_budget": self.budget, "links": self.links, "tech": self.tech,
            "pareto_rule": "per link; minimise area_m2, energy_j, time_s; equal points all kept",
            "archs": [{"name": a.name, "array": a.array, "fb_words": a.fb_words, "wb_depth": a.wb_depth,
                       "counts_source": self.counts_source[a.name], "area_m2": self.areas[a.name].area_m2,
                       "area": self.areas[a.name].to_dict()} for a in self.archs],
            "points": [p.to_dict() for p in self.points],
            "timings_s": self.timings_s,
        }


def search(net, arrays: Iterable[str] = DEFAULT_ARRAYS, buffers: Iterable[int | str] = DEFAULT_BUFFERS,
           links: Iterable[str] = DEFAULT_LINKS, budget: float = DEFAULT_BUDGET, *,
           encodings: Sequence[str] = ENCODINGS, qf: int | None = None, tech=None, counts: str = "auto",
           synth_dir: str | Path | None = None, progress: Callable[[int, int], None] | None = None) -> DseResult:
    """Every architecture (``arrays`` x ``buffers``) x link x split x encoding of ``net`` within the accuracy
    budget, with areas, the Pareto front per link and the best split per architecture and link.

    ``counts``: ``auto`` (the default architecture with RTL counters where ``build/sim/<net>.json`` has them,
    every other analytical) or ``analytical`` (all analytical). ``progress(done, total)`` is called after each
    architecture. Bad values raise :class:`UserError` naming the value and what is allowed."""
    from golden.network import network
    from hw.tech import load_tech
    from model.api import _admissible  # the very rule best_split applies to the accuracy budget
    from model.counts import EngineParams, net_counts
    from model.system import check_encoding, check_qf, evaluate

    t0 = time.perf_counter()
    arrays = parse_arrays(arrays)
    buffers = parse_buffers(buffers)
    lks = parse_links(links)
    budget = check_budget(budget)
    encodings = [check_encoding(e) for e in encodings]
    qf = check_qf(qf)
    if counts not in ("auto", "analytical"):
        raise UserError(f"unknown counts source {counts!r}; allowed: auto, analytical")
    t = load_tech(tech)
    nw = network(net)
    archs = architectures(arrays, buffers)
    areas = {a.name: arch_area(a, t, synth_dir) for a in archs}
    timings = {"setup_s": time.perf_counter() - t0}
    points: list[DsePoint] = []
    sources: dict[str, str] = {}
    tc = te = 0.0
    for i, a in enumerate(archs):
        t1 = time.perf_counter()
        eng = EngineParams.from_arch(a)
        src = counts if a == DEFAULT_ARCH else "analytical"
        sources[a.name] = src
        nc = net_counts(nw, eng, src)
        t2 = time.perf_counter()
        for lk in lks:
            for s in nw.split_names:
                for e in encodings:
                    r = evaluate(nw, s, e, lk, qf if e == "jpeg" else None, t, None, eng, counts=nc)
                    if not _admissible(r, budget):
                        continue
                    points.append(DsePoint(
                        arch=a.name, array=a.array, fb_words=a.fb_words, link=lk.name, rate_bps=lk.rate_bps,
                        split=s, encoding=e, qf=r.qf, fps=r.fps, time_s=r.frame_time_s,
                        energy_j=r.energy_per_frame_j, area_m2=areas[a.name].area_m2, edge_cycles=r.edge_cycles,
                        bottleneck=r.bottleneck, accuracy_loss=r.accuracy_loss, counts_source=r.counts_source))
        tc += t2 - t1
        te += time.perf_counter() - t2
        if progress is not None:
            progress(i + 1, len(archs))
    if not points:
        raise UserError(f"no split of {nw.name} meets the accuracy-loss budget {budget}; allowed: a larger budget")
    t3 = time.perf_counter()
    points = mark(points)
    timings.update(counts_s=tc, evaluate_s=te, pareto_s=time.perf_counter() - t3,
                   total_s=time.perf_counter() - t0)
    return DseResult(net=nw.name, budget=budget, links=[lk.name for lk in lks], archs=archs, areas=areas,
                     counts_source=sources, points=points, tech=t.name, timings_s=timings)


def mark(points: Sequence[DsePoint]) -> list[DsePoint]:
    """``points`` with ``pareto`` (per link) and ``best`` (per architecture and link) set."""
    from dataclasses import replace

    out = list(points)
    by_link: dict[str, list[int]] = {}
    for i, p in enumerate(out):
        by_link.setdefault(p.link, []).append(i)
    pareto = [False] * len(out)
    for idx in by_link.values():
        for i, m in zip(idx, pareto_mask([out[i].objectives() for i in idx]), strict=True):
            pareto[i] = m
    best: dict[tuple[str, str], int] = {}
    for i, p in enumerate(out):
        k = (p.arch, p.link)
        if k not in best or (p.energy_j, -p.fps) < (out[best[k]].energy_j, -out[best[k]].fps):
            best[k] = i
    chosen = set(best.values())
    return [replace(p, pareto=pareto[i], best=i in chosen) for i, p in enumerate(out)]


# ---- text ----------------------------------------------------------------------------------------------------


def _row(p: DsePoint, sw: int) -> str:
    return (f"{p.array:7} {words_text(p.fb_words):>7} {p.label:{sw}} {p.link:7} {p.fps:9.2f} "
            f"{p.energy_j * 1e3:9.3f} {p.area_m2 * 1e6:8.3f} {p.bottleneck:10} {p.counts_source:15} "
            f"{'yes' if p.pareto else 'no':6}")


def format_table(res: DseResult, links: Sequence[str] | None = None) -> str:
    """Per link: the best split of each architecture (pareto: that point is on the front), then the front."""
    links = list(links or res.links)
    sw = max([12] + [len(p.label) for p in res.points if p.best or p.pareto])
    head = (f"{'array':7} {'buffer':>7} {'split':{sw}} {'link':7} {'frames/s':>9} {'mJ/frame':>9} {'area mm2':>8} "
            f"{'bottleneck':10} {'counts':15} {'pareto':6}")
    lines = [f"{res.net}: {len(res.archs)} architectures x {len(res.links)} links x splits x encodings, "
             f"{len(res.points)} candidates within the accuracy-loss budget {res.budget:g}"]
    for lk in links:
        lines += ["", f"link {lk}: best split (least energy) of each architecture", head, "-" * len(head)]
        lines += [_row(p, sw) for p in res.best(lk)]
        front = res.pareto(lk)
        lines += ["", f"link {lk}: Pareto front (area x energy x frames/s), {len(front)} points", head,
                  "-" * len(head)]
        lines += [_row(p, sw) for p in front]
    inc = [a for a in res.areas.values() if not a.logic_complete]
    lines.append("")
    lines.append("area: " + ("every block's logic, flip-flops and SRAM" if not inc else
                             "flip-flops and SRAM of every block; logic of " + ", ".join(
                                 p.name for p in inc[0].parts if p.logic_counted and p.name not in (FB, WB))
                             + " only (the table is of the coarse flow: `make synth SYNTH=full` adds the rest)")
                 + f"; from {next(iter(res.areas.values())).table}, scaled per docs/dse.md")
    lines.append("counts: " + "; ".join(f"{src} for {names}" for src, names in _group_sources(res).items()))
    return "\n".join(lines)


def _group_sources(res: DseResult) -> dict[str, str]:
    """``{counts source: architectures}``: the source of the edge layers' counts each architecture used."""
    by_src: dict[str, list[str]] = {}
    for a in res.archs:
        used = sorted({p.counts_source for p in res.points if p.arch == a.name} - {"none"})
        by_src.setdefault("/".join(used) or res.counts_source[a.name], []).append(a.name)
    return {src: ("every architecture" if len(names) == len(res.archs) else ", ".join(names))
            for src, names in by_src.items()}


# ---- plot ----------------------------------------------------------------------------------------------------


def plot(res: DseResult, path: str | Path) -> Path:
    """Area (x) against energy per frame (y), colour = frames/s (log), one panel per link; the front's points
    ringed and labelled with their architecture and split. Written to ``path`` as is (the caller makes it
    atomic). The figure is made without pyplot (its import alone costs about 0.3 s of the command)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    links = res.links
    fps = [p.fps for p in res.points if p.fps > 0 and math.isfinite(p.fps)]
    norm = LogNorm(vmin=min(fps), vmax=max(fps)) if fps and min(fps) < max(fps) else None
    fig = Figure(figsize=(5.6 * len(links) + 1.2, 5.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(links), squeeze=False)
    sc = None
    for ax, lk in zip(axes[0], links, strict=True):
        pts = [p for p in res.points if p.link == lk]
        sc = ax.scatter([p.area_m2 * 1e6 for p in pts], [p.energy_j * 1e3 for p in pts],
                        c=[p.fps for p in pts], cmap="viridis", norm=norm, s=12, alpha=0.4, linewidths=0)
        front = sorted((p for p in pts if p.pareto), key=lambda p: (p.area_m2, p.energy_j))
        ax.scatter([p.area_m2 * 1e6 for p in front], [p.energy_j * 1e3 for p in front], c=[p.fps for p in front],
                   cmap="viridis", norm=norm, s=55, edgecolors="red", linewidths=1.2, label="Pareto front")
        for j, p in enumerate(front[:24]):
            ax.annotate(f"{p.array}/{words_text(p.fb_words)} {p.split}", (p.area_m2 * 1e6, p.energy_j * 1e3),
                        fontsize=5.5, xytext=(4, 6 if j % 2 else -9), textcoords="offset points")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.set_xlabel("engine area (mm$^2$, 28 nm)")
        ax.set_ylabel("energy per frame (mJ)")
        ax.set_title(f"{res.net}, {lk}: {len(front)} Pareto points", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper right", fontsize=7)
    # fixed margins (a constrained layout draws the figure twice: 0.3 s of the command)
    # (margins in inches: 0.75 for the y labels, 1.2 on the right for the colour bar and its label)
    width = fig.get_figwidth()
    fig.subplots_adjust(left=0.75 / width, right=1 - 1.2 / width, bottom=0.11, top=0.93, wspace=0.2)
    if sc is not None:
        cax = fig.add_axes((1 - 1.05 / width, 0.15, 0.12 / width, 0.74))
        fig.colorbar(sc, cax=cax, label="frames per second")
    fig.savefig(path, dpi=120)
    return Path(path)


__all__ = [
    "DEFAULT_ARRAYS", "DEFAULT_BUDGET", "DEFAULT_BUFFERS", "DEFAULT_LINKS", "AreaBreakdown", "DsePoint", "DseResult",
    "PartArea", "SynthTableMissing", "arch_area", "architectures", "check_budget", "dominates", "format_table",
    "mark", "pareto_mask", "parse_arrays", "parse_buffers", "parse_links", "parse_words", "plot", "search",
]
