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
The host's time is the candidate's own measured time once it ran, else its probe time x the load factor. A
:class:`Mix` interleaves two candidates (a share ``f`` of ``a``): its period is :func:`mix_period` (each
transmission overlaps the next frame's inference through the one hand-over buffer; the host adds the average of
the host times), its energy the average.

Policies (:data:`POLICIES`):

* ``static``: the split, codec and QF given.
* ``dynamic``: the controller. Bandwidth estimate = harmonic mean of the rates of the last ``history``
  transfers (bytes / airtime, as a sender measures them; ``initial_mbps`` before the first). It picks the best
  mix of at most two admissible candidates (:meth:`Predictor.best_mix`; ``mix=False``: one candidate) by the
  ``objective``: ``balanced`` (default) the most frames/s per energy per frame (the inverse of the energy-delay
  product), ``throughput`` the most frames/s (then the least energy within ``tie``), ``energy`` the least energy;
  and switches only when the new choice is predicted ``hysteresis`` better than the current one under the same
  estimate and ``dwell`` frames have passed since the last switch: no flapping. Frames of a mix are interleaved
  by smooth weighted round robin.
* ``edge-only`` (the last split, lossless), ``host-only`` (the camera image: JPEG at the budget QF when the
  study has one, else lossless), ``best-static`` (the candidate with the most predicted frames/s at the trace's
  time-averaged rate, fixed for the run), ``oracle`` (knows the trace: the controller's own choice at the true
  rate and power of the segment each frame starts in, no hysteresis).

:func:`trace_bounds`: what each kind of policy could reach on a trace according to the predictor.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from golden.errors import UserError
from golden.network import INPUT
from model.runtime.trace import Trace, link_power_w

POLICIES = ("static", "dynamic", "edge-only", "host-only", "best-static", "oracle")
BASELINES = ("edge-only", "host-only", "best-static", "oracle")
OBJECTIVES = ("balanced", "throughput", "energy")
STAGES = ("inference", "transmit", "host")
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


@dataclass(frozen=True)
class Mix:
    """Two candidates interleaved frame by frame: ``a`` for a fraction ``f`` of the frames, ``b`` for the rest
    (``a == b``: one candidate). The pipeline's stages then work on different frames at once, so an edge split
    and an early (host-heavy) one can keep the engine, the link and the host busy together."""

    a: Candidate
    b: Candidate
    f: float = 1.0

    @staticmethod
    def of(a: Candidate, b: Candidate | None = None, f: float = 1.0) -> Mix:
        if b is None or a == b or f >= 1.0 - 1e-9:
            return Mix(a, a, 1.0)
        if f <= 1e-9:
            return Mix(b, b, 1.0)
        return Mix(a, b, float(f))

    @property
    def single(self) -> bool:
        return self.a == self.b

    def share(self, c: Candidate) -> float:
        """The fraction of the frames that go as ``c``."""
        return (self.f if c == self.a else 0.0) + (1.0 - self.f if c == self.b else 0.0)

    @property
    def label(self) -> str:
        return self.a.label if self.single else f"{self.a.label} {self.f:.0%} + {self.b.label}"


@dataclass
class Prediction:
    candidate: Candidate
    period: float
    energy: float
    bottleneck: str
    mix: Mix | None = None

    @property
    def fps(self) -> float:
        return 1.0 / self.period if self.period > 0 else math.inf

    def score(self, objective: str) -> float:
        """Larger is better: frames/s (throughput), 1 / energy (energy), frames/s per energy (balanced: the
        inverse of the energy-delay product)."""
        if objective == "energy":
            return 1.0 / self.energy
        if objective == "balanced":
            return self.fps / self.energy
        return self.fps


def mix_period(a, b, f):
    """(edge, host) period of a mix, per frame: ``a`` and ``b`` are the stage times (inference, encode + transmit,
    host) of its two candidates (numpy arrays broadcast alike), ``f`` the share of ``a``. The engine hands a
    frame to the link through one buffer: it starts frame k+1 when frame k is handed over, and frame k is handed
    over when the link has sent frame k-1, so each frame's transmission overlaps the next frame's inference: the
    edge spends ``max(inference of the next frame, transmission of this one)`` per frame. The minority candidate's
    frames are spread out (never two in a row), so with ``g = min(f, 1 - f)``: ``g`` pairs a -> b, ``g`` pairs
    b -> a and the rest majority -> majority. The host works on its own (the window keeps it fed): the average of
    the host times."""
    za, zb = np.maximum(a[0], a[1]), np.maximum(b[0], b[1])
    xy = np.maximum(b[0], a[1]) + np.maximum(a[0], b[1])
    g = np.minimum(f, 1 - f)
    edge = g * xy + (1 - 2 * g) * np.where(f <= 0.5, zb, za)
    return edge, f * a[2] + (1 - f) * b[2]


