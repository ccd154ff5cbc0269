"""Runtime benchmarks (``python -m model.runtime.bench [servers] [static] [dynamic]``; proposed for ``make bench``).

* ``servers``: the host's two servers, asyncio and threads, under 1, 4 and 16 edges at once. Each edge is a
  separate process sending pre-coded digits frames as fast as its window (8 unanswered) allows, so the host is
  the only thing measured: aggregate frames/s and reply latency (median, 95th percentile), for a light frame
  (the logits: nothing to compute) and a heavier one (after conv1: the rest of the network).
* ``static``: static splits of ResNet-20 and AlexNet on constant 1, 2 and 22 Mbit/s links, wall clock, against
  the cost model's prediction for the same split, codec, QF and rate (with the bytes the run sent, and with
  the model's own compression ratio).
* ``dynamic``: ResNet-20 on the step and random-walk traces and the step with a host 10x faster (simulated clock,
  one period of each trace, 1000 test images), the controller against edge-only, host-only, the best static
  split for the mean rate and the oracle; and what the cost model, the trace and the measured host times say
  any policy of each kind could reach (:func:`bounds`).

Writes ``build/bench/runtime.json`` and prints tables.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import socket
import sys
import time
from collections import deque
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "build" / "bench" / "runtime.json"


@contextlib.contextmanager
def host_process(server: str = "asyncio", timeout: float = 120.0):
    """A host in its own process (``edgesplit host --listen 127.0.0.1:0``); yields its port."""
    import select
    import subprocess

    p = subprocess.Popen([sys.executable, "-m", "model.cli", "host", "--listen", "127.0.0.1:0", "--server", server,
                          "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        line = p.stdout.readline() if ready else ""
        if "listening on" not in line:
            raise RuntimeError(f"the host did not start: {line!r}")
        yield int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


# ---- servers ----------------------------------------------------------------------------------------------


def _sender(port: int, hello: bytes, frames: list[bytes], n: int, window: int, out) -> None:
    """One edge: HELLO, then ``n`` frames (cycling ``frames``, ids 0..n-1 already packed in order), at most
    ``window`` unanswered; reports (seconds, latencies)."""
    from model.runtime import wire

    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(hello)
    wire.recv_message(s, 60)
    sent, got, lat = 0, 0, []
    inflight: deque[float] = deque()
    t0 = time.perf_counter()
    while got < n:
        while sent < n and len(inflight) < window:
            s.sendall(frames[sent])
            inflight.append(time.perf_counter())
            sent += 1
        wire.recv_message(s, 60)
        lat.append(time.perf_counter() - inflight.popleft())
        got += 1
    out.put((time.perf_counter() - t0, lat))
    s.close()


def servers(edges=(1, 4, 16), frames: int = 300, window: int = 8) -> list[dict]:
    import dataclasses

    import numpy as np

    from model.runtime import wire
    from model.runtime.edge import EdgeConfig, Prepared
    from model.runtime.host import HostConfig, HostThread

    prep = Prepared(EdgeConfig(net="digits", policy="dynamic", images=16, frames=frames, check_images=0))
    rows = []
    ctx = mp.get_context("spawn")
    for work, split in (("light (logits)", "fc6"), ("heavy (after conv1)", "conv1")):
        c = next(c for c in prep.candidates if c.split == split and c.codec == "lossless")
        packed = [wire.pack(dataclasses.replace(prep.frame(k, c), frame_id=k)) for k in range(frames)]
        hello = wire.pack(wire.Hello(prep.rt.name, prep.rt.digest, "bench"))
        for server in ("asyncio", "threads"):
            for k in edges:
                with HostThread(server, log=lambda s: None, config=HostConfig(workers=4)) as h:
                    q = ctx.Queue()
                    procs = [ctx.Process(target=_sender, args=(h.port, hello, packed, frames, window, q))
                             for _ in range(k)]
                    for p in procs:
                        p.start()
                    res = [q.get(timeout=600) for _ in procs]
                    for p in procs:
                        p.join(60)
                lat = np.concatenate([r[1] for r in res])
                span = max(r[0] for r in res)
                rows.append({"work": work, "server": server, "edges": k, "frames": k * frames,
                             "fps": k * frames / span, "latency_p50_ms": float(np.percentile(lat, 50) * 1e3),
                             "latency_p95_ms": float(np.percentile(lat, 95) * 1e3)})
                print(f"  {work:20} {server:8} {k:3} edges: {rows[-1]['fps']:8.1f} frames/s, latency p50 "
                      f"{rows[-1]['latency_p50_ms']:.2f} ms, p95 {rows[-1]['latency_p95_ms']:.2f} ms", flush=True)
    return rows


# ---- static splits against the model ------------------------------------------------------------------------


STATIC_POINTS = {
    "resnet20": [("fc", "lossless", None), ("layer3.2", "jpeg", None), ("layer2.2", "jpeg", None),
                 ("input", "jpeg", None)],
    "alexnet": [("conv5", "jpeg", 50), ("conv5", "lossless", None), ("conv2", "jpeg", 50), ("fc8", "lossless", None)],
}


def static(nets=("resnet20", "alexnet"), rates=(1.0, 2.0, 22.0), seconds: float = 4.0) -> list[dict]:
    import asyncio
    import dataclasses

    from model.runtime.edge import EdgeConfig, Prepared, Session
    from model.runtime.trace import constant

    rows = []
    with host_process() as port:
        for net in nets:
            for split, codec, qf in STATIC_POINTS[net]:
                cfg = EdgeConfig(connect=f"127.0.0.1:{port}", net=net, policy="static", split=split, codec=codec,
                                 qf=qf, frames=10_000_000, images=16, clock="wall")
                prep = Prepared(cfg)
                for mbps in rates:
                    run_cfg = dataclasses.replace(cfg, trace=constant(mbps), duration=seconds)
                    r = asyncio.run(Session(prep, "static", cfg=run_cfg).run())
                    m, m0 = r["model"]["model_at_measured_bytes"], r["model"]["model"]
                    row = {"net": net, "split": split, "codec": codec, "qf": prep.fixed.qf, "mbps": mbps,
                           "frames": r["frames"], "fps": r["fps"], "model_fps": m["fps"],
                           "fps_ratio": m["measured_over_model_fps"], "energy_mj": r["energy_per_frame_j"] * 1e3,
                           "model_energy_mj": m["energy_per_frame_j"] * 1e3,
                           "energy_ratio": m["measured_over_model_energy"], "bytes": r["bytes_mean"],
                           "model_own_bytes": m0["transmitted_bytes"], "model_own_fps": m0["fps"],
                           "model_own_energy_mj": m0["energy_per_frame_j"] * 1e3, "ratio_source": m0["ratio_source"],
                           "bottleneck": m["bottleneck"], "host_ms": r["host"]["compute_s_mean"] * 1e3,
                           "top1": r["top1"]}
                    rows.append(row)
                    print(f"  {net:8} {split:8} {codec:8}{row['qf'] or '':>3} {mbps:5g} Mb/s: {r['fps']:8.2f} fps "
                          f"(model {m['fps']:8.2f}, {row['fps_ratio']:.3f}), {row['energy_mj']:.4f} mJ (model "
                          f"{row['model_energy_mj']:.4f}, {row['energy_ratio']:.3f}), {row['bytes']:.0f} B, host "
                          f"{row['host_ms']:.2f} ms, {m['bottleneck']}", flush=True)
    return rows


# ---- the controller on traces ----------------------------------------------------------------------------------


RUNS = (("step", 1.0), ("random_walk", 1.0), ("step", 10.0))


def bounds(r: dict, prep) -> dict:
    """What the cost model, the trace and the host times this run measured say each kind of policy can reach
    (:func:`model.runtime.controller.trace_bounds`), next to the measured best-static split's prediction."""
    from model.runtime.controller import Predictor, trace_bounds
    from model.runtime.trace import load_trace

    p = Predictor(prep.costs)
    by_label = {c.label: c for c in prep.candidates}
    for label, s in r["host_times_s"].items():
        if label in by_label:
            p.host[by_label[label].key] = s
    tr = load_trace(r["trace"]) if not r["trace"].startswith("const") else None
    assert tr is not None
    b = trace_bounds(p, prep.candidates, tr, r["policy_config"]["objective"], r["policy_config"]["tie"])
    static = next(x for x in r["baselines"] if x["policy"] == "best-static")
    label = next(iter(static["splits_used"]))
    b["best_static_measured"] = {"candidate": label, **b["static"][label]}
    del b["static"]
    return b


