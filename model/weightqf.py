"""Per-layer QF choice for the JPEG-coded weights (:mod:`golden.weightcodec`): the largest compression
within a top-1 budget.

For a trained network (digits, ResNet-20/56 on CIFAR-10) every conv / FC layer gets its own QF from
:data:`QF_GRID` such that the int16 network with all layers' weights decoded (bit-exact golden decoder)
loses at most ``budget`` (default 0.5% absolute) top-1 against the uncompressed int16 network.
Top-1 is that of :func:`golden.quantize.run_fast` (bit-exact with the integer reference network), so the
edge engine computing the whole network with decoded weights gives these very predictions.

Search (on a *search subset*: ResNet-20 2,000 and ResNet-56 1,000 images evenly spaced over the CIFAR-10
**training** split, disjoint from the test split; digits: its 450 test images, see
:data:`DEFAULT_SEARCH_SPLIT`):

1. **Equal distortion.** Each layer's relative weight RMSE (RMSE / weight range) is known for every grid
   QF without running the network (:meth:`golden.weightcodec.Prepared.at_qf`). For a level ``tau`` every
   layer takes the lowest grid QF whose relative RMSE is at most ``tau``; ``tau`` is bisected over
   :data:`TAU_GRID` (log-spaced) for the largest level within the budget (about 5 evaluations).
2. **Greedy refinement**, layers in reverse network order: lower the layer's QF one grid step at a time
   while the whole network stays within the budget (the first failing step ends that layer). Going
   backwards, the int16 features at the split before the layer never change, so they are computed once
   and each trial runs only the rest of the network. ``max_evals`` caps the trials (ResNet-56).

Then top-1 before and after is measured on the **whole test split** (10,000 CIFAR-10 images; digits 450),
and the result written to ``build/weights/<net>.json`` (what the cost model reads) plus a plot
``build/weights/<net>_ratio.png``.

**Re-scoring** (:func:`run_rescored`, ``edgesplit weights --qfs-from FILE``): a previous result's per-layer
QFs are kept (no search) and every size, weight error and top-1 (search subset and test split) recomputed
with the current codec. The codec's stream format can change the sizes without changing the decoded
weights (as the twelve lane streams did), so a search's QF choice stays valid.

AlexNet and VGG-16 have no trained weights here (He-initialised, seed 0; calibrated on the six photos), so
for them only ratio and weight error per layer per grid QF are reported (``trained: false``): a DRAM traffic
and decoder throughput check, not an accuracy result. Large layers are processed in chunks of whole groups
(:func:`sweep_layer`), exact because every lane's DC predictor restarts at each group and the Huffman
tables follow from the summed symbol counts.

Sizes are exact (:class:`golden.weightcodec.EncodedLayer`'s ``compressed_bytes``: the twelve lane streams,
each padded to 16 bits, + DHT-style tables + 64-byte Q table + 52-byte header); biases are not compressed
and not counted.

**User networks** (``--net PATH.onnx`` / ``PATH.py:FACTORY``, a :class:`golden.network.Network`) are searched
like the trained ones on their own labelled data (``--data``: an image folder or tar.gz, see
:mod:`model.accuracy`; required, they have no default data set): the search subset comes from its ``train/``
split (default :data:`DEFAULT_SEARCH_IMAGES_USER` images), or from the test images themselves when the data has
no separate training split, and the int16 network is calibrated on the search images. ``--weights FILE``
(a state_dict) replaces the weights of a built-in or ``.py`` network. The result records the network's source
and input shape, so the cost model never reads one network's table for another of the same name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from golden import data as D
from golden import files
from golden import weightcodec as wc
from golden.errors import UserError
from golden.network import INPUT, Network
from golden.network import network as as_network
from golden.quantize import QNet, default_qnet, run_fast

SCHEMA_VERSION = 1
BUDGET = 0.005
QF_GRID = (5, 10, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90, 95, 100)
"""QFs the search and the ratio tables visit."""
TAU_GRID = tuple(float(t) for t in np.geomspace(0.0005, 0.04, 16))
"""Relative weight RMSE levels of the equal-distortion phase."""
TRAINED_NETS = ("digits", "resnet20", "resnet56")
UNTRAINED_NETS = ("alexnet", "vgg16")
NETS = TRAINED_NETS + UNTRAINED_NETS
DEFAULT_SEARCH_IMAGES = {"digits": None, "resnet20": 2000, "resnet56": 1000}
"""Search subset size (None: the whole training split). ResNet-56 uses 1,000 to stay affordable."""
DEFAULT_MAX_EVALS = {"digits": None, "resnet20": None, "resnet56": 40}
DEFAULT_SEARCH_SPLIT = {"digits": "test", "resnet20": "train", "resnet56": "train"}
"""Where the search subset comes from. The digits net has memorised its training split (100% top-1 there,
so no drop shows), hence its search uses the 450 test images themselves (the final test numbers are then
in-sample); the CIFAR ResNets score 85% on training images against 80.5% on test ones, so their training
split is a fair validation-like set, disjoint from the test split."""
DEFAULT_SEARCH_IMAGES_USER = 1000
"""Search subset size of a user network (evenly spaced over its data's training split)."""
DEFAULT_MAX_EVALS_USER = 40
OUT_DIR = D.REPO_ROOT / "build" / "weights"
CHUNK_WEIGHTS = 1 << 21
"""Weights per chunk in :func:`sweep_layer` (whole groups of 12 channels; at least one group)."""


def check_budget(budget: float) -> float:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0.0 <= float(budget) < 1.0:
        raise UserError(f"top-1 budget {budget!r} is outside 0 .. 1 (absolute, e.g. 0.005 = 0.5%)")
    return float(budget)


@dataclasses.dataclass(frozen=True)
class ImageData:
    """Where the labelled images come from: the network's own data set (``path`` None) or ``--data``, read
    with ``norm`` / ``resize`` (:func:`model.accuracy.load_dataset`)."""

    path: str | None = None
    norm: Any = None
    resize: int | None = None


def check_net(net: str | Network) -> Network:
    """``net`` as a Network the study supports: :data:`NETS` among the built-ins, any user network."""
    nw = as_network(net)
    if nw.is_builtin and nw.name not in NETS:
        raise UserError(f"weight QF study does not support {nw.name!r}; allowed: {', '.join(NETS)}, or a model "
                        f"file (PATH.onnx, PATH.py:FACTORY) with --data")
    return nw


def is_trained(net: str | Network) -> bool:
    """A network searched against top-1 (the trained built-ins, every user network), not a ratio table."""
    nw = as_network(net)
    return nw.name in TRAINED_NETS if nw.is_builtin else True


def _search_defaults(nw: Network, data: ImageData) -> tuple[int | None, int | None, str]:
    """(search images, max evaluations, search split) of a network by default."""
    if nw.is_builtin:
        return DEFAULT_SEARCH_IMAGES[nw.name], DEFAULT_MAX_EVALS[nw.name], DEFAULT_SEARCH_SPLIT[nw.name]
    from model.accuracy import data_source

    try:
        split = "train" if data_source(nw, data.path, "train") != data_source(nw, data.path, "test") else "test"
    except UserError:
        split = "test"   # an archive with test/ only
    return DEFAULT_SEARCH_IMAGES_USER, DEFAULT_MAX_EVALS_USER, split


def _qnet(nw: Network, data: ImageData, x_calib: np.ndarray) -> QNet:
    """The int16 network searched: the default one of a built-in (default weights, own data), else calibrated
    (:func:`model.accuracy.network`; a user network on the search images)."""
    if nw.is_builtin and nw.weights is None and data.path is None:
        return default_qnet(nw.name)
    from model.accuracy import network, user_calibration

    return network(nw, None, data.path, calib=None if nw.is_builtin else user_calibration(x_calib))[1]


def check_grid(grid: Sequence[int]) -> tuple[int, ...]:
    g = tuple(sorted({wc.check_qf(int(q)) for q in grid}))
    if not g:
        raise UserError("the QF grid is empty")
    return g


def weight_layers(qnet: QNet) -> list[str]:
    """Names of the conv / FC layers (those with compressible weights), network order."""
    return [q.name for q in qnet.layers if q.type in ("conv", "linear")]


def with_weights(qnet: QNet, weights: dict[str, np.ndarray]) -> QNet:
    """A copy of ``qnet`` whose listed layers carry other int16 weights (same shapes)."""
    layers = []
    for q in qnet.layers:
        if q.name in weights:
            w = np.asarray(weights[q.name]).reshape(q.w.shape).astype(np.int16)
            q = dataclasses.replace(q, w=w)
        layers.append(q)
    return QNet(qnet.net, qnet.input_frac, tuple(layers), dict(qnet.calibration), source=qnet.source)


# ---- per-layer sweeps ------------------------------------------------------------------------------------


def sweep_layer(w: np.ndarray, qfs: Sequence[int], chunk_weights: int = CHUNK_WEIGHTS
                ) -> dict[int, wc.LayerResult]:
    """Exact size and weight error of one layer at each QF, in chunks of whole groups (bounded memory).

    Same numbers as :meth:`golden.weightcodec.Prepared.at_qf` (tested). Each chunk's blocks are taken in
    lane order (:func:`golden.weightcodec.lane_order`; a last partial group is padded with zero channels,
    as the whole layer is) and counted per lane (:func:`golden.weightcodec.lane_histograms`). A lane's DC
    predictor restarts at every group, so a lane stream is its groups' codes one after the other: summing
    each lane's symbol counts and extra bits over the chunks is exact, and so are the optimal tables (from
    the counts summed over the lanes) and each lane's padded length (:func:`golden.weightcodec.coded_size`).
    """
    w = wc.weight_matrix(w)
    o, k = w.shape
    p = wc.pre_shift(w)
    per_group = wc.k_blocks(k)
    groups = max(1, chunk_weights // (wc.LANES * k))
    rows = groups * wc.LANES
    acc = {q: dict(dc=np.zeros((wc.LANES, 16), np.int64), ac=np.zeros((wc.LANES, 256), np.int64),
                   extra=np.zeros(wc.LANES, np.int64), sq=0.0, mx=0) for q in qfs}
    for r0 in range(0, o, rows):
        part = w[r0:r0 + rows]
        coeffs = wc.forward_dct(wc.to_blocks(wc.to_samples(part, p)))
        order = wc.lane_order(part.shape[0], k)  # the chunk's groups, padded to 12 channels
        for q in qfs:
            zz = wc.jpeg.zigzag(wc.quantize(coeffs, wc.qtable(q)))
            dc, ac, extra = wc.lane_histograms(zz[order], per_group)
            a = acc[q]
            a["dc"] += dc
            a["ac"] += ac
            a["extra"] += extra
            d = wc.decode_quantized(zz, wc.qtable(q), p, part.shape[0], k).astype(np.int64) - part
            a["sq"] += float((d.astype(np.float64) ** 2).sum())
            a["mx"] = max(a["mx"], int(np.abs(d).max()))
    out = {}
    rng = int(w.max() - w.min())
    for q, a in acc.items():
        sb, tb = wc.coded_size(None, per_group, hists=(a["dc"], a["ac"], a["extra"]))
        out[q] = wc.LayerResult(qf=int(q), p=p, out_channels=o, k=k, raw_bytes=2 * w.size, stream_bytes=sb,
                                table_bytes=tb, compressed_bytes=sb + tb + wc.HEADER_BYTES,
                                rmse=float(np.sqrt(a["sq"] / w.size)), max_abs_error=a["mx"], weight_range=rng)
    return out


@dataclasses.dataclass
class LayerCandidates:
    """One layer's results and decoded weights at every grid QF (small networks: kept in memory)."""

    name: str
    results: dict[int, wc.LayerResult]
    decoded: dict[int, np.ndarray]


def layer_candidates(qnet: QNet, grid: Sequence[int]) -> dict[str, LayerCandidates]:
    out = {}
    for name in weight_layers(qnet):
        prep = wc.Prepared.of(qnet.layer(name).w)
        res, dec = {}, {}
        for q in grid:
            r, d = prep.at_qf(q)
            res[q], dec[q] = r, d
        out[name] = LayerCandidates(name, res, dec)
    return out


# ---- accuracy ----------------------------------------------------------------------------------------------


class Evaluator:
    """Top-1 of the int16 network with chosen per-layer QFs on a fixed image set, counting evaluations.

    ``from_split`` features (int16, of the current reference configuration) can be cached so that a trial
    that only changes layers after a split runs from there.
    """

    def __init__(self, qnet: QNet, cands: dict[str, LayerCandidates], x: np.ndarray, y: np.ndarray,
                 batch: int = 500, cluster: Any = None, ref: EvalRef | None = None) -> None:
        self.qnet, self.cands, self.y, self.batch = qnet, cands, np.asarray(y), batch
        self.x_int = qnet.quantize_input(x)
        self.evals = 0
        self.seconds = 0.0
        self._feats: dict[str, np.ndarray] = {}
        self._feats_config: dict[str, int] | None = None
        # on a cluster (sim.cluster): each evaluation in shards of whole batches of images, run by workers that
        # load the images, the int16 network and the decoded weights themselves (:func:`_eval_piece`)
        self.cluster = cluster if cluster is not None and not cluster.serial and ref is not None else None
        self.ref = ref
        n = len(self.y)
        per = max(1, -(-n // (batch * 2 * max(1, cluster.workers if cluster is not None else 1)))) * batch
        self._shards = [(lo, min(n, lo + per)) for lo in range(0, n, per)]

    def network(self, config: dict[str, int | None]) -> QNet:
        return with_weights(self.qnet, {n: self.cands[n].decoded[q] for n, q in config.items() if q is not None})

    def _run(self, qnet: QNet, x: np.ndarray, start: str = INPUT, upto: str | None = None) -> np.ndarray:
        out = [run_fast(qnet, x[i:i + self.batch], upto=upto, start=start) for i in range(0, len(x), self.batch)]
        return np.concatenate(out)

    def top1(self, config: dict[str, int | None], start: str = INPUT) -> float:
        t = time.monotonic()
        if self.cluster is not None:
            from sim import cluster as CL

            cfg = tuple(sorted((n, q) for n, q in config.items() if q is not None))
            feats = None if start == INPUT else tuple(sorted((n, q) for n, q in (self._feats_config or {}).items()
                                                             if q is not None))
            counts = CL.run_pieces(_eval_piece, [(self.ref, cfg, start, feats, lo, hi) for lo, hi in self._shards],
                                   self.cluster, desc="top-1", labels=[f"images {lo}:{hi}" for lo, hi in self._shards],
                                   quiet=True)
            self.evals += 1
            self.seconds += time.monotonic() - t
            return sum(counts) / len(self.y)
        qnet = self.network(config)
        x = self.x_int if start == INPUT else self._feats[start]
        pred = self._run(qnet, x, start=start).argmax(1)
        self.evals += 1
        self.seconds += time.monotonic() - t
        return float(np.mean(pred == self.y))

    def cache_features(self, config: dict[str, int | None], splits: Sequence[str]) -> None:
        """Features at ``splits`` (network order) for ``config``: each computed from the previous one."""
        t = time.monotonic()
        self._feats_config = dict(config)
        if self.cluster is not None:
            return   # the workers compute them where a trial needs them (:func:`_shard_features`)
        qnet = self.network(config)
        prev, x = INPUT, self.x_int
        self._feats = {}
        for s in splits:
            if s == INPUT:
                continue
            x = self._run(qnet, x, start=prev, upto=s)
            self._feats[s] = x
            prev = s
        self.seconds += time.monotonic() - t


@dataclasses.dataclass(frozen=True)
class EvalRef:
    """What a worker needs to evaluate the int16 network with decoded weights on an image set itself (names and
    numbers, never arrays): the network (a built-in name or a model file spec, a state_dict file), the data,
    the search set its int16 twin is calibrated on, and the evaluated set (``n`` images of ``split``)."""

    net: str
    weights: str | None
    input_shape: tuple[int, int, int] | None
    data: ImageData
    calib_n: int | None
    calib_split: str
    n: int | None
    split: str
    batch: int = 500


def eval_ref(nw: Network, data: ImageData, calib_n: int | None, calib_split: str, n: int | None,
             split: str) -> EvalRef | None:
    """The :class:`EvalRef` of an image set, or None where a worker could not rebuild the network (weights given
    as an in-memory state_dict, a network registered in this process only)."""
    from golden.network import load_args

    args = load_args(nw)
    if args is None:
        return None
    return EvalRef(*args, data, calib_n, calib_split, n, split)


_WORKER: dict[str, Any] = {}
"""Per worker process: the network, int16 twin, decoded weights and images of the last :class:`EvalRef`."""


def _worker_state(ref: EvalRef) -> dict[str, Any]:
    key = dataclasses.replace(ref, n=None, split="", batch=0)   # the network and its int16 twin
    net = _WORKER.get("net")
    if net is None or net["key"] != key:
        from golden.network import load_network

        _WORKER.clear()
        nw = load_network(ref.net, weights=ref.weights, input_shape=ref.input_shape)
        xs, _, _ = search_data(nw, ref.calib_n, ref.calib_split, ref.data)
        net = {"key": key, "nw": nw, "qnet": _qnet(nw, ref.data, xs), "prep": {}, "decoded": {}}
        _WORKER["net"] = net
    images = _WORKER.get("images")
    if images is None or images["ref"] != ref:
        x, y, _ = search_data(net["nw"], ref.n, ref.split, ref.data)
        images = {"ref": ref, "x_int": net["qnet"].quantize_input(x), "y": np.asarray(y), "feats": {}}
        _WORKER["images"] = images
    return {**net, **images}


def _decoded(st: dict[str, Any], name: str, qf: int) -> np.ndarray:
    """Layer ``name``'s weights decoded at ``qf`` (as :func:`layer_candidates`), once per process."""
    key = (name, qf)
    if key not in st["decoded"]:
        prep = st["prep"].get(name)
        if prep is None:
            prep = st["prep"][name] = wc.Prepared.of(st["qnet"].layer(name).w)
        st["decoded"][key] = prep.at_qf(qf)[1]
    return st["decoded"][key]


def _shard_features(st: dict[str, Any], feats: tuple, lo: int, hi: int, batch: int) -> dict[str, np.ndarray]:
    """Images ``lo:hi`` at every split with the weights of ``feats`` (:meth:`Evaluator.cache_features`)."""
    key = (feats, lo, hi)
    have = st["feats"]
    if key not in have:
        if any(k[0] != feats for k in have):
            have.clear()
        qnet = with_weights(st["qnet"], {n: _decoded(st, n, q) for n, q in feats})
        prev, x, out = INPUT, st["x_int"][lo:hi], {}
        for s in qnet.network.split_names:
            if s == INPUT:
                continue
            x = np.concatenate([run_fast(qnet, x[i:i + batch], upto=s, start=prev) for i in range(0, len(x), batch)])
            out[s], prev = x, s
        have[key] = out
    return have[key]


def _eval_piece(item: tuple) -> int:
    """Correct predictions on images ``lo:hi`` of the int16 network with ``config``'s decoded weights, run from
    ``start`` (the features there under the weights of ``feats``)."""
    ref, config, start, feats, lo, hi = item
    st = _worker_state(ref)
    qnet = with_weights(st["qnet"], {n: _decoded(st, n, q) for n, q in config})
    x = st["x_int"][lo:hi] if start == INPUT else _shard_features(st, feats, lo, hi, ref.batch)[start]
    pred = np.concatenate([run_fast(qnet, x[i:i + ref.batch], start=start) for i in range(0, len(x), ref.batch)])
    return int((pred.argmax(1) == st["y"][lo:hi]).sum())


def _layer_piece(item: tuple) -> dict[int, wc.LayerResult]:
    """One layer's results at every grid QF (:func:`layer_candidates`); its decoded weights stay in the worker."""
    ref, name, grid = item
    st = _worker_state(ref)
    prep = st["prep"].get(name)
    if prep is None:
        prep = st["prep"][name] = wc.Prepared.of(st["qnet"].layer(name).w)
    out = {}
    for q in grid:
        out[q], st["decoded"][(name, q)] = prep.at_qf(q)
    return out


def layer_results(qnet: QNet, grid: Sequence[int], cluster: Any = None, ref: EvalRef | None = None
                  ) -> dict[str, LayerCandidates]:
    """:func:`layer_candidates`, or on a cluster one piece per layer returning its results only (the decoded
    weights are the workers' own: :func:`_decoded`)."""
    if cluster is None or cluster.serial or ref is None:
        return layer_candidates(qnet, grid)
    from sim import cluster as CL

    names = weight_layers(qnet)
    res = CL.run_pieces(_layer_piece, [(ref, n, tuple(grid)) for n in names], cluster, desc="layer sweeps",
                        labels=[f"layer {n}" for n in names])
    return {n: LayerCandidates(n, r, {}) for n, r in zip(names, res, strict=True)}


def split_before(net: str | Network, layer: str) -> str:
    """The last split whose edge part does not contain ``layer``."""
    nw = as_network(net)
    best = INPUT
    for s in nw.split_names:
        if any(la.name == layer for la in nw.layers_between(INPUT, s)):
            break
        best = s
    return best


def qf_at_level(res: dict[int, wc.LayerResult], tau: float) -> int:
    """Lowest QF whose relative RMSE is at most ``tau`` (the highest QF if none is)."""
    ok = [q for q, r in res.items() if r.rel_rmse <= tau]
    return min(ok) if ok else max(res)


def search(ev: Evaluator, grid: tuple[int, ...], budget: float, reference: float,
           max_evals: int | None = None, log: Callable[[str], None] = lambda m: None) -> dict[str, Any]:
    """The two-phase search (module docstring). Returns the chosen QF per layer and the search trace."""
    names = list(ev.cands)
    trace: list[dict[str, Any]] = []

    def level_config(i: int) -> dict[str, int]:
        return {n: qf_at_level(ev.cands[n].results, TAU_GRID[i]) for n in names}

    # phase 1: bisect the level index (monotone in distortion)
    lo, hi = -1, len(TAU_GRID)  # lo: largest known-good index (-1: every layer at the top QF), hi: known bad
    top = {n: max(grid) for n in names}
    best_top1 = ev.top1(top)
    trace.append(dict(phase="top", config=top, top1=best_top1))
    log(f"all layers at QF {max(grid)}: top-1 {best_top1:.4f} (reference {reference:.4f})")
    if reference - best_top1 > budget + 1e-12:
        log("even the highest QF exceeds the budget: keeping it")
        return dict(config=top, top1=best_top1, trace=trace)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        t1 = ev.top1(level_config(mid))
        trace.append(dict(phase="level", tau=TAU_GRID[mid], top1=t1))
        log(f"level tau={TAU_GRID[mid]:.4%}: top-1 {t1:.4f}")
        if reference - t1 <= budget + 1e-12:
            lo, best_top1 = mid, t1
        else:
            hi = mid
    config = top if lo < 0 else level_config(lo)
    # phase 2: greedy, reverse network order, features before each layer cached once
    ev.cache_features(config, ev.qnet.network.split_names)
    for name in reversed(names):
        while max_evals is None or ev.evals < max_evals:
            lower = [q for q in grid if q < config[name]]
            if not lower:
                break
            trial = dict(config, **{name: max(lower)})
            t1 = ev.top1(trial, start=split_before(ev.qnet.network, name))
            ok = reference - t1 <= budget + 1e-12
            trace.append(dict(phase="greedy", layer=name, qf=max(lower), top1=t1, accepted=ok))
            log(f"{name} QF {config[name]} -> {max(lower)}: top-1 {t1:.4f} {'ok' if ok else 'over budget'}")
            if not ok:
                break
            config, best_top1 = trial, t1
    return dict(config=config, top1=best_top1, trace=trace)


# ---- whole runs ------------------------------------------------------------------------------------------------


def search_data(net: str | Network, n: int | None, split: str = "train", data: ImageData | None = None
                ) -> tuple[np.ndarray, np.ndarray, str]:
    from model.accuracy import load_dataset

    nw, d = as_network(net), data or ImageData()
    x, y = load_dataset(nw, d.path, split=split, limit=n, norm=d.norm, resize=d.resize)
    if d.path is None:
        what = f"{len(x)} images evenly spaced over the {nw.dataset} {split} split"
    else:
        what = f"{len(x)} images evenly spaced over the {split} split of {d.path}"
    return x, y, what


def _layer_row(name: str, r: wc.LayerResult) -> dict[str, Any]:
    return dict(name=name, **r.as_dict())


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    raw = sum(r["raw_bytes"] for r in rows)
    comp = sum(r["compressed_bytes"] for r in rows)
    return dict(raw_bytes=raw, compressed_bytes=comp, ratio=raw / comp)


def _identity(nw: Network, data: ImageData | None = None) -> dict[str, Any]:
    """What a result says about its network (checked by :func:`model.counts.same_network`) and data."""
    out: dict[str, Any] = dict(net=nw.name, source=nw.source, input_shape=list(nw.input_shape))
    if nw.weights is not None:
        out["weights"] = str(nw.weights) if isinstance(nw.weights, (str, os.PathLike)) else "given"
    if data is not None and data.path is not None:
        out["data"] = str(data.path)
    if data is not None and (data.norm is not None or data.resize is not None):
        out["input_norm"] = None if data.norm is None else {"mean": list(data.norm.mean), "std": list(data.norm.std)}
        out["resize"] = data.resize
    return out


def _trained_result(net: Network, budget: float, grid: tuple[int, ...], names: list[str],
                    cands: dict[str, LayerCandidates], config: dict[str, int], top1: dict[str, Any],
                    search_info: dict[str, Any], seconds: dict[str, float], data: ImageData | None = None
                    ) -> dict[str, Any]:
    rows = [_layer_row(n, cands[n].results[config[n]]) for n in names]
    return dict(
        schema_version=SCHEMA_VERSION, **_identity(net, data), trained=True, budget=budget, qf_grid=list(grid),
        layers=rows, **_totals(rows), top1=top1, search=search_info,
        per_qf={n: {str(q): cands[n].results[q].as_dict() for q in grid} for n in names},
        bias="not compressed, not counted", seconds=seconds,
        executor="golden.quantize.run_fast (int16, bit-exact), decoded weights from golden.weightcodec",
    )


def _test_top1(qnet: QNet, cands: dict[str, LayerCandidates], config: dict[str, int], test_limit: int | None,
               log: Callable[[str], None], data: ImageData | None = None, cluster: Any = None,
               ref: EvalRef | None = None) -> dict[str, Any]:
    """Top-1 of the int16 network before and after (``config``'s decoded weights) on the test split (``ref``:
    the search set's :class:`EvalRef`, for a cluster)."""
    xt, yt, test_what = search_data(qnet.network, test_limit, "test", data)
    evt = Evaluator(qnet, cands, xt, yt, cluster=cluster,
                    ref=None if ref is None else dataclasses.replace(ref, n=test_limit, split="test"))
    before = evt.top1({})
    after = evt.top1(config)
    log(f"test ({test_what}): top-1 {before:.4f} -> {after:.4f}")
    return dict(test_before=before, test_after=after, test_drop=before - after, test_data=test_what)


def run_trained(net: str | Network, budget: float = BUDGET, grid: Sequence[int] = QF_GRID,
                search_images: int | None = -1, max_evals: int | None = -1, test_limit: int | None = None,
                log: Callable[[str], None] = lambda m: None, search_split: str | None = None,
                data: ImageData | None = None, cluster: Any = None) -> dict[str, Any]:
    """The QF choice for a trained network (or a user network on ``data``); ``-1`` = the per-network
    default. ``cluster`` (:class:`sim.cluster.ClusterSpec`, None = here): where the layer sweeps and each
    evaluation's shards of images run; the same result."""
    t0 = time.monotonic()
    nw, data = as_network(net), data or ImageData()
    budget, grid = check_budget(budget), check_grid(grid)
    d_images, d_evals, d_split = _search_defaults(nw, data)
    n_search = d_images if search_images == -1 else search_images
    max_evals = d_evals if max_evals == -1 else max_evals
    xs, ys, search_what = search_data(nw, n_search, search_split or d_split, data)
    qnet = _qnet(nw, data, xs)
    names = weight_layers(qnet)
    ref = eval_ref(nw, data, n_search, search_split or d_split, n_search, search_split or d_split)
    cands = layer_results(qnet, grid, cluster, ref)
    log(f"{nw.name}: {len(names)} layers, grid {list(grid)} swept [{time.monotonic() - t0:.0f} s]")
    ev = Evaluator(qnet, cands, xs, ys, cluster=cluster, ref=ref)
    reference = ev.top1({})
    log(f"search subset ({search_what}): int16 top-1 {reference:.4f}")
    found = search(ev, grid, budget, reference, max_evals, log)
    config = found["config"]
    t_search = time.monotonic() - t0
    # final: the whole test split
    top1 = _test_top1(qnet, cands, config, test_limit, log, data, cluster, ref)
    top1.update(search_before=reference, search_after=found["top1"], search_drop=reference - found["top1"],
                search_data=search_what)
    search_info = dict(method="equal relative RMSE level (bisected) then greedy per layer, reverse network order",
                       evaluations=ev.evals, max_evals=max_evals, trace=found["trace"])
    return _trained_result(nw, budget, grid, names, cands, config, top1, search_info,
                           dict(search=round(t_search, 1), total=round(time.monotonic() - t0, 1)), data)


def load_qfs(path: str | os.PathLike, net: str | Network) -> tuple[dict[str, int], dict[str, Any]]:
    """The per-layer QFs of a previous trained-network result (``build/weights/<net>.json``) for ``net``:
    ``({layer: qf}, the previous result)``. A missing or unreadable file, another network, an untrained
    table, layer names that are not ``net``'s conv / FC layers (or miss one), a bad QF: UserError."""
    path = Path(path)
    nw = as_network(net)
    net = nw.name
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"QF file {str(path)!r} cannot be read: {e.strerror or e}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise UserError(f"QF file {str(path)!r} is not JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise UserError(f"QF file {str(path)!r} is not a trained network's `edgesplit weights` result "
                        "(no layers list)")
    if doc.get("net") != net:
        raise UserError(f"QF file {str(path)!r} is for network {doc.get('net')!r}, not {net!r}")
    from model.counts import same_network

    if not same_network(doc, nw):
        raise UserError(f"QF file {str(path)!r} is for {net} from {doc.get('source', 'builtin')} (input "
                        f"{doc.get('input_shape')}), not {net} from {nw.source}")
    names = [la.name for la in nw.layers if la.type in ("conv", "linear")]
    qfs: dict[str, int] = {}
    for row in doc["layers"]:
        name = row.get("name") if isinstance(row, dict) else None
        if not isinstance(name, str) or name not in names:
            raise UserError(f"layer {name!r} in QF file {str(path)!r} is not a conv / FC layer of {net}")
        if name in qfs:
            raise UserError(f"layer {name!r} appears twice in QF file {str(path)!r}")
        try:
            qfs[name] = wc.check_qf(row.get("qf"))
        except UserError as e:
            raise UserError(f"QF file {str(path)!r}, layer {name}: {e}") from None
    missing = [n for n in names if n not in qfs]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"QF file {str(path)!r} has no QF for layer {missing[0]!r} of {net}{more}")
    return {n: qfs[n] for n in names}, doc


def run_rescored(net: str | Network, qfs_from: str | os.PathLike, grid: Sequence[int] | None = None,
                 search_images: int | None = -1, test_limit: int | None = None,
                 log: Callable[[str], None] = lambda m: None, search_split: str | None = None,
                 data: ImageData | None = None, cluster: Any = None) -> dict[str, Any]:
    """Re-score a previous result's per-layer QFs with the current codec, no search: every layer's size
    and weight error (at its QF and at every grid QF, default the previous grid), and top-1 before / after
    on the search subset (per-network default, as the search used) and on the test split. Budget and the
    search's own figures (evaluations, trace, previous sizes and top-1) come from the previous file,
    the latter under ``search.previous``."""
    t0 = time.monotonic()
    nw, data = as_network(net), data or ImageData()
    qfs_from = Path(qfs_from)
    config, prev = load_qfs(qfs_from, nw)
    try:
        budget = check_budget(prev.get("budget", BUDGET))
        grid = check_grid(tuple(grid if grid else prev.get("qf_grid") or QF_GRID) + tuple(config.values()))
    except (TypeError, ValueError, UserError) as e:
        raise UserError(f"QF file {str(qfs_from)!r} has a bad budget or qf_grid: {e}") from None
    d_images, _, d_split = _search_defaults(nw, data)
    n_search = d_images if search_images == -1 else search_images
    xs, ys, search_what = search_data(nw, n_search, search_split or d_split, data)
    qnet = _qnet(nw, data, xs)
    names = weight_layers(qnet)
    ref = eval_ref(nw, data, n_search, search_split or d_split, n_search, search_split or d_split)
    cands = layer_results(qnet, grid, cluster, ref)
    log(f"{nw.name}: {len(names)} layers, QFs from {qfs_from}, grid {list(grid)} swept "
        f"[{time.monotonic() - t0:.0f} s]")
    ev = Evaluator(qnet, cands, xs, ys, cluster=cluster, ref=ref)
    reference, after = ev.top1({}), ev.top1(config)
    log(f"search subset ({search_what}): top-1 {reference:.4f} -> {after:.4f}")
    t_search = time.monotonic() - t0
    top1 = _test_top1(qnet, cands, config, test_limit, log, data, cluster, ref)
    top1.update(search_before=reference, search_after=after, search_drop=reference - after,
                search_data=search_what)
    old = prev.get("search") if isinstance(prev.get("search"), dict) else {}
    previous = dict(file=str(qfs_from), method=old.get("method"), evaluations=old.get("evaluations"),
                    max_evals=old.get("max_evals"), trace=old.get("trace"),
                    raw_bytes=prev.get("raw_bytes"), compressed_bytes=prev.get("compressed_bytes"),
                    ratio=prev.get("ratio"), top1=prev.get("top1"), seconds=prev.get("seconds"))
    search_info = dict(method=f"re-scored from {qfs_from}: its per-layer QFs (no search), sizes, errors and "
                              "top-1 recomputed with the current codec",
                       rescored_from=str(qfs_from), evaluations=ev.evals, max_evals=None, trace=[],
                       previous=previous)
    return _trained_result(nw, budget, grid, names, cands, config, top1, search_info,
                           dict(search=round(t_search, 1), total=round(time.monotonic() - t0, 1)), data)


def _untrained_qnet(ref: EvalRef) -> QNet:
    """The int16 network of an untrained built-in (its default or given weights), once per process."""
    have = _WORKER.get("untrained")
    if have is None or have[0] != ref:
        from golden.network import load_network

        nw = load_network(ref.net, weights=ref.weights, input_shape=ref.input_shape)
        _WORKER["untrained"] = have = (ref, default_qnet(nw.name if nw.weights is None else nw))
    return have[1]


def _sweep_piece(item: tuple) -> dict[int, wc.LayerResult]:
    """:func:`sweep_layer` of one layer of an untrained network, in a worker."""
    ref, name, grid = item
    return sweep_layer(_untrained_qnet(ref).layer(name).w, grid)


def run_untrained(net: str | Network, grid: Sequence[int] = QF_GRID, log: Callable[[str], None] = lambda m: None,
                  cluster: Any = None) -> dict[str, Any]:
    """Ratio and weight error per layer per grid QF on the default (He-initialised, untrained) weights, or on
    the weights the Network carries (no accuracy either way: these networks have no data set here). ``cluster``:
    one piece per layer there (:func:`sim.cluster.run_pieces`), the same numbers."""
    t0 = time.monotonic()
    nw = as_network(net)
    grid = check_grid(grid)
    qnet = default_qnet(nw.name if nw.weights is None else nw)
    per_qf = {}
    ref = eval_ref(nw, ImageData(), None, "test", None, "test")
    if cluster is not None and not cluster.serial and ref is not None:
        from sim import cluster as CL

        names = weight_layers(qnet)
        swept = CL.run_pieces(_sweep_piece, [(ref, n, grid) for n in names], cluster, desc=f"{nw.name} layers",
                              labels=[f"layer {n}" for n in names])
        for name, res in zip(names, swept, strict=True):
            per_qf[name] = {str(q): r.as_dict() for q, r in res.items()}
        log(f"{len(names)} layers swept on {cluster.describe()}: {time.monotonic() - t0:.0f} s")
    for name in weight_layers(qnet) if not per_qf else ():
        t = time.monotonic()
        res = sweep_layer(qnet.layer(name).w, grid)
        per_qf[name] = {str(q): r.as_dict() for q, r in res.items()}
        log(f"{name} {qnet.layer(name).w.shape}: {time.monotonic() - t:.0f} s")
    overall = {}
    for q in grid:
        rows = [per_qf[n][str(q)] for n in per_qf]
        overall[str(q)] = _totals(rows)
    note = "He-initialised weights (seed 0), not trained: ratios are a DRAM-traffic / decoder throughput check " \
        "only, no accuracy" if nw.weights is None else \
        f"weights {_identity(nw)['weights']}, no data set here: ratios and weight errors only, no accuracy"
    return dict(schema_version=SCHEMA_VERSION, **_identity(nw), trained=False, note=note,
                qf_grid=list(grid), per_qf=per_qf, overall=overall, bias="not compressed, not counted",
                seconds=dict(total=round(time.monotonic() - t0, 1)))


def check_data(net: Network, data: ImageData) -> ImageData:
    """``--data`` (and ``--mean`` / ``--std`` / ``--resize``) where it applies: required for a user network
    (no default data set), not for the untrained built-ins (ratio table only)."""
    if not net.is_builtin and data.path is None:
        from model.accuracy import no_data_error

        raise no_data_error(net)
    given = data.path is not None or data.norm is not None or data.resize is not None
    if given and not is_trained(net):
        raise UserError(f"--data, --mean, --std and --resize apply to networks searched against top-1 "
                        f"({', '.join(TRAINED_NETS)}, model files); {net.name} gets a ratio table only")
    return data


def run(net: str | Network, budget: float = BUDGET, grid: Sequence[int] | None = None,
        search_images: int | None = -1, max_evals: int | None = -1, test_limit: int | None = None,
        log: Callable[[str], None] = lambda m: None, search_split: str | None = None,
        qfs_from: str | os.PathLike | None = None, data: ImageData | None = None, cluster: Any = None
        ) -> dict[str, Any]:
    """A search (trained networks and user networks on ``data``), a ratio table (untrained ones) or, with
    ``qfs_from``, a re-scoring of a previous result's QFs (:func:`run_rescored`). ``grid`` None:
    :data:`QF_GRID`, or with ``qfs_from`` the previous file's grid. ``cluster``: a
    :class:`sim.cluster.ClusterSpec` (None: here, serially) for the layer sweeps and the evaluations."""
    nw = check_net(net)
    data = check_data(nw, data or ImageData())
    budget = check_budget(budget)
    torch.set_num_threads(1)
    if qfs_from is not None and not is_trained(nw):
        raise UserError(f"--qfs-from applies to the trained networks ({', '.join(TRAINED_NETS)}) and model files, "
                        f"not {nw.name!r}")
    if grid is not None:
        grid = check_grid(grid)
    if not is_trained(nw):
        return run_untrained(nw, grid or QF_GRID, log, cluster)
    if search_split not in (None, "train", "test"):
        raise UserError(f"unknown search split {search_split!r}; allowed: train, test")
    if qfs_from is not None:
        return run_rescored(nw, qfs_from, grid, search_images, test_limit, log, search_split, data, cluster)
    return run_trained(nw, budget, grid or QF_GRID, search_images, max_evals, test_limit, log, search_split, data,
                       cluster)


# ---- output ------------------------------------------------------------------------------------------------


def format_table(result: dict[str, Any]) -> str:
    lines = []
    if result["trained"]:
        lines.append(f"{result['net']}: per-layer QF within {result['budget']:.2%} top-1")
        lines.append(f"{'layer':<18} {'O':>5} {'K':>6} {'QF':>4} {'p':>2} {'raw B':>9} {'comp. B':>9} "
                     f"{'ratio':>6} {'RMSE':>7} {'rel':>6}")
        for r in result["layers"]:
            lines.append(f"{r['name']:<18} {r['O']:>5} {r['K']:>6} {r['qf']:>4} {r['p']:>2} {r['raw_bytes']:>9,} "
                         f"{r['compressed_bytes']:>9,} {r['ratio']:>6.2f} {r['rmse']:>7.1f} {r['rel_rmse']:>6.2%}")
        lines.append(f"{'overall':<18} {'':>5} {'':>6} {'':>4} {'':>2} {result['raw_bytes']:>9,} "
                     f"{result['compressed_bytes']:>9,} {result['ratio']:>6.2f}")
        t = result["top1"]
        lines.append(f"top-1 on the test split ({t['test_data']}): {t['test_before']:.2%} -> {t['test_after']:.2%} "
                     f"(drop {t['test_drop']:+.2%})")
        lines.append(f"top-1 on the search subset ({t['search_data']}): {t['search_before']:.2%} -> "
                     f"{t['search_after']:.2%}; {result['search']['evaluations']} evaluations, "
                     f"{result['seconds']['total']:.0f} s")
        if result["search"].get("rescored_from"):
            prev = result["search"].get("previous") or {}
            was = f" (overall ratio there {prev['ratio']:.2f})" if isinstance(prev.get("ratio"), (int, float)) else ""
            lines.append(f"QFs re-scored from {result['search']['rescored_from']}{was}, no search")
        return "\n".join(lines)
    grid = result["qf_grid"]
    lines.append(f"{result['net']}: ratio per layer per QF ({result['note']})")
    lines.append(f"{'layer':<14} {'O':>5} {'K':>6} " + " ".join(f"{'QF' + str(q):>6}" for q in grid))
    for name, per in result["per_qf"].items():
        r0 = per[str(grid[0])]
        lines.append(f"{name:<14} {r0['O']:>5} {r0['K']:>6} " + " ".join(f"{per[str(q)]['ratio']:>6.2f}" for q in grid))
    lines.append(f"{'overall':<14} {'':>5} {'':>6} " + " ".join(f"{result['overall'][str(q)]['ratio']:>6.2f}"
                                                              for q in grid))
    lines.append(f"{'rel. RMSE':<14} {'':>5} {'':>6} " + " ".join(
        f"{max(per[str(q)]['rel_rmse'] for per in result['per_qf'].values()):>6.2%}" for q in grid)
        + "  (worst layer)")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | os.PathLike) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(result["per_qf"])), 4.0))
    names = list(result["per_qf"])
    xs = np.arange(len(names))
    if result["trained"]:
        ratios = [r["ratio"] for r in result["layers"]]
        ax.bar(xs, ratios, color="tab:blue")
        for i, r in enumerate(result["layers"]):
            ax.text(i, ratios[i], str(r["qf"]), ha="center", va="bottom", fontsize=7)
        ax.axhline(result["ratio"], color="tab:red", ls="--", label=f"overall {result['ratio']:.2f}")
        t = result["top1"]
        ax.set_title(f"{result['net']}: weight compression per layer (QF on bars), top-1 "
                     f"{t['test_before']:.2%} -> {t['test_after']:.2%}", fontsize=9)
    else:
        for q in result["qf_grid"]:
            ax.plot(xs, [result["per_qf"][n][str(q)]["ratio"] for n in names], marker="o", ms=3, label=f"QF {q}")
        ax.set_title(f"{result['net']} (untrained He-init weights): ratio per layer per QF", fontsize=9)
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    ax.set_ylabel("ratio (int16 bytes / compressed bytes)")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    with files.atomic_path(path, "plot") as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path


def write(result: dict[str, Any], out_dir: str | os.PathLike | None = None, plots: bool = True) -> dict[str, Path]:
    """``<out>/<net>.json`` and ``<net>_ratio.png``, renamed into place together, the JSON last (what the cost
    model reads): the result is complete or absent (:class:`golden.files.AtomicGroup`)."""
    out = Path(out_dir) if out_dir is not None else OUT_DIR
    paths = {"json": out / f"{result['net']}.json"}
    with files.AtomicGroup() as group:
        if plots:
            paths["plot"] = out / f"{result['net']}_ratio.png"
            plot(result, group.path(paths["plot"], "plot"))
        group.path(paths["json"], "weight table").write_text(json.dumps(result, indent=1))
    return {k: paths[k] for k in ("json", "plot") if k in paths}


def check_out_dir(out_dir: str | os.PathLike | None) -> Path:
    """``--out``: a folder that exists or can be created, writable (checked before any work)."""
    return files.check_output_dir(out_dir if out_dir is not None else OUT_DIR, "--out folder")
