"""``make sim``: a real network, cycle-accurately on the engine RTL in Verilator, checked bit-exactly.

Default: AlexNet (torchvision layout, channels 64-192-384-256-256) from the input image through pool5
(split ``conv5``), fixed-seed He-initialised weights (``WEIGHTS=path`` for a torchvision state_dict),
calibrated and run on scikit-image's astronaut photo resized to 224 x 224 (``golden.quantize``). The
network is lowered to engine commands (``sim.program``), simulated with the DRAM model at 16 bytes
per cycle, and every layer's output is compared with the golden integer model.

The network runs as several engine programs (pieces, ``sim.cluster.run_pieces``: ``--workers N`` /
``WORKERS=N`` local Dask workers, default one per core, 1 = serially; ``--scheduler`` / ``SCHEDULER=`` an
existing cluster): one per FC layer, each starting from the golden output of the layer before. The JSON is the serial
run's whichever way the pieces ran, but for the wall-time fields. On more than one worker (or with ``--cut``,
``CUT=1``) the conv head is also cut after its pools (``cut_head``; not in networks with branches, nor in
encoding, coded-weight or batched runs): each later program reruns the pool before its cut as a warm-up (its
counters discarded), so that the first layer after the cut starts behind the same STOREs as in the uncut run:
every counter of every layer equals the uncut run's (VGG-16, 7 Dec: 18 of 18 conv-head layers).

Prints a per-layer table and writes ``build/sim/<net>.json``: for each layer ``name``, ``macs``,
``cycles``, ``utilization`` (MACs / (144 x cycles)), ``bit_exact``, ``counters`` (every counter).

``--encode jpeg --qf Q`` / ``--encode lossless`` (``make sim ENCODE=jpeg QF=30``): every layer's output
also goes through the engine's encode unit (``hw.encode_unit``) as if the network were split there,
in the background while the next layer computes. Per layer: coded bytes (byte for byte equal to the
golden codec), transmitted bytes (with side information and headers), ratio to the int16 map,
encoder cycles and samples per cycle; and the two-stage pipeline of the split layer (inference;
encode + transmit at each link rate). Written to ``build/sim/<net>[_<split>]_<mode>.json`` (the plain
run's JSON, which the cost model reads, is left alone: encoding every layer makes layers wait for the
encoder, which a real split never does).

``--batch n`` (``make sim BATCH=n``, 1..lanes; issue 16 item 4): every fully-connected layer runs once for n different
frames (:func:`batch_frames`) as a 1x1 CONV over a 1 x n map (``sim.program.compile_fc_batch``), each frame's
output checked against golden; the layers before them run as frame 1's program, counted once per frame
(:func:`batch_parts`). ``build/sim/<net>_batch<n>.json``: ``"batch"``, the batch's counters and per-frame values
(``cycles_per_frame``, ``utilization_per_frame``, ...). ``--fc-only`` (``FC_ONLY=1``): the FC layers alone.

``--split input --encode jpeg [--qf Q] [--subsampling 444|420]`` (``make sim SPLIT=input ENCODE=jpeg``): the
host-only split, where the edge only JPEG-codes its camera image (issue 16 item 6): the network's sample image
as uint8 RGB (``sim.encoding.camera_image``: the photo the other runs normalise) goes through the encode unit's
colour build (``sim.designs.ENGINE_COLOUR``, ``sim.program.compile_image``); the coded bytes must equal golden's
JPEG scan byte for byte and the JFIF file must decode (Pillow). Written to
``build/sim/<net>_input_jpeg<Q>[_420].json``: engine cycles (tables, loads, encoding), the encoder's own
cycles, coded and transmitted bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from golden import malloc
from golden.errors import UserError
from sim.cluster import add_arguments as cluster_args
from sim.cluster import from_args as cluster_spec
from sim.runner import BUILD_DIR

DEFAULT_SPLITS = {"alexnet": "conv5"}


def display_names(qnet, layers) -> dict[str, str]:
    """Readable layer names: the stage name for conv/FC layers, '<stage>.pool' for pools (the networks with
    stage names); the layer names for the others (their split points are named after layers already)."""
    if not qnet.network.is_builtin or qnet.net not in ("alexnet", "vgg16", "resnet50", "resnet20", "resnet56",
                                                       "digits"):
        return {layer.name: layer.name for layer in layers}
    stage = {ly.name: ly.split for ly in qnet.network.layers}
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


# FC layers with more weights than this (and more than 11 weight groups) run as two slices of their output
# channels (10 or 11 and six fewer weight groups, sim.fc_slice), their counts extrapolated per weight group to the
# whole layer
FC_SLICE_WORDS = 4_000_000


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


def batch_parts(layers, fc_only: bool = False) -> list[list]:
    """The programs of a batched run (``BATCH=n``): the layers before the first fully-connected layer as one
    program (run for frame 1 and counted once per frame: an engine's cycles do not depend on the data; left out
    with ``fc_only``), then one program per FC layer, each run once for the n frames
    (``sim.program.compile_fc_batch``). The FC layers must end the network, one after the other (UserError)."""
    from sim.program import ConvLayer

    first = next((i for i, ly in enumerate(layers) if isinstance(ly, ConvLayer) and ly.flatten), None)
    if first is None:
        raise UserError("BATCH / FC_ONLY: this network (split) has no fully-connected layer to batch")
    tail = layers[first:]
    prev = layers[first - 1].name if first else None
    for ly in tail:
        if not (isinstance(ly, ConvLayer) and ly.flatten) or (ly.inputs is not None and prev is not None
                                                               and tuple(ly.inputs) != (prev,)):
            raise UserError(f"BATCH: layer {ly.name} follows the first fully-connected layer but is not a "
                            f"fully-connected layer fed by the one before; batching needs the FC layers at the end")
        prev = ly.name
    head = [] if fc_only else layers[:first]
    return ([head] if head else []) + [[ly] for ly in tail]


def batch_frames(nw, n: int) -> tuple[np.ndarray, str]:
    """``n`` different float input images of ``nw`` for a batched run, and what they are: the network's sample
    image (frame 1, the image of every other run) and the next images of the same source
    (``golden.quantize.sample_images``: digits and CIFAR-10 test images, the scikit-image photos); where the
    source has fewer than ``n`` (the ImageNet nets: 6 photos), the photos again, flipped left-right (then
    upside-down, then both): deterministic, and different from every photo."""
    from golden.quantize import sample_images

    imgs = np.asarray(sample_images(nw, n))
    first = np.asarray(sample_images(nw, 1))[0]
    if not np.array_equal(imgs[0], first):
        imgs = np.concatenate([first[None], imgs[:n - 1]])
    m = len(imgs)
    out = []
    for i in range(n):
        img, r = imgs[i % m], i // m
        if r & 1:
            img = img[..., ::-1]
        if r & 2:
            img = img[..., ::-1, :]
        out.append(np.ascontiguousarray(img))
    k = min(m, n)
    note = f"{k} image{'s' if k > 1 else ''} of the run's source (golden.quantize.sample_images)"
    flips = ("flipped left-right", "flipped upside-down", "flipped both ways")
    for r in range(1, -(-n // m)):
        note += f", {min(m, n - r * m)} of them {flips[r - 1]}"
    return np.stack(out), note


def _per_frame(counters: dict, macs: int, batch: int, array_macs: int) -> dict:
    """A batched run's per-frame values of a layer (or the total) whose batch ran ``counters`` and ``macs``."""
    cyc = counters["cycles"]
    return {"cycles_per_frame": cyc / batch, "macs_per_frame": macs / batch,
            "utilization_per_frame": (macs / batch) / (array_macs * cyc / batch) if cyc else 0.0,
            "counters_per_frame": {k: v / batch for k, v in counters.items()}}


