"""``edgesplit query``, ``edgesplit sweep``, ``edgesplit best``: the cost model on the command line.

``edgesplit query --net N --split S --encoding none|lossless|jpeg [--qf Q] --link 1mbps|2mbps|22mbps|RATE:POWER
[--tech FILE] [--ratio R] [--json]``
    one operating point: fps, energy per frame, breakdown by component, bottleneck stage, feature bytes.
``edgesplit sweep [--net N ...] [--split S ...] [--encoding E ...] [--link L ...] [--qf Q] [--json] [--plot FILE]
[--workers N] [--scheduler tcp://HOST:PORT]``
    every combination (defaults: alexnet, vgg16, resnet50 x every split x 3 encodings x 3 links); with
    ``--workers``/``--scheduler`` (or a sweep of 200,000 points or more) in chunks of points on a Dask cluster
    (``sim.cluster``), the same table.
``edgesplit best --net N --link L [--encoding E] --objective energy|throughput [--accuracy-loss 0.01]
[--json] [--plot FILE]``
    the best split under the accuracy budget, with the edge-only and host-only baselines and the gains.

``--net``: a built-in name (``alexnet``, ``vgg16``, ``resnet50``, ``resnet20``, ``resnet56``, ``digits``,
``mobilenetv2``, ``squeezenet1_1``, ``resnet18``, ``mobilenetv2_cifar``), ``PATH.onnx`` or ``PATH.py:FACTORY``
(:mod:`golden.network`), resolved once when the command starts; ``--input-shape C,H,W`` for a model that does
not fix its input (for ``sweep``, it applies to the model files, not to the built-ins). The split points of a
model file are found automatically (``edgesplit splits --net ...`` lists them). A network with no entry in
``model/ratios.yaml`` and no accuracy study gets the table's default rule (provenance ``assumed``, saying so).

Every command takes ``--weights int16|jpeg`` (default int16; ``jpeg``: weights JPEG-coded in DRAM and
restored by the engine's weight decoder, per-layer sizes from ``build/weights/<net>.json``) and
``--weights-qf Q`` (one weight QF for every layer; default: the table's choice, QF 50 for untrained nets).
(The cost depends on the architecture only, so these commands take no weight file.)

``--json`` prints one JSON document on stdout (``query``/``best``: one object; ``sweep``: a list).
Bad values (unknown network, split, link or encoding, QF outside 1..100, a link rate outside 1e3..1e12 bit/s
or a power outside 0..100 W, a ratio outside 0.1..1e5, a malformed technology file or one with values outside
the physical bounds of :mod:`golden.limits`, a model file that cannot be read or has an unsupported layer, a
``--plot`` file that cannot be written) print one line on stderr and exit with status 2 (``model.cli``); every
value and the ``--plot`` location are checked before the network is loaded or anything is computed.
"""

from __future__ import annotations

import argparse
import math

from golden import files, limits
from golden.errors import UserError

# = model.system.ENCODINGS, repeated so that building the parser imports nothing heavy (torch, the tables)
ENCODINGS = ("none", "lossless", "jpeg")
# = model.counts.WEIGHT_FORMATS, likewise
WEIGHT_FORMATS = ("int16", "jpeg")

NET_HELP = ("network: a built-in name (alexnet, vgg16, resnet50, resnet20, resnet56, digits, mobilenetv2, "
            "squeezenet1_1, resnet18, mobilenetv2_cifar), PATH.onnx or PATH.py:FACTORY")
LINK_HELP = ("1mbps, 2mbps, 22mbps (the paper's transmitter at 62.7, 99, 660 mW) or RATE_BPS:POWER_W, e.g. 5e6:0.2 "
             f"({limits.LINK_HELP})")
PLOT_HELP = f"({', '.join(files.PLOT_EXTS)}; its folder must exist)"


def _qf(text: str | None, what: str = "QF") -> int | None:
    if text is None:
        return None
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v) or v != int(v) or not 1 <= v <= 100:
        raise UserError(f"{what} {text!r} is outside the allowed range 1..100 (an integer)")
    return int(v)


