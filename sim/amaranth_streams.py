"""Drive a stream component in Amaranth's own simulator (unit tests of small blocks).

``stream_sim(dut, inputs, done)`` feeds payload dicts into ``dut.inp`` with random gaps, takes
``dut.out`` with random back-pressure until ``done(outputs)`` holds, and returns the outputs (and the
final values of any signals to watch). The Verilator testbenches use ``sim.streams`` instead.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator


def as_dict(c) -> dict:
    """A struct view's fields as a dict."""
    return {name: c[name] for name, _ in c.shape()}


def stream_sim(dut, inputs: list[dict], done, *, setup=None, gap=0.0, stall=0.0, seed=0, max_cycles=200_000,
               watch=()) -> tuple[list[dict], dict]:
    """Drive ``inputs`` into ``dut.inp``, collect ``dut.out`` payloads until ``done(outputs)``; return them
    and the final values of the signals in ``watch`` (name -> signal). ``setup(ctx)`` runs first (table
    writes, start pulses); ``gap``/``stall``: probability of an input gap / output stall per cycle."""
    rng = random.Random(seed)
    outs: list[dict] = []
    final: dict = {}

    async def bench(ctx):
        if setup is not None:
            await setup(ctx)
        i = 0
        for _ in range(max_cycles):
            if done(outs):
                await ctx.tick()
                for name, sig in dict(watch).items():
                    final[name] = ctx.get(sig)
                return
            drive = i < len(inputs) and rng.random() >= gap
            if drive:
                ctx.set(dut.inp.payload, inputs[i])
            ctx.set(dut.inp.valid, drive)
            ready = rng.random() >= stall
            ctx.set(dut.out.ready, ready)
            _, _, in_ready, valid, payload = await ctx.tick().sample(dut.inp.ready, dut.out.valid, dut.out.payload)
            if drive and in_ready:
                i += 1
            if ready and valid:
                outs.append(as_dict(payload))
        raise TimeoutError(f"{type(dut).__name__}: {len(outs)} outputs after {max_cycles} cycles")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return outs, final
