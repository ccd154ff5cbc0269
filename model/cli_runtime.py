"""``edgesplit host``, ``edgesplit edge``, ``edgesplit runtime-report``: the split made real (``docs/runtime.md``).

``edgesplit host --listen HOST:PORT [--server asyncio|threads] [--precision float|int16] [--preload NET ...]``
    Serves edges until Ctrl-C (or ``--duration S``): decodes each FRAME, finishes the network, answers with the
    class and its times (:mod:`model.runtime.host`). Prints ``listening on HOST:PORT`` on stdout once it listens
    (port 0: any free port). One line on stderr per connection event; a bad message drops that connection only.

``edgesplit edge --connect HOST:PORT --net NET [--data DATA] (--split S [--codec C] [--qf Q] | --policy P)
[--trace FILE|NAME|RATEmbps] [--latency MS] [--frames N] [--clock wall|simulated] [--edge golden|rtl]
[--baselines] [--json] [--out RUN.json]``
    Runs the network up to the split on the edge (bit-exact int16; ``--edge rtl``: the engine in Verilator),
    codes the feature as the encode unit does, paces it through the trace and sends it; the edge's own time and
    energy come from the cost model (:mod:`model.runtime.edge`). ``--policy dynamic`` moves the split and QF with
    the measured bandwidth (:mod:`model.runtime.controller`); ``--baselines`` also runs edge-only, host-only, the
    best static split for the trace's mean rate and the oracle. ``--connect inline`` starts a host inside the
    command. Progress on stderr; a summary table on stdout (``--json``: one JSON object); ``--out`` writes the
    run with its per-frame log for ``runtime-report``.

``edgesplit runtime-report RUN.json [-o OUT.png]``
    Draws the trace, the split and QF chosen, and frames/s over time for the run and its baselines
    (:mod:`model.runtime.report`); prints the summary table.

Bad values (an address that is not HOST:PORT, an unknown network, split, codec, policy or trace, a QF outside
1..100, a trace with a bad row, a count or time outside its range, an output that cannot be written) and a host
that cannot be reached or refuses the edge: one line on stderr, exit status 2.
"""

from __future__ import annotations

import json
import math

from golden import files
from golden.errors import UserError

NET_HELP = ("network: a built-in name (digits, resnet20, alexnet, ...), PATH.onnx or PATH.py:FACTORY "
            "(the same on the host: built-ins load by themselves, model files need host --preload)")
POLICY_HELP = ("static (needs --split), dynamic (the controller), edge-only, host-only, best-static (for the "
               "trace's mean rate), oracle (knows the trace)")


