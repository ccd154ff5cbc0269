"""Cost-model speed benchmark (``python -m model.bench``; called from ``make bench``).

Measures, in a warm process (tables built and counts cached by a first pass, as in any interactive
session): the latency of one ``query`` (median and 99th percentile over many calls, cycling through
networks, splits, encodings and links) and a full sweep of AlexNet, VGG-16 and ResNet-50 x every split x
3 encodings x 3 links. Also the cold first sweep (tables and counts built from scratch). Prints a table
and writes ``build/bench/cost_model.json``. Targets (issue 6): query <= 1 ms, full sweep <= 1 s.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

QUERY_TARGET_S = 1e-3
SWEEP_TARGET_S = 1.0
OUT = Path(__file__).resolve().parents[1] / "build" / "bench" / "cost_model.json"


def run(query_calls: int = 3000, sweep_repeats: int = 7) -> dict:
    t0 = time.perf_counter()
    from golden.splits import split_names
    from model.api import IMAGENET_NETS, query, sweep
    from model.system import ENCODINGS, LINKS

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = sweep()
    cold_sweep_s = time.perf_counter() - t0
    points = [(n, s, e, lk) for n in IMAGENET_NETS for s in split_names(n) for e in ENCODINGS for lk in LINKS]
    lat = []
    for i in range(query_calls):
        n, s, e, lk = points[i % len(points)]
        t = time.perf_counter()
        query(n, s, e, link=lk)
        lat.append(time.perf_counter() - t)
    lat.sort()
    sweeps = []
    for _ in range(sweep_repeats):
        t = time.perf_counter()
        sweep()
        sweeps.append(time.perf_counter() - t)
    q_med = statistics.median(lat)
    q_p99 = lat[int(0.99 * (len(lat) - 1))]
    s_med = statistics.median(sweeps)
    return {
        "import_s": import_s,
        "cold_sweep_s": cold_sweep_s,
        "sweep_points": len(table),
        "query_calls": query_calls,
        "query_median_s": q_med,
        "query_p99_s": q_p99,
        "query_target_s": QUERY_TARGET_S,
        "query_ok": q_p99 <= QUERY_TARGET_S,
        "sweep_repeats": sweep_repeats,
        "sweep_median_s": s_med,
        "sweep_max_s": max(sweeps),
        "sweep_target_s": SWEEP_TARGET_S,
        "sweep_ok": max(sweeps) <= SWEEP_TARGET_S,
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    r = run()
    print("cost model speed (warm process unless noted)")
    print(f"{'measure':34} {'value':>12} {'target':>10} {'ok':>4}")
    print(f"{'query latency, median':34} {r['query_median_s'] * 1e6:>10.1f}us {'':>10} {'':>4}")
    print(f"{'query latency, p99':34} {r['query_p99_s'] * 1e6:>10.1f}us {'<= 1 ms':>10} "
          f"{'yes' if r['query_ok'] else 'NO':>4}")
    print(f"{'full sweep (' + str(r['sweep_points']) + ' points), median':34} {r['sweep_median_s'] * 1e3:>10.1f}ms")
    print(f"{'full sweep, worst of ' + str(r['sweep_repeats']):34} {r['sweep_max_s'] * 1e3:>10.1f}ms {'<= 1 s':>10} "
          f"{'yes' if r['sweep_ok'] else 'NO':>4}")
    print(f"{'first sweep, cold (tables + counts)':34} {r['cold_sweep_s'] * 1e3:>10.1f}ms")
    print(f"{'import (torch + golden tables)':34} {r['import_s'] * 1e3:>10.1f}ms")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=2))
    tmp.replace(OUT)
    print(f"wrote {OUT}")
    return 0 if r["query_ok"] and r["sweep_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
