"""Cost-model speed benchmark (``python -m model.bench``; called from ``make bench``).

Measures, in a warm process (tables built and counts cached by a first pass, as in any interactive
session): the latency of one ``query`` (median and 99th percentile over many calls, cycling through
networks, splits, encodings and links) and a full sweep of AlexNet, VGG-16 and ResNet-50 x every split x
3 encodings x 3 links. Also the cold first sweep (tables and counts built from scratch). Prints a table
and writes ``build/bench/cost_model.json``. Targets (issue 6): query <= 1 ms, full sweep <= 1 s.

``python -m model.bench --cluster [--sim-net NET]``: 1 against 2 local Dask workers (issue 15) on the default sweep,
on ``make sim NET=... CUT=1`` (AlexNet unless ``--sim-net``; ``make bench BENCH_SIM_NET=vgg16`` for the issue's
VGG-16 target, about 10 minutes more) and on the ResNet-20 accuracy study, side by side in one run;
``build/bench/cluster.json``.

``python -m model.bench --dse``: ``edgesplit dse --net alexnet`` (issue 16: 4 arrays x 3 buffers x every split x
3 links, target under 5 s): the search cold and warm in-process, and the whole command twice;
``build/bench/dse.json``.
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


STUDY_NET = "resnet20"
STUDY_IMAGES = 200


def _study_result(doc: dict) -> list:
    """What must equal between a serial and a distributed study: every split's sizes, top-1 counts and QFs
    (all but the seconds)."""
    rows = []
    for row in doc["splits"]:
        rows.append({k: v for k, v in row.items() if k != "seconds"})
    return [doc.get("float_top1"), doc.get("int16_top1"), rows]


def cluster_run(sim_net: str = "alexnet") -> dict:
    """1 local worker (serial, no Dask) against 2 (a LocalCluster started by the run), each a fresh process run
    back to back, wall time from the command's start: the default sweep (AlexNet, VGG-16, ResNet-50 x every split
    x 3 encodings x 3 links: 414 points, in chunks of ``model.api.SWEEP_CHUNK``) and ``make sim NET=sim_net CUT=1`` (its
    programs as pieces; AlexNet's conv head cut in two, every counter as uncut). It writes build/sim/<net>.json
    as make sim does. Then the ResNet-20 accuracy study on ``STUDY_IMAGES`` test images, every split (the reference
    shards, then a piece per split; under build/bench/study_w<N>/). The results of the two runs must be identical
    (the sweep's JSON; make sim's JSON but for the wall-time fields; the study's sizes, top-1 and QFs)."""
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
    studies = {}
    what = f"accuracy {STUDY_NET} --limit {STUDY_IMAGES}"
    for w in (1, 2):
        folder = BUILD_DIR / "bench" / f"study_w{w}"
        wall, _ = _timed([py, "-m", "model.cli", "accuracy", "--net", STUDY_NET, "--limit", str(STUDY_IMAGES),
                          "--no-plots", "--quiet", "--out", str(folder), "--workers", str(w)], {})
        doc = json.loads((folder / f"{STUDY_NET}.json").read_text())
        studies[w] = _study_result(doc)
        out["runs"].append({"what": what, "workers": w, "wall_s": wall, "splits": len(studies[w])})
    out["identical"] = {"sweep": same_sweep, "make_sim": sims[1] == sims[2], "study": studies[1] == studies[2]}
    by = {(r["what"], r["workers"]): r["wall_s"] for r in out["runs"]}
    out["speedup_2_over_1"] = {what: by[(what, 1)] / by[(what, 2)] for what, w in by if w == 1}
    out["note"] = ("wall times on this machine's 2 cores, shared with whatever else runs: noisy; a sweep is "
                   "seconds of work, so starting a local cluster costs more than it saves")
    return out


def cluster_main(sim_net: str = "alexnet") -> int:
    r = cluster_run(sim_net)
    print("1 vs 2 local Dask workers (sim.cluster; each a fresh process, back to back)")
    print(f"{'run':34} {'workers':>7} {'wall':>9} {'2 vs 1':>7}")
    for row in r["runs"]:
        ratio = r["speedup_2_over_1"][row["what"]]
        print(f"{row['what']:34} {row['workers']:>7} {row['wall_s']:>8.1f}s "
              f"{f'{ratio:.2f}x' if row['workers'] == 2 else '':>7}")
    print(f"identical results: sweep {'yes' if r['identical']['sweep'] else 'NO'}, "
          f"make sim {'yes' if r['identical']['make_sim'] else 'NO'} (but for wall times), "
          f"study {'yes' if r['identical']['study'] else 'NO'} (but for seconds); {r['note']}")
    CLUSTER_OUT.parent.mkdir(parents=True, exist_ok=True)
    CLUSTER_OUT.write_text(json.dumps(r, indent=2))
    print(f"wrote {CLUSTER_OUT}")
    return 0 if all(r["identical"].values()) else 1


DSE_OUT = OUT.with_name("dse.json")
DSE_TARGET_S = 5.0
DSE_NET = "alexnet"


def dse_run(net: str = DSE_NET, repeats: int = 5) -> dict:
    """``edgesplit dse --net alexnet`` with its defaults (4 arrays x 3 feature buffers x every split x 3 encodings
    x 3 links): the search in this process, first (cold: the network traced, every architecture's counts built)
    and again (warm, median of ``repeats``), and the whole command in fresh processes (imports, synthesis table,
    search, table, plot), twice back to back. Target (issue 16): the search under 5 s."""
    t0 = time.perf_counter()
    from model import dse

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = dse.search(net)
    cold = time.perf_counter() - t0
    cold_parts = dict(res.timings_s)
    warm = []
    for _ in range(repeats):
        t = time.perf_counter()
        dse.search(net)
        warm.append(time.perf_counter() - t)
    cli = []
    for i in range(2):
        wall, _ = _timed([sys.executable, "-m", "model.cli", "dse", "--net", net], {})
        cli.append({"run": "first" if i == 0 else "second", "wall_s": wall})
    return {
        "net": net, "architectures": len(res.archs), "links": len(res.links), "candidates": len(res.points),
        "pareto_points": sum(p.pareto for p in res.points), "import_s": import_s,
        "search_cold_s": cold, "search_cold_parts_s": cold_parts, "search_warm_median_s": statistics.median(warm),
        "search_warm_max_s": max(warm), "cli": cli, "target_s": DSE_TARGET_S, "search_ok": cold <= DSE_TARGET_S,
        "cli_ok": all(c["wall_s"] <= DSE_TARGET_S for c in cli), "python": sys.version.split()[0],
        "note": "the command's wall time also counts the process's start (Python, torch for the network's trace; "
                "the CLI imports only the dse module) and the plot (matplotlib); 2 shared cores, noisy",
    }


def dse_main() -> int:
    r = dse_run()
    print(f"design-space search speed: {r['net']}, {r['architectures']} architectures x {r['links']} links x every "
          f"split x 3 encodings = {r['candidates']} candidates in the budget, {r['pareto_points']} Pareto points")
    print(f"{'measure':40} {'value':>9} {'target':>8} {'ok':>4}")
    print(f"{'search, first in the process (cold)':40} {r['search_cold_s']:>8.2f}s {'<= 5 s':>8} "
          f"{'yes' if r['search_ok'] else 'NO':>4}")
    p = r["search_cold_parts_s"]
    print(f"{'  of which counts (trace + 12 archs)':40} {p['counts_s']:>8.2f}s")
    print(f"{'  of which cost model + Pareto':40} {p['evaluate_s'] + p['pareto_s']:>8.2f}s")
    print(f"{'search, warm (median)':40} {r['search_warm_median_s']:>8.2f}s")
    for c in r["cli"]:
        label = f"edgesplit dse --net {r['net']} ({c['run']} run)"
        print(f"{label:40} {c['wall_s']:>8.2f}s {'':>8} {'yes' if c['wall_s'] <= r['target_s'] else 'over':>4}")
    print(f"note: {r['note']}")
    DSE_OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = DSE_OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(r, indent=2))
    tmp.replace(DSE_OUT)
    print(f"wrote {DSE_OUT}")
    return 0 if r["search_ok"] else 1


def _sim_net(rest: list[str]) -> list[str]:
    """``--cluster``'s own options: nothing, or ``--sim-net NET`` (a built-in network ``make sim`` runs)."""
    from golden.errors import UserError
    from golden.network import builtin_names

    if not rest:
        return []
    if len(rest) != 2 or rest[0] != "--sim-net":
        raise UserError(f"model.bench --cluster: {' '.join(rest)!r}: the only option is --sim-net NET")
    if rest[1] not in builtin_names():
        raise UserError(f"--sim-net {rest[1]!r}: a built-in network ({', '.join(builtin_names())})")
    return [rest[1]]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--cluster"]:
        from golden.errors import UserError

        try:
            sim_net = _sim_net(argv[1:])
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return cluster_main(*sim_net)
    if argv == ["--dse"]:
        return dse_main()
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
