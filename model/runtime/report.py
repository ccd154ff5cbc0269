"""What a user sees of a runtime run: the summary table and the report plot (``edgesplit runtime-report``).

The plot (three panels over the run's time): the trace's rate with the controller's estimate; the split chosen
per frame (and the QF, on a second axis, for JPEG frames); frames/s over time (completions in a sliding window
of ``window`` seconds) for the run and each baseline, with their mean frames/s and energy per frame in the legend.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from golden import files
from golden.errors import UserError

REQUIRED = ("policy", "net", "trace", "frames", "fps", "energy_per_frame_j", "per_frame", "splits")


def check_run(run: Any, where: str = "run") -> None:
    """UserError (one line) unless ``run`` looks like an ``edgesplit edge --out`` file."""
    if not isinstance(run, dict) or any(k not in run for k in REQUIRED):
        missing = [k for k in REQUIRED if not isinstance(run, dict) or k not in run]
        raise UserError(f"{where} is not a runtime run (missing {', '.join(missing)}); write one with "
                        "edgesplit edge --out RUN.json")
    pf = run["per_frame"]
    if not isinstance(pf, dict) or not isinstance(pf.get("t_reply"), list) or len(pf["t_reply"]) != run["frames"]:
        raise UserError(f"{where}: its per-frame log does not hold {run['frames']} frames")


def _pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}%"


def _used(run: dict[str, Any], top: int = 3) -> str:
    used = run.get("splits_used", {})
    n = max(1, sum(used.values()))
    parts = [f"{k} {100 * v / n:.0f}%" for k, v in list(used.items())[:top]]
    if len(used) > top:
        parts.append(f"+{len(used) - top} more")
    return ", ".join(parts)


def format_summary(run: dict[str, Any]) -> str:
    """The run and its baselines as a table, with the comparisons the issue asks for."""
    runs = [run, *run.get("baselines", [])]
    lat = f", latency {run['latency_s'] * 1e3:g} ms" if run.get("latency_s") else ""
    hs = run.get("host_speedup", 1)
    speed = f", host {hs:g}x faster than measured" if hs != 1 else ""
    lines = [f"{run['net']} on trace {run['trace']} (mean {run['trace_mean_mbps']:.3g} Mbit/s), {run['clock']} clock, "
             f"{run['frames']} frames, {run['edge']} edge, window {run['window']}"
             f"{lat}{speed}",
             f"accuracy: {run.get('accuracy_note', '')}"]
    head = (f"{'policy':12} {'fps':>9} {'mJ/frame':>9} {'radio mJ':>9} {'top-1':>6} {'agree':>6} {'host ms':>8} "
            f"{'resent':>6} {'switch':>6}  splits used")
    lines += [head, "-" * len(head)]
    for r in runs:
        lines.append(f"{r['policy']:12} {r['fps']:9.2f} {r['energy_per_frame_j'] * 1e3:9.4f} "
                     f"{r['energy_breakdown_j']['radio'] * 1e3:9.4f} {_pct(r.get('top1')):>6} "
                     f"{_pct(r.get('agreement_with_uncoded')):>6} {r['host']['compute_s_mean'] * 1e3:8.2f} "
                     f"{r['resent']:6d} {r.get('switches', 0):6d}  {_used(r)}")
    r0 = run
    lines.append(f"answers: {r0['unique_answers']} of {r0['frames']} frames, each once ({r0['duplicates_dropped']} "
                 f"duplicate(s) dropped, {r0['resent']} resent, {r0['reconnects']} reconnect(s)); uncoded int16 top-1 "
                 f"{_pct(r0.get('top1_uncoded_int16'))}")
    by = {r["policy"]: r for r in runs}
    bs = by.get("best-static", {})
    if bs.get("best_static_trials"):
        lines.append("best-static trials at the mean rate: " + ", ".join(
            f"{t['candidate']} {t['fps']:.1f} fps (predicted {t['predicted_fps']:.1f})"
            for t in bs["best_static_trials"]))
    if r0["policy"] == "dynamic" and "best-static" in by:
        b, o = by["best-static"], by.get("oracle")
        text = (f"dynamic vs best-static ({_used(b, 1)}): {r0['fps'] / b['fps']:.2f}x frames/s, "
                f"{r0['energy_per_frame_j'] / b['energy_per_frame_j']:.2f}x energy per frame")
        if o:
            text += f"; vs oracle: {r0['fps'] / o['fps']:.2f}x frames/s"
        lines.append(text)
    for r in runs:
        m = r.get("model")
        if m:
            a, b = m["model"], m["model_at_measured_bytes"]
            lines.append(f"{r['policy']}: cost model at this split/codec/QF/rate: {a['fps']:.2f} fps, "
                         f"{a['energy_per_frame_j'] * 1e3:.4f} mJ ({a['transmitted_bytes']:.0f} B from "
                         f"{a['ratio_source']}); at the {r['bytes_mean']:.0f} B sent: {b['fps']:.2f} fps, "
                         f"{b['energy_per_frame_j'] * 1e3:.4f} mJ; measured/model: fps "
                         f"{b['measured_over_model_fps']:.3f}, energy {b['measured_over_model_energy']:.3f}")
    if r0.get("rtl"):
        t = r0["rtl"]
        lines.append(f"rtl edge: {t['frames_equal']} of {t['images']} images' payloads equal golden's byte for byte, "
                     f"{t['cycles_mean']:,.0f} engine cycles per image, {t['wall_s']:.1f} s in Verilator")
    return "\n".join(lines)


def _fps_curve(t_reply: list[float], window: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.sort(np.asarray(t_reply, dtype=float))
    if len(t) < 2:
        return t, np.zeros_like(t)
    grid = np.linspace(t[0], t[-1], min(400, max(2, len(t))))
    lo = np.searchsorted(t, grid - window / 2)
    hi = np.searchsorted(t, grid + window / 2)
    span = np.minimum(grid + window / 2, t[-1]) - np.maximum(grid - window / 2, t[0])
    return grid, (hi - lo) / np.maximum(span, 1e-9)


def plot_run(run: dict[str, Any], path: str | os.PathLike, window: float | None = None) -> None:
    """The report plot (module docstring), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pf = run["per_frame"]
    t0 = np.asarray(pf["t_tx0"], dtype=float)
    span = max(1e-6, max(pf["t_reply"]) - min(pf["t_start"]))
    window = window or max(span / 40, 1e-3)
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax = axes[0]
    ax.step(t0, pf["trace_mbps"], where="post", label=f"trace {run['trace']}", color="k", lw=1)
    ax.plot(pf["t_start"], pf["est_mbps"], ".", ms=2, label="estimate at decision", color="tab:orange")
    ax.set_ylabel("Mbit/s")
    ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize=7)
    ax.set_title(f"{run['net']}: {run['policy']} on {run['trace']} ({run['clock']} clock)", fontsize=9)
    ax = axes[1]
    names = run["splits"]
    ax.plot(pf["t_start"], pf["split_index"], ".", ms=3, color="tab:blue", label="split")
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=6)
    ax.set_ylabel("split")
    qax = ax.twinx()
    q = np.asarray(pf["qf"], dtype=float)
    jp = q > 0
    if jp.any():
        qax.plot(np.asarray(pf["t_start"])[jp], q[jp], "x", ms=3, color="tab:red", label="JPEG QF")
    qax.set_ylim(0, 101)
    qax.set_ylabel("QF (x)", fontsize=8)
    ax = axes[2]
    for r in [run, *run.get("baselines", [])]:
        g, f = _fps_curve(r["per_frame"]["t_reply"], window)
        ax.plot(g, f, lw=1.2 if r is run else 0.8,
                label=f"{r['policy']}: {r['fps']:.1f} fps, {r['energy_per_frame_j'] * 1e3:.3f} mJ/frame")
    ax.set_ylabel(f"frames/s ({window:.3g} s window)")
    ax.set_xlabel("time (s)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    with files.atomic_path(path, "report") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


__all__ = ["check_run", "format_summary", "plot_run"]
