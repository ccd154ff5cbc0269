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
