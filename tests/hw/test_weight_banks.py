"""The weight banks on their own (Amaranth simulator) against a cycle model: random row writes, per-lane writes
(over row writes of the same lanes), bias words from both sides (extreme words: 0, 0x7FFF, 0x8000, 0xFFFF), flag
sets, releases and clears, reads of either bank (read-during-write: the old row), at 12, 4 and 16 lanes; every
output (flags, both banks' read rows, every bias register) compared every cycle."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.weight_banks import WeightBanks

EXTREME_WORDS = (0, 1, 0x7FFF, 0x8000, 0xFFFF)


def _s16(w):
    return w - 0x10000 if w & 0x8000 else w


def _s48(v):
    return v - (1 << 48) if v >> 47 else v


class BanksModel:
    """The banks cycle by cycle: ``step(inputs)`` applies one clock edge."""

    def __init__(self, lanes, depth):
        self.mem = np.zeros((2, lanes, depth), np.int64)
        self.bias = [[0] * lanes for _ in range(2)]      # unsigned 48-bit
        self.rd = np.zeros((2, lanes), np.int64)
        self.full = self.filling = 0
        self.lanes = lanes

    def step(self, x):
        L = self.lanes
        for i in range(2):           # synchronous reads: the old contents
            if x["rd_en"] and x["rd_bank"] == i:
                self.rd[i] = self.mem[i, :, x["rd_addr"]]
        for j in range(L):
            if x["lane_we"] >> j & 1:
                self.mem[x["lane_bank"], j, x["lane_addr"][j]] = x["lane_data"][j]
            elif x["row_we"]:
                self.mem[x["row_bank"], j, x["row_addr"]] = x["row_data"][j]
        for we, bank, word, words in (("row_bias_we", "row_bank", "row_bias_word", "row_data"),
                                      ("lane_bias_we", "lane_bias_bank", "lane_bias_word", "lane_bias_data")):
            if x[we]:
                for j in range(L):
                    sh = 16 * x[word]
                    old = self.bias[x[bank]][j]
                    self.bias[x[bank]][j] = (old & ~(0xFFFF << sh)) | ((x[words][j] & 0xFFFF) << sh)
        if x["clear"]:
            self.full = self.filling = 0
        else:
            self.full, self.filling = ((self.full | x["set_full"]) & ~x["release"] & 3,
                                       (self.filling | x["fill_set"]) & ~x["set_full"] & 3)


def _word(rng, signed_):
    w = int(rng.choice(EXTREME_WORDS)) if rng.random() < 0.3 else int(rng.integers(0, 1 << 16))
    return _s16(w) if signed_ else w


def random_inputs(rng, lanes, depth, p):
    """One cycle's inputs; ``p``: how often each write / flag input is on."""
    addr = lambda: int(rng.integers(0, min(depth, 4))) if rng.random() < 0.5 else int(rng.integers(0, depth))  # noqa: E731
    return {
        "clear": int(rng.random() < 0.03),
        "row_we": int(rng.random() < p), "row_bias_we": int(rng.random() < p / 2), "row_bank": int(rng.integers(2)),
        "row_addr": addr(), "row_data": [_word(rng, True) for _ in range(lanes)],
        "row_bias_word": int(rng.integers(3)),
        "lane_we": int(rng.integers(0, 1 << lanes)) if rng.random() < p else 0, "lane_bank": int(rng.integers(2)),
        "lane_addr": [addr() for _ in range(lanes)], "lane_data": [_word(rng, True) for _ in range(lanes)],
        "lane_bias_we": int(rng.random() < p / 2), "lane_bias_bank": int(rng.integers(2)),
        "lane_bias_word": int(rng.integers(3)), "lane_bias_data": [_word(rng, False) for _ in range(lanes)],
        "fill_set": int(rng.integers(4)) if rng.random() < 0.3 else 0,
        "set_full": int(rng.integers(4)) if rng.random() < 0.3 else 0,
        "release": int(rng.integers(4)) if rng.random() < 0.3 else 0,
        "rd_en": int(rng.random() < 0.7), "rd_bank": int(rng.integers(2)), "rd_addr": addr(),
    }


