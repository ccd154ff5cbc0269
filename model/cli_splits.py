"""``edgesplit splits``: the split points of a network, as every other command sees them.

``edgesplit splits --net NET [--all] [--json] [--input-shape C,H,W] [--weights FILE]``
    ``NET``: a built-in name, ``PATH.onnx`` or ``PATH.py:FACTORY`` (:mod:`golden.network`). Prints a header
    (network, source, input shape, layer count, total MACs) and one row per split point: its name, the shape
    of the feature sent there, its bytes (int16 values; the ``input`` row: the input tensor at 16 bits, as
    :attr:`golden.network.Split.feature_bytes` counts it), the MACs on the edge (every layer up to and
    including the split) and on the host (the rest), and the weights stored on the edge.

    ``--all``: every automatic split point (:func:`golden.graph.find_splits`), with a mark on the ones the
    network lists under another name: the built-ins with hand-written stage tables (AlexNet's ``conv1`` is
    the automatic ``features.2``) list only their stages, the other networks list every point.
    ``--json``: a JSON list of the split dicts (:meth:`golden.network.Split.as_dict`; with ``--all`` each also
    has ``alias``: the listed name, or null for a point the network does not list).
    ``--weights FILE``: a state_dict for a built-in or ``.py`` network, loaded to check that it fits (an ONNX
    model carries its weights: an error); the table does not depend on weight values.

A name that is neither a built-in nor a model file, a model file that cannot be read or holds an operator the
engine does not run, a model without a fixed input shape and no ``--input-shape``: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from dataclasses import replace

NET_HELP = ("network: a built-in name (alexnet, vgg16, resnet50, resnet20, resnet56, digits, mobilenetv2, "
            "squeezenet1_1, resnet18, mobilenetv2_cifar), PATH.onnx or PATH.py:FACTORY")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "splits", help="the split points of a network: feature shape and bytes, edge / host MACs, edge weights",
        description="List the split points of a built-in network or a model file (PATH.onnx, PATH.py:FACTORY): "
                    "the feature sent at each, its bytes, the MACs on each side and the weights on the edge.")
    p.add_argument("--net", required=True, help=NET_HELP)
    p.add_argument("--all", action="store_true",
                   help="every automatic split point, marking the names the network lists them under")
    p.add_argument("--json", action="store_true", help="print a JSON list of the split dicts")
    p.add_argument("--input-shape", metavar="C,H,W", help="input shape of a model that does not fix it")
    p.add_argument("--weights", metavar="FILE",
                   help="state_dict for a built-in or .py network (checked against the model; not for ONNX)")
    p.set_defaults(func=cmd_splits)


def every_point(net) -> list[tuple[object, str | None]]:
    """``[(Split, listed name or None)]`` for every automatic split point of ``net`` (a Network): the listed
    splits themselves where the network lists every point, else the points of the same architecture without
    its stage names."""
    points = net.all_points()
    if all(auto == listed for auto, listed in points):
        return [(s, s.name) for s in net.splits]
    bare = replace(net, stage_aliases=None, tables=None, weights=None)   # fresh tables: every point, auto names
    by_auto = {s.name: s for s in bare.splits}
    return [(by_auto[auto], listed) for auto, listed in points]


def _shape(s) -> str:
    return "x".join(str(v) for v in s.tensor_shape)


def format_table(net, rows: list[tuple[object, str | None]], show_all: bool) -> str:
    """The header and one line per split (``rows``: ``(Split, alias)``)."""
    lays = net.layers
    c, h, w = net.input_shape
    total = sum(la.macs for la in lays)
    lines = [f"{net.name}: source {net.source}, input {c}x{h}x{w}, {len(lays)} layers, {total:,} MACs, "
             f"{len(net.splits)} split points" + (f" ({len(rows)} automatic)" if show_all else "")]
    if net.weights is not None:
        lines.append(f"weights: {net.weights}")
    name_w = max([5] + [len(s.name) for s, _ in rows])
    alias_w = max([5] + [len(a or "-") for _, a in rows]) if show_all else 0
    shape_w = max([5] + [len(_shape(s)) for s, _ in rows])
    head = f"{'split':<{name_w}} " + (f"{'alias':<{alias_w}} " if show_all else "") + \
        f"{'shape':<{shape_w}} {'bytes':>11} {'edge MACs':>15} {'host MACs':>15} {'edge weights':>13}"
    lines += [head, "-" * len(head)]
    for s, alias in rows:
        mark = "" if not show_all else f"{(alias if alias != s.name else '=') if alias else '-':<{alias_w}} "
        lines.append(f"{s.name:<{name_w}} {mark}{_shape(s):<{shape_w}} {s.feature_bytes:>11,} {s.edge_macs:>15,} "
                     f"{s.host_macs:>15,} {s.edge_weights:>13,}")
    if show_all:
        lines.append("alias: the name the network lists the point under ('=' the same name, '-' not listed)")
    return "\n".join(lines)


def cmd_splits(args) -> int:
    from golden.network import load_network

    net = load_network(args.net, weights=args.weights, input_shape=args.input_shape)
    if net.weights is not None:
        net.module()  # the weights must fit the model (UserError naming the first missing / unexpected key)
    rows = every_point(net) if args.all else [(s, s.name) for s in net.splits]
    if args.json:
        out = []
        for s, alias in rows:
            d = s.as_dict()
            if args.all:
                d["alias"] = alias
            out.append(d)
        print(json.dumps(out, indent=1))
        return 0
    print(format_table(net, rows, args.all))
    return 0