DEFAULT_WEIGHTS_QF = 50


def weight_qfs(net: str, layers, qf: int | None) -> tuple[dict[str, int], str]:
    """Per-layer weight QFs: ``qf`` for every layer if given, else the accuracy-budgeted choice of
    ``edgesplit weights`` (``build/weights/<net>.json``, trained networks), else DEFAULT_WEIGHTS_QF."""
    from sim.program import ConvLayer

    names = [ly.name for ly in layers if isinstance(ly, ConvLayer) and ly.groups == 1]
    if qf is not None:
        return {n: qf for n in names}, f"QF {qf} for every layer (WEIGHTS_QF)"
    path = BUILD_DIR / "weights" / f"{net}.json"
    if path.exists():
        table = json.loads(path.read_text())
        chosen = {r["name"]: int(r["qf"]) for r in table.get("layers", []) if r.get("qf") is not None}
        if chosen:
            return ({n: chosen.get(n, DEFAULT_WEIGHTS_QF) for n in names},
                    f"per-layer QFs from {path} (budget {table.get('budget')}; QF {DEFAULT_WEIGHTS_QF} where none)")
    return {n: DEFAULT_WEIGHTS_QF for n in names}, (f"QF {DEFAULT_WEIGHTS_QF} for every layer (no accuracy-budgeted "
                                                    f"table for {net}: run `edgesplit weights --net {net}`)")


def compress_weights(layers, qfs: dict[str, int]):
    """Layers whose weights are coded (``golden.weightcodec``) and replaced by their decoded values, and each coded
    layer's quantized blocks ``{name: zz[n, 64]}`` (what its streams code; ``sim.fc_slice.slice_encoded`` re-codes
    a slice).

    The decoded values come from the quantized blocks the streams were coded from (``decode_quantized``): the
    entropy stage is lossless (``tests/golden/test_weightcodec.py`` decodes every stream back to them), and the
    RTL's lane decoders restore the weights from the streams themselves, so a run's bit-exact check covers the
    whole chain. Huffman-decoding the streams in Python again took most of a coded AlexNet run (about 350 of
    540 s under cProfile)."""
    from dataclasses import replace

    from golden import weightcodec as wc
    from sim.program import ConvLayer

    out, blocks = [], {}
    for layer in layers:
        if isinstance(layer, ConvLayer) and layer.name in qfs and layer.groups == 1:
            prep = wc.Prepared.of(layer.weight)
            qf = qfs[layer.name]
            zz = prep.quantized(qf)
            enc = wc.encode_quantized(zz, prep.p, qf, prep.out_channels, prep.k)
            dec = wc.decode_quantized(zz, wc.qtable(qf), prep.p, prep.out_channels, prep.k)
            layer = replace(layer, weight=dec.reshape(layer.weight.shape).astype(np.int16), wcodec=enc)
            blocks[layer.name] = zz
        out.append(layer)
    return out, blocks


# DRAM addresses in a descriptor: where a program's image puts the weights and maps (a part placed on its own
# has its own layout; the engine's timing does not depend on addresses: sim/hdl/dram_model.v models no banks)
_ADDRESS_FIELDS = ("dram_addr", "w_addr")
CUT_BYTES_PER_CYCLE = 16.0


def _layer_commands(prog, name: str) -> list:
    from dataclasses import replace

    return [replace(c, **{f: 0 for f in _ADDRESS_FIELDS}) for c, tag in zip(prog.commands, prog.command_layer,
                                                                           strict=False) if tag == name]


def cut_head(head: list, x, refs: dict, config) -> list[tuple[int, list]]:
    """Cut a linear run of layers into programs, as ``(warm, layers)``: each program after the first starts from
    the golden input of ``layers[0]``, a *warm-up* layer (``warm`` = 1) that the program before also runs and
    whose counters and output this one discards. It reruns the previous layer's tail: the first LOAD of the
    layer after a cut waits behind that layer's last STOREs in the whole program (by a cycle or so, on the DRAM
    model's beat phase), and without them it counted one cycle fewer (VGG-16, 6 of 14 cuts, before 7 Dec).

    A cut goes before layer ``i`` only where the warm-up layer ``i - 1`` is cheap (a layer without MACs: a
    pool) and both read their input from DRAM in the whole program (their first command a counted LOAD: the
    layer before was banded out, not resident), and where the two, compiled on their own from that input, give
    the whole program's commands (addresses aside)."""
    from dataclasses import replace

    from hw.descriptor import Op
    from sim.program import compile_program

    if len(head) < 3:
        return [(0, head)]
    whole = compile_program(head, x, config)
    cmds = [_layer_commands(whole, la.name) for la in head]

    def reads_dram(i: int) -> bool:
        return bool(cmds[i]) and cmds[i][0].op == Op.LOAD and not cmds[i][0].nocount

    starts = [0]
    for i in range(2, len(head)):
        if whole.macs[head[i - 1].name] or not (reads_dram(i - 1) and reads_dram(i)):
            continue
        alone = compile_program([replace(head[i - 1], inputs=None), head[i]], refs[head[i - 2].name], config)
        if [_layer_commands(alone, head[j].name) for j in (i - 1, i)] == cmds[i - 1:i + 1]:
            starts.append(i)
    return [(int(a > 0), head[a - (a > 0):b]) for a, b in zip(starts, [*starts[1:], len(head)], strict=True)]