def _float(text: str | None, what: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{what} {text!r} is not a number") from None


def _ratio(text: str | None) -> float | None:
    return limits.parse_number(text, "compression ratio", limits.COMPRESSION_RATIO)


def _links(values: list[str]) -> None:
    """Every link parsed before any work (the same check as the model's)."""
    from model.system import parse_link

    for v in values:
        parse_link(v)


def _plot(args) -> None:
    """``--plot FILE``: writable, a plot extension, not an input; checked before any work."""
    if getattr(args, "plot", None):
        files.check_output_file(args.plot, "--plot file", files.PLOT_EXTS,
                                inputs=[("--tech", args.tech), ("--net", _model_file(args.net))])


def _model_file(net) -> str | None:
    """The model file of a ``--net`` value (``PATH.onnx`` or ``PATH.py:FACTORY``; the first of a list)."""
    for spec in net if isinstance(net, list) else [net]:
        if spec and (spec.endswith(".onnx") or ".py:" in spec):
            return spec.rpartition(":")[0] if ".py:" in spec else spec
    return None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tech", metavar="FILE", help=f"technology file (default: hw/tech/28nm.yaml; "
                                                  f"{limits.TECH_HELP})")
    p.add_argument("--counts", default="auto", metavar="SOURCE",
                   help="action counts: auto (RTL counters from build/sim/<net>.json where present) or analytical")
    p.add_argument("--weights", default="int16",
                   help="weights in DRAM: int16 (default) or jpeg (coded, restored by the engine's weight decoder)")
    p.add_argument("--weights-qf", metavar="Q",
                   help="weight QF 1..100 for every layer with --weights jpeg (default: build/weights/<net>.json's "
                        "choice; 50 for untrained nets)")
    p.add_argument("--input-shape", metavar="C,H,W",
                   help="input shape of a model file that does not fix it (e.g. 3,32,32)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register(subparsers) -> None:
    q = subparsers.add_parser("query", help="cost of one split: fps, energy per frame, breakdown, bottleneck",
                              description="Frames per second and energy per frame of a network split at one point.")
    q.add_argument("--net", required=True, help=NET_HELP)
    q.add_argument("--split", required=True, help="split point (e.g. conv5; input = host-only, last = edge-only)")
    q.add_argument("--encoding", default="none", help=f"{', '.join(ENCODINGS)} (default none)")
    q.add_argument("--qf", help="JPEG quality factor 1..100 (default: the QF meeting the accuracy budget)")
    q.add_argument("--link", default="2mbps", help=LINK_HELP + " (default 2mbps)")
    q.add_argument("--ratio", help="compression ratio (raw / sent bytes) to use instead of the table / accuracy "
                                   f"study, {limits.COMPRESSION_RATIO.text()}")
    _common(q)
    q.add_argument("--batch", default="1", metavar="N",
                   help="frames per fully-connected pass, 1..12 (make sim BATCH=n): the FC layers run once for N "
                        "frames; every value per frame (default 1)")
    q.set_defaults(func=cmd_query)

    s = subparsers.add_parser("sweep", help="cost of every net x split x encoding x link",
                              description="Evaluate every combination; defaults: alexnet, vgg16, resnet50, every "
                                          "split, none/lossless/jpeg, 1/2/22 Mbps.")
    s.add_argument("--net", action="append", help=NET_HELP + " (repeatable; default alexnet, vgg16, resnet50)")
    s.add_argument("--split", action="append", help="split (repeatable; default every split)")
    s.add_argument("--encoding", action="append", help=f"encoding (repeatable; default {', '.join(ENCODINGS)})")
    s.add_argument("--link", action="append", help=LINK_HELP + " (repeatable; default all three)")
    s.add_argument("--qf", help="JPEG quality factor for the jpeg rows (default: at the accuracy budget)")
    s.add_argument("--plot", metavar="FILE", help="write a plot: fps and energy per split for each row group "
                                                  + PLOT_HELP)
    _common(s)
    from sim.cluster import add_arguments

    add_arguments(s)
    s.set_defaults(func=cmd_sweep)

    b = subparsers.add_parser("best", help="the best split under an accuracy budget, vs edge-only and host-only",
                              description="Best split by energy per frame or frames per second within an "
                                          "accuracy-loss budget; edge-only and host-only baselines beside it.")
    b.add_argument("--net", required=True, help=NET_HELP)
    b.add_argument("--link", default="2mbps", help=LINK_HELP + " (default 2mbps)")
    b.add_argument("--encoding", help=f"fix the encoding ({', '.join(ENCODINGS)}; default: any)")
    b.add_argument("--objective", default="energy", help="energy or throughput (default energy)")
    b.add_argument("--accuracy-loss", default="0.01", help="absolute top-1 loss allowed (default 0.01)")
    b.add_argument("--qf", help="JPEG quality factor (default: at the accuracy budget)")
    b.add_argument("--plot", metavar="FILE", help="write a plot: energy and fps per split, best marked " + PLOT_HELP)
    _common(b)
    b.set_defaults(func=cmd_best)


def _net(spec: str, input_shape: str | None):
    """``--net`` resolved once (:func:`golden.network.load_network`): the Network everything below takes."""
    from golden.network import load_network

    return load_network(spec, input_shape=input_shape)


def _nets(specs: list[str] | None, input_shape: str | None) -> list | None:
    """``sweep``'s repeated ``--net``: each value resolved once; ``--input-shape`` goes to the model files."""
    from golden.network import builtin_names, parse_input_shape

    shape = parse_input_shape(input_shape)
    if shape is not None and all(spec in builtin_names() for spec in specs or ()):
        raise UserError("--input-shape applies to model files given with --net (PATH.onnx, PATH.py:FACTORY); "
                        "the built-in networks fix their input")
    if not specs:
        return None
    resolved: dict[str, object] = {}
    for spec in specs:
        if spec not in resolved:
            resolved[spec] = _net(spec, None if spec in builtin_names() else shape)
    return [resolved[spec] for spec in specs]


def _counts(args) -> str:
    if args.counts not in ("auto", "analytical", "rtl"):
        raise UserError(f"unknown counts source {args.counts!r}; allowed: auto, analytical, rtl")
    return args.counts


def _load_tech(path):
    from hw.tech import load_tech

    return load_tech(path)


def _encoding(value: str | None) -> str | None:
    """Checked before the model is imported, so a typo fails fast (the same message as model.system)."""
    if value is not None and value not in ENCODINGS:
        raise UserError(f"unknown encoding {value!r}; allowed: {', '.join(ENCODINGS)}")
    return value


def _weights(args) -> dict:
    """``--weights`` / ``--weights-qf`` as keyword arguments of the API (checked before the model is imported)."""
    if args.weights not in WEIGHT_FORMATS:
        raise UserError(f"unknown weights format {args.weights!r}; allowed: {', '.join(WEIGHT_FORMATS)}")
    wqf = None
    if args.weights_qf is not None:
        wqf = _qf(args.weights_qf, "weight QF")
        if args.weights != "jpeg":
            raise UserError(f"--weights-qf {args.weights_qf} applies only to --weights jpeg (got {args.weights})")
    return {"weights": args.weights, "weights_qf": wqf}


def _batch(text: str) -> int:
    """``--batch``: an integer in 1..lanes (checked again, against the engine's lanes, by the model)."""
    try:
        return int(str(text).strip())
    except ValueError:
        raise UserError(f"batch {text!r} is not an integer; allowed: an integer in 1..12") from None


def cmd_query(args) -> int:
    _encoding(args.encoding)
    qf = _qf(args.qf)
    wkw = _weights(args)
    counts = _counts(args)
    ratio = _ratio(args.ratio)
    _links([args.link])
    tech = _load_tech(args.tech)
    net = _net(args.net, args.input_shape)
    from model import api

    batch = _batch(args.batch)
    r = api.query(net, args.split, args.encoding, qf, args.link, tech=tech, ratio=ratio, counts_source=counts,
                  **wkw, **({"batch": batch} if batch != 1 else {}))
    if args.json:
        print(api.dumps(r))
        return 0
    print(f"{r.net} split at {r.split} ({r.role}), encoding {r.encoding}"
          f"{f' QF {r.qf}' if r.qf else ''}, link {r.link} ({r.rate_bps / 1e6:g} Mbit/s, {r.power_w * 1e3:g} mW)"
          f"{f'; FC layers batched over {batch} frames, values per frame' if batch != 1 else ''}")
    print(f"  fps {r.fps:.2f}  energy per frame {r.energy_per_frame_j * 1e3:.3f} mJ  bottleneck {r.bottleneck}")
    print(f"  stages: inference {r.inference_time_s * 1e3:.2f} ms | encode {r.encode_time_s * 1e3:.2f} ms + "
          f"transmit {r.transmit_time_s * 1e3:.2f} ms")
    print(f"  feature {r.feature_bytes:,} B, ratio {r.compression_ratio:.2f}x -> {r.transmitted_bytes:,.0f} B sent"
          f"{'' if r.accuracy_loss is None else f', top-1 loss {r.accuracy_loss:.2%}'}")
    print("  energy (mJ): " + ", ".join(f"{k[:-2]} {v * 1e3:.3f}" for k, v in r.breakdown.items()))
    print(f"  provenance: counts {r.counts_source}; ratio {r.ratio_source}"
          f"{f' ({r.ratio_note})' if r.ratio_note else ''}; tech {r.tech}")
    if r.weights != "int16":
        qfs = sorted(set((r.weight_qfs or {}).values()))
        print(f"  weights: {r.weights} (weight QF {', '.join(map(str, qfs)) or '-'} on the edge layers), "
              f"weight decoder {r.breakdown['weight_decoder_j'] * 1e3:.3f} mJ")
    return 0


def cmd_sweep(args) -> int:
    for e in args.encoding or ():
        _encoding(e)
    wkw = _weights(args)
    qf, counts = _qf(args.qf), _counts(args)
    _links(args.link or [])
    _plot(args)
    tech = _load_tech(args.tech)
    from sim.cluster import from_args

    # --workers / --scheduler: the points go to the cluster in chunks; default: serially unless the sweep is long
    cluster = from_args(args) if args.workers is not None or args.scheduler is not None else None
    nets = _nets(args.net, args.input_shape)
    from model import api

    t = api.sweep(nets=nets, splits=args.split, encodings=args.encoding or ENCODINGS, links=args.link,
                  qf=qf, tech=tech, counts_source=counts, cluster=cluster, quiet=args.json, **wkw)
    if args.plot:
        from model.report import plot_sweep

        plot_sweep(t, args.plot)
    if args.json:
        print(api.dumps(t))
    else:
        print(t.format())
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


def cmd_best(args) -> int:
    _encoding(args.encoding)
    wkw = _weights(args)
    qf, counts = _qf(args.qf), _counts(args)
    loss = None if args.accuracy_loss.lower() in ("none", "any") else _float(args.accuracy_loss, "accuracy loss")
    if loss is not None and not 0 <= loss < 1:   # (NaN fails too)
        raise UserError(f"accuracy loss budget {loss!r} must be a number in [0, 1)")
    if args.objective not in ("energy", "throughput"):
        raise UserError(f"unknown objective {args.objective!r}; allowed: energy, throughput")
    _links([args.link])
    _plot(args)
    tech = _load_tech(args.tech)
    net = _net(args.net, args.input_shape)
    from model import api

    b = api.best_split(net, args.link, args.objective, loss, args.encoding, qf, tech=tech, counts_source=counts,
                       **wkw)
    if args.plot:
        from model.report import plot_best

        plot_best(b, args.plot)
    if args.json:
        print(api.dumps(b))
        return 0
    r = b.best
    print(f"{b.net} on {b.link}, objective {b.objective}, accuracy-loss budget {b.accuracy_loss}, "
          f"encoding {b.encoding or 'any'}, weights {b.weights}")
    print(f"  best: {r.split} ({r.encoding}{f' QF {r.qf}' if r.qf else ''}): {r.fps:.2f} fps, "
          f"{r.energy_per_frame_j * 1e3:.3f} mJ/frame, bottleneck {r.bottleneck}")
    for name, base in (("edge-only", b.edge_only), ("host-only", b.host_only)):
        g = b.gains(base)
        print(f"  {name}: {base.split} ({base.encoding}): {base.fps:.2f} fps, {base.energy_per_frame_j * 1e3:.3f} mJ"
              f" -> best is {g['energy']:.2f}x less energy, {g['throughput']:.2f}x the throughput")
    print(f"  provenance: counts {r.counts_source}; ratio {r.ratio_source}; tech {r.tech}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
