"""Which split and QF each frame uses: the candidates, their costs, the bandwidth estimate and the policies.

Candidates (:func:`candidates`): every split of the network with the lossless codec, and the JPEG codec at the QF
that stays within ``budget`` absolute top-1 loss at that split according to the accuracy study
(``build/accuracy/<net>.json``: the smallest evaluated QF at and above which every evaluated QF is within the
budget, :func:`model.accuracy.budget_point`). Without a study, lossless only (the summary says so): it loses
nothing, so it is always within any budget.

Costs per candidate (:class:`CostTable`), from the cost model (:func:`model.api.query`, RTL-calibrated counts at
the engine's clock): edge inference time, encode time, the edge energy that does not depend on the link (compute,
on-chip memory, DRAM, encoder, weight decoder) and the leakage power; the payload bytes are the mean over the
run's own images (profiled before the run, as a deployment profiles its features; updated with every frame
sent); the host's time per frame (decode + compute) is measured by probe frames before the run and scaled by a
load factor that every reply updates (:meth:`Predictor.observe_host`).

Predicted frame period of candidate ``c`` at rate ``R``: ``max(t_inf, t_enc + 8 B / R, t_host)`` (the paper's
two-stage pipeline plus the host as a third stage); energy per frame ``e_fixed + P(R) 8 B / R + P_leak x period``.

Policies (:data:`POLICIES`):

* ``static``: the split, codec and QF given.
* ``dynamic``: the controller. Bandwidth estimate = harmonic mean of the rates of the last ``history``
  transfers (bytes / airtime, as a sender measures them; ``initial_mbps`` before the first). Each frame it
  picks the admissible candidate with the most predicted frames/s (``objective`` throughput; candidates within
  ``tie`` of the best are then ranked by energy) or the least energy per frame (``energy``), and switches
  only when the new choice is predicted ``hysteresis`` better than the current one under the same estimate
  and ``dwell`` frames have passed since the last switch: no flapping.
* ``edge-only`` (the last split, lossless), ``host-only`` (the camera image: JPEG at the budget QF when the
  study has one, else lossless), ``best-static`` (the candidate the controller would pick at the trace's
  time-averaged rate, fixed for the run), ``oracle`` (knows the trace: for each frame the best candidate at
  the true mean rate over its own transmission, no hysteresis).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from golden.errors import UserError
from golden.network import INPUT
from model.runtime.trace import Trace, link_power_w

POLICIES = ("static", "dynamic", "edge-only", "host-only", "best-static", "oracle")
BASELINES = ("edge-only", "host-only", "best-static", "oracle")
OBJECTIVES = ("throughput", "energy")
DEFAULT_BUDGET = 0.01


@dataclass(frozen=True)
class Candidate:
    """One operating point: a split, a codec and its QF (0 unless jpeg); ``loss``: top-1 loss (None: unknown)."""

    split: str
    codec: str
    qf: int = 0
    index: int = 0
    loss: float | None = 0.0

    @property
    def label(self) -> str:
        return f"{self.split}/{self.codec}{self.qf if self.codec == 'jpeg' else ''}"

    @property
    def key(self) -> tuple[str, str, int]:
        return self.split, self.codec, self.qf


# ---- the accuracy tables --------------------------------------------------------------------------------------


def study_qfs(net, budget: float, accuracy_dir=None) -> tuple[dict[str, tuple[int, float, float]], str]:
    """``{split: (QF, top-1 loss, mean study bytes)}`` within ``budget`` from the accuracy study, and a note
    saying where it came from (or why there is none)."""
    from model.accuracy import budget_point
    from model.system import accuracy_study

    study = accuracy_study(net, accuracy_dir)
    if study is None:
        return {}, (f"no accuracy study for {net.name} (build/accuracy/{net.name}.json; `edgesplit accuracy --net "
                    f"{net.name}`): lossless only")
    doc = _raw_study(study["path"])
    ref = doc.get("reference_top1", doc.get("int16_top1"))
    if not isinstance(ref, int | float):
        return {}, f"accuracy study {study['path']} has no reference top-1: lossless only"
    out = {}
    for row in doc.get("splits", []):
        pts = {int(p["qf"]): float(p["top1"]) for p in row.get("evaluated", []) if isinstance(p, dict)
               and isinstance(p.get("qf"), int) and isinstance(p.get("top1"), int | float)}
        if not pts:
            continue
        q = budget_point(pts, float(ref), budget)
        if q is None:
            continue
        p = next(p for p in row["evaluated"] if int(p["qf"]) == q)
        out[row["name"]] = (q, max(0.0, float(ref) - pts[q]), float(p.get("bytes", 0.0)))
    return out, f"accuracy study {study['path']} ({doc.get('images', '?')} images), budget {budget:g}"


def _raw_study(path: str) -> dict[str, Any]:
    import json
    from pathlib import Path

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def candidates(net, budget: float = DEFAULT_BUDGET, accuracy_dir=None,
               qfs: dict[str, tuple[int, float, float]] | None = None) -> tuple[list[Candidate], str]:
    """The admissible candidates of ``net`` under ``budget`` (module docstring) and the accuracy note; ``qfs``:
    ``{split: (QF, loss, bytes)}`` to use instead of the study's (the QFs checked for the encode unit's codec,
    :mod:`model.runtime.qfcheck`)."""
    if not 0 <= budget < 1 or math.isnan(budget):
        raise UserError(f"accuracy budget {budget!r} must be a number in [0, 1)")
    study, note = study_qfs(net, budget, accuracy_dir)
    if qfs is None:
        qfs = study
    out = []
    for sp in net.splits:
        out.append(Candidate(sp.name, "lossless", 0, sp.index, 0.0))
        if sp.name in qfs:
            q, loss, _ = qfs[sp.name]
            out.append(Candidate(sp.name, "jpeg", q, sp.index, loss))
    return out, note


def static_candidate(net, split: str, codec: str, qf: int | None, budget: float, accuracy_dir=None,
                     qfs: dict[str, tuple[int, float, float]] | None = None) -> Candidate:
    """The candidate of ``--split/--codec/--qf`` (jpeg without a QF: the budget QF from the study, or from
    ``qfs``)."""
    sp = net.split(split)
    if codec not in ("none", "lossless", "jpeg"):
        raise UserError(f"unknown codec {codec!r}; allowed: none, lossless, jpeg")
    if codec != "jpeg":
        if qf is not None:
            raise UserError(f"--qf {qf} applies only to --codec jpeg (got {codec})")
        return Candidate(split, codec, 0, sp.index, 0.0)
    if qfs is None:
        qfs, _ = study_qfs(net, budget, accuracy_dir)
    if qf is None:
        if split not in qfs:
            raise UserError(f"no QF within the budget {budget:g} for {net.name} at {split} (no accuracy study row): "
                            "give --qf")
        q, loss, _ = qfs[split]
        return Candidate(split, "jpeg", q, sp.index, loss)
    loss = qfs[split][1] if split in qfs and qfs[split][0] == qf else None
    return Candidate(split, "jpeg", int(qf), sp.index, loss)


# ---- costs ---------------------------------------------------------------------------------------------------


@dataclass
class Cost:
    """The cost model's numbers for one candidate (module docstring)."""

    t_inf: float
    t_enc: float
    e_fixed: float
    leak_w: float
    raw_bytes: int
    bytes: float                # mean payload bytes (profiled, then updated)
    sent: int = 0
    counts_source: str = ""


