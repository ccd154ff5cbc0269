"""The controller (model.runtime.controller): candidates from the accuracy study, predictions, hysteresis, oracle."""

import json

import numpy as np
import pytest

from golden.errors import UserError
from golden.network import network
from model.runtime import controller as C
from model.runtime.trace import Trace, link_power_w, load_trace


def _study(tmp_path, rows):
    doc = {"net": "digits", "images": 100, "int16_top1": 0.95, "reference_top1": 0.95, "budget": 0.01,
           "splits": rows}
    (tmp_path / "digits.json").write_text(json.dumps(doc))
    return tmp_path


def _row(name, pts):
    return {"name": name, "lossless_ratio": 2.0, "qf_at_budget": None,
            "evaluated": [{"qf": q, "top1": t, "bytes": b, "ratio": 1.0} for q, t, b in pts]}


def test_candidates_follow_the_study_and_the_budget(tmp_path):
    d = _study(tmp_path, [_row("conv2", [(100, 0.95, 300), (50, 0.945, 150), (20, 0.93, 90), (10, 0.80, 60)]),
                          _row("conv3", [(100, 0.90, 300)])])   # loses 5% even at QF 100: no JPEG
    net = network("digits")
    cands, note = C.candidates(net, 0.01, d)
    jpeg = {c.split: c for c in cands if c.codec == "jpeg"}
    assert set(jpeg) == {"conv2"} and jpeg["conv2"].qf == 50 and jpeg["conv2"].loss == pytest.approx(0.005)
    assert {c.split for c in cands if c.codec == "lossless"} == set(net.split_names)
    assert "accuracy study" in note
    assert {c.qf for c in C.candidates(net, 0.03, d)[0] if c.codec == "jpeg"} == {20}
    none, note = C.candidates(net, 0.01, tmp_path / "nothing")
    assert all(c.codec == "lossless" for c in none) and "lossless only" in note
    assert C.static_candidate(net, "conv2", "jpeg", None, 0.01, d).qf == 50
    with pytest.raises(UserError, match="give --qf"):
        C.static_candidate(net, "conv4", "jpeg", None, 0.01, d)
    with pytest.raises(UserError, match="applies only"):
        C.static_candidate(net, "conv4", "lossless", 30, 0.01, d)
    with pytest.raises(UserError, match="budget"):
        C.candidates(net, 1.5)


def test_estimator_is_the_harmonic_mean_of_recent_transfers():
    e = C.Estimator(history=2, initial_mbps=3.0)
    assert e.rate(10) == 3.0
    e.add(1.0, 1000, 8e-3)    # 1 Mbit/s
    e.add(2.0, 1000, 2e-3)    # 4 Mbit/s
    e.add(3.0, 1000, 4e-3)    # 2 Mbit/s
    assert e.rate(2.5) == pytest.approx(2 / (1 / 1 + 1 / 4))
    assert e.rate(3.0) == pytest.approx(2 / (1 / 4 + 1 / 2))
    assert e.rate(0.5) == 3.0   # nothing had ended yet


def _two(host_s=0.0):
    """A transmit-heavy early split A and a compute-heavy late split B (crossover near 2.67 Mbit/s)."""
    table = C.CostTable(network("digits"))
    a, b = C.Candidate("conv1", "lossless", 0, 1), C.Candidate("fc6", "lossless", 0, 6)
    table.costs[a.key] = C.Cost(1e-3, 0.0, 1e-5, 0.0, 2048, 1000.0)
    table.costs[b.key] = C.Cost(3e-3, 0.0, 3e-5, 0.0, 20, 10.0)
    p = C.Predictor(table)
    if host_s:
        p.observe_host(a, host_s)
    return p, a, b


def test_predictions_and_the_host_stage():
    p, a, b = _two()
    fast, slow = p.predict(a, 22.0), p.predict(a, 1.0)
    assert fast.period == pytest.approx(1e-3) and fast.bottleneck == "inference"
    assert slow.period == pytest.approx(8e-3) and slow.bottleneck == "transmit"
    assert slow.energy == pytest.approx(1e-5 + link_power_w(1.0) * 8e-3)
    assert p.best([a, b], 22.0).candidate == a and p.best([a, b], 1.0).candidate == b
    p2, a2, b2 = _two(host_s=5e-3)          # a slow host makes the early split host-bound
    assert p2.predict(a2, 22.0).bottleneck == "host" and p2.best([a2, b2], 22.0).candidate == b2


def _flaps(hysteresis, dwell, objective="throughput", mix=False, toy=None, rates=(2.5, 2.9)):
    p, a, b = (toy or _two)()
    cfg = C.PolicyConfig(hysteresis=hysteresis, dwell=dwell, history=1, objective=objective, mix=mix)
    pol = C.make_policy("dynamic", p, [a, b], load_trace("2mbps"), cfg)
    e = C.Estimator(history=1)
    for k in range(200):
        e.add(k, 1000, 8000 / (rates[k % 2] * 1e6))   # noise around the crossover
        pol.decide(k, k + 0.5, e)
    return pol.switches