@dataclass(frozen=True)
class Piece:
    """One engine program of a ``make sim`` run: what a worker simulates (``run_piece``)."""

    prog: object                    # sim.program.Program
    work: str                       # its work folder under build/sim/work
    dram: object                    # sim.engine_run.DramSettings
    layers: tuple[str, ...]         # the layers whose outputs come back
    plans: dict                     # layer -> sim.encoding.LayerEncoding: the encodings read back
    arch: object = None             # golden.arch.EngineArch (None: the default)


def run_piece(piece: Piece) -> dict:
    """Simulate one program (on whichever worker); return its per-layer counters, the layers' outputs, the
    encodings read back and the simulation's wall time (not the whole DRAM dump)."""
    from golden.arch import DEFAULT_ARCH
    from sim.designs import engine_for
    from sim.encoding import read_encoding
    from sim.engine_run import run_program

    design = engine_for(piece.prog, arch=piece.arch or DEFAULT_ARCH)
    res = run_program(piece.prog, piece.work, piece.dram, design=design)
    return {"per_layer": res.per_layer(piece.prog),
            "outputs": {n: piece.prog.read_output(res.dram, n) for n in piece.layers},
            "encodings": {n: read_encoding(res.dram, plan) for n, plan in piece.plans.items()},
            "wall_s": res.wall_s}


def _extrapolated(layer, slices, progs, ress, lanes: int, chans: tuple[int, int]) -> tuple[dict, int, dict]:
    """A sliced FC layer's counters, MACs and row record from its two slices' runs (``sim.fc_slice``): every
    counter per weight group, the DRAM read words (and a coded layer's stream bits) as the fixed part the slices
    measured plus the whole layer's weight words (bits). ``layer``: the whole layer, coded weights included;
    ``slices``: the slices' layers."""
    from dataclasses import replace

    from sim import fc_slice

    name, o = layer.name, layer.weight.shape[0]
    cmds = [next(cm for cm, n in zip(p.commands, p.command_layer, strict=False) if n == name and cm.op.name == "CONV")
            for p in progs]
    whole_cmd = replace(cmds[0], out_c=o)
    if layer.wcodec is not None:
        for sl, cm in zip(slices, cmds, strict=True):   # the whole layer's fields as the compiler sets the slices'
            assert fc_slice.coded_fields(sl.wcodec, lanes) == {"rows": cm.rows, "dram_stride": cm.dram_stride}
        whole_cmd = replace(whole_cmd, **fc_slice.coded_fields(layer.wcodec, lanes))
    accounted = {"dram_read_words": (fc_slice.weight_words(cmds[0], lanes), fc_slice.weight_words(cmds[1], lanes),
                                     fc_slice.weight_words(whole_cmd, lanes))}
    if layer.wcodec is not None:   # the decoders' stream bits: the lane streams' bits
        accounted["wdec_bits"] = tuple(sum(ly.wcodec.lane_bits) for ly in (*slices, layer))
    per = [r["per_layer"][name] for r in ress]
    g = fc_slice.groups(o, lanes)
    c = fc_slice.extrapolate(per[0], per[1], g, accounted)
    macs = fc_slice.extrapolate({"m": progs[0].macs[name]}, {"m": progs[1].macs[name]}, g)["m"]
    return c, macs, {"extrapolated_from_slices": fc_slice.record(chans, g, lanes, accounted, tuple(per))}


