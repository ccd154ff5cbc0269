"""``make bench``: the measured performance figures, printed as tables and saved under ``build/bench/``.

1. MAC array simulation speed, Verilator vs Amaranth's Python simulator: back-to-back 12 x 12 tiles of
   K = 1000 random int16 operands, a Python testbench feeding one beat per cycle and checking the
   outputs against golden (``mac_array_speed.json``).
3. The feature encoder's compression on AlexNet: for every split point, the 16-bit feature of the default
   photo coded losslessly (zero run-length + Huffman, auto table) and as JPEG at several QFs (feature
   mosaic, per-layer 8-bit scaling, standard tables), sizes from the bit-exact reference encoder with
   the side information included; ratio = 16-bit raw bytes / coded bytes (``encoder_ratios.json``).
4. Verilator build settings on the MAC array (the same ``speed`` stream): cocotb's stock build (no ``-O3``, every net
   public with ``--public-flat-rw``) vs the project's (``sim.runner.VERILATOR_FAST_ARGS``, ports-only VPI), built
   and run in this one run, cycles per second (``verilator_settings.json``). ``--threads 2`` is not measured
   here: TOOLCHAIN.md measured it at 547 cycles/s (the worker threads spin), hundreds of times slower.
2. The engine on AlexNet input..pool5 (``make sim``'s default run, DRAM 16 B/cycle): per layer our
   cycles and MAC utilization beside the ideal output-stationary bound for the same shapes on a
   12 x 12 array (every tile costs its K cycles, no fill, drain or memory stall: the SCALE-Sim-style
   model), the utilization targets, and the simulated cycles per second (``engine_alexnet.json``).
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


def verilator_settings(beats: int) -> dict:
    """Cycles per second of the MAC array with cocotb's default Verilator build and with the project's fast one."""
    from sim.runner import VERILATOR_FAST_ARGS, build

    rows = {}
    for profile, what in (("default", "cocotb default (no -O3, --public-flat-rw)"),
                          ("fast", f"project ({' '.join(VERILATOR_FAST_ARGS)}, ports-only public)")):
        t0 = time.monotonic()
        build(MAC_ARRAY, profile=profile)
        built = time.monotonic() - t0
        out = BUILD_DIR / "bench" / f"verilator_{profile}_speed.json"
        run(MAC_ARRAY, "sim.tb_mac_array", testcase="speed", profile=profile,
            env={"EDGESPLIT_BENCH_BEATS": str(beats), "EDGESPLIT_RESULT": str(out)})
        rows[profile] = {"settings": what, "build_s": built, **json.loads(out.read_text())}
    print(f"{'Verilator build':74} {'build s':>7} {'cycles':>9} {'wall s':>7} {'cycles/s':>10}")
    for r in rows.values():
        print(f"{r['settings']:74} {r['build_s']:>7.1f} {r['cycles']:>9,} {r['wall_s']:>7.2f} "
              f"{r['cycles_per_s']:>10,.0f}")
    speedup = rows["fast"]["cycles_per_s"] / rows["default"]["cycles_per_s"]
    print(f"fast / default: {speedup:.2f}x (--threads 2: 547 cycles/s in TOOLCHAIN.md, not rerun)")
    return {"beats": beats, "profiles": rows, "speedup": speedup,
            "threads_2_note": "TOOLCHAIN.md: --threads 2 ran at 547 cycles/s (worker threads spin); not rerun"}


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


def ideal_os_cycles(layer: dict) -> int | None:
    """Cycles of an ideal 12x12 output-stationary array: ceil(pixels/12) x ceil(channels/12) x K."""
    c, h, w = layer["shape"]
    if not layer["macs"]:
        return None
    k = layer["macs"] // (c * h * w)
    return -(-(h * w) // 12) * -(-c // 12) * k


TARGETS = {"conv1": 0.75, "conv2": 0.90, "conv3": 0.90, "conv4": 0.90, "conv5": 0.90}


def engine_bench() -> dict:
    from sim.run import simulate

    print("\nEngine on AlexNet input..pool5 (He-init weights, astronaut photo, DRAM 16 B/cycle)...", flush=True)
    result = simulate("alexnet", "conv5", None, 16.0)
    rows = []
    print(f"{'layer':12} {'MACs':>13} {'cycles':>11} {'util':>7} {'ideal OS':>11} {'ideal util':>10} "
          f"{'target':>7} {'met':>4}")
    for r in result["layers"]:
        ideal = ideal_os_cycles(r)
        target = TARGETS.get(r["name"])
        row = {"name": r["name"], "macs": r["macs"], "cycles": r["cycles"], "utilization": r["utilization"],
               "ideal_os_cycles": ideal, "ideal_os_utilization": r["macs"] / (144 * ideal) if ideal else None,
               "target": target, "met": None if target is None else r["utilization"] >= target,
               "bit_exact": r["bit_exact"]}
        rows.append(row)
        print(f"{r['name']:12} {r['macs']:>13,} {r['cycles']:>11,} {r['utilization']:>7.1%} "
              f"{(format(ideal, ',') if ideal else '-'):>11} "
              f"{(format(row['ideal_os_utilization'], '.1%') if ideal else '-'):>10} "
              f"{(format(target, '.0%') if target else ''):>7} "
              f"{('yes' if row['met'] else 'NO') if target else '':>4}")
    conv = [r for r in rows if r["ideal_os_cycles"]]
    ideal_total = sum(r["ideal_os_cycles"] for r in conv)
    print(f"conv layers: {sum(r['cycles'] for r in conv):,} cycles (ideal OS {ideal_total:,}); "
          f"whole run {result['total']['cycles']:,} cycles, {result['total']['utilization']:.1%} utilization")
    print(f"simulation: {result['total']['cycles']:,} cycles in {result['sim_wall_s']:.1f} s = "
          f"{result['sim_cycles_per_s']:,.0f} cycles/s (target: AlexNet in <= 60 s)")
    return {"layers": rows, "total": result["total"], "sim_wall_s": result["sim_wall_s"],
            "sim_cycles_per_s": result["sim_cycles_per_s"], "all_bit_exact": all(r["bit_exact"] for r in rows)}


QFS = (1, 10, 30, 50, 75, 90, 100)


def encoder_ratios(net: str = "alexnet") -> dict:
    from golden import featpack, lossless
    from golden.quantize import default_qnet, run_fast, sample_images
    from golden.splits import get_split, split_names

    qnet = default_qnet(net)
    x = qnet.quantize_input(sample_images(net, 1))
    acts = run_fast(qnet, x, return_all=True)
    print(f"\nFeature encoder on {net} split features (default photo; ratio = 16-bit raw / coded bytes, "
          f"side info included)")
    print(f"{'split':8} {'shape':>12} {'raw B':>9} {'lossless':>9} " + " ".join(f"{'QF' + str(q):>7}" for q in QFS))
    rows = []
    for split in split_names(net):
        sp = get_split(net, split)
        feat = np.asarray(x[0] if split == "input" else acts[sp.output][0]).reshape(sp.shape).astype(np.int16)
        raw = feat.size * 2
        ll = lossless.encoded_size(feat, "auto")
        sweep = featpack.JpegSweep(feat, "layer")
        lossy = {q: raw / sweep.size(q) for q in QFS}
        rows.append({"split": split, "shape": list(sp.shape), "raw_bytes": raw, "lossless_bytes": ll,
                     "lossless_ratio": raw / ll, "lossy_ratio": {str(q): r for q, r in lossy.items()}})
        print(f"{split:8} {'x'.join(map(str, sp.shape)):>12} {raw:>9,} {raw / ll:>9.2f} "
              + " ".join(f"{lossy[q]:>7.1f}" for q in QFS))
    return {"net": net, "qfs": list(QFS), "splits": rows}


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
    print("\nVerilator build settings, MAC array (12x12, K=1000 tiles, the same stream)...", flush=True)
    vs = verilator_settings(100_000)
    path = BUILD_DIR / "bench" / "verilator_settings.json"
    path.write_text(json.dumps(vs, indent=2))
    print(f"wrote {path}")
    eng = engine_bench()
    path = BUILD_DIR / "bench" / "engine_alexnet.json"
    path.write_text(json.dumps(eng, indent=2))
    print(f"wrote {path}")
    enc = encoder_ratios()
    path = BUILD_DIR / "bench" / "encoder_ratios.json"
    path.write_text(json.dumps(enc, indent=2))
    print(f"wrote {path}")
    return 0 if eng["all_bit_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