def register(subparsers) -> None:
    h = subparsers.add_parser("host", help="serve edges: decode split features, finish the network, answer",
                              description="The host of the split runtime (docs/runtime.md).")
    h.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to listen on (port 0: any)")
    h.add_argument("--server", default="asyncio", help="asyncio (default) or threads")
    h.add_argument("--precision", default="float",
                   help="float (default: float host part on the dequantised feature) or int16 (bit-exact)")
    h.add_argument("--preload", action="append", default=[], metavar="NET",
                   help="load a network before serving (repeatable; needed for model files)")
    h.add_argument("--data", metavar="DIR", help="data folder (calibration of model-file networks, CIFAR weights)")
    h.add_argument("--weights", metavar="FILE", help="state_dict for the preloaded networks")
    h.add_argument("--input-shape", metavar="C,H,W", help="input shape of a preloaded model file")
    h.add_argument("--workers", default="4", help="decode/compute threads (asyncio server), 1..256 (default 4)")
    h.add_argument("--decoder", default="fast",
                   help="JPEG decoder: fast (libjpeg through Pillow, default) or golden (the reference, pure Python)")
    h.add_argument("--torch-threads", default="1", metavar="N",
                   help="torch intra-op threads, 0 = torch's default (default 1: one frame per worker)")
    h.add_argument("--idle-timeout", default="120", metavar="S",
                   help="drop a connection silent this long (default 120 s)")
    h.add_argument("--max-connections", default="64", metavar="N", help="default 64")
    h.add_argument("--duration", metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    h.add_argument("--quiet", action="store_true", help="no connection log on stderr")
    h.set_defaults(func=cmd_host)

    e = subparsers.add_parser("edge", help="run the edge part, code and send split features to a host",
                              description="The edge of the split runtime (docs/runtime.md).")
    e.add_argument("--connect", required=True, metavar="HOST:PORT", help="the host (or 'inline': start one here)")
    e.add_argument("--net", required=True, help=NET_HELP)
    e.add_argument("--data", metavar="DATA", help="labelled test images (default: the network's data set; the "
                                                  "ImageNet networks: the sample photos, unlabelled)")
    e.add_argument("--weights", metavar="FILE", help="state_dict for a built-in or .py network")
    e.add_argument("--input-shape", metavar="C,H,W", help="input shape of a model file that does not fix it")
    e.add_argument("--split", help="static split point")
    e.add_argument("--codec", default=None, help="none, lossless (default) or jpeg, with --split")
    e.add_argument("--qf", help="JPEG QF 1..100 (default: the accuracy study's QF within --budget)")
    e.add_argument("--policy", help=POLICY_HELP + " (default: static with --split, else dynamic)")
    e.add_argument("--budget", default="0.01", help="absolute top-1 loss allowed, 0..1 (default 0.01)")
    e.add_argument("--trace", default="2mbps", metavar="TRACE",
                   help="bandwidth trace: a CSV t_seconds,mbps[,power_mw], a shipped trace (const_1mbps, "
                        "const_2mbps, const_22mbps, step, random_walk, walk_wifi) or a rate like 2mbps")
    e.add_argument("--trace-scale", default="1", metavar="F",
                   help="stretch the trace's time axis by F (0.1: a 40 s trace in 4 s; default 1)")
    e.add_argument("--latency", default="0", metavar="MS", help="fixed one-way latency in ms, 0..60000")
    e.add_argument("--frames", metavar="N", help="frames to send, 1..1e7 (default 100; with --duration: no limit)")
    e.add_argument("--duration", metavar="S", help="start no frame after S seconds of the run's clock (e.g. one "
                                                  "period of the trace)")
    e.add_argument("--images", metavar="M", help="distinct test images, cycled (default min(frames, 64))")
    e.add_argument("--clock", default="wall", help="wall (default: real time) or simulated (a virtual clock)")
    e.add_argument("--edge", default="golden", help="golden (default) or rtl (the engine in Verilator)")
    e.add_argument("--window", default="4", metavar="W", help="frames unanswered at most, 1..4096 (default 4)")
    e.add_argument("--objective", default="balanced",
                   help="dynamic: balanced (default: the most frames/s per energy per frame), throughput (the "
                        "most frames/s, the least energy within 2%%) or energy")
    e.add_argument("--no-mix", action="store_true",
                   help="dynamic: one candidate at a time (default: may interleave two, e.g. an edge split and "
                        "the camera image, to keep the engine, the link and the host busy together)")
    e.add_argument("--hysteresis", default="0.1", help="dynamic: switch when 10%% better (default 0.1)")
    e.add_argument("--dwell", default="20", metavar="N", help="dynamic: frames between switches (default 20)")
    e.add_argument("--history", default="5", metavar="N", help="dynamic: transfers in the rate estimate (5)")
    e.add_argument("--initial-mbps", default="1", help="dynamic: rate assumed before the first transfer (1)")
    e.add_argument("--baselines", action="store_true",
                   help="also run edge-only, host-only, best-static and oracle on the same trace")
    e.add_argument("--count-header", action="store_true", help="pace the FRAME envelope too, not only the payload")
    e.add_argument("--accuracy-dir", metavar="DIR", help="accuracy studies (default build/accuracy)")
    e.add_argument("--check-images", default="1000", metavar="N",
                   help="training images on which the study's QFs are checked for the encode unit's codec "
                        "(0: take the study's QFs as they are; default 1000)")
    e.add_argument("--host-speedup", default="1", metavar="F",
                   help="simulated clock: the host serves F times faster than measured here (a server faster "
                        "than this machine; default 1)")
    e.add_argument("--trials", default="3", metavar="N",
                   help="best-static baseline: measure the N candidates ranked first at the mean rate (default 3)")
    e.add_argument("--tech", metavar="FILE", help="technology file of the cost model")
    e.add_argument("--counts", default="auto", help="cost model counts: auto or analytical")
    e.add_argument("--reconnect-timeout", default="30", metavar="S", help="give up reconnecting after S s")
    e.add_argument("--reply-timeout", default="60", metavar="S", help="a host silent this long is lost")
    e.add_argument("--timeout", default="3600", metavar="S", help="the whole run at most (default 3600 s)")
    e.add_argument("--label", default="edge", help="the edge's name in the host's log")
    e.add_argument("--json", action="store_true", help="print one JSON object (without the per-frame log)")
    e.add_argument("--out", metavar="RUN.json", help="write the run (with the per-frame log) for runtime-report")
    e.add_argument("--quiet", action="store_true", help="no progress on stderr")
    e.set_defaults(func=cmd_edge)

    r = subparsers.add_parser("runtime-report", help="plot a runtime run: trace, split/QF, frames/s, baselines",
                              description="Trace, chosen split and QF, and frames/s over time (PNG).")
    r.add_argument("run", metavar="RUN.json", help="written by edgesplit edge --out")
    r.add_argument("-o", "--output", metavar="OUT.png", help=f"plot ({', '.join(files.PLOT_EXTS)}; default: "
                                                             "beside RUN.json)")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=cmd_report)


