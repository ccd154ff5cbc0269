"""``edgesplit edge --edge rtl``: the edge part runs on the engine in Verilator (hardware in the loop).

For each image: the network up to the split is lowered to engine commands (:func:`sim.networks.engine_layers`,
:func:`sim.program.compile_program`) with the split layer's output going through the engine's encode unit
(:func:`sim.encoding.plan_encoding`: the same settings as the golden path), simulated cycle-accurately
(:func:`sim.engine_run.run_program`), and the coded bytes the unit wrote to DRAM are read back
(:func:`sim.encoding.read_encoding`). The FRAME payload is built around those bytes
(:func:`model.runtime.codec.payload_from_rtl`) and compared byte for byte with the golden payload; the engine's
output map is compared with the golden int16 feature. The first run builds the engine (minutes; cached).

Splits whose feature is a C x H x W map only (not the camera image, not an FC/pool vector): the encode unit
codes the map the engine holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from golden.errors import UserError
from golden.network import INPUT
from model.runtime import codec


def run_images(rt, x: np.ndarray, cand, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Payloads of every image of ``x`` at candidate ``cand`` from the engine RTL, and how they compare."""
    from golden.quantize import run_fast
    from sim.encoding import read_encoding
    from sim.engine_run import DEFAULT_CONFIG, run_program
    from sim.networks import engine_layers
    from sim.program import compile_program

    net, qnet = rt.net, rt.qnet
    sp = net.split(cand.split)
    if cand.split == INPUT or len(sp.tensor_shape) != 3:
        raise UserError(f"--edge rtl needs a split whose feature is a C x H x W map; {cand.split} of {net.name} "
                        f"sends {'the camera image' if cand.split == INPUT else f'a vector of {sp.tensor_shape}'}")
    layers = engine_layers(qnet, cand.split)
    names = [ly.name for ly in layers]
    if sp.output not in names:
        raise UserError(f"split {cand.split}: its output {sp.output} is not an engine layer of {net.name}")
    payloads, equal, maps_equal, cycles = [], 0, 0, []
    t0 = time.monotonic()
    tag = f"runtime_{net.name}_{cand.split}_{cand.codec}{cand.qf or ''}"
    for i in range(len(x)):
        xi = qnet.quantize_input(x[i:i + 1])[0]
        feat = run_fast(qnet, xi[None], upto=cand.split)[0]
        plans = {}
        p = None
        if cand.codec != "none":
            p = codec.plan(feat, cand.codec, cand.qf, sp.output)
            plans[sp.output] = p
        prog = compile_program(layers, xi, DEFAULT_CONFIG, encode=plans)
        res = run_program(prog, tag)
        out = prog.read_output(res.dram, sp.output)
        maps_equal += bool(np.array_equal(out.reshape(feat.shape), feat))
        if p is None:
            payload = out.reshape(feat.shape).astype("<i2").tobytes()
        else:
            got = read_encoding(res.dram, p)
            payload = codec.payload_from_rtl(p, got["data"], feat)
        golden = codec.encode_feature(feat, cand.codec, cand.qf).payload
        equal += payload == golden
        payloads.append(payload)
        cycles.append(res.snapshots[-1]["cycles"] if res.snapshots else 0)
        if progress is not None:
            progress(f"[rtl] image {i + 1}/{len(x)}: {len(payload)} B, "
                     f"{'equal to golden' if payload == golden else 'DIFFERS from golden'}")
    return {"payloads": payloads, "images": len(x), "frames_equal": equal, "maps_equal": maps_equal,
            "cycles_mean": float(np.mean(cycles)) if cycles else 0.0, "wall_s": time.monotonic() - t0,
            "split": cand.split, "codec": cand.codec, "qf": cand.qf}


__all__ = ["run_images"]