class CostTable:
    """Costs of the candidates from :func:`model.api.query` (one call each, cached)."""

    def __init__(self, net, tech=None, counts_source: str = "auto") -> None:
        self.net = net
        self.tech = tech
        self.counts_source = counts_source
        self.costs: dict[tuple, Cost] = {}

    def add(self, c: Candidate, mean_bytes: float) -> Cost:
        from model.api import query
        from model.system import raw_bytes

        raw = raw_bytes(self.net, c.split)
        r = query(self.net, c.split, c.codec, c.qf if c.codec == "jpeg" else None, "2mbps", tech=self.tech,
                  ratio=None if c.codec == "none" else max(0.1, min(1e5, raw / max(mean_bytes, 1.0))),
                  counts_source=self.counts_source)
        b = r.breakdown
        fixed = sum(v for k, v in b.items() if k not in ("radio_j", "leakage_j"))
        leak = b["leakage_j"] / r.frame_time_s if r.frame_time_s > 0 else 0.0
        cost = Cost(r.inference_time_s, r.encode_time_s, fixed, leak, raw, float(mean_bytes),
                    counts_source=r.counts_source)
        self.costs[c.key] = cost
        return cost

    def __getitem__(self, c: Candidate) -> Cost:
        return self.costs[c.key]

    def observe_bytes(self, c: Candidate, nbytes: int) -> None:
        cost = self.costs[c.key]
        cost.sent += 1
        cost.bytes += (nbytes - cost.bytes) / (cost.sent + 10)   # the profile counts as 10 frames

    def model_query(self, c: Candidate, mbps: float, power_w: float | None = None, mean_bytes: float | None = None):
        """The cost model's answer for ``c`` on a constant ``mbps`` link: with its own compression ratio (study,
        table), or with ``mean_bytes`` per frame (the bytes this run measured)."""
        from model.api import query
        from model.system import raw_bytes

        p = link_power_w(mbps) if power_w is None else power_w
        ratio = None
        if mean_bytes is not None and c.codec != "none":
            ratio = max(0.1, min(1e5, raw_bytes(self.net, c.split) / max(mean_bytes, 1.0)))
        return query(self.net, c.split, c.codec, c.qf if c.codec == "jpeg" else None, f"{mbps * 1e6:g}:{p:g}",
                     tech=self.tech, ratio=ratio, counts_source=self.counts_source)


