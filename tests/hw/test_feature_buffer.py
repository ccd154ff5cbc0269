"""Feature buffer: unaligned wide writes and reads against a flat-array model (Amaranth simulator)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.feature_buffer import FeatureBuffer


def ref_fb(ops, words):
    mem = np.zeros(words, dtype=np.int64)
    reads = []
    for op in ops:
        if op[0] == "w":
            _, addr, vals, mask = op
            for t in range(12):
                if mask[t]:
                    mem[(addr + t) % words] = vals[t]
        else:
            reads.append([int(mem[(op[1] + t) % words]) for t in range(16)])
    return reads


def rtl_fb(ops, words):
    dut = FeatureBuffer(words)
    reads = []

    async def bench(ctx):
        for op in ops:
            if op[0] == "w":
                _, addr, vals, mask = op
                ctx.set(dut.wr_addr, addr)
                ctx.set(dut.wr_en, 1)
                for t in range(12):
                    ctx.set(dut.wr_data[t], int(vals[t]))
                ctx.set(dut.wr_mask, sum(int(m) << t for t, m in enumerate(mask[:12])))
                await ctx.tick()
                ctx.set(dut.wr_en, 0)
            else:
                ctx.set(dut.rd_addr, op[1])
                ctx.set(dut.rd_en, 1)
                await ctx.tick()
                ctx.set(dut.rd_en, 0)
                await ctx.tick()  # data holds while rd_en is low
                reads.append([ctx.get(dut.rd_data[t]) for t in range(16)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return reads


def test_unaligned_wide_access():
    words = 256
    rng = np.random.default_rng(0)
    ops = []
    for _ in range(120):
        if rng.random() < 0.5:
            vals = rng.choice([-32768, 32767, 0, -1, int(rng.integers(-32768, 32768))], size=12)
            ops.append(("w", int(rng.integers(0, words - 16)), vals, rng.random(12) < 0.8))
        else:
            ops.append(("r", int(rng.integers(0, words - 16))))
    assert rtl_fb(ops, words) == ref_fb(ops, words)


def test_parameters_checked():
    with pytest.raises(ValueError, match="100"):
        FeatureBuffer(100)
    with pytest.raises(ValueError, match="banks"):
        FeatureBuffer(256, banks=12)
    with pytest.raises(ValueError, match="write_lanes"):
        FeatureBuffer(256, write_lanes=17)


def ref_half_set(addr, words, banks=16, halves=2):
    """Per bank, the half of the row an access at ``addr`` touches (the memories it needs)."""
    depth = words // banks
    rot, row = addr % banks, addr // banks
    return [((row + (b < rot)) % depth) // (depth // halves) for b in range(banks)]


@pytest.mark.parametrize("halves", [1, 2])
def test_two_ports_two_halves(halves):
    """Random cycles with both ports reading and writing at once, unaligned, across the half boundary: port A
    always goes; port B goes exactly when no memory is wanted by both (or, with one half, when A is idle);
    every read returns the flat array's contents."""
    words = 512
    rng = np.random.default_rng(halves)
    dut = FeatureBuffer(words, halves=halves)
    mem = np.zeros(words, dtype=np.int64)
    checks = []

    async def bench(ctx):
        for _ in range(300):
            ops = {}
            for port in ("a", "b"):
                kind = rng.choice(["r", "w", "-"], p=[0.4, 0.4, 0.2])
                addr = int(rng.choice([words // 2 - 8, words - 5, int(rng.integers(0, words))]))
                ops[port] = (kind, addr)
            for port, prefix in (("a", ""), ("b", "b_")):
                kind, addr = ops[port]
                ctx.set(getattr(dut, f"{prefix}rd_en"), int(kind == "r"))
                ctx.set(getattr(dut, f"{prefix}wr_en"), int(kind == "w"))
                ctx.set(getattr(dut, f"{prefix}rd_addr"), addr)
                ctx.set(getattr(dut, f"{prefix}wr_addr"), addr)
                vals = rng.integers(-32768, 32768, size=12)
                ops[port] = (kind, addr, vals)
                for t in range(12):
                    ctx.set(getattr(dut, f"{prefix}wr_data")[t], int(vals[t]))
                ctx.set(getattr(dut, f"{prefix}wr_mask"), 0xFFF)
            # which B accesses go this cycle
            def ok(kind, ops=ops):
                a_kind, a_addr, _ = ops["a"]
                if a_kind != kind:
                    return True
                if halves == 1:
                    return False
                ha, hb = ref_half_set(a_addr, words), ref_half_set(ops["b"][1], words)
                return not any(x == y for x, y in zip(ha, hb, strict=True))
            assert ctx.get(dut.b_rd_ok) == int(ok("r"))
            assert ctx.get(dut.b_wr_ok) == int(ok("w"))
            # reads see the memory before this cycle's writes
            now = {}
            for port in ("a", "b"):
                kind, addr, _ = ops[port]
                if kind == "r" and (port == "a" or ok("r")):
                    now[port] = [int(mem[(addr + t) % words]) for t in range(16)]
            for port in ("a", "b"):
                kind, addr, vals = ops[port]
                if kind == "w" and (port == "a" or ok("w")):
                    for t in range(12):
                        mem[(addr + t) % words] = vals[t]
            await ctx.tick()
            for port, prefix in (("a", ""), ("b", "b_")):
                if port in now:
                    got = [ctx.get(getattr(dut, f"{prefix}rd_data")[t]) for t in range(16)]
                    checks.append(got == now[port])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert checks and all(checks)


def test_bad_halves():
    with pytest.raises(ValueError, match="halves"):
        FeatureBuffer(512, halves=3)
