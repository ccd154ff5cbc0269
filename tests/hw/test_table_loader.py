"""The table loader on its own (Amaranth simulator): random tables (1 entry, odd counts, whole beats, all-ones
and zero entries) behind a DRAM model with latency, jitter and refusals, at 12-, 8- and 16-word beats; the table
port sees exactly entries 0..rows-1 in order, each once, and ``done`` comes the cycle after the last beat's pairs."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.engine import dram_req_layout, dram_resp_layout
from hw.table_loader import TableLoader
from tests.hw.fake_dram import FakeReadPort

BASE = 0x123


def run_loader(entries, beat, seed):
    rng = np.random.default_rng(seed)
    dram = np.zeros(1 << 12, np.int64)
    words = np.stack([entries & 0xFFFF, entries >> 16], axis=1).ravel()
    dram[BASE:BASE + words.size] = words
    dram[BASE + words.size:BASE + words.size + 2 * beat] = 0xFFFF      # past the table: must not be written
    dut = TableLoader(dram_req_layout(beat), dram_resp_layout(beat))
    out = {"writes": [], "done_at": None, "last_write": None}

    async def bench(ctx):
        ctx.set(dut.p.dram_addr, BASE)
        ctx.set(dut.p.rows, len(entries))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.run, 1)
        port, cycle = FakeReadPort(dram, beat, rng, extra_latency=5), 0
        while True:
            cycle += 1
            assert cycle < 5000
            port.drive(ctx, dut, cycle)
            port.accept(ctx, dut, cycle)
            port.taken(ctx, dut)
            if ctx.get(dut.tbl_we):
                out["writes"].append((ctx.get(dut.tbl_addr), ctx.get(dut.tbl_data)))
                out["last_write"] = cycle
            if ctx.get(dut.done):
                out["done_at"] = cycle
                assert not port.pending
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return out


@pytest.mark.parametrize("beat", [12, 8, 16])
def test_table_loader_random(beat):
    rng = np.random.default_rng(beat)
    for i, rows in enumerate([1, beat // 2, beat // 2 + 1, 7, 3 * beat, 61]):
        entries = rng.integers(0, 2**32, rows, dtype=np.int64)
        if i % 2:
            entries[::3] = 2**32 - 1
            entries[1::3] = 0
        out = run_loader(entries, beat, seed=i)
        assert out["writes"] == [(k, int(e)) for k, e in enumerate(entries)]
        pad = -rows % (beat // 2)                      # the last beat's entries past the table, gone through unwritten
        assert out["done_at"] == out["last_write"] + 1 + pad


def test_refuses():
    with pytest.raises(ValueError, match="TableLoader needs DRAM beats"):
        TableLoader(dram_req_layout(5), dram_resp_layout(5))
