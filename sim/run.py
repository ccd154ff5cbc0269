"""``make sim``: run a real workload cycle-accurately on the RTL and check it bit-exactly.

At this stage the workload is one convolution layer of AlexNet (torchvision layout, fixed-seed
He-initialised weights or a user's state_dict) on a real photo shipped by scikit-image, resized to
224 x 224 and normalised as for ImageNet. The layer is quantized to the engine's formats
(``golden.fixedpoint``), lowered to 12 x 12 output tiles (im2col: input channel, then kernel row, then
kernel column, the order of ``weight.reshape(out, -1)``) and streamed through the MAC array in
Verilator. Every output element is compared with the golden integer model.

Prints a table (layer, shape, MACs, cycles, utilization = MACs / (144 x cycles)) and writes
``build/sim/<net>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from golden.errors import UserError
from golden.fixedpoint import frac_bits_for, linear_int, quantize
from sim.designs import MAC_ARRAY
from sim.runner import BUILD_DIR, run

# AlexNet's convolutions, torchvision layout: (name, in, out, kernel, stride, padding)
ALEXNET_CONVS = {
    "conv1": ("features.0", 3, 64, 11, 4, 2),
}
NETS = {"alexnet": ALEXNET_CONVS}
ARRAY_MACS = 144


def photo(size: int = 224) -> np.ndarray:
    """scikit-image's astronaut photo, resized to ``size`` x ``size``, ImageNet-normalised, CHW float."""
    from skimage import data
    from skimage.transform import resize

    img = resize(data.astronaut(), (size, size), anti_aliasing=True).astype(np.float64)  # HWC in [0, 1]
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    return ((img - mean) / std).transpose(2, 0, 1)


def conv_weights(key: str, cin: int, cout: int, k: int, weights: str | None):
    """He-initialised (kaiming normal, fan_out, seed 0) conv weights and zero bias, or the user's."""
    import torch

    if weights:
        sd = torch.load(weights, map_location="cpu", weights_only=True)
        missing = [n for n in (f"{key}.weight", f"{key}.bias") if n not in sd]
        if missing:
            raise UserError(f"weight file {weights} has no key {missing[0]!r}")
        return sd[f"{key}.weight"].double().numpy(), sd[f"{key}.bias"].double().numpy()
    g = torch.Generator().manual_seed(0)
    w = torch.empty(cout, cin, k, k, dtype=torch.float64)
    w.normal_(0.0, (2.0 / (cout * k * k)) ** 0.5, generator=g)
    return w.numpy(), np.zeros(cout)


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> tuple[np.ndarray, int, int]:
    """CHW -> [H_out * W_out, C * k * k] (rows: output pixels in raster order)."""
    c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    cols = np.empty((ho * wo, c, k, k), dtype=x.dtype)
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, ky:ky + stride * ho:stride, kx:kx + stride * wo:stride]  # C, ho, wo
            cols[:, :, ky, kx] = patch.reshape(c, -1).T
    return cols.reshape(ho * wo, -1), ho, wo


def lower_conv(name: str, spec, weights: str | None):
    """The quantized matrix workload of one conv layer: (a, w, bias, shift, relu, shape info)."""
    key, cin, cout, k, stride, pad = spec
    x = photo()
    wf, bf = conv_weights(key, cin, cout, k, weights)
    fa = frac_bits_for(np.abs(x).max())
    fw = frac_bits_for(np.abs(wf).max())
    xq = quantize(x, fa)
    wq = quantize(wf, fw)
    a, ho, wo = im2col(xq.astype(np.int64), k, stride, pad)
    wmat = wq.reshape(cout, -1).T.astype(np.int64)
    # output scale from the float layer's range (calibration on this photo)
    yf = np.maximum(im2col(x, k, stride, pad)[0] @ wf.reshape(cout, -1).T + bf, 0)
    fo = min(frac_bits_for(np.abs(yf).max()), fa + fw)
    bias = np.rint(bf * 2.0 ** (fa + fw)).astype(np.int64)
    return a, wmat, bias, fa + fw - fo, True, dict(out_shape=[cout, ho, wo], frac_bits=dict(a=fa, w=fw, out=fo))


def simulate_layer(net: str, name: str, spec, weights: str | None) -> dict:
    a, w, bias, shift, relu, info = lower_conv(name, spec, weights)
    golden = linear_int(a, w, bias, shift, relu)
    macs = int(a.shape[0] * a.shape[1] * w.shape[1])
    work = BUILD_DIR / "sim" / "work" / f"{net}_{name}"
    work.mkdir(parents=True, exist_ok=True)
    wl, res = work / "workload.npz", work / "result.npz"
    np.savez(wl, a=a.astype(np.int16), w=w.astype(np.int16), bias=bias, shift=shift, relu=relu)
    print(f"{net} {name}: {a.shape[0]} x {a.shape[1]} @ {w.shape[0]} x {w.shape[1]} "
          f"({macs / 1e6:.1f} M MACs) on the 12x12 array in Verilator...", flush=True)
    t0 = time.monotonic()
    run(MAC_ARRAY, "sim.tb_mac_array", testcase="workload",
        env={"EDGESPLIT_WORKLOAD": str(wl), "EDGESPLIT_RESULT": str(res)})
    wall = time.monotonic() - t0
    out = np.load(res)["out"]
    counts = json.loads(Path(str(res) + ".json").read_text())
    bit_exact = bool(np.array_equal(out, golden))
    cycles = counts["cycles"]
    return {
        "name": name, "shape": info["out_shape"], "macs": macs, "cycles": cycles,
        "compute_cycles": counts["compute_cycles"],
        "utilization": macs / (ARRAY_MACS * cycles), "bit_exact": bit_exact,
        "frac_bits": info["frac_bits"], "shift": shift,
        "counters": {"cycles": cycles, "beats": counts["beats"], "tiles": counts["tiles"], "macs": macs},
        "wall_s": wall, "sim_cycles_per_s": cycles / counts["wall_s"],
    }


def print_table(rows: list[dict]) -> None:
    head = f"{'layer':8} {'shape':>14} {'MACs':>12} {'cycles':>10} {'util':>7} {'bit-exact':>9} {'kcyc/s':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(f"{r['name']:8} {shape:>14} {r['macs']:>12,} {r['cycles']:>10,} {r['utilization']:>7.1%} "
              f"{'yes' if r['bit_exact'] else 'NO':>9} {r['sim_cycles_per_s'] / 1e3:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--net", default="alexnet")
    p.add_argument("--layer", action="append", help="layer(s) to run (default: all available)")
    p.add_argument("--weights", help="a torchvision-format state_dict file (default: He-initialised, seed 0)")
    args = p.parse_args(argv)
    try:
        if args.net not in NETS:
            raise UserError(f"unknown network {args.net!r}; allowed: {', '.join(NETS)}")
        layers = NETS[args.net]
        names = args.layer or list(layers)
        for n in names:
            if n not in layers:
                raise UserError(f"unknown layer {n!r} of {args.net}; allowed: {', '.join(layers)}")
        if args.weights and not Path(args.weights).is_file():
            raise UserError(f"weight file {args.weights!r} does not exist")
        (BUILD_DIR / "sim").mkdir(parents=True, exist_ok=True)
        rows = [simulate_layer(args.net, n, layers[n], args.weights) for n in names]
    except UserError as e:
        print(f"make sim: error: {e}", file=sys.stderr)
        return 2
    print_table(rows)
    out = BUILD_DIR / "sim" / f"{args.net}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"net": args.net, "array": "12x12 output-stationary", "layers": rows}, indent=2))
    tmp.replace(out)
    print(f"wrote {out}")
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
