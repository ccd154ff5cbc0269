"""``make sim``: a real network, cycle-accurately on the engine RTL in Verilator, checked bit-exactly.

Default: AlexNet (torchvision layout, channels 64-192-384-256-256) from the input image through pool5
(split ``conv5``), fixed-seed He-initialised weights (``WEIGHTS=path`` for a torchvision state_dict),
calibrated and run on scikit-image's astronaut photo resized to 224 x 224 (``golden.quantize``). The
network is lowered to engine commands (``sim.program``), simulated with the DRAM model at 16 bytes
per cycle, and every layer's output is compared with the golden integer model.

Prints a per-layer table and writes ``build/sim/<net>.json``: for each layer ``name``, ``macs``,
``cycles``, ``utilization`` (MACs / (144 x cycles)), ``bit_exact``, ``counters`` (every counter).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from golden.errors import UserError
from sim.runner import BUILD_DIR

ARRAY_MACS = 144
DEFAULT_SPLITS = {"alexnet": "conv5"}


def display_names(qnet, layers) -> dict[str, str]:
    """Readable layer names: the stage name for conv/FC layers, '<stage>.pool' for pools."""
    from golden.splits import layers_between

    stage = {ly.name: ly.split for ly in layers_between(qnet.net)}
    names = {}
    for layer in layers:
        base = stage.get(layer.name, layer.name)
        kind = type(layer).__name__
        names[layer.name] = {"PoolLayer": f"{base}.pool", "AddLayer": f"{base}.add"}.get(kind, base)
    # stages with several conv layers (ResNet blocks): number them
    seen: dict[str, int] = {}
    for layer in layers:
        n = names[layer.name]
        if list(names.values()).count(n) > 1:
            seen[n] = seen.get(n, 0) + 1
            names[layer.name] = f"{n}.{seen[n]}"
    return names


# FC layers with more weights than this run as a slice of SLICE_CHANNELS output channels whose counts
# are scaled up (every group of 12 output channels streams the same K rows: identical work per group)
FC_SLICE_WORDS = 4_000_000
SLICE_CHANNELS = 120


def _programs(layers):
    """Split the layer list: one program for everything up to the first flattened FC layer, then one
    program per FC layer (its input is the golden output of the layer before, so each runs and is
    checked on its own; a huge one can be sliced)."""
    from sim.program import ConvLayer, is_linear

    if not is_linear(layers):
        return [layers]
    head = []
    for i, layer in enumerate(layers):
        if isinstance(layer, ConvLayer) and layer.flatten:
            tail = [[ly] for ly in layers[i:]]
            return ([head] if head else []) + tail
        head.append(layer)
    return [head]


def simulate(net: str, split: str | None, weights: str | None, bytes_per_cycle: float) -> dict:
    from dataclasses import replace

    from golden.nets import get_net
    from golden.quantize import calibration_images, quantize_net, sample_images
    from hw.engine import COUNTERS
    from sim.engine_run import DEFAULT_CONFIG, DramSettings, run_program
    from sim.networks import engine_layers
    from sim.program import compile_program, reference_outputs

    split = split or DEFAULT_SPLITS.get(net)
    print(f"{net}: calibrating int16 scales on real images...", flush=True)
    module = get_net(net, weights=weights)
    qnet = quantize_net(module, calibration_images(net))
    layers = engine_layers(qnet, split)
    x = qnet.quantize_input(sample_images(net, 1))[0]
    names = display_names(qnet, layers)
    # golden: every layer's integer reference (golden.layers) from its golden inputs
    refs = reference_outputs(layers, x)
    rows = []
    totals = {n: 0 for n in COUNTERS}
    t0 = time.monotonic()
    sim_wall = 0.0
    for part in _programs(layers):
        first = part[0]
        prev_name = layers[layers.index(first) - 1].name if layers.index(first) else None
        px = refs[prev_name] if prev_name else x
        scale = 1.0
        if len(part) == 1 and getattr(first, "flatten", False) and first.weight.size > FC_SLICE_WORDS:
            o = first.weight.shape[0]
            part = [replace(first, weight=first.weight[:SLICE_CHANNELS], bias=first.bias[:SLICE_CHANNELS])]
            scale = o / SLICE_CHANNELS
        if len(layers) != len(part):  # a part starts from the program input: the previous golden output
            part = [replace(part[0], inputs=None), *part[1:]]
        prog = compile_program(part, px, DEFAULT_CONFIG)
        what = part[0].name if len(part) == 1 else f"{len(part)} layers"
        print(f"{net} ({what}): {len(prog.commands)} commands, {sum(prog.macs.values()) / 1e6:.1f} M MACs"
              f"{f' (a slice of {SLICE_CHANNELS} of {first.weight.shape[0]} channels)' if scale != 1 else ''}; "
              f"simulating in Verilator (DRAM {bytes_per_cycle:g} B/cycle)...", flush=True)
        res = run_program(prog, f"{net}_{split}_{part[0].name}", DramSettings(bytes_per_cycle=bytes_per_cycle))
        sim_wall += res.wall_s
        per_layer = res.per_layer(prog)
        for layer in part:
            ref = refs[layer.name][:SLICE_CHANNELS] if scale != 1 else refs[layer.name]
            got = prog.read_output(res.dram, layer.name)
            c = {n: round(v * scale) for n, v in per_layer[layer.name].items()}
            macs = round(prog.macs[layer.name] * scale)
            row = {
                "name": names[layer.name], "module": layer.name, "type": type(layer).__name__[:-5].lower(),
                "shape": list(refs[layer.name].shape), "macs": macs, "cycles": c["cycles"],
                "utilization": macs / (ARRAY_MACS * c["cycles"]) if c["cycles"] else 0.0,
                "bit_exact": bool(np.array_equal(got, ref)), "bands": prog.banded[layer.name], "counters": c,
            }
            if scale != 1:
                row["scaled_from_slice"] = {"simulated_output_channels": SLICE_CHANNELS, "scale": scale}
            rows.append(row)
            for n in COUNTERS:
                totals[n] += c[n]
    wall = time.monotonic() - t0
    return {"net": net, "split": split, "weights": weights or "default (see golden.nets)",
            "image": "golden.quantize.sample_images", "dram_bytes_per_cycle": bytes_per_cycle,
            "engine": DEFAULT_CONFIG.__dict__, "layers": rows,
            "total": {"cycles": totals["cycles"], "macs": totals["macs"], "counters": totals,
                      "utilization": totals["macs"] / (ARRAY_MACS * totals["cycles"])},
            "wall_s": wall, "sim_wall_s": sim_wall, "sim_cycles_per_s": totals["cycles"] / max(sim_wall, 1e-9)}


def print_table(result: dict) -> None:
    head = (f"{'layer':12} {'shape':>12} {'MACs':>13} {'cycles':>11} {'util':>6} {'DRAM rd':>10} {'DRAM wr':>9} "
            f"{'st.dram':>9} {'st.fetch':>8} {'st.drain':>8} {'st.ctrl':>8} {'exact':>5}")
    print(head)
    print("-" * len(head))
    for r in result["layers"]:
        c = r["counters"]
        print(f"{r['name']:12} {'x'.join(map(str, r['shape'])):>12} {r['macs']:>13,} {r['cycles']:>11,} "
              f"{r['utilization']:>6.1%} {c['dram_read_words']:>10,} {c['dram_write_words']:>9,} "
              f"{c['stall_dram']:>9,} {c['stall_fetch']:>8,} {c['stall_drain']:>8,} {c['stall_control']:>8,} "
              f"{'yes' if r['bit_exact'] else 'NO':>5}")
    t = result["total"]
    print(f"{'total':12} {'':>12} {t['macs']:>13,} {t['cycles']:>11,} {t['utilization']:>6.1%}")
    print(f"simulated {t['cycles']:,} cycles in {result['sim_wall_s']:.1f} s "
          f"({result['sim_cycles_per_s']:,.0f} cycles/s); whole run {result['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="alexnet")
    p.add_argument("--split", help="run the network up to this split point (default: conv5 for alexnet)")
    p.add_argument("--weights", help="a torchvision-format state_dict file (default: He-initialised, seed 0)")
    p.add_argument("--dram-bytes-per-cycle", type=float, default=16.0)
    args = p.parse_args(argv)
    try:
        from golden.nets import check_net_name

        check_net_name(args.net)
        result = simulate(args.net, args.split, args.weights, args.dram_bytes_per_cycle)
    except UserError as e:
        print(f"make sim: error: {e}", file=sys.stderr)
        return 2
    print_table(result)
    # the default run of a network is build/sim/<net>.json (what the cost model reads); another split
    # goes to build/sim/<net>_<split>.json
    default = args.split is None or args.split == DEFAULT_SPLITS.get(args.net)
    out = BUILD_DIR / "sim" / (f"{args.net}.json" if default else f"{args.net}_{args.split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0 if all(r["bit_exact"] for r in result["layers"]) else 1


if __name__ == "__main__":
    sys.exit(main())
