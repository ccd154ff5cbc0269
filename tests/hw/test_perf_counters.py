"""The performance counters on their own (Amaranth simulator) against a Python model: the class priority (every
combination of the four class inputs), the two enables, and exact accumulation modulo 2**bits of extreme
increments (0, 1, all ones, 2**(bits-1), random) on the engine's counter set at 48 bits and on a small set at 8
bits (many wraps)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine import COUNTER_BITS, COUNTERS
from hw.perf_counters import CLASS_COUNTERS, PerfCounters

CLS = ("busy", "dram", "fetch", "drain")
CLASS_OF = ("busy", "stall_dram", "stall_fetch", "stall_drain")   # by priority; none high: stall_control


def class_counter(cls):
    """The class counter a cycle with class inputs ``cls`` (dict of 0/1) adds to."""
    return next((c for k, c in zip(CLS, CLASS_OF, strict=True) if cls[k]), "stall_control")


def run_counters(names, bits, free, cycles, seed):
    """Drive random (and, first, every class combination) inputs; compare every counter every cycle."""
    rng = np.random.default_rng(seed)
    dut = PerfCounters(names, bits, free=free)
    top = (1 << bits) - 1
    extremes = [0, 1, top, 1 << (bits - 1), top - 1]
    model = dict.fromkeys(names, 0)
    seen = {"class_hits": dict.fromkeys(CLASS_OF + ("stall_control",), 0), "wraps": 0}

    async def bench(ctx):
        for cycle in range(cycles):
            if cycle < 16:      # every class combination once, counted, no other increments
                cls = {k: (cycle >> b) & 1 for b, k in enumerate(CLS)}
                en, en_free = 1, 0
                inc = dict.fromkeys(dut.inc_names, 0)
            else:
                cls = {k: int(rng.random() < 0.4) for k in CLS}
                en, en_free = int(rng.random() < 0.8), int(rng.random() < 0.8)
                inc = {n: (extremes[int(rng.integers(0, len(extremes)))] if rng.random() < 0.6
                           else int(rng.integers(0, top, endpoint=True))) for n in dut.inc_names}
            for k in CLS:
                ctx.set(getattr(dut, f"cls_{k}"), cls[k])
            ctx.set(dut.en, en)
            ctx.set(dut.en_free, en_free)
            for n, v in inc.items():
                ctx.set(dut.inc[n], v)
            got = {n: ctx.get(dut.ctr[n]) for n in names}
            assert got == model, f"cycle {cycle}"
            step = dict(inc, cycles=1, **dict.fromkeys(CLASS_OF + ("stall_control",), 0))
            step[class_counter(cls)] = 1
            if cycle < 16:
                before = dict(model)
            for n in names:
                if en_free if n in free else en:
                    seen["wraps"] += model[n] + step[n] > top
                    model[n] = (model[n] + step[n]) & top
            if cycle < 16:     # exactly one class counter moved, the one of the highest class input
                moved = {n for n in names if model[n] != before[n]} - set(dut.inc_names) - {"cycles"}
                assert moved == {class_counter(cls)}
                seen["class_hits"][class_counter(cls)] += 1
            await ctx.tick()
        assert {n: ctx.get(dut.ctr[n]) for n in names} == model

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return model, seen


def test_engine_counters():
    free = [n for n in COUNTERS if n.startswith("enc_")]
    model, seen = run_counters(COUNTERS, COUNTER_BITS, free, cycles=600, seed=1)
    # the 16 combinations: busy wins 8, dram 4, fetch 2, drain 1, control 1
    assert seen["class_hits"] == {"busy": 8, "stall_dram": 4, "stall_fetch": 2, "stall_drain": 1,
                                  "stall_control": 1}
    assert seen["wraps"] > 100 and model["cycles"] > 16


def test_small_counters_wrap():
    names = ("a", "cycles", "b") + CLASS_COUNTERS[1:] + ("f",)
    model, seen = run_counters(names, 8, ["f", "b"], cycles=1500, seed=2)
    assert seen["wraps"] > 1000


def test_refuses():
    with pytest.raises(ValueError, match="must include the class counters"):
        PerfCounters(("cycles", "busy"), 48)
    with pytest.raises(ValueError, match="bits must be an integer"):
        PerfCounters(CLASS_COUNTERS, 0)
    with pytest.raises(ValueError, match="free must be distinct names"):
        PerfCounters(CLASS_COUNTERS + ("x",), 48, free=["busy"])
    with pytest.raises(ValueError, match="distinct identifiers"):
        PerfCounters(CLASS_COUNTERS + ("x", "x"), 48)
