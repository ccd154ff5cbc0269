"""The cost model's Python API: one operating point, a sweep, the best split under an accuracy budget.

::

    from model import query, sweep, best_split
    r = query("alexnet", "conv5", "jpeg", link="2mbps")        # QueryResult: r.fps, r.energy_per_frame_j, ...
    t = sweep(nets=["alexnet"], links=["2mbps", "22mbps"])       # SweepTable of QueryResults
    b = best_split("alexnet", "2mbps", objective="energy")       # BestSplit: b.best, b.edge_only, b.host_only
    j = query("alexnet", "fc8", weights="jpeg")                  # JPEG-coded weights, restored on the engine

The model itself is described in :mod:`model.system` (pipeline, energy), :mod:`model.counts` (cycles and
action counts: RTL counters or the analytical engine model) and :mod:`hw.tech` (per-action energies).
Every result carries its provenance: where the counts came from (``rtl``, ``analytical`` or both), where
the compression ratio came from (``accuracy-study``, ``paper``, ``assumed``, ``given``, ``none``) and the
technology file.

A network is a built-in name or a :class:`golden.network.Network` (``load_network("model.onnx")``,
``load_network("model.py:make", input_shape=(3, 32, 32))``): each is resolved once at the call
(:func:`golden.network.network`) and that object is what the model reads. Results name it by ``Network.name``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from golden.errors import UserError
from golden.network import Network, network
from hw.tech import Tech
from model.counts import DEFAULT_ENGINE, WEIGHT_FORMATS, EngineParams, check_weights, check_weights_qf
from model.system import (
    BREAKDOWN_KEYS,
    DEFAULT_LINK,
    ENCODINGS,
    LINKS,
    Link,
    QueryResult,
    check_encoding,
    check_qf,
    evaluate,
    parse_link,
)

IMAGENET_NETS = ("alexnet", "vgg16", "resnet50")
Net = str | Network
OBJECTIVES = ("energy", "throughput")
DEFAULT_LINKS = tuple(LINKS)


def query(net: Net, split: str, encoding: str = "none", qf: int | None = None, link: str | Link = DEFAULT_LINK,
          *, tech: Tech | str | Path | None = None, ratio: float | None = None,
          engine: EngineParams = DEFAULT_ENGINE, counts_source: str = "auto", weights: str = "int16",
          weights_qf: int | None = None, weights_dir: str | Path | None = None, batch: int = 1) -> QueryResult:
    """Frames per second, energy per frame and its breakdown for ``net`` split at ``split``.

    ``encoding``: ``none``, ``lossless`` or ``jpeg`` (at the QF meeting the accuracy budget, or ``qf``).
    ``link``: ``1mbps``, ``2mbps``, ``22mbps`` or ``"RATE_BPS:POWER_W"``. ``ratio`` overrides the
    compression ratio (raw / transmitted bytes). ``tech``: a technology file (default 28 nm).
    ``weights``: ``int16`` (default) or ``jpeg`` (weights JPEG-coded in DRAM, restored by the engine's weight
    decoder; per-layer sizes from ``build/weights/<net>.json``, trained nets at their chosen QF, untrained
    ones at ``weights_qf``, default 50). ``batch`` n (1..lanes): the fully-connected layers run once for n frames
    (``make sim BATCH=n``), every value per frame. Bad values raise :class:`~golden.errors.UserError` naming the
    value and what is allowed.
    """
    return evaluate(network(net), split, encoding, link, qf, tech, ratio, engine, counts_source=counts_source,
                    weights=weights, weights_qf=weights_qf, weights_dir=weights_dir, batch=batch)


@dataclass
class SweepTable:
    """The results of a sweep, in (net, link, encoding, split) order. ``blocks``: each network of the sweep and
    the slice of ``results`` that is its (``(Network, start, end)``; empty for a table made otherwise)."""

    results: list[QueryResult]
    blocks: list[tuple[Network, int, int]] = field(default_factory=list, repr=False, compare=False)

    def __iter__(self) -> Iterator[QueryResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> QueryResult:
        return self.results[i]

    def where(self, **kv: Any) -> SweepTable:
        """The rows whose attributes equal the given values (``t.where(net="alexnet", link="2mbps")``)."""
        return SweepTable([r for r in self.results if all(getattr(r, k) == v for k, v in kv.items())])

    def rows(self) -> list[dict[str, Any]]:
        """Flat dicts (breakdown components as columns), ready for CSV or a dataframe."""
        out = []
        for r in self.results:
            d = {k: v for k, v in r.to_dict().items() if k not in ("breakdown", "provenance")}
            d.update(r.breakdown)
            out.append(d)
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]

    def format(self) -> str:
        return format_results(self.results)


def sweep(nets: Sequence[Net] | Net | None = None, splits: Sequence[str] | None = None,
          encodings: Sequence[str] | str = ENCODINGS, links: Sequence[str | Link] | str | None = None,
          qf: int | None = None, *, tech: Tech | str | Path | None = None, engine: EngineParams = DEFAULT_ENGINE,
          counts_source: str = "auto", weights: Sequence[str] | str = "int16", weights_qf: int | None = None,
          weights_dir: str | Path | None = None, cluster=None, quiet: bool = False) -> SweepTable:
    """Every ``net x weights x link x encoding x split`` (defaults: AlexNet, VGG-16, ResNet-50; int16
    weights; the paper's three links; none/lossless/jpeg; every split of each network). ``qf`` applies to
    the jpeg rows only; ``weights`` may list both formats (``["int16", "jpeg"]``). Each network (a name or a
    Network) is resolved once.

    ``cluster`` (a ``sim.cluster.ClusterSpec``): where the points run, in chunks of ``SWEEP_CHUNK`` points of one
    network per piece (``sim.cluster.run_pieces``); default: serially here unless the sweep has at least
    ``SWEEP_PARALLEL_POINTS`` points (then ``sim.cluster.resolve()``: one worker per core). The results are the
    serial run's, in the same order."""
    wlist = [weights] if isinstance(weights, str) else list(weights)
    for w in wlist:
        check_weights(w)
    weights_qf = check_weights_qf(weights_qf)
    nets = [nets] if isinstance(nets, str | Network) else list(nets or IMAGENET_NETS)
    encodings = [encodings] if isinstance(encodings, str) else list(encodings)
    links = [links] if isinstance(links, str | Link) else list(links or DEFAULT_LINKS)
    resolved: dict[int | str, Network] = {}
    for n in nets:
        key = n if isinstance(n, str) else id(n)
        if key not in resolved:
            resolved[key] = network(n)
    nws = [resolved[n if isinstance(n, str) else id(n)] for n in nets]
    for e in encodings:
        check_encoding(e)
    qf = check_qf(qf)
    parsed = [parse_link(x) for x in links]
    if splits:
        for n in nws:
            for s in splits:
                n.split(s)
    points = []    # per network: its (split, weights, link, encoding) in table order
    for n in nws:
        names = list(splits) if splits else n.split_names
        points.append([(s, w, lk, e) for w in wlist for lk in parsed for e in encodings for s in names])
    common = {"qf": qf, "tech": tech, "engine": engine, "counts_source": counts_source, "weights_qf": weights_qf,
              "weights_dir": weights_dir}
    total = sum(map(len, points))
    if cluster is None and total >= SWEEP_PARALLEL_POINTS:
        from sim.cluster import resolve

        cluster = resolve()
    out = []
    blocks = []
    if cluster is None or cluster.serial:
        for n, pts in zip(nws, points, strict=True):
            start = len(out)
            out += _sweep_points(n, pts, common)
            blocks.append((n, start, len(out)))
        return SweepTable(out, blocks)
    from sim.cluster import run_pieces

    items, owner = [], []
    for i, (n, pts) in enumerate(zip(nws, points, strict=True)):
        # a built-in crosses the wire by name (each worker resolves it once); a model file as its Network
        spec = n.name if n.is_builtin and n.weights is None else n
        for a in range(0, len(pts), SWEEP_CHUNK):
            items.append(SweepChunk(spec, tuple(pts[a:a + SWEEP_CHUNK]), common))
            owner.append(i)
    done = run_pieces(sweep_chunk, items, cluster, desc="sweep", quiet=quiet,
                      labels=[f"sweep {it.net if isinstance(it.net, str) else it.net.name} points "
                              f"{k + 1}/{len(items)}" for k, it in enumerate(items)])
    for i, n in enumerate(nws):
        start = len(out)
        for res, o in zip(done, owner, strict=True):
            if o == i:
                out += res
        blocks.append((n, start, len(out)))
    return SweepTable(out, blocks)


# a sweep this long goes to the cluster by default; each piece evaluates this many points of one network. A warm
# point costs about 0.13 ms and a network's tables about a second, while starting a local cluster and its workers
# (each imports torch and builds its own tables) costs 10-20 s here (make bench: the 414-point default sweep is
# about 4x slower on 2 workers than serially), so only very long sweeps gain
SWEEP_PARALLEL_POINTS = 200_000
SWEEP_CHUNK = 200


def _sweep_points(n: Net, pts, common: dict) -> list[QueryResult]:
    qf, wqf = common["qf"], common["weights_qf"]
    return [evaluate(n, s, e, lk, qf if e == "jpeg" else None, common["tech"], None, common["engine"],
                     counts_source=common["counts_source"], weights=w, weights_qf=wqf if w == "jpeg" else None,
                     weights_dir=common["weights_dir"]) for s, w, lk, e in pts]


@dataclass(frozen=True)
class SweepChunk:
    """A piece of a sweep: some points of one network (a built-in's name or a Network)."""

    net: Net
    points: tuple
    common: dict


def sweep_chunk(chunk: SweepChunk) -> list[QueryResult]:
    """Evaluate one chunk of a sweep (on whichever worker)."""
    return _sweep_points(network(chunk.net), chunk.points, chunk.common)


@dataclass(frozen=True)
class BestSplit:
    """The best operating point for an objective, with the edge-only and host-only baselines."""

    net: str
    link: str
    objective: str
    accuracy_loss: float | None
    encoding: str | None
    best: QueryResult
    edge_only: QueryResult
    host_only: QueryResult
    candidates: tuple[QueryResult, ...] = field(repr=False, default=())
    weights: str = "int16"
    network: Network | None = field(default=None, repr=False, compare=False)   # the network evaluated

    def gains(self, baseline: QueryResult) -> dict[str, float]:
        """``energy``: baseline energy / best energy; ``throughput``: best fps / baseline fps (> 1: better)."""
        return {"energy": baseline.energy_per_frame_j / self.best.energy_per_frame_j,
                "throughput": self.best.fps / baseline.fps}

    def to_dict(self) -> dict[str, Any]:
        b = self.best
        return {
            "net": self.net, "link": self.link, "objective": self.objective, "accuracy_loss_budget": self.accuracy_loss,
            "encoding_constraint": self.encoding, "weights": self.weights, "weight_qfs": b.weight_qfs,
            "split": b.split, "encoding": b.encoding, "qf": b.qf, "fps": b.fps,
            "energy_per_frame_j": b.energy_per_frame_j, "breakdown": b.breakdown, "bottleneck": b.bottleneck,
            "feature_bytes": b.feature_bytes, "transmitted_bytes": b.transmitted_bytes,
            "compression_ratio": b.compression_ratio, "accuracy_loss": b.accuracy_loss,
            "provenance": b.to_dict()["provenance"],
            "edge_only": _baseline_dict(b, self.edge_only, self.gains(self.edge_only)),
            "host_only": _baseline_dict(b, self.host_only, self.gains(self.host_only)),
            "candidates": [{"split": c.split, "encoding": c.encoding, "qf": c.qf, "fps": c.fps,
                            "energy_per_frame_j": c.energy_per_frame_j} for c in self.candidates],
        }


def _baseline_dict(best: QueryResult, r: QueryResult, gains: dict[str, float]) -> dict[str, Any]:
    return {"split": r.split, "encoding": r.encoding, "qf": r.qf, "fps": r.fps,
            "energy_per_frame_j": r.energy_per_frame_j, "breakdown": r.breakdown, "bottleneck": r.bottleneck,
            "transmitted_bytes": r.transmitted_bytes, "compression_ratio": r.compression_ratio,
            "ratio_source": r.ratio_source,
            "energy_gain": gains["energy"], "throughput_gain": gains["throughput"]}


def _key(objective: str):
    if objective == "energy":
        return lambda r: (r.energy_per_frame_j, -r.fps)
    return lambda r: (-r.fps, r.energy_per_frame_j)


def _admissible(r: QueryResult, budget: float | None) -> bool:
    if budget is None:
        return True
    return r.accuracy_loss is not None and r.accuracy_loss <= budget + 1e-12


def best_split(net: Net, link: str | Link = DEFAULT_LINK, objective: str = "energy", accuracy_loss: float | None = 0.01,
               encoding: str | None = None, qf: int | None = None, *, tech: Tech | str | Path | None = None,
               engine: EngineParams = DEFAULT_ENGINE, counts_source: str = "auto", weights: str = "int16",
               weights_qf: int | None = None, weights_dir: str | Path | None = None) -> BestSplit:
    """The split (and encoding, unless ``encoding`` fixes it) with the least energy per frame or the most
    frames per second whose accuracy loss is within ``accuracy_loss`` (absolute top-1; None: no limit).

    ``edge_only`` (the last split) and ``host_only`` (``input``) are evaluated under the same encoding
    constraint and accuracy budget (their best admissible encoding when ``encoding`` is None).
    ``weights`` / ``weights_qf`` / ``weights_dir``: as :func:`query` (every candidate uses them).
    """
    net = network(net)
    check_weights(weights)
    weights_qf = check_weights_qf(weights_qf)
    wkw = {"weights": weights, "weights_qf": weights_qf, "weights_dir": weights_dir}
    if objective not in OBJECTIVES:
        raise UserError(f"unknown objective {objective!r}; allowed: {', '.join(OBJECTIVES)}")
    if accuracy_loss is not None and (isinstance(accuracy_loss, bool) or not isinstance(accuracy_loss, int | float)
                                      or not 0 <= accuracy_loss < 1 or math.isnan(accuracy_loss)):
        raise UserError(f"accuracy loss budget {accuracy_loss!r} must be a number in [0, 1)")
    encs = [check_encoding(encoding)] if encoding is not None else list(ENCODINGS)
    qf = check_qf(qf)
    lk = parse_link(link)
    names = net.split_names
    cands = []
    for s in names:
        for e in encs:
            cands.append(evaluate(net, s, e, lk, qf if e == "jpeg" else None, tech, None, engine,
                                  counts_source=counts_source, **wkw))
    ok = [r for r in cands if _admissible(r, accuracy_loss)]
    if not ok:
        raise UserError(f"no split of {net.name} meets the accuracy-loss budget {accuracy_loss} with encoding "
                        f"{encoding or 'any'}; allowed: a larger --accuracy-loss or another encoding")
    key = _key(objective)
    best = min(ok, key=key)

    def baseline(split: str) -> QueryResult:
        pool = [r for r in ok if r.split == split]
        if not pool:   # e.g. jpeg only and the budget excludes it: fall back to the raw baseline
            pool = [evaluate(net, split, "none", lk, None, tech, None, engine, counts_source=counts_source, **wkw)]
        return min(pool, key=key)

    return BestSplit(net=net.name, link=lk.name, objective=objective, accuracy_loss=accuracy_loss, encoding=encoding,
                     best=best, edge_only=baseline(names[-1]), host_only=baseline(names[0]), candidates=tuple(ok),
                     weights=weights, network=net)


# ---- text tables -----------------------------------------------------------------------------------------


def format_results(results: Iterable[QueryResult]) -> str:
    results = list(results)
    nw = max([9] + [len(r.net) for r in results])      # column widths: 9, wider for longer (user) names
    sw = max([9] + [len(r.split) for r in results])
    head = (f"{'net':{nw}} {'weights':7} {'link':8} {'enc':8} {'split':{sw}} {'QF':>3} {'ratio':>6} {'tx bytes':>10} "
            f"{'fps':>8} {'mJ/frame':>9} {'bottleneck':10} " + " ".join(f"{k[:-2][:7]:>7}" for k in BREAKDOWN_KEYS)
            + "  counts/ratio source")
    lines = [head, "-" * len(head)]
    for r in results:
        bd = " ".join(f"{r.breakdown[k] * 1e3:7.3f}" for k in BREAKDOWN_KEYS)
        lines.append(f"{r.net:{nw}} {r.weights:7} {r.link:8} {r.encoding:8} {r.split:{sw}} {r.qf if r.qf else '-':>3} "
                     f"{r.compression_ratio:6.1f} {r.transmitted_bytes:10,.0f} {r.fps:8.2f} "
                     f"{r.energy_per_frame_j * 1e3:9.3f} {r.bottleneck:10} {bd}  {r.counts_source}/{r.ratio_source}")
    lines.append("breakdown columns in mJ per frame")
    return "\n".join(lines)


def dumps(obj: Any) -> str:
    """JSON text of a result, table or best split."""
    if isinstance(obj, QueryResult | BestSplit):
        obj = obj.to_dict()
    elif isinstance(obj, SweepTable):
        obj = obj.to_json()
    return json.dumps(obj, indent=2, allow_nan=False, default=str)


__all__ = [
    "BestSplit", "IMAGENET_NETS", "OBJECTIVES", "WEIGHT_FORMATS", "QueryResult", "SweepTable", "best_split", "dumps",
    "format_results", "query", "sweep",
]