# ---- value checks (before anything heavy is imported) ---------------------------------------------------------


def _number(text: str | None, what: str, lo: float, hi: float, integer: bool = False) -> float | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or not lo <= v <= hi or (integer and v != int(v)):
        kind = "a whole number" if integer else "a number"
        raise UserError(f"{what} {text!r} is not {kind} in {lo:g}..{hi:g}")
    return int(v) if integer else v


def _progress(quiet: bool, label: str):
    if quiet:
        return None
    from model.accuracy import Progress

    p = Progress(label)
    return lambda line: p.update(line, force=not line.startswith("["))


def cmd_host(args) -> int:
    from model.runtime import host as H
    from model.runtime import wire

    if args.server not in H.SERVERS:
        raise UserError(f"unknown server {args.server!r}; allowed: {', '.join(H.SERVERS)}")
    wire.parse_address(args.listen, "--listen")
    cfg = H.HostConfig(precision=args.precision, data=args.data, decoder=args.decoder,
                       idle_timeout=_number(args.idle_timeout, "--idle-timeout", 0.01, 86400),
                       max_connections=_number(args.max_connections, "--max-connections", 1, 4096, True),
                       workers=_number(args.workers, "--workers", 1, 256, True),
                       torch_threads=_number(args.torch_threads, "--torch-threads", 0, 256, True)).check()
    duration = _number(args.duration, "--duration", 0.01, 10 * 86400)
    for spec in args.preload:
        from golden.network import check_spec

        check_spec(spec)

    def announce(host: str, port: int) -> None:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        print(f"edgesplit host: listening on {shown} ({args.server}, {cfg.precision} host)", flush=True)

    log = (lambda line: None) if args.quiet else H.stderr_log
    core = H.serve_forever(args.listen, args.server, cfg, tuple(args.preload), duration, announce, log,
                           args.input_shape, args.weights)
    s = core.stats
    print(f"edgesplit host: served {s['connections']} connection(s), {s['frames']} frame(s), dropped "
          f"{s['dropped']}, refused {s['refused']}", flush=True)
    return 0