def dynamic(net: str = "resnet20", runs=RUNS, clock: str = "simulated", scale: float = 1.0, images: int = 1000,
            out: dict | None = None) -> list[dict]:
    from model.runtime.edge import EdgeConfig, Prepared, run
    from model.runtime.report import format_summary
    from model.runtime.trace import load_trace

    rows: list[dict] = []
    with host_process() as port:
        prep = None
        for name, speed in runs:
            tr = load_trace(name).scaled(scale)
            cfg = EdgeConfig(connect=f"127.0.0.1:{port}", net=net, policy="dynamic", trace=tr, frames=10_000_000,
                             duration=tr.period, images=images, clock=clock, baselines=True, host_speedup=speed)
            if prep is None:
                prep = Prepared(cfg)
            t0 = time.perf_counter()
            r = run(cfg, prepared=prep)
            out_path = OUT.parent / f"runtime_{net}_{name}_host{speed:g}x.json"
            from golden import files

            files.write_text(out_path, json.dumps(r, default=str))
            by = {x["policy"]: x for x in [r, *r["baselines"]]}
            row = {"net": net, "trace": tr.name, "clock": clock, "host_speedup": speed, "run_file": str(out_path),
                   "images": images, "scale": scale, "wall_s": time.perf_counter() - t0,
                   "policy_config": r["policy_config"],
                   "policies": {k: {"fps": v["fps"], "energy_mj": v["energy_per_frame_j"] * 1e3, "top1": v["top1"],
                                    "frames": v["frames"], "splits_used": v["splits_used"],
                                    "switches": v["switches"], "host_ms": v["host"]["compute_s_mean"] * 1e3}
                                for k, v in by.items()},
                   "uncoded_top1": r["top1_uncoded_int16"], "budget": r["budget"],
                   "best_static_trials": by["best-static"].get("best_static_trials")}
            d, b, o = by["dynamic"], by["best-static"], by["oracle"]
            row.update(fps_vs_best_static=d["fps"] / b["fps"], energy_vs_best_static=d["energy_per_frame_j"] /
                       b["energy_per_frame_j"], fps_vs_oracle=d["fps"] / o["fps"])
            if scale == 1.0:
                row["bounds"] = bounds(r, prep)
            rows.append(row)
            print(format_summary(r), flush=True)
            print(json.dumps({k: v for k, v in row.items() if k != "policies"}, indent=1, default=str), flush=True)
            if out is not None:   # after every trace, so a long bench leaves what it measured
                out["dynamic"] = rows
                OUT.parent.mkdir(parents=True, exist_ok=True)
                files.write_text(OUT, json.dumps(out, indent=1, default=str))
    return rows


def main(argv: list[str] | None = None) -> int:
    what = set(argv if argv is not None else sys.argv[1:]) or {"servers", "static", "dynamic"}
    out: dict = {}
    if OUT.exists():
        try:
            out = json.loads(OUT.read_text())
        except ValueError:
            out = {}
    if "servers" in what:
        print("host servers (digits frames, window 8, each edge a process):")
        out["servers"] = servers()
    if "static" in what:
        print("static splits vs the cost model (wall clock):")
        out["static"] = static()
    if "dynamic" in what:
        print("the controller on traces:")
        out["dynamic"] = dynamic(out=out)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    from golden import files

    files.write_text(OUT, json.dumps(out, indent=1, default=str))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
