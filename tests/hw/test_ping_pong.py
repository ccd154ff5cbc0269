"""The double buffer's flags and pointers (``hw.ping_pong``) on random stimulus against ``ref_ping_pong``: every
output in every cycle, with releases only while ready and starts in between."""

import random

from amaranth.sim import Simulator

from hw.ping_pong import PingPong, ref_ping_pong

OUTPUTS = ("fill_buf", "fill_free", "buf", "ready", "full", "empty")


def test_random_against_model():
    rng = random.Random(3)
    dut = PingPong()
    seen, steps = [], []

    async def bench(ctx):
        for _ in range(3000):
            s = dict(start=int(rng.random() < 0.01), fill_next=int(rng.random() < 0.4),
                     set=int(rng.random() < 0.4), set_buf=rng.randint(0, 1), release=0)
            for name in ("start", "fill_next", "set", "set_buf"):
                ctx.set(getattr(dut, name), s[name])
            s["release"] = int(ctx.get(dut.ready) and rng.random() < 0.5)
            ctx.set(dut.release, s["release"])
            steps.append(s)
            seen.append({n: ctx.get(getattr(dut, n)) for n in OUTPUTS})
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    want = ref_ping_pong(steps)
    assert sum(s["release"] for s in steps) > 300 and sum(s["start"] for s in steps) > 10
    for i, (got, exp) in enumerate(zip(seen, want, strict=True)):
        assert got == exp, i
