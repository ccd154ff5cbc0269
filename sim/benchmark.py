"""``make bench``: simulated clock cycles per wall second of the MAC array, Verilator vs Amaranth.

Both simulators run the same kind of workload (back-to-back 12 x 12 tiles of K = 1000 random int16
operands, a Python testbench feeding one beat per cycle and checking the outputs against golden).
Results are printed as a table and saved to ``build/bench/mac_array_speed.json``.
"""

from __future__ import annotations

import json
import platform
import sys
import time

import numpy as np

from sim.designs import MAC_ARRAY
from sim.runner import BUILD_DIR, run


def verilator_speed(beats: int) -> dict:
    out = BUILD_DIR / "bench" / "verilator_speed.json"
    run(MAC_ARRAY, "sim.tb_mac_array", testcase="speed",
        env={"EDGESPLIT_BENCH_BEATS": str(beats), "EDGESPLIT_RESULT": str(out)})
    return json.loads(out.read_text())


def amaranth_speed(beats: int) -> dict:
    """The same stream in Amaranth's Python simulator (its own testbench API)."""
    from amaranth.sim import Simulator

    from golden.fixedpoint import linear_int
    from hw.mac_array import MacArray, input_layout, output_layout
    from sim.payload import Packer

    dut = MacArray()
    rng = np.random.default_rng(11)
    k = 1000
    tiles = [(rng.integers(-32768, 32768, size=(12, k)), rng.integers(-32768, 32768, size=(k, 12)))
             for _ in range(max(1, beats // k))]
    pin, pout = Packer(input_layout(12, 12)), Packer(output_layout(12, 12))
    got: list[np.ndarray] = []
    stats = {}

    async def feed(ctx):
        ctx.set(dut.shift, 31)
        ctx.set(dut.out.ready, 1)
        t0 = time.monotonic()
        cycles = 0
        for a, w in tiles:
            for beat in pin.pack(k, a=a.T, w=w, last=[0] * (k - 1) + [1]):
                ctx.set(dut.inp.payload.as_value(), beat)
                ctx.set(dut.inp.valid, 1)
                await ctx.tick().until(dut.inp.ready)
                cycles += 1
        ctx.set(dut.inp.valid, 0)
        stats.update(cycles=cycles, wall_s=time.monotonic() - t0)

    async def collect(ctx):
        while len(got) < 12 * len(tiles):
            _, _, valid, payload = await ctx.tick().sample(dut.out.valid, dut.out.payload.as_value())
            if valid:
                got.append(pout.unpack(payload)["data"])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(collect)
    sim.run()
    for t, (a, w) in enumerate(tiles):
        assert np.array_equal(np.array(got[12 * t:12 * t + 12]), linear_int(a, w, np.zeros(12, np.int64), 31).T)
    stats["cycles_per_s"] = stats["cycles"] / stats["wall_s"]
    return stats


def main() -> int:
    (BUILD_DIR / "bench").mkdir(parents=True, exist_ok=True)
    print("MAC array simulation speed (12x12, K=1000 tiles, Python testbench feeding every cycle)...", flush=True)
    v = verilator_speed(200_000)
    a = amaranth_speed(3_000)
    rows = [("Verilator (cocotb, -O3, ports-only VPI)", v), ("Amaranth Python simulator", a)]
    print(f"{'simulator':42} {'cycles':>10} {'wall s':>8} {'cycles/s':>10}")
    for name, r in rows:
        print(f"{name:42} {r['cycles']:>10,} {r['wall_s']:>8.2f} {r['cycles_per_s']:>10,.0f}")
    ratio = v["cycles_per_s"] / a["cycles_per_s"]
    print(f"Verilator / Amaranth: {ratio:.0f}x (measured in this run)")
    result = {"machine": platform.node(), "python": platform.python_version(),
              "verilator": v, "amaranth": a, "ratio": ratio}
    path = BUILD_DIR / "bench" / "mac_array_speed.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