class Predictor:
    """Predicted frame period and energy per frame of a candidate at a rate (module docstring)."""

    LOAD_GAIN = 0.05
    LOAD_RANGE = (0.2, 20.0)
    LOAD_SCALE_S = 1e-3

    MEASURED_GAIN = 0.1
    MEASURED_MIN = 3

    def __init__(self, costs: CostTable, header_bytes: int = 0) -> None:
        self.costs = costs
        self.host: dict[tuple, float] = {}    # the host's time per candidate as probed (its relative cost)
        self.load = 1.0                        # how much slower (> 1) or faster the host is now than when probed
        self.measured: dict[tuple, float] = {}   # exponential average of the replies' times per candidate
        self.seen: dict[tuple, int] = {}
        self.header_bytes = header_bytes

    def observe_host(self, c: Candidate, seconds: float) -> None:
        """A reply's decode + compute time. It becomes the candidate's own measured host time (an exponential
        average, used once ``MEASURED_MIN`` replies came), and a probed candidate updates the host's load factor
        (an exponential average of measured / probed), which scales the candidates not measured yet alike: a busy
        host slows every split, so their estimates do not go stale and a load spike does not bias the choice."""
        n = self.seen.get(c.key, 0) + 1
        self.seen[c.key] = n
        m = self.measured.get(c.key)
        self.measured[c.key] = seconds if m is None else m + max(self.MEASURED_GAIN, 1.0 / n) * (seconds - m)
        base = self.host.get(c.key)
        if base is None or base <= 0:
            self.host[c.key] = seconds / self.load
            return
        lo, hi = self.LOAD_RANGE
        gain = self.LOAD_GAIN * base / (base + self.LOAD_SCALE_S)   # tiny host work measures the load poorly
        self.load = min(hi, max(lo, self.load + gain * (seconds / base - self.load)))

    def host_s(self, c: Candidate) -> float:
        if self.seen.get(c.key, 0) >= self.MEASURED_MIN:
            return self.measured[c.key]
        if c.key in self.host:
            return self.host[c.key] * self.load
        same = [v for (s, _, _), v in self.host.items() if s == c.split]
        return min(same) * self.load if same else 0.0

    def host_times(self) -> dict[tuple, float]:
        """The current estimate of the host's time per candidate: measured where it ran, else probe x load."""
        keys = set(self.host) | {k for k, n in self.seen.items() if n >= self.MEASURED_MIN}
        return {k: (self.measured[k] if self.seen.get(k, 0) >= self.MEASURED_MIN else self.host[k] * self.load)
                for k in keys}

    def predict(self, c: Candidate, mbps: float, power_w: float | None = None) -> Prediction:
        k = self.costs[c]
        air = 8.0 * (k.bytes + self.header_bytes) / (mbps * 1e6)
        stages = {STAGES[0]: k.t_inf, STAGES[1]: k.t_enc + air, STAGES[2]: self.host_s(c)}
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
        if objective == "balanced":
            return max(preds, key=lambda p: (p.score(objective), p.fps))
        top = max(p.fps for p in preds)
        near = [p for p in preds if p.fps >= top * (1 - tie)]
        return min(near, key=lambda p: (p.energy, p.period))

    def predict_mix(self, m: Mix, mbps: float, power_w: float | None = None) -> Prediction:
        """A mix's frame period (:func:`mix_period`) and energy: the average energy, leakage over that period."""
        if m.single:
            p = self.predict(m.a, mbps, power_w)
            return Prediction(m.a, p.period, p.energy, p.bottleneck, m)
        st, e, leak = self._stages([m.a, m.b], mbps, power_w)
        edge, host = mix_period(st[:, 0], st[:, 1], m.f)
        period = max(float(edge), float(host), 1e-9)
        energy = float(e[0] * m.f + e[1] * (1 - m.f) + (leak[0] * m.f + leak[1] * (1 - m.f)) * period)
        return Prediction(m.a, period, energy, "host" if host > edge else "engine and link", m)

    def _stages(self, cands: list[Candidate], mbps: float, power_w: float | None = None):
        """(stage times [3, n]: inference, encode + transmit, host; link-dependent energy [n]; leakage W [n])."""
        ks = [self.costs[c] for c in cands]
        air = np.array([8.0 * (k.bytes + self.header_bytes) / (mbps * 1e6) for k in ks])
        st = np.array([[k.t_inf for k in ks], [k.t_enc for k in ks] + air, [self.host_s(c) for c in cands]])
        p = link_power_w(mbps) if power_w is None else power_w
        return st, np.array([k.e_fixed for k in ks]) + p * air, np.array([k.leak_w for k in ks])

    def best_mix(self, cands: list[Candidate], mbps: float, objective: str = "throughput", tie: float = 0.02,
                 power_w: float | None = None, grid: int = 20) -> Prediction:
        """The best mix of at most two candidates (:class:`Mix`; each alone included) at ``mbps``: every pair
        at the fractions ``0, 1/grid, .., 1`` and where two of its stage times cross (where the slowest stage
        is shortest), ranked by ``objective`` as :meth:`best` ranks single candidates."""
        n = len(cands)
        st, e, leak = self._stages(cands, mbps, power_w)
        sa, sb = st[:, :, None], st[:, None, :]                        # [3, n, 1], [3, 1, n]: a, b
        za, zb = np.maximum(sa[0], sa[1]), np.maximum(sb[0], sb[1])
        xy = np.maximum(sb[0], sa[1]) + np.maximum(sa[0], sb[1])
        with np.errstate(divide="ignore", invalid="ignore"):          # where the host line crosses the edge's
            f1 = (zb - sb[2]) / ((sa[2] - sb[2]) - (xy - 2 * zb))
            f2 = 1 - (za - sa[2]) / ((sb[2] - sa[2]) - (xy - 2 * za))
        cross = [np.clip(np.nan_to_num(f1, nan=0.0, posinf=0.0, neginf=0.0), 0.0, 0.5),
                 np.clip(np.nan_to_num(f2, nan=1.0, posinf=1.0, neginf=1.0), 0.5, 1.0)]
        f = np.concatenate([np.broadcast_to(np.linspace(0.0, 1.0, grid + 1), (n, n, grid + 1)),
                            np.stack(cross, axis=-1)], axis=-1)         # [n, n, K]
        edge, host = mix_period(sa[..., None], sb[..., None], f)
        period = np.maximum(np.maximum(edge, host), 1e-9)
        ea, eb = e[:, None, None], e[None, :, None]
        la, lb = leak[:, None, None], leak[None, :, None]
        energy = eb + f * (ea - eb) + (lb + f * (la - lb)) * period
        fps = 1.0 / period
        if objective == "energy":
            ok = energy <= energy.min() * (1 + tie)
            key = np.where(ok, fps, -np.inf)
        elif objective == "balanced":
            key = fps / energy
        else:
            ok = fps >= fps.max() * (1 - tie)
            key = np.where(ok, -energy, -np.inf)
        i, j, k = np.unravel_index(int(np.argmax(key)), key.shape)
        return self.predict_mix(Mix.of(cands[i], cands[j], float(f[i, j, k])), mbps, power_w)


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
    objective: str = "balanced"
    hysteresis: float = 0.10
    dwell: int = 20
    history: int = 5
    initial_mbps: float = 1.0
    tie: float = 0.02
    mix: bool = True

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
        self.mix: Mix | None = None
        self.since = 0
        self.switches = 0
        self._credit: dict[tuple, float] = {}

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        """(candidate, the rate in Mbit/s the decision assumed)."""
        assert self.fixed is not None
        return self.fixed, est.rate(t)

    RESOLVE_FRAMES = 10
    RESOLVE_RATE = 0.01

    def _choose(self, mbps: float, power_w: float | None = None) -> Prediction:
        """The best choice at ``mbps``; solved again when the rate moved more than ``RESOLVE_RATE`` or
        ``RESOLVE_FRAMES`` frames passed (the host's measured times move slowly), else the last answer."""
        last = getattr(self, "_last", None)
        if last is not None and abs(mbps / last[0] - 1) <= self.RESOLVE_RATE and last[1] == power_w \
                and self._solved < self.RESOLVE_FRAMES:
            self._solved += 1
            return last[2]
        self._solved = 0
        self._last = (mbps, power_w, self._solve(mbps, power_w))
        return self._last[2]

    def _solve(self, mbps: float, power_w: float | None = None) -> Prediction:
        if self.cfg.mix:
            return self.p.best_mix(self.cands, mbps, self.cfg.objective, self.cfg.tie, power_w)
        b = self.p.best(self.cands, mbps, self.cfg.objective, self.cfg.tie)
        return Prediction(b.candidate, b.period, b.energy, b.bottleneck, Mix.of(b.candidate))

    def _set(self, m: Mix) -> None:
        if m != self.mix:
            self.switches += self.mix is not None
            self.mix = m
            self.since = 0
            keep = {m.a.key, m.b.key}
            self._credit = {k: v for k, v in self._credit.items() if k in keep}

    def _next(self) -> Candidate:
        """The mix's next frame, evenly interleaved (smooth weighted round robin): each candidate earns its share
        of a frame every frame and the one with the most credit goes, paying one frame. Credits carry over a
        change of the mix for the candidates it keeps, so a mix re-solved often keeps its proportions."""
        assert self.mix is not None
        m = self.mix
        if m.single:
            self._credit = {}
            self.current = m.a
            return m.a
        ca = self._credit.get(m.a.key, 0.0) + m.f
        cb = self._credit.get(m.b.key, 0.0) + (1.0 - m.f)
        pick_a = ca >= cb
        self._credit = {m.a.key: ca - pick_a, m.b.key: cb - (not pick_a)}
        self.current = m.a if pick_a else m.b
        return self.current