def simulate(network, split: str | None, weights=None, bytes_per_cycle: float | None = None, encode=None,
             weights_codec: str | None = None, weights_qf: int | None = None, cluster=None,
             cut: bool | None = None, arch=None, batch: int = 1, fc_only: bool = False) -> dict:
    """``network``: a ``golden.network.Network`` or a name; ``weights`` (a state_dict file) replace its
    weights when given. The programs run as pieces on ``cluster`` (a ``sim.cluster.ClusterSpec``; default:
    serially, here; ``make sim`` passes ``--workers``/``--scheduler``, default one worker per core); ``cut``: cut
    a plain run's conv head into more programs (:func:`cut_head`: the same counters, every layer; None, the
    default: when the pieces run on more than one worker); ``arch``: the engine's architecture (``golden.arch``;
    default ``DEFAULT_ARCH``), recorded in the
    result with the RTL sources' hash (``hw.sources``). ``batch`` n > 1: every fully-connected layer runs once
    for n frames (:func:`batch_parts`, ``sim.program.compile_fc_batch``); ``fc_only``: only the FC layers run
    (each from its golden input, as always), the layers before them not at all."""
    from dataclasses import replace

    from golden.arch import DEFAULT_ARCH
    from golden.network import network as as_network
    from golden.quantize import calibration_images, quantize_net, sample_images
    from hw.engine import COUNTERS
    from hw.sources import rtl_sources_hash
    from sim import fc_slice
    from sim.cluster import ClusterSpec, run_pieces
    from sim.encoding import plan_encoding
    from sim.engine_run import DramSettings
    from sim.networks import engine_layers
    from sim.program import EngineConfig, check_batch, compile_fc_batch, compile_program, is_linear, reference_outputs

    arch = arch or DEFAULT_ARCH
    if bytes_per_cycle is None:
        bytes_per_cycle = arch.dram_bytes_per_cycle
    else:   # the run's DRAM is part of the architecture it records
        arch = replace(arch, dram_bytes_per_cycle=float(bytes_per_cycle))
    config = EngineConfig.from_arch(arch, encode=encode is not None, coded=weights_codec is not None)
    batched = batch != 1 or fc_only
    batch = check_batch(batch, config.lanes)
    if batched and (encode is not None or weights_codec is not None or cut):   # (cut None: not asked for)
        raise UserError("BATCH / FC_ONLY runs the plain network: ENCODE, WEIGHTS_CODEC and CUT do not apply")
    array_macs = arch.macs
    nw = as_network(network).with_weights(weights)
    net = nw.name
    weights = nw.weights
    split = split or DEFAULT_SPLITS.get(net)
    print(f"{net}: calibrating int16 scales on real images...", flush=True)
    module = nw.module()
    qnet = quantize_net(module, calibration_images(nw))
    layers = engine_layers(qnet, split)
    wnote, coded_blocks = None, {}
    if weights_codec == "jpeg":
        qfs, wnote = weight_qfs(net, layers, weights_qf)
        print(f"{net}: compressing weights ({wnote})...", flush=True)
        layers, coded_blocks = compress_weights(layers, qfs)
    x = qnet.quantize_input(sample_images(nw, 1))[0]
    names = display_names(qnet, layers)
    # golden: every layer's integer reference (golden.layers) from its golden inputs
    refs = reference_outputs(layers, x)
    frame_refs, frames_note = [refs], None
    if batched:
        frames, frames_note = batch_frames(nw, batch)
        xs = qnet.quantize_input(frames)
        assert np.array_equal(xs[0], x)
        print(f"{net}: {batch} frames ({frames_note}): golden references...", flush=True)
        frame_refs += [reference_outputs(layers, xf) for xf in xs[1:]]
    rows = []
    totals = {n: 0 for n in COUNTERS}
    t0 = time.monotonic()
    parts = batch_parts(layers, fc_only) if batched else _programs(layers)
    warms = [0] * len(parts)     # per program: its leading warm-up layers (cut_head), run but not reported
    # cuts only in plain runs at make sim's DRAM rate (where they were measured: VGG-16, every counter of every
    # layer as uncut; tests/sim/test_sim_pieces.py); an encoding run overlaps a layer's encoding with the next one
    if cut is None:
        cut = not (cluster or ClusterSpec(workers=1)).serial
    if cut and not batched and encode is None and weights_codec is None and bytes_per_cycle == CUT_BYTES_PER_CYCLE \
            and is_linear(layers) \
            and not getattr(parts[0][0], "flatten", False):
        cuts = cut_head(parts[0], x, refs, config)
        warms = [w for w, _ in cuts] + [0] * (len(parts) - 1)
        parts = [p for _, p in cuts] + parts[1:]
    pieces, metas = [], []
    for part, warm in zip(parts, warms, strict=True):
        first = part[0]
        prev_name = layers[layers.index(first) - 1].name if layers.index(first) else None
        px = refs[prev_name] if prev_name else x
        variants, chans = [part], None
        if len(part) == 1 and getattr(first, "flatten", False) and first.weight.size > FC_SLICE_WORDS \
                and fc_slice.groups(first.weight.shape[0], config.lanes) > fc_slice.SLICE_GROUPS + 1:
            chans = fc_slice.slice_channels(first.weight.shape[0], config.lanes)
            variants = [[fc_slice.slice_layer(first, ch, coded_blocks.get(first.name))] for ch in chans]
        if len(layers) != len(part):  # a part starts from the program input: the previous golden output
            variants = [[replace(v[0], inputs=None), *v[1:]] for v in variants]
        plans = {}
        if encode is not None and chans is None:
            for layer in part:
                if encode.layers is None or layer.name in encode.layers:
                    plans[layer.name] = plan_encoding(layer.name, refs[layer.name], encode)
        fc_batch = batched and getattr(first, "flatten", False)
        progs = []
        for v in variants:
            if fc_batch:   # n frames in one pass; the input already interleaved when the layer before was batched too
                ins = [fr[prev_name] if prev_name else xf for fr, xf in zip(frame_refs, xs, strict=True)]
                prog = compile_fc_batch(v[0], ins, config,
                                        packed=bool(prev_name) and getattr(layers[layers.index(first) - 1],
                                                                           "flatten", False))
            else:
                prog = compile_program(v, px, config, encode=plans)
            progs.append(prog)
            what = v[0].name if len(v) == 1 else f"{len(v) - warm} layers"
            what += f" after a warm-up {v[0].name}" if warm else ""
            print(f"{net} ({what}): {len(prog.commands)} commands, {sum(prog.macs.values()) / 1e6:.1f} M MACs"
                  f"{f' (a slice of {v[0].weight.shape[0]} of {first.weight.shape[0]} channels)' if chans else ''}",
                  flush=True)
            # one work folder per variant: tests run the plain, encoding and coded-weight variants side by side
            variant = (f"_{encode.mode}{encode.qf}" if encode is not None else "") + (f"_w{weights_codec}" if wnote
                                                                                      else "")
            variant += (f"_batch{batch}" if batched else "") + (f"_slice{v[0].weight.shape[0]}" if chans else "")
            pieces.append(Piece(prog, f"{net}_{split}_{v[0].name}{variant}{arch.suffix}",
                                DramSettings(bytes_per_cycle=bytes_per_cycle, latency=arch.dram_latency_cycles),
                                tuple(ly.name for ly in v[warm:]), plans, arch))
        metas.append((part[warm:], chans, plans, progs, fc_batch, [v[0] for v in variants]))
    print(f"{net}: simulating {len(pieces)} program{'s' if len(pieces) != 1 else ''} in Verilator "
          f"(DRAM {bytes_per_cycle:g} B/cycle)...", flush=True)
    with warnings.catch_warnings():
        # each piece carries its program's DRAM image (weights and input, megabytes): what a piece is, not a slip
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        results = run_pieces(run_piece, pieces, cluster or ClusterSpec(workers=1), desc=f"make sim {net}",
                             labels=[f"{net} program {p.layers[0]}"
                                     + (f"..{p.layers[-1]}" if len(p.layers) > 1 else "")
                                     + (f" (slice of {p.prog.out_shapes[p.layers[0]][0]})" if "_slice" in p.work
                                        else "") for p in pieces])
    sim_wall, simulated = 0.0, 0
    left = iter(results)
    for part, chans, plans, progs, fc_batch, slices in metas:
        ress = [next(left) for _ in progs]
        for res in ress:
            sim_wall += res["wall_s"]
            simulated += sum(v["cycles"] for v in res["per_layer"].values())
        res, prog = ress[0], progs[0]
        for layer in part:
            outs = [(r["outputs"][layer.name], p.out_shapes[layer.name][0]) for r, p in zip(ress, progs, strict=True)]
            c = dict(res["per_layer"][layer.name])
            macs = prog.macs[layer.name]
            extra_row = {}
            if chans:   # the whole layer's counts from the two slices' (sim.fc_slice)
                c, macs, extra_row = _extrapolated(layer, slices, progs, ress, config.lanes, chans)
            exact = all(np.array_equal(g[:, :, :1] if fc_batch else g, refs[layer.name][:n]) for g, n in outs)
            frames_exact = None
            if fc_batch:   # the batch's output [oc, 1, n]: frame f at [:, :, f], each against its own golden output
                frames_exact = [all(np.array_equal(g[:, :, f:f + 1], fr[layer.name][:n]) for g, n in outs)
                                for f, fr in enumerate(frame_refs)]
            elif batched:  # frame 1's program, counted once per frame
                c = {n: v * batch for n, v in c.items()}
                macs *= batch
            row = {
                "name": names[layer.name], "module": layer.name, "type": type(layer).__name__[:-5].lower(),
                "shape": list(refs[layer.name].shape), "macs": macs, "cycles": c["cycles"],
                "utilization": macs / (array_macs * c["cycles"]) if c["cycles"] else 0.0,
                "bit_exact": exact, "bands": prog.banded[layer.name], "counters": c, **extra_row,
            }
            if batched:
                row.update(_per_frame(c, macs, batch, array_macs))
                row["run"] = "batched" if fc_batch else "frame 1's program, counted per frame"
                if frames_exact is not None:
                    row["frames_bit_exact"] = frames_exact
                    row["bit_exact"] = all(frames_exact)
            if layer.name in plans:
                row["encoding"] = _encoding_row(plans[layer.name], res["encodings"][layer.name])
            enc = getattr(layer, "wcodec", None)
            if enc is not None:   # the whole layer's coded weights (a sliced layer's slices re-code theirs)
                row["weights"] = {"qf": enc.qf, "pre_shift": enc.p, "raw_words": enc.out_channels * enc.k,
                                  "stream_words": int(enc.words.size), "compressed_bytes": enc.compressed_bytes,
                                  "table_bytes": enc.table_bytes, "ratio": enc.ratio}
                cmd = next(cm for cm, n in zip(prog.commands, prog.command_layer, strict=False)
                           if n == layer.name and cm.op.name == "CONV")
                # what the engine read (one CONV command's): lane-stream area (each lane on a 12-word beat;
                # the coded groups only when the first group is plain) and table entries (lanes included)
                area = fc_slice.coded_fields(enc, config.lanes)["dram_stride"] if chans else int(cmd.dram_stride)
                row["weights"].update(raw_first_group=bool(cmd.w_raw0), table_entries=int(cmd.rows),
                                      area_words=area)
            rows.append(row)
            for n in COUNTERS:
                totals[n] += c[n]
    wall = time.monotonic() - t0
    extra = {}
    if encode is not None:
        extra["encode"] = {"mode": encode.mode, "qf": encode.qf if encode.mode == "jpeg" else None}
    if weights_codec is not None:
        extra["weights_codec"] = {"codec": weights_codec, "qfs": wnote}
    if batched:
        extra["batch"] = batch
        extra["frames"] = frames_note
        if fc_only:
            extra["fc_only"] = True
    total_macs = sum(r["macs"] for r in rows)
    if batched:
        extra["total_per_frame"] = _per_frame(totals, total_macs, batch, array_macs)
        extra["sim_cycles"] = simulated   # the conv head simulated once, for frame 1
    return {**extra, "net": net, "source": nw.source, "split": split,
            "weights": str(weights) if weights is not None else f"default ({nw.default_weights})",
            "image": "golden.quantize.sample_images", "dram_bytes_per_cycle": bytes_per_cycle,
            "arch": arch.as_dict(), "rtl_hash": rtl_sources_hash(),
            "engine": config.__dict__, "layers": rows,
            "total": {"cycles": totals["cycles"], "macs": sum(r["macs"] for r in rows), "counters": totals,
                      "utilization": sum(r["macs"] for r in rows) / (array_macs * totals["cycles"])},
            "wall_s": wall, "sim_wall_s": sim_wall,
            # (a batched run simulated its conv head once: the cycles simulated, not the batch's)
            "sim_cycles_per_s": (simulated if batched else totals["cycles"]) / max(sim_wall, 1e-9)}