# ---- prediction ---------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    candidate: Candidate
    period: float
    energy: float
    bottleneck: str

    @property
    def fps(self) -> float:
        return 1.0 / self.period if self.period > 0 else math.inf


class Predictor:
    """Predicted frame period and energy per frame of a candidate at a rate (module docstring)."""

    LOAD_GAIN = 0.05
    LOAD_RANGE = (0.2, 20.0)
    LOAD_SCALE_S = 1e-3

    def __init__(self, costs: CostTable, header_bytes: int = 0) -> None:
        self.costs = costs
        self.host: dict[tuple, float] = {}    # the host's time per candidate as probed (its relative cost)
        self.load = 1.0                        # how much slower (> 1) or faster the host is now than when probed
        self.header_bytes = header_bytes

    def observe_host(self, c: Candidate, seconds: float) -> None:
        """A reply's decode + compute time. A probed candidate updates the host's load factor (an exponential
        average of measured / probed), which scales every candidate alike: a busy host slows every split, so the
        estimates of the candidates not in use do not go stale and a load spike does not bias the choice."""
        base = self.host.get(c.key)
        if base is None or base <= 0:
            self.host[c.key] = seconds / self.load
            return
        lo, hi = self.LOAD_RANGE
        gain = self.LOAD_GAIN * base / (base + self.LOAD_SCALE_S)   # tiny host work measures the load poorly
        self.load = min(hi, max(lo, self.load + gain * (seconds / base - self.load)))

    def host_s(self, c: Candidate) -> float:
        if c.key in self.host:
            return self.host[c.key] * self.load
        same = [v for (s, _, _), v in self.host.items() if s == c.split]
        return min(same) * self.load if same else 0.0

    def host_times(self) -> dict[tuple, float]:
        """The current estimate of the host's time per probed candidate (probe x load)."""
        return {k: v * self.load for k, v in self.host.items()}

    def predict(self, c: Candidate, mbps: float, power_w: float | None = None) -> Prediction:
        k = self.costs[c]
        air = 8.0 * (k.bytes + self.header_bytes) / (mbps * 1e6)
        stages = {"inference": k.t_inf, "transmit": k.t_enc + air, "host": self.host_s(c)}
        name = max(stages, key=stages.get)
        period = max(stages[name], 1e-9)
        p = link_power_w(mbps) if power_w is None else power_w
        return Prediction(c, period, k.e_fixed + p * air + k.leak_w * period, name)

    def best(self, cands: list[Candidate], mbps: float, objective: str = "throughput", tie: float = 0.02,
             rates: dict[tuple, float] | None = None) -> Prediction:
        """The best prediction (``rates``: a rate per candidate, for the oracle)."""
        preds = [self.predict(c, rates[c.key] if rates else mbps) for c in cands]
        if objective == "energy":
            top = min(p.energy for p in preds)
            near = [p for p in preds if p.energy <= top * (1 + tie)]
            return max(near, key=lambda p: (p.fps, -p.energy))
        top = max(p.fps for p in preds)
        near = [p for p in preds if p.fps >= top * (1 - tie)]
        return min(near, key=lambda p: (p.energy, p.period))


# ---- the bandwidth estimate ----------------------------------------------------------------------------------


@dataclass
class Estimator:
    """Harmonic mean of the rates of the last ``history`` transfers completed by the time asked."""

    history: int = 5
    initial_mbps: float = 1.0
    transfers: list[tuple[float, float]] = field(default_factory=list)   # (end time, Mbit/s), in end order

    def add(self, t_end: float, nbytes: float, airtime: float) -> None:
        if airtime > 0 and nbytes > 0:
            self.transfers.append((t_end, 8.0 * nbytes / airtime / 1e6))

    def rate(self, t: float) -> float:
        recent: deque[float] = deque(maxlen=self.history)
        for end, r in reversed(self.transfers):
            if end <= t + 1e-12:
                recent.append(r)
                if len(recent) == self.history:
                    break
        if not recent:
            return self.initial_mbps
        return len(recent) / sum(1.0 / r for r in recent)


# ---- the policies ---------------------------------------------------------------------------------------------