class Dynamic(Policy):
    name = "dynamic"

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        rate = est.rate(t)
        best = self._choose(rate)
        assert best.mix is not None
        self.since += 1
        if self.mix is None:
            self._set(best.mix)
        elif best.mix != self.mix and self.since >= self.cfg.dwell:
            now = self.p.predict_mix(self.mix, rate)
            if best.score(self.cfg.objective) > now.score(self.cfg.objective) * (1 + self.cfg.hysteresis):
                self._set(best.mix)
        return self._next(), rate


class Oracle(Policy):
    """Knows the trace: in each of its segments (rows) the best choice at the segment's true rate and power, with
    the same predictor (the cost model and the host's measured times) and objective as the controller, from the
    segment's first frame (and again every ``RESOLVE_FRAMES`` frames, as the host's times move), no hysteresis."""

    name = "oracle"

    def decide(self, k: int, t: float, est: Estimator) -> tuple[Candidate, float]:
        rate = self.trace.rate_mbps(t)
        self._set(self._choose(rate, self.trace.power_at(t)).mix)
        return self._next(), rate


def trace_bounds(p: Predictor, cands: list[Candidate], trace: Trace, objective: str = "balanced",
                 tie: float = 0.02) -> dict[str, Any]:
    """What the predictor says each kind of policy can reach on ``trace`` (one period; frames/s over a trace =
    the time-weighted mean of each segment's frames/s, energy per frame the frame-weighted mean):

    * ``static``: every candidate held for the whole trace; ``best_fixed`` the best of them in hindsight and
      ``mean_rate`` the one the predictor ranks first at the trace's mean rate (the best-static baseline's
      shortlist leader);
    * ``per_segment_split``: the fastest single candidate in each segment (an upper bound for any policy that
      sends every frame of a segment at one split);
    * ``per_segment_mix``: the fastest mix of two candidates in each segment (:meth:`Predictor.best_mix`);
    * ``objective``: the mix the controller's objective picks in each segment (what the oracle runs)."""
    ends = [*trace.times[1:], trace.period]
    segs = [(e - s, r, w) for s, e, r, w in zip(trace.times, ends, trace.mbps, trace.power_w, strict=True)]
    total = sum(d for d, _, _ in segs)

    def over(preds: list[Prediction]) -> dict[str, float]:
        frames = sum(d * q.fps for (d, _, _), q in zip(segs, preds, strict=True))
        energy = sum(d * q.fps * q.energy for (d, _, _), q in zip(segs, preds, strict=True))
        return {"fps": frames / total, "energy_j": energy / frames}

    static = {c.label: over([p.predict(c, r, w) for _, r, w in segs]) for c in cands}
    fixed = max(static, key=lambda k: static[k]["fps"])
    lead = p.best(cands, trace.mean_mbps()).candidate.label
    seg_split = [max((p.predict(c, r, w) for c in cands), key=lambda q: q.fps) for _, r, w in segs]
    seg_mix = [p.best_mix(cands, r, "throughput", 0.0, w) for _, r, w in segs]
    seg_obj = [p.best_mix(cands, r, objective, tie, w) for _, r, w in segs]
    return {"static": static, "best_fixed": {"candidate": fixed, **static[fixed]},
            "mean_rate": {"candidate": lead, **static[lead]}, "per_segment_split": over(seg_split),
            "per_segment_mix": over(seg_mix), "objective": {"name": objective, **over(seg_obj)},
            "segments": len(segs)}


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
        fixed = fixed or predictor.best(cands, trace.mean_mbps(), "throughput", config.tie).candidate
    else:
        raise UserError(f"unknown policy {name!r}; allowed: {', '.join(POLICIES)}")
    pol = Policy(predictor, cands, trace, config, fixed)
    pol.name = name
    return pol


__all__ = ["BASELINES", "OBJECTIVES", "POLICIES", "Candidate", "Cost", "CostTable", "Dynamic", "Estimator", "Mix",
           "Oracle", "Policy", "PolicyConfig", "Prediction", "Predictor", "candidates", "make_policy", "mix_period",
           "static_candidate", "study_qfs", "trace_bounds"]
