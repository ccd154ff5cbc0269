"""Run the engine in Amaranth's own simulator with a Python DRAM model (small cases, unit tests).

The Verilator flow (``sim.engine_run``) is the fast one; this one needs no C++ build and is used by the
unit tests of small layers.
"""

from __future__ import annotations

import random
from collections import deque

import numpy as np
from amaranth.sim import Simulator

from hw.engine import COUNTERS, Engine
from sim.program import EngineConfig, Program


def run_engine_amaranth(prog: Program, config: EngineConfig, latency: int = 3, gap_prob: float = 0.0,
                        seed: int = 0, max_cycles: int = 200_000, jitter: int = 0,
                        encoder: bool | None = None, colour: bool | None = None) -> tuple[np.ndarray, list[dict]]:
    """Returns (final DRAM image, counters snapshot after each command). Read responses come back in
    order after ``latency`` plus a random 0..``jitter`` cycles; ``gap_prob`` refuses requests at random.
    ``encoder``: build the engine with its encode unit (default: when the program encodes; the unit
    only slows Python simulation down otherwise); ``colour``: its colour build (default: when the program codes
    a camera image, ``sim.program.compile_image``)."""
    if encoder is None:
        encoder = bool(prog.encodings)
    if colour is None:
        colour = any(getattr(p, "sampling", 0) for p in prog.encodings.values())
    dut = Engine(fb_words=config.fb_words, wb_depth=config.wb_depth, encoder=encoder,
                 weight_decoder=any(c.w_codec for c in prog.commands), lanes=config.lanes, colour=colour)
    beat = config.lanes    # words per DRAM beat
    dram = prog.dram.astype(np.int64).copy()
    dram = np.concatenate([dram, np.zeros(64, np.int64)])
    rng = random.Random(seed)
    snaps: list[dict] = []

    async def bench(ctx):
        ctx.set(dut.cmd_addr, prog.cmd_addr)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        pending: deque = deque()   # (ready_cycle, words)
        cycle = 0
        while True:
            ready = not (gap_prob and rng.random() < gap_prob)
            ctx.set(dut.dram_req.ready, ready)
            if pending and pending[0][0] <= cycle:
                words = pending[0][1]
                ctx.set(dut.dram_resp.valid, 1)
                for i in range(beat):
                    ctx.set(dut.dram_resp.payload.rdata[i], int(words[i]) & 0xFFFF)
            else:
                ctx.set(dut.dram_resp.valid, 0)
            req_valid = ctx.get(dut.dram_req.valid)
            resp_ready = ctx.get(dut.dram_resp.ready)
            if req_valid and ready:
                addr = ctx.get(dut.dram_req.payload.addr)
                count = ctx.get(dut.dram_req.payload.count)
                if ctx.get(dut.dram_req.payload.write):
                    for i in range(count):
                        dram[addr + i] = ctx.get(dut.dram_req.payload.wdata[i])
                else:
                    t = max(cycle + latency + (rng.randint(0, jitter) if jitter else 0),
                            pending[-1][0] if pending else 0)
                    pending.append((t, dram[addr:addr + beat].copy()))
            if pending and pending[0][0] <= cycle and resp_ready:
                pending.popleft()
            if ctx.get(dut.cmd_done):
                snaps.append({n: ctx.get(getattr(dut, f"ctr_{n}")) for n in COUNTERS})
            if ctx.get(dut.done):
                snaps.append({n: ctx.get(getattr(dut, f"ctr_{n}")) for n in COUNTERS})
                return
            await ctx.tick()
            cycle += 1
            if cycle > max_cycles:
                raise TimeoutError(f"engine not done after {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return dram.astype(np.uint16), snaps