def test_hysteresis_stops_flapping():
    assert _flaps(0.0, 0) > 50
    assert _flaps(0.10, 5) <= 1
    # the best mix's share of images follows the rate (0.5 at 1 Mbit/s, 0.474 at 22, a few % apart)
    assert _flaps(0.0, 0, "throughput", True, _image_and_edge, (1.0, 22.0)) > 50
    assert _flaps(0.10, 5, "throughput", True, _image_and_edge, (1.0, 22.0)) <= 1


def _image_and_edge():
    """The camera image (no inference, 345 bytes: 2.76 ms at 1 Mbit/s, 2 ms on the host) and an edge split
    (2 ms of inference, 10 bytes, 0.2 ms on the host)."""
    table = C.CostTable(network("digits"))
    img, edge = C.Candidate("input", "lossless", 0, 0), C.Candidate("fc6", "lossless", 0, 6)
    table.costs[img.key] = C.Cost(0.0, 0.0, 1e-6, 0.0, 784, 345.0)
    table.costs[edge.key] = C.Cost(2e-3, 0.0, 1.4e-4, 0.0, 20, 10.0)
    p = C.Predictor(table)
    p.host[img.key], p.host[edge.key] = 2e-3, 2e-4
    return p, img, edge


def test_mix_period_pairs_each_transmission_with_the_next_inference():
    a, b = np.array([1.0, 8.0, 0.5]), np.array([3.0, 0.08, 0.1])     # inference, transmit, host (ms)
    assert [float(v) for v in C.mix_period(a, b, 0.0)] == [3.0, 0.1]            # b alone: max(3, 0.08)
    assert [float(v) for v in C.mix_period(a, b, 1.0)] == [8.0, 0.5]
    edge, host = C.mix_period(a, b, 0.25)      # a b b b: a's 8 ms beside b's 3, b's 0.08 beside a's 1, 2 x b b
    assert float(edge) == pytest.approx(0.25 * 8 + 0.25 * 1 + 0.5 * 3) and float(host) == pytest.approx(0.2)
    edge, _ = C.mix_period(a, b, 0.75)
    assert float(edge) == pytest.approx(0.25 * 8 + 0.25 * 1 + 0.5 * 8)


def test_a_mix_keeps_engine_and_link_busy():
    """At 1 Mbit/s the image alone is transmit-bound (2.76 ms), the edge split inference-bound (2 ms); alternating
    them, each image is sent while the engine computes the next edge frame: 1.42 ms a frame."""
    p, img, edge = _image_and_edge()
    q = p.best_mix([img, edge], 1.0, "throughput")
    assert {q.mix.a, q.mix.b} == {img, edge} and q.mix.share(img) == pytest.approx(0.5)
    assert q.period == pytest.approx((2.76 + 0.08) / 2 * 1e-3) and q.fps > 1.4 * p.best([img, edge], 1.0).fps
    assert q.energy == pytest.approx((p.predict(img, 1.0).energy + p.predict(edge, 1.0).energy) / 2)
    assert p.best_mix([img, edge], 1.0, "throughput").bottleneck == "engine and link"
    # at 22 Mbit/s the host bounds the share of images: 0.2 + 1.8 f = 2 - (4 - 2 - 0.00364) f
    q22 = p.best_mix([img, edge], 22.0, "throughput")
    f = 1.8 / (1.8 + 2 - 0.08 / 22)
    assert q22.mix.share(img) == pytest.approx(f) and q22.period == pytest.approx((0.2 + 1.8 * f) * 1e-3)
    pol = C.make_policy("dynamic", p, [img, edge], load_trace("const_1mbps"), C.PolicyConfig(objective="throughput"))
    e = C.Estimator(history=1)
    e.add(0.0, 345, 2.76e-3)
    picks = [pol.decide(k, 1.0, e)[0] for k in range(100)]
    assert picks.count(img) == 50 and picks[:4] in ([img, edge] * 2, [edge, img] * 2) and pol.switches == 0
    for k in range(1000):     # re-solved every frame to a slightly different mix: the shares still hold
        pol._set(C.Mix.of(img, edge, 0.30 if k % 2 else 0.32))
        picks.append(pol._next())
    assert picks[100:].count(img) == 310 and pol.switches == 1000