def simulate_image(network, qf: int, subsampling: str = "444", bytes_per_cycle: float | None = None,
                   arch=None) -> dict:
    """The host-only split (``--split input --encode jpeg``): the camera image of ``network`` JPEG-coded on the
    engine's colour build, checked byte for byte against golden; the result as ``simulate``'s (one row, the
    image, with its ``encoding``)."""
    import io
    from dataclasses import replace

    from PIL import Image

    from golden.arch import DEFAULT_ARCH
    from golden.network import network as as_network
    from hw.engine import COUNTERS
    from hw.sources import rtl_sources_hash
    from sim.designs import ENGINE_COLOUR, engine_for
    from sim.encoding import camera_image, plan_image, read_encoding
    from sim.engine_run import DramSettings, run_program
    from sim.program import EngineConfig, compile_image

    arch = arch or DEFAULT_ARCH
    if arch.rtl != DEFAULT_ARCH.rtl:
        raise UserError(f"architecture {arch.array}: the camera image's JPEG (SPLIT=input) runs on the default "
                        f"engine's colour build only; allowed: the default architecture")
    if bytes_per_cycle is None:
        bytes_per_cycle = arch.dram_bytes_per_cycle
    else:
        arch = replace(arch, dram_bytes_per_cycle=float(bytes_per_cycle))
    config = EngineConfig.from_arch(arch, encode=True)
    nw = as_network(network)
    image, what = camera_image(nw)
    plan = plan_image(image, qf, subsampling)
    prog = compile_image(plan, image, config)
    print(f"{nw.name} (input split, host-only): the camera image ({what}) as JPEG QF {qf} {subsampling}: "
          f"{len(prog.commands)} commands; simulating in Verilator (DRAM {bytes_per_cycle:g} B/cycle)...", flush=True)
    t0 = time.monotonic()
    res = run_program(prog, f"{nw.name}_input_jpeg{qf}_{subsampling}", DramSettings(
        bytes_per_cycle=bytes_per_cycle, latency=arch.dram_latency_cycles), design=engine_for(prog))
    got = read_encoding(res.dram, plan)
    c = res.snapshots[-1]       # start to done: END waits for the encode unit to write the record
    try:
        decoded = Image.open(io.BytesIO(plan.wrap(got["data"])))
        decoded.load()
        decodes = decoded.size == (image.shape[1], image.shape[0]) and decoded.mode == "RGB"
    except OSError:
        decodes = False
    enc = {**_encoding_row(plan, got), "subsampling": subsampling, "jfif_bytes": len(plan.wrap(got["data"])),
           "decodes": decodes, "enc_commands": sum(cm.op.name == "ENCODE" for cm in prog.commands)}
    row = {"name": "input", "module": "input", "type": "image", "shape": list(plan.shape), "macs": 0,
           "cycles": c["cycles"], "utilization": 0.0, "bit_exact": bool(got["match"] and decodes), "bands": 0,
           "counters": c, "encoding": enc}
    totals = {n: c[n] for n in COUNTERS}
    return {"encode": {"mode": "jpeg", "qf": qf, "subsampling": subsampling}, "net": nw.name, "source": nw.source,
            "split": "input", "weights": None, "image": what, "dram_bytes_per_cycle": bytes_per_cycle,
            "arch": arch.as_dict(), "rtl_hash": rtl_sources_hash(), "design": ENGINE_COLOUR.name,
            "engine": config.__dict__, "layers": [row],
            "total": {"cycles": totals["cycles"], "macs": 0, "counters": totals, "utilization": 0.0},
            "wall_s": time.monotonic() - t0, "sim_wall_s": res.wall_s,
            "sim_cycles_per_s": totals["cycles"] / max(res.wall_s, 1e-9)}