def edge_config(args):
    """The checked :class:`model.runtime.edge.EdgeConfig` of ``edgesplit edge``'s arguments."""
    from model.runtime.controller import PolicyConfig
    from model.runtime.edge import EdgeConfig
    from model.runtime.trace import load_trace

    policy = args.policy or ("static" if args.split else "dynamic")
    if args.codec is not None and not args.split:
        raise UserError("--codec applies with --split (a static split)")
    qf = _number(args.qf, "--qf", 1, 100, True)
    budget = _number(args.budget, "--budget", 0, 0.999999)
    pc = PolicyConfig(objective=args.objective, mix=not args.no_mix,
                      hysteresis=_number(args.hysteresis, "--hysteresis", 0, 10),
                      dwell=_number(args.dwell, "--dwell", 0, 1e6, True),
                      history=_number(args.history, "--history", 1, 1e4, True),
                      initial_mbps=_number(args.initial_mbps, "--initial-mbps", 0.001, 1e6)).check()
    if args.out:
        files.check_output_file(args.out, "--out file", (".json",), inputs=[("--trace", args.trace)])
    cfg = EdgeConfig(connect="127.0.0.1:0" if args.connect == "inline" else args.connect, net=args.net,
                     data=args.data, weights=args.weights, input_shape=args.input_shape, policy=policy,
                     split=args.split, codec=args.codec or "lossless", qf=qf, budget=budget,
                     trace=load_trace(args.trace).scaled(_number(args.trace_scale, "--trace-scale", 1e-6, 1e6)),
                     latency_s=_number(args.latency, "--latency", 0, 60000) / 1e3,
                     frames=_number(args.frames or ("10000000" if args.duration else "100"), "--frames", 1, 1e7, True),
                     duration=_number(args.duration, "--duration", 1e-6, 1e7),
                     images=_number(args.images, "--images", 1, 100000, True), clock=args.clock, edge=args.edge,
                     window=_number(args.window, "--window", 1, 4096, True), policy_config=pc,
                     baselines=args.baselines, count_header=args.count_header, accuracy_dir=args.accuracy_dir,
                     tech=args.tech, counts=args.counts,
                     check_images=_number(args.check_images, "--check-images", 0, 100000, True),
                     host_speedup=_number(args.host_speedup, "--host-speedup", 1e-3, 1e6),
                     trials=_number(args.trials, "--trials", 0, 100, True),
                     reconnect_timeout=_number(args.reconnect_timeout, "--reconnect-timeout", 0.01, 86400),
                     reply_timeout=_number(args.reply_timeout, "--reply-timeout", 0.01, 86400),
                     timeout=_number(args.timeout, "--timeout", 0.01, 10 * 86400), label=args.label)
    if args.counts not in ("auto", "analytical", "rtl"):
        raise UserError(f"unknown counts source {args.counts!r}; allowed: auto, analytical, rtl")
    return cfg.check()


def cmd_edge(args) -> int:
    cfg = edge_config(args)
    progress = _progress(args.quiet, "edgesplit edge")
    from model.runtime import edge as E

    if args.connect == "inline":
        from model.runtime.host import HostConfig, HostThread

        with HostThread("asyncio", log=lambda line: None, config=HostConfig(data=cfg.data)) as h:
            cfg.connect = f"127.0.0.1:{h.port}"
            result = E.run(cfg, progress)
    else:
        result = E.run(cfg, progress)
    if args.out:
        files.write_text(args.out, json.dumps(result, allow_nan=True, default=str))
    if args.json:
        print(json.dumps(_strip(result), indent=1, allow_nan=True, default=str))
    else:
        from model.runtime.report import format_summary

        print(format_summary(result))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _strip(run: dict) -> dict:
    out = {k: v for k, v in run.items() if k not in ("per_frame",)}
    out["baselines"] = [{k: v for k, v in b.items() if k != "per_frame"} for b in run.get("baselines", [])]
    return out


def cmd_report(args) -> int:
    from pathlib import Path

    src = Path(args.run)
    out = Path(args.output) if args.output else src.with_suffix(".png")
    files.check_output_file(out, "report", files.PLOT_EXTS, inputs=[("RUN.json", src)])
    try:
        run = json.loads(src.read_text())
    except OSError as e:
        raise UserError(f"run file {src} cannot be read: {e.strerror or e}") from None
    except ValueError:
        raise UserError(f"run file {src} is not JSON (write it with edgesplit edge --out)") from None
    from model.runtime.report import check_run, format_summary, plot_run

    check_run(run, str(src))
    plot_run(run, out)
    if args.json:
        print(json.dumps(_strip(run), indent=1, allow_nan=True, default=str))
    else:
        print(format_summary(run))
        print(f"wrote {out}")
    return 0


__all__ = ["cmd_edge", "cmd_host", "cmd_report", "edge_config", "register"]