def test_the_balanced_objective_pays_no_energy_for_a_small_gain():
    p, a, b = _two()
    c = C.Candidate("conv2", "lossless", 0, 2)
    p.costs.costs[c.key] = C.Cost(1.05e-3, 0.0, 1e-5, 0.0, 2048, 100.0)    # 5% slower than A, 1/10 the radio
    fast, lean = p.predict(a, 22.0), p.predict(c, 22.0)
    assert fast.fps == pytest.approx(1.05 * lean.fps) and fast.energy > 5 * lean.energy
    assert p.best([a, c], 22.0, "throughput").candidate == a                # 2% tie: takes the 5% gain
    assert p.best([a, c], 22.0, "balanced").candidate == c
    assert p.best_mix([a, b, c], 22.0, "balanced").mix == C.Mix.of(c)


def test_dynamic_follows_a_step():
    p, a, b = _two()
    pol = C.make_policy("dynamic", p, [a, b], load_trace("step"),
                        C.PolicyConfig(history=3, dwell=2, objective="throughput", mix=False))
    e = C.Estimator(history=3)
    chosen = []
    for k in range(60):
        mbps = 22.0 if k < 30 else 1.0
        e.add(k, 1000, 8000 / (mbps * 1e6))
        chosen.append(pol.decide(k, k + 0.5, e)[0])
    assert chosen[25] == a and chosen[-1] == b and pol.switches == 1


def test_oracle_and_the_baselines():
    p, a, b = _two()
    tr = Trace("t", (0.0, 1.0), (22.0, 1.0), (link_power_w(22), link_power_w(1)), 2.0)
    oracle = C.make_policy("oracle", p, [a, b], tr, C.PolicyConfig(objective="throughput", mix=False))
    e = C.Estimator()
    assert oracle.decide(0, 0.1, e)[0] == a and oracle.decide(1, 1.5, e)[0] == b
    p2, img, edge = _image_and_edge()
    mixed = C.make_policy("oracle", p2, [img, edge], tr, C.PolicyConfig(objective="throughput"))
    fast = [mixed.decide(k, 0.1 + k * 1e-3, e)[0] for k in range(100)]     # 22 Mbit/s: host-bound share
    slow = [mixed.decide(k, 1.5 + k * 1e-3, e)[0] for k in range(100)]     # 1 Mbit/s: alternate
    assert fast.count(img) == round(100 * 1.8 / (1.8 + 2 - 0.08 / 22)) and slow.count(img) == 50
    assert mixed.switches == 1 and mixed.mix.share(img) == pytest.approx(0.5)
    assert C.make_policy("edge-only", p, [a, b], tr, C.PolicyConfig()).fixed == b
    best = C.make_policy("best-static", p, [a, b], tr, C.PolicyConfig())
    assert best.fixed == p.best([a, b], tr.mean_mbps()).candidate and best.name == "best-static"
    with pytest.raises(UserError, match="input split"):
        C.make_policy("host-only", p, [a, b], tr, C.PolicyConfig())
    with pytest.raises(UserError, match="unknown policy"):
        C.make_policy("greedy", p, [a, b], tr, C.PolicyConfig())


def test_a_busy_host_slows_every_candidate_alike():
    p, a, b = _two()
    p.host[a.key], p.host[b.key] = 1e-3, 2e-3      # probed
    for _ in range(1000):
        p.observe_host(a, 3e-3)                   # the host is now 3x slower than when probed
    assert p.load == pytest.approx(3.0, rel=1e-3)
    assert p.host_s(b) == pytest.approx(6e-3, rel=1e-3)   # b's estimate follows, though b is not in use
    assert p.host_times()[a.key] == pytest.approx(3e-3, rel=1e-3)


def test_trace_bounds_per_segment_and_static():
    """22 Mbit/s for 1 s then 1 Mbit/s for 1 s: the image alone 500 (host) then 362.3 frames/s (transmit), the
    edge split 500 always; the best mix 1 / (0.2 + 1.8 f) ms (test above) then 1 / 1.42 ms."""
    p, img, edge = _image_and_edge()
    tr = Trace("t", (0.0, 1.0), (22.0, 1.0), (link_power_w(22), link_power_w(1)), 2.0)
    r = C.trace_bounds(p, [img, edge], tr, "throughput")
    assert r["static"][img.label]["fps"] == pytest.approx((500 + 1e3 / 2.76) / 2)
    assert r["static"][edge.label]["fps"] == pytest.approx(500)
    assert r["best_fixed"]["candidate"] == edge.label and r["segments"] == 2
    assert r["per_segment_split"]["fps"] == pytest.approx(500)
    f = 1.8 / (1.8 + 2 - 0.08 / 22)
    fast, slow = 1e3 / (0.2 + 1.8 * f), 1e3 / 1.42
    assert r["per_segment_mix"]["fps"] == pytest.approx((fast + slow) / 2)
    ef, es = p.best_mix([img, edge], 22.0, "throughput").energy, p.best_mix([img, edge], 1.0, "throughput").energy
    assert r["per_segment_mix"]["energy_j"] == pytest.approx((fast * ef + slow * es) / (fast + slow))
    assert r["objective"] == {"name": "throughput", **r["per_segment_mix"]}