def run_banks(lanes, depth, cycles, seed):
    rng = np.random.default_rng(seed)
    dut = WeightBanks(lanes, depth)
    ref = BanksModel(lanes, depth)
    checked = {"cycles": 0, "row_writes": 0, "lane_writes": 0, "bias_writes": 0, "reads": 0}

    async def bench(ctx):
        for cyc in range(cycles):
            x = random_inputs(rng, lanes, depth, p=0.6 if cyc < cycles // 2 else 0.2)
            for k, v in x.items():
                if isinstance(v, list):
                    for j, e in enumerate(v):
                        ctx.set(getattr(dut, k)[j], e)
                else:
                    ctx.set(getattr(dut, k), v)
            # outputs: the state before this edge
            assert ctx.get(dut.full) == ref.full and ctx.get(dut.filling) == ref.filling, cyc
            for i in range(2):
                got = [ctx.get(dut.rd_data[i][j]) for j in range(lanes)]
                assert got == [int(v) for v in ref.rd[i]], (cyc, i)
                got = [ctx.get(dut.bias[i][j]) for j in range(lanes)]
                assert got == [_s48(v) for v in ref.bias[i]], (cyc, i)
            ref.step(x)
            checked["cycles"] += 1
            checked["row_writes"] += x["row_we"]
            checked["lane_writes"] += bin(x["lane_we"]).count("1")
            checked["bias_writes"] += x["row_bias_we"] + x["lane_bias_we"]
            checked["reads"] += x["rd_en"]
            await ctx.tick()
        # every row of both banks, read back through the read port
        for k in ("row_we", "row_bias_we", "lane_we", "lane_bias_we", "clear", "fill_set", "set_full", "release"):
            ctx.set(getattr(dut, k), 0)
        ctx.set(dut.rd_en, 1)
        for i in range(2):
            ctx.set(dut.rd_bank, i)
            for a in range(depth):
                ctx.set(dut.rd_addr, a)
                await ctx.tick()
                assert [ctx.get(dut.rd_data[i][j]) for j in range(lanes)] == [int(v) for v in ref.mem[i, :, a]]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return checked


@pytest.mark.parametrize("lanes,depth,seed", [(12, 16, 1), (12, 64, 2), (4, 16, 3), (16, 32, 4),
                                                    (24, 32, 5)])
def test_weight_banks_random(lanes, depth, seed):
    checked = run_banks(lanes, depth, cycles=400, seed=seed)
    assert checked["row_writes"] > 50 and checked["lane_writes"] > 100 and checked["bias_writes"] > 30
    assert checked["reads"] > 200


def test_weight_banks_flags_sequence():
    """A bank's life: reserved, filled, full, released; set_full over fill_set, release over set_full,
    clear over everything."""
    dut = WeightBanks(12, 16)
    seen = []

    async def bench(ctx):
        steps = [dict(fill_set=0b01), dict(), dict(set_full=0b01, fill_set=0b10), dict(release=0b01),
                 dict(set_full=0b10, release=0b10), dict(fill_set=0b11, set_full=0b11), dict(clear=1, set_full=0b11),
                 dict()]
        for s in steps:
            for k in ("fill_set", "set_full", "release", "clear"):
                ctx.set(getattr(dut, k), s.get(k, 0))
            await ctx.tick()
            seen.append((ctx.get(dut.full), ctx.get(dut.filling)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(0, 1), (0, 1), (1, 2), (0, 2), (0, 0), (3, 0), (0, 0), (0, 0)]


@pytest.mark.parametrize("kw", [dict(lanes=0, depth=64), dict(lanes=25, depth=64), dict(lanes=12, depth=8),
                                dict(lanes=12, depth=2**16 + 1), dict(lanes=True, depth=64),
                                dict(lanes=12, depth=64.0)])
def test_weight_banks_refuses(kw):
    with pytest.raises(ValueError, match="WeightBanks (lanes|depth) must be"):
        WeightBanks(**kw)
