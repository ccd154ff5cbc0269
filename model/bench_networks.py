"""Your-network benchmark (``python -m model.bench_networks``; called from ``make bench``).

The targets of the network issue, measured where ``make sim`` has run (``build/sim/<net>.json``; a network
without a run is listed with the command that makes it):

* whole-network utilization (MACs / (144 x cycles)) of MobileNetV2 (target 0.60, goal 0.75), SqueezeNet 1.1 and
  ResNet-18 (0.80), and ResNet-50 (0.80: the co-design issue's), with MobileNetV2's depthwise layers' own
  utilization beside the bound of their mapping;
* the cost model's analytical cycles against the RTL's on every layer of every new network (target 3%);
* a user model file (``examples/tinynet.py`` exported to ONNX): from ``--net file.onnx`` to a ``best`` answer
  in a warm process after the first import (target 5 s), and the ``make sim`` of it when it has run
  (target 2 minutes).

Prints tables and writes ``build/bench/networks.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "bench" / "networks.json"
TARGETS = {"mobilenetv2": 0.60, "squeezenet1_1": 0.80, "resnet18": 0.80, "resnet50": 0.80}
GOALS = {"mobilenetv2": 0.75}
MODEL_TARGET = 0.03
BEST_TARGET_S = 5.0
SIM_TARGET_S = 120.0
DW_UNIT_BOUND = 108 / 144   # the depthwise unit: 12 pixels x 9 taps per cycle; the packs' bound is 1/12


def _sim(net: str) -> dict | None:
    p = REPO / "build" / "sim" / f"{net}.json"
    return json.loads(p.read_text()) if p.is_file() else None


def utilization() -> dict:
    from model.counts import rtl_error

    print("Whole networks on the engine (make sim NET=...; DRAM 16 B/cycle, every layer bit-exact)")
    head = (f"{'network':16} {'MACs':>14} {'cycles':>12} {'util':>6} {'target':>7} {'met':>4} {'model err':>10} "
            f"{'exact':>5}")
    print(head)
    print("-" * len(head))
    rows = {}
    for net, target in TARGETS.items():
        d = _sim(net)
        if d is None:
            print(f"{net:16} (no run: make sim NET={net})")
            rows[net] = None
            continue
        t = d["total"]
        errs = rtl_error(net)
        worst = max((abs(e.cycle_error) for e in errs), default=None)
        exact = all(r["bit_exact"] for r in d["layers"])
        rows[net] = {"macs": t["macs"], "cycles": t["cycles"], "utilization": t["utilization"], "target": target,
                     "goal": GOALS.get(net), "met": t["utilization"] >= target, "model_worst_error": worst,
                     "model_layers": len(errs), "model_ok": worst is not None and worst <= MODEL_TARGET,
                     "bit_exact": exact}
        print(f"{net:16} {t['macs']:>14,} {t['cycles']:>12,} {t['utilization']:>6.1%} {target:>7.0%} "
              f"{'yes' if rows[net]['met'] else 'NO':>4} {worst if worst is None else f'{worst:.2%}':>10} "
              f"{'yes' if exact else 'NO':>5}")
    d = _sim("mobilenetv2")
    if d is not None:
        from golden.network import network

        groups = {la.name: la.groups for la in network("mobilenetv2").layers}
        dw = [r for r in d["layers"] if groups.get(r["module"], 1) > 1]
        macs, cycles = sum(r["macs"] for r in dw), sum(r["cycles"] for r in dw)
        print(f"MobileNetV2's {len(dw)} depthwise layers: {macs:,} MACs in {cycles:,} cycles = "
              f"{macs / (144 * cycles):.1%} (the depthwise unit's bound {DW_UNIT_BOUND:.0%}; block-diagonal packs on "
              f"the MAC array: 1/12 = 8.3%); per layer {min(r['utilization'] for r in dw):.1%} .. "
              f"{max(r['utilization'] for r in dw):.1%}")
        rows["mobilenetv2_depthwise"] = {"layers": len(dw), "macs": macs, "cycles": cycles,
                                         "utilization": macs / (144 * cycles), "bound": DW_UNIT_BOUND}
    return rows


def user_model() -> dict:
    onnx = REPO / "build" / "examples" / "tinynet.onnx"
    if not onnx.is_file():
        subprocess.run([sys.executable, str(REPO / "examples" / "tinynet.py"), str(onnx)], check=True,
                       capture_output=True)
    from golden.network import load_network
    from model.api import best_split

    t0 = time.perf_counter()
    best_split(load_network(str(onnx)), "2mbps")     # the first import (onnx, the tables, the counts)
    first = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t = time.perf_counter()
        b = best_split(load_network(str(onnx)), "2mbps")
        times.append(time.perf_counter() - t)
    warm = sorted(times)[1]
    sim = _sim("tinynet")
    sim_s = sim["wall_s"] if sim else None
    print(f"\nUser model examples/tinynet.py as ONNX: --net file.onnx to a best answer {warm * 1e3:.0f} ms warm "
          f"(first {first:.2f} s; target {BEST_TARGET_S:g} s): best {b.best.split} ({b.best.encoding}); make sim "
          + (f"{sim_s:.0f} s (target {SIM_TARGET_S:.0f} s)" if sim_s is not None else
             "not run here (make sim NET=build/examples/tinynet.onnx)"))
    return {"best_warm_s": warm, "best_first_s": first, "best_target_s": BEST_TARGET_S, "best_split": b.best.split,
            "sim_wall_s": sim_s, "sim_target_s": SIM_TARGET_S}


def main() -> int:
    result = {"networks": utilization(), "user_model": user_model()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(OUT)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
