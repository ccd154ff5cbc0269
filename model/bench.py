"""Cost-model speed benchmark (``python -m model.bench``; called from ``make bench``).

Measures, in a warm process (tables built and counts cached by a first pass, as in any interactive
session): the latency of one ``query`` (median and 99th percentile over many calls, cycling through
networks, splits, encodings and links) and a full sweep of AlexNet, VGG-16 and ResNet-50 x every split x
3 encodings x 3 links. Also the cold first sweep (tables and counts built from scratch). Prints a table
and writes ``build/bench/cost_model.json``. Targets (issue 6): query <= 1 ms, full sweep <= 1 s.

``python -m model.bench --cluster``: 1 against 2 local Dask workers (issue 15) on the default sweep and on
``make sim`` of AlexNet, side by side in one run; ``build/bench/cluster.json``.
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


CLUSTER_OUT = OUT.with_name("cluster.json")
WALL_FIELDS = ("wall_s", "sim_wall_s", "sim_cycles_per_s")


def _timed(cmd: list[str], env: dict) -> tuple[float, str]:
    import os
    import subprocess

    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env},
                       cwd=Path(__file__).resolve().parents[1])
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - t, p.stdout


def cluster_run(sim_net: str = "alexnet") -> dict:
    """1 local worker (serial, no Dask) against 2 (a LocalCluster started by the run), each a fresh process run
    back to back, wall time from the command's start: the default sweep (AlexNet, VGG-16, ResNet-50 x every split
    x 3 encodings x 3 links: 414 points, in chunks of ``model.api.SWEEP_CHUNK``) and ``make sim NET=sim_net CUT=1`` (its
    programs as pieces; AlexNet's conv head cut in two, every counter as uncut). It writes build/sim/<net>.json
    as make sim does. The results of the two runs must be identical (the sweep's JSON; make sim's JSON but for
    the wall-time fields)."""
    from sim.runner import BUILD_DIR

    py = sys.executable
    out = {"cores": __import__("os").cpu_count(), "runs": []}
    sweeps = {}
    for w in (1, 2):
        wall, text = _timed([py, "-m", "model.cli", "sweep", "--json", "--workers", str(w)], {})
        sweeps[w] = json.loads(text)
        out["runs"].append({"what": f"sweep ({len(sweeps[w])} points)", "workers": w, "wall_s": wall})
    same_sweep = sweeps[1] == sweeps[2]
    sims = {}
    path = BUILD_DIR / "sim" / f"{sim_net}.json"
    for w in (1, 2):
        wall, text = _timed([py, "-m", "sim.run", "--net", sim_net, "--cut", "--workers", str(w)], {})
        sims[w] = json.loads(path.read_text())
        import re

        programs = int(re.search(r"simulating (\d+) program", text).group(1))
        out["runs"].append({"what": f"make sim NET={sim_net} CUT=1", "workers": w, "wall_s": wall,
                            "sim_wall_s": sims[w]["sim_wall_s"], "sim_cycles": sims[w]["total"]["cycles"],
                            "sim_cycles_per_s": sims[w]["sim_cycles_per_s"], "programs": programs})
    for r in sims.values():
        for k in WALL_FIELDS:
            r.pop(k)
    out["identical"] = {"sweep": same_sweep, "make_sim": sims[1] == sims[2]}
    by = {(r["what"], r["workers"]): r["wall_s"] for r in out["runs"]}
    out["speedup_2_over_1"] = {what: by[(what, 1)] / by[(what, 2)] for what, w in by if w == 1}
    out["note"] = ("wall times on this machine's 2 cores, shared with whatever else runs: noisy; a sweep is "
                   "seconds of work, so starting a local cluster costs more than it saves")
    return out


def cluster_main() -> int:
    r = cluster_run()
    print("1 vs 2 local Dask workers (sim.cluster; each a fresh process, back to back)")
    print(f"{'run':34} {'workers':>7} {'wall':>9} {'2 vs 1':>7}")
    for row in r["runs"]:
        ratio = r["speedup_2_over_1"][row["what"]]
        print(f"{row['what']:34} {row['workers']:>7} {row['wall_s']:>8.1f}s "
              f"{f'{ratio:.2f}x' if row['workers'] == 2 else '':>7}")
    print(f"identical results: sweep {'yes' if r['identical']['sweep'] else 'NO'}, "
          f"make sim {'yes' if r['identical']['make_sim'] else 'NO'} (but for wall times); {r['note']}")
    CLUSTER_OUT.parent.mkdir(parents=True, exist_ok=True)
    CLUSTER_OUT.write_text(json.dumps(r, indent=2))
    print(f"wrote {CLUSTER_OUT}")
    return 0 if all(r["identical"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--cluster"]:
        return cluster_main()
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