def print_image(result: dict, clock_hz: float) -> None:
    r = result["layers"][0]
    e, c = r["encoding"], r["counters"]
    print(f"\ninput split (host-only): the camera image ({result['image']}) JPEG QF {e['qf']} "
          f"{e['subsampling']} on the engine's colour build")
    print(f"  engine cycles {r['cycles']:,} (tables, loads, encoding; {r['cycles'] / clock_hz * 1e3:.3f} ms at "
          f"{clock_hz / 1e6:g} MHz); encoder cycles {e['encoder_cycles']:,} for {e['samples']:,} pixels "
          f"({e['samples_per_cycle']:.3f} pixels/cycle; stall in {e['stall_in']:,}, out {e['stall_out']:,}); "
          f"{e['enc_commands']} ENCODE parts")
    print(f"  coded {e['coded_bytes']:,} B ({e['coded_bits']:,} bits), JFIF file {e['jfif_bytes']:,} B, raw "
          f"{e['raw_bytes']:,} B (ratio {e['ratio']:.2f}); golden {e['golden_bytes']:,} B: "
          f"{'byte-identical' if e['bit_exact'] else 'DIFFERENT'}; Pillow {'decodes it' if e['decodes'] else 'FAILS'}"
          f"; DRAM read {c['dram_read_words']:,} words, the encode unit wrote {c['enc_out_words']:,}")


def _encoding_row(plan, got: dict) -> dict:
    samples = got["samples"]
    return {
        "mode": plan.mode, "qf": plan.qf if plan.mode == "jpeg" else None,
        "shift": plan.shift if plan.mode == "jpeg" else None, "signed": plan.signed,
        "raw_bytes": plan.raw_bytes, "coded_bytes": got["bytes"], "coded_bits": got["bits"],
        "transmitted_bytes": plan.sent_bytes(got["bytes"]),
        "ratio": plan.raw_bytes / plan.sent_bytes(got["bytes"]),
        "samples": samples, "encoder_cycles": got["cycles"],
        "samples_per_cycle": samples / got["cycles"] if got["cycles"] else 0.0,
        "stall_in": got["stall_in"], "stall_out": got["stall_out"],
        "golden_bytes": len(plan.expected), "bit_exact": got["match"],
    }


LINKS_BPS = (1e6, 2e6, 22e6)


def print_encoding(result: dict, clock_hz: float) -> None:
    enc = result["encode"]
    what = f"JPEG QF {enc['qf']}" if enc["mode"] == "jpeg" else "lossless"
    print(f"\nencode unit ({what}), every layer's output encoded as if split there:")
    head = (f"{'layer':12} {'raw B':>10} {'coded B':>10} {'sent B':>10} {'ratio':>7} {'bit/smp':>7} "
            f"{'enc cycles':>11} {'smp/cyc':>7} {'st.in':>7} {'st.out':>6} {'seq.wait':>9} {'exact':>5}")
    print(head)
    print("-" * len(head))
    for r in result["layers"]:
        e = r.get("encoding")
        if e is None:
            continue
        print(f"{r['name']:12} {e['raw_bytes']:>10,} {e['coded_bytes']:>10,} {e['transmitted_bytes']:>10,} "
              f"{e['ratio']:>7.2f} {8 * e['coded_bytes'] / max(e['samples'], 1):>7.2f} {e['encoder_cycles']:>11,} "
              f"{e['samples_per_cycle']:>7.3f} {e['stall_in']:>7,} {e['stall_out']:>6,} "
              f"{r['counters']['enc_wait']:>9,} {'yes' if e['bit_exact'] else 'NO':>5}")
    t = result["total"]["counters"]
    print(f"encode unit busy {t['enc_active']:,} cycles, {t['enc_overlap']:,} of them beside inference "
          f"commands; the sequencer waited {t['enc_wait']:,} cycles for it (seq.wait: a layer's commands "
          f"waiting for the previous layer's encoding, which a single split never does)")
    last = next((r for r in reversed(result["layers"]) if "encoding" in r), None)
    if last is not None:
        e = last["encoding"]
        infer = result["total"]["cycles"] - t["enc_wait"]
        print(f"two-stage pipeline at split {last['name']} ({clock_hz / 1e6:g} MHz): stage 1 inference "
              f"{infer:,} cycles = {infer / clock_hz * 1e3:.2f} ms; stage 2 encode {e['encoder_cycles']:,} cycles "
              f"= {e['encoder_cycles'] / clock_hz * 1e3:.2f} ms + transmit {e['transmitted_bytes']:,} B")
        for rate in LINKS_BPS:
            tx = 8 * e["transmitted_bytes"] / rate
            stage2 = e["encoder_cycles"] / clock_hz + tx
            period = max(infer / clock_hz, stage2)
            bound = "inference" if infer / clock_hz >= stage2 else "encode + transmit"
            print(f"  {rate / 1e6:g} Mbps: transmit {tx * 1e3:.2f} ms, frame period {period * 1e3:.2f} ms "
                  f"({1 / period:.2f} frames/s, bound by {bound})")