@dataclass
class PolicyConfig:
    objective: str = "throughput"
    hysteresis: float = 0.10
    dwell: int = 20
    history: int = 5
    initial_mbps: float = 1.0
    tie: float = 0.02

    def check(self) -> PolicyConfig:
        if self.objective not in OBJECTIVES:
            raise UserError(f"unknown objective {self.objective!r}; allowed: {', '.join(OBJECTIVES)}")
        if not 0 <= self.hysteresis <= 10:
            raise UserError(f"hysteresis {self.hysteresis!r} must be in 0..10 (a fraction: 0.1 = 10%)")
        if not 0 <= self.dwell <= 1_000_000 or not 1 <= self.history <= 10_000:
            raise UserError(f"dwell {self.dwell} must be in 0..1e6 frames and history {self.history} in 1..1e4")
        if not 0.001 <= self.initial_mbps <= 1e6:
            raise UserError(f"initial rate {self.initial_mbps!r} Mbit/s must be in 0.001..1e6")
        return self


class Policy:
    """Chooses a candidate per frame: ``decide(k, t, estimator)``."""

    name = "static"

    def __init__(self, predictor: Predictor, cands: list[Candidate], trace: Trace, config: PolicyConfig,
                 fixed: Candidate | None = None) -> None:
        self.p = predictor
        self.cands = cands
        self.trace = trace
        self.cfg = config
        self.fixed = fixed
        self.current: Candidate | None = fixed
        self.since = 0
        self.switches = 0

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        """(candidate, the rate in Mbit/s the decision assumed)."""
        assert self.fixed is not None
        return self.fixed, est.rate(t)


class Dynamic(Policy):
    name = "dynamic"

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        rate = est.rate(t)
        best = self.p.best(self.cands, rate, self.cfg.objective, self.cfg.tie)
        self.since += 1
        cur = self.current
        if cur is None:
            self.current, self.since = best.candidate, 0
            return best.candidate, rate
        if best.candidate != cur and self.since >= self.cfg.dwell:
            now = self.p.predict(cur, rate)
            better = (best.fps > now.fps * (1 + self.cfg.hysteresis) if self.cfg.objective == "throughput"
                      else best.energy * (1 + self.cfg.hysteresis) < now.energy)
            if better:
                self.current, self.since = best.candidate, 0
                self.switches += 1
        return self.current, rate


class Oracle(Policy):
    name = "oracle"

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        rates = {}
        for c in self.cands:
            cost = self.p.costs[c]
            t0 = t + cost.t_inf + cost.t_enc
            r0 = self.trace.rate_mbps(t0)
            air = 8.0 * cost.bytes / (r0 * 1e6)
            rates[c.key] = self.trace.mean_between(t0, t0 + air)
        best = self.p.best(self.cands, 1.0, self.cfg.objective, self.cfg.tie, rates=rates)
        if best.candidate != self.current:
            self.switches += self.current is not None
            self.current = best.candidate
        return best.candidate, rates[best.candidate.key]


def make_policy(name: str, predictor: Predictor, cands: list[Candidate], trace: Trace, config: PolicyConfig,
                fixed: Candidate | None = None) -> Policy:
    """The policy ``name`` over the admissible ``cands`` (``fixed``: the static candidate)."""
    if name == "static":
        if fixed is None:
            raise UserError("the static policy needs --split (and --codec, --qf)")
        return Policy(predictor, cands, trace, config, fixed)
    if name == "dynamic":
        return Dynamic(predictor, cands, trace, config)
    if name == "oracle":
        return Oracle(predictor, cands, trace, config)
    net_splits = sorted({(c.index, c.split) for c in cands})
    if name == "edge-only":
        last = net_splits[-1][1]
        pick = [c for c in cands if c.split == last]
        fixed = min(pick, key=lambda c: predictor.costs[c].bytes)
    elif name == "host-only":
        pick = [c for c in cands if c.split == INPUT]
        if not pick:
            raise UserError("host-only needs the input split among the candidates")
        fixed = ([c for c in pick if c.codec == "jpeg"] or pick)[0]
    elif name == "best-static":
        fixed = fixed or predictor.best(cands, trace.mean_mbps(), config.objective, config.tie).candidate
    else:
        raise UserError(f"unknown policy {name!r}; allowed: {', '.join(POLICIES)}")
    pol = Policy(predictor, cands, trace, config, fixed)
    pol.name = name
    return pol


__all__ = ["BASELINES", "OBJECTIVES", "POLICIES", "Candidate", "Cost", "CostTable", "Dynamic", "Estimator", "Oracle",
           "Policy", "PolicyConfig", "Prediction", "Predictor", "candidates", "make_policy", "static_candidate",
           "study_qfs"]