def attach_plain(result: dict, plain: dict) -> None:
    """Put the plain-weights run's numbers beside each layer of the compressed run."""
    by_name = {r["name"]: r for r in plain["layers"]}
    for r in result["layers"]:
        q = by_name[r["name"]]
        r["plain_weights"] = {"cycles": q["cycles"], "utilization": q["utilization"],
                              "dram_read_words": q["counters"]["dram_read_words"],
                              "stall_dram": q["counters"]["stall_dram"], "bit_exact": q["bit_exact"]}
    result["plain_weights_total"] = plain["total"]


def print_weights(result: dict) -> None:
    print(f"\ncompressed weights ({result['weights_codec']['qfs']}) vs plain int16 weights:")
    head = (f"{'layer':12} {'QF':>3} {'ratio':>6} {'DRAM rd plain':>13} {'DRAM rd jpeg':>12} {'cycles plain':>12} "
            f"{'cycles jpeg':>12} {'util':>6} {'dec. active':>11} {'w/cyc need':>10} {'w/cyc got':>9} "
            f"{'dec. stall':>10} {'exact':>5}")
    print(head)
    print("-" * len(head))
    tp = tj = 0
    for r in result["layers"]:
        w, q, c = r.get("weights"), r["plain_weights"], r["counters"]
        tp += q["dram_read_words"]
        tj += c["dram_read_words"]
        if w is None:
            continue
        need = c["wdec_weights"] / q["cycles"] if q["cycles"] else 0.0
        got = c["wdec_weights"] / c["wdec_active"] if c["wdec_active"] else 0.0
        stall = c["stall_dram"] - q["stall_dram"]
        print(f"{r['name']:12} {w['qf']:>3} {w['ratio']:>6.2f} {q['dram_read_words']:>13,} {c['dram_read_words']:>12,} "
              f"{q['cycles']:>12,} {r['cycles']:>12,} {r['utilization']:>6.1%} {c['wdec_active']:>11,} "
              f"{need:>10.3f} {got:>9.3f} {stall:>10,} {'yes' if r['bit_exact'] else 'NO':>5}")
    pt = result["plain_weights_total"]
    print(f"DRAM read words {tp:,} -> {tj:,} ({tp / max(tj, 1):.2f}x fewer); cycles {pt['cycles']:,} -> "
          f"{result['total']['cycles']:,}. w/cyc need: decoded weights per cycle of the plain run; w/cyc got: "
          f"decoded weights per cycle the decoders were active (twelve decoders, one per lane: at most 12); "
          f"dec. stall: stall_dram cycles the compressed path adds (negative: removes)")


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
    print(f"simulated {result.get('sim_cycles', t['cycles']):,} cycles in {result['sim_wall_s']:.1f} s "
          f"({result['sim_cycles_per_s']:,.0f} cycles/s); whole run {result['wall_s']:.1f} s")


def main(argv: list[str] | None = None) -> int:
    malloc.tune()
    p = argparse.ArgumentParser(prog="python -m sim.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="alexnet", help="a built-in network, PATH.onnx or PATH.py:FACTORY")
    p.add_argument("--input-shape", help="C,H,W for a model that does not fix its input shape")
    p.add_argument("--split", help="run the network up to this split point (default: conv5 for alexnet)")
    p.add_argument("--weights", help="a torchvision-format state_dict file (default: He-initialised, seed 0)")
    p.add_argument("--dram-bytes-per-cycle", type=float,
                   help="DRAM bandwidth of the testbench's model (default: the architecture's, 16)")
    p.add_argument("--arch", help="the engine's architecture: ROWSxCOLS or a YAML/JSON file of golden.arch.EngineArch "
                                  "fields (default 12x12; results go to build/sim/<net>_<arch>.json)")
    p.add_argument("--encode", help="also encode every layer's output: jpeg or lossless")
    p.add_argument("--qf", help="JPEG quality factor 1..100 (default 75)")
    p.add_argument("--subsampling", help="--split input: the camera image's chroma subsampling, 444 (default) or 420")
    p.add_argument("--weights-codec", help="jpeg: run with JPEG-coded weights and compare with plain weights")
    p.add_argument("--weights-qf", help="one weight QF 1..100 for every layer (default: the per-layer table)")
    p.add_argument("--cut", action="store_true",
                   help="cut the conv head after its pools into more programs even on one worker (the default "
                        "on more than one: more pieces to run in parallel; every counter as uncut) (CUT=1)")
    p.add_argument("--batch", default="1",
                   help="frames per fully-connected pass, 1..lanes (BATCH=n): every FC layer runs once for n "
                        "different frames, reported per frame; build/sim/<net>_batch<n>.json (default 1: as today)")
    p.add_argument("--fc-only", action="store_true",
                   help="run only the fully-connected layers (each from its golden input; FC_ONLY=1): "
                        "build/sim/<net>[_batch<n>]_fconly.json")
    cluster_args(p)
    args = p.parse_args(argv)
    try:
        cluster = cluster_spec(args)
        from golden.arch import parse_arch
        from sim.program import EngineConfig

        arch = parse_arch(args.arch)
        # an architecture the compiler cannot target (or a run its units cannot do): refused before any work
        lanes = EngineConfig.from_arch(arch, encode=bool(args.encode), coded=bool(args.weights_codec)).lanes
        batch = _parse_batch(args.batch, lanes)
        batched = batch != 1 or args.fc_only
        if batched and (args.encode or args.weights_codec or args.weights_qf or args.cut or args.subsampling
                        or args.split == "input"):
            raise UserError(f"BATCH={batch}{' FC_ONLY=1' if args.fc_only else ''} runs the plain network's "
                            f"fully-connected layers batched: ENCODE, WEIGHTS_CODEC, WEIGHTS_QF, CUT, SUBSAMPLING "
                            f"and SPLIT=input do not apply")
        from golden.network import load_network
        from sim.encoding import EncodeSpec

        nw = load_network(args.net, weights=args.weights, input_shape=args.input_shape)
        if args.split is not None:
            nw.split(args.split)
        spec = None
        if args.encode:
            qf = 75
            if args.qf is not None:
                try:
                    qf = int(args.qf)
                except ValueError:
                    raise UserError(f"quality factor {args.qf!r} is not an integer in 1..100") from None
            spec = EncodeSpec(args.encode, qf)
        elif args.qf is not None:
            raise UserError(f"QF={args.qf} needs ENCODE=jpeg")
        if args.split == "input" or args.subsampling is not None:
            return _main_image(args, nw, spec, arch)
        wqf = None
        if args.weights_codec is not None and args.weights_codec != "jpeg":
            raise UserError(f"weights codec {args.weights_codec!r} is not one of jpeg")
        if args.weights_qf is not None:
            if args.weights_codec is None:
                raise UserError(f"WEIGHTS_QF={args.weights_qf} needs WEIGHTS_CODEC=jpeg")
            try:
                wqf = int(args.weights_qf)
            except ValueError:
                raise UserError(f"weight quality factor {args.weights_qf!r} is not an integer in 1..100") from None
            if not 1 <= wqf <= 100:
                raise UserError(f"weight quality factor {wqf} is outside 1..100")
        plain = None
        if args.weights_codec:
            print(f"{args.net}: first with plain int16 weights (the reference for DRAM words and cycles)", flush=True)
            plain = simulate(nw, args.split, None, args.dram_bytes_per_cycle, cluster=cluster,
                             cut=args.cut or None, arch=arch)
        result = simulate(nw, args.split, None, args.dram_bytes_per_cycle, encode=spec,
                          weights_codec=args.weights_codec, weights_qf=wqf, cluster=cluster, cut=args.cut or None,
                          arch=arch, **({"batch": batch, "fc_only": args.fc_only} if batched else {}))
    except UserError as e:
        print(f"make sim: error: {e}", file=sys.stderr)
        return 2
    print_table(result)
    if batched:
        print_batch(result, batch)
    if plain is not None:
        attach_plain(result, plain)
        print_weights(result)
    if spec is not None:
        print_encoding(result, arch.clock_hz)
    # the default run of a network is build/sim/<net>.json (what the cost model reads); another split
    # goes to build/sim/<net>_<split>.json; encoding runs add _<mode>, another architecture _<arch name>
    default = args.split is None or args.split == DEFAULT_SPLITS.get(nw.name)
    stem = nw.name + arch.suffix     # another architecture than the default: build/sim/<net>_16x16.json
    stem += "" if default else f"_{args.split}"
    if spec is not None:
        stem += f"_jpeg{spec.qf}" if spec.mode == "jpeg" else "_lossless"
    if args.weights_codec:
        stem += "_wjpeg"
    stem += f"_batch{batch}" if batch != 1 else ""
    stem += "_fconly" if args.fc_only else ""
    _write_result(stem, result)
    ok = all(r["bit_exact"] and r.get("encoding", {}).get("bit_exact", True) for r in result["layers"])
    return 0 if ok else 1


def _parse_batch(text: str, lanes: int) -> int:
    """``--batch`` / ``BATCH=``: an integer in 1..``lanes`` (UserError naming the value and the range)."""
    from sim.program import check_batch

    try:
        value = int(str(text).strip())
    except ValueError:
        raise UserError(f"batch {text!r} is not an integer; allowed: an integer in 1..{lanes}") from None
    return check_batch(value, lanes)


def print_batch(result: dict, batch: int) -> None:
    """The per-frame view of a batched run (``BATCH=n``)."""
    print(f"\nbatch {batch} ({result['frames']}); per frame:")
    head = f"{'layer':12} {'run':>8} {'cycles/frame':>13} {'util/frame':>10} {'DRAM rd/frame':>13} {'frames exact':>12}"
    print(head)
    print("-" * len(head))
    for r in result["layers"]:
        ex = r.get("frames_bit_exact")
        print(f"{r['name']:12} {'batched' if r['run'] == 'batched' else 'frame 1':>8} {r['cycles_per_frame']:>13,.1f} "
              f"{r['utilization_per_frame']:>10.1%} {r['counters_per_frame']['dram_read_words']:>13,.1f} "
              f"{(f'{sum(ex)}/{len(ex)}' if ex is not None else '-'):>12}")
    t = result["total_per_frame"]
    print(f"{'total':12} {'':>8} {t['cycles_per_frame']:>13,.1f} {t['utilization_per_frame']:>10.1%} "
          f"{t['counters_per_frame']['dram_read_words']:>13,.1f}")


def _main_image(args, nw, spec, arch) -> int:
    """``--split input``: the camera image's JPEG on the engine (UserError raised here reach main's handler)."""
    from sim.encoding import SUBSAMPLINGS

    if args.split != "input":
        raise UserError(f"SUBSAMPLING={args.subsampling} applies only to SPLIT=input (the camera image's JPEG)")
    if spec is None or spec.mode != "jpeg":
        raise UserError(f"SPLIT=input runs only the camera image's JPEG on the engine (host-only: no layer runs "
                        f"there); got ENCODE={args.encode}, allowed: ENCODE=jpeg")
    if args.weights_codec is not None or args.weights_qf is not None or args.cut:
        raise UserError("SPLIT=input runs no layer on the engine: WEIGHTS_CODEC, WEIGHTS_QF and CUT do not apply")
    sub = "444" if args.subsampling is None else args.subsampling
    if sub not in SUBSAMPLINGS:
        raise UserError(f"subsampling {sub!r} is not one of {', '.join(SUBSAMPLINGS)}")
    result = simulate_image(nw, spec.qf, sub, args.dram_bytes_per_cycle, arch)
    print_image(result, arch.clock_hz)
    stem = f"{nw.name}{arch.suffix}_input_jpeg{spec.qf}" + ("_420" if sub == "420" else "")
    _write_result(stem, result)
    return 0 if result["layers"][0]["bit_exact"] else 1


def _write_result(stem: str, result: dict) -> None:
    """``build/sim/<stem>.json``, written whole or not at all (a temporary file renamed over it)."""
    out = BUILD_DIR / "sim" / f"{stem}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
