"""pytest runner of the engine's cocotb testbench (sim/tb_engine.py) in Verilator.

Random layer stacks on a small engine (4 K-word feature buffer, 1024-row weight banks: band tiling with
spill/refill and chunked weight streaming are forced), every layer's output bit-exact with the golden
integer model, with and without DRAM latency, jitter, bandwidth limits and random refusals (results
identical, only stall counts change). The whole AlexNet stack on the default engine is the slow test.
"""

import numpy as np
import pytest

from sim.designs import ENGINE, ENGINE_SMALL, ENGINE_SMALL_PARAMS
from sim.engine_run import DramSettings, run_program
from sim.program import (
    ConvLayer,
    EngineConfig,
    PoolLayer,
    compile_program,
    compressed_weight_image,
    raw_first_group,
    reference_outputs,
    weight_image,
)

SMALL = EngineConfig(**ENGINE_SMALL_PARAMS)
CLASSES = ("busy", "stall_dram", "stall_fetch", "stall_drain", "stall_control")
WORK_COUNTERS = ("macs", "busy", "pool_ops", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
                 "dram_read_words", "dram_write_words")


def random_stack(rng):
    c, h, w = int(rng.integers(1, 8)), int(rng.integers(5, 24)), int(rng.integers(5, 24))
    x = rng.integers(-32768, 32768, size=(c, h, w)).astype(np.int16)
    layers = []
    shape = (c, h, w)
    for i in range(int(rng.integers(1, 4))):
        if i and rng.random() < 0.35 and min(shape[1:]) >= 3:
            k = int(rng.integers(2, 4))
            layers.append(PoolLayer(f"p{i}", k, int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1))))
        else:
            k = int(rng.integers(1, min(12, min(shape[1:]) + 1)))
            cout = int(rng.integers(1, 30))
            s = int(rng.choice([1, 1, 2, 3, 4]))
            p = int(rng.integers(0, k))
            wt = rng.integers(-32768, 32768, size=(cout, shape[0], k, k)).astype(np.int16)
            shift = int(np.clip(round(np.log2(32768.0 * 20000 * np.sqrt(shape[0] * k * k))) - 15, 0, 31))
            layers.append(ConvLayer(f"c{i}", wt, rng.integers(-(2**39), 2**39, size=cout), shift,
                                    relu=bool(rng.integers(2)), stride=s, pad=p))
        shape = layers[-1].out_shape(shape)
        if min(shape[1:]) < 1:
            layers.pop()
            break
    if rng.random() < 0.5:  # an FC head on the flattened map
        n_in = int(np.prod(shape))
        if n_in <= 3000:
            wt = rng.integers(-32768, 32768, size=(int(rng.integers(1, 20)), n_in, 1, 1)).astype(np.int16)
            layers.append(ConvLayer("fc", wt, rng.integers(-(2**30), 2**30, size=wt.shape[0]), 31,
                                    relu=False, flatten=True))
    return x, layers


def conv(rng, name, cin, cout, k, s, p, relu=True, flatten=False):
    wt = rng.integers(-32768, 32768, size=(cout, cin, k, k)).astype(np.int16)
    shift = int(np.clip(round(np.log2(32768.0 * 20000 * np.sqrt(cin * k * k))) - 15, 0, 31))
    return ConvLayer(name, wt, rng.integers(-(2**39), 2**39, size=cout), shift, relu=relu, stride=s, pad=p,
                     flatten=flatten)


def directed_stack(kind, rng):
    if kind == "banded":  # 4x40x37 in + 9x40x37 out > 4 K words: bands with spill and refill
        x = rng.integers(-32768, 32768, size=(4, 40, 37)).astype(np.int16)
        return x, [conv(rng, "c1", 4, 9, 3, 1, 1), PoolLayer("p1", 3, 2), conv(rng, "c2", 9, 13, 5, 2, 2)]
    if kind == "fc_chunked":  # 1584-deep dot products stream through the 1024-row weight banks
        x = rng.integers(-32768, 32768, size=(11, 12, 12)).astype(np.int16)
        return x, [conv(rng, "fc1", 1584, 15, 1, 1, 0, flatten=True), conv(rng, "fc2", 15, 10, 1, 1, 0, False, True)]
    if kind == "pools":  # padded pools (padding reads -32768), a 1x1 conv, a strided pool
        x = rng.integers(-32768, 32768, size=(5, 15, 15)).astype(np.int16)
        return x, [PoolLayer("p1", 3, 1, 1), conv(rng, "c1", 5, 30, 1, 1, 0), PoolLayer("p2", 2, 2)]
    raise ValueError(kind)


CASES = [f"random{i}" for i in range(4)] + ["banded", "fc_chunked", "pools"]


@pytest.mark.parametrize("case", CASES)
def test_stacks_small_engine(case):
    seed = CASES.index(case)
    rng = np.random.default_rng(100 + seed)
    x, layers = random_stack(rng) if case.startswith("random") else directed_stack(case, rng)
    prog = compile_program(layers, x, SMALL)
    if case == "banded":
        assert prog.banded["c1"] > 1
    exp = reference_outputs(layers, x)
    runs = {
        "plain": DramSettings(bytes_per_cycle=16, latency=1),
        "hostile": DramSettings(bytes_per_cycle=float(rng.choice([2, 5.5, 24])), latency=int(rng.integers(2, 60)),
                                gap_prob=float(rng.uniform(0.1, 0.6)), jitter=int(rng.integers(0, 30)), seed=seed + 1),
    }
    final = {}
    for tag, dram in runs.items():
        res = run_program(prog, f"{case}_{tag}", dram, design=ENGINE_SMALL)
        for layer in layers:
            assert np.array_equal(prog.read_output(res.dram, layer.name), exp[layer.name]), (tag, layer.name)
        last = res.snapshots[-1]
        assert sum(last[c] for c in CLASSES) == last["cycles"]
        assert last["macs"] == sum(prog.macs.values())
        final[tag] = last
    for n in WORK_COUNTERS:
        assert final["plain"][n] == final["hostile"][n], n
    assert final["hostile"]["stall_dram"] > final["plain"]["stall_dram"]


@pytest.mark.slow
def test_alexnet_stack_default_engine():
    """AlexNet input..pool5 (He-init, calibrated on photos), every layer bit-exact; the 2,048-cycle
    control overhead and utilization targets are printed by make sim / make bench."""
    from sim.run import simulate

    result = simulate("alexnet", "conv5", None, 16.0)
    assert all(r["bit_exact"] for r in result["layers"])
    util = {r["name"]: r["utilization"] for r in result["layers"]}
    assert util["conv1"] >= 0.75
    for n in ("conv2", "conv3", "conv4", "conv5"):
        assert util[n] >= 0.90, (n, util[n])
    assert ENGINE.parameters["fb_words"] == 2**18


def test_plain_build_has_the_same_cycles():
    """The build without the encode unit and weight decoders (what plain runs use, sim.designs.engine_for)
    gives the same outputs and every counter equal to the full engine's, command by command."""
    from golden.quantize import default_qnet, sample_images
    from sim.designs import ENGINE_PLAIN, engine_for
    from sim.engine_run import DEFAULT_CONFIG
    from sim.networks import engine_layers

    q = default_qnet("digits")
    layers = engine_layers(q)
    prog = compile_program(layers, q.quantize_input(sample_images("digits", 1))[0], DEFAULT_CONFIG)
    assert engine_for(prog) is ENGINE_PLAIN
    full = run_program(prog, "digits_full_build", DramSettings(jitter=3, gap_prob=0.1), design=ENGINE)
    plain = run_program(prog, "digits_plain_build", DramSettings(jitter=3, gap_prob=0.1), design=ENGINE_PLAIN)
    assert np.array_equal(full.dram, plain.dram)
    assert full.snapshots == plain.snapshots


@pytest.mark.parametrize("net", ["digits", "resnet20", "mobilenetv2_cifar"])
def test_real_network_default_engine(net, request):
    """Whole real networks on the default engine in Verilator, every layer bit-exact: the digits net
    (self-contained), ResNet-20 with its CIFAR-10 checkpoint (residual adds, option-A shortcuts as
    1x1 convs, global average pool, FC) and the trained CIFAR-10 MobileNetV2 (depthwise convolutions in
    packs, ReLU6 clamps, linear bottlenecks)."""
    from sim.run import simulate

    if net == "resnet20":
        request.getfixturevalue("shared_data")
    result = simulate(net, None, None, 16.0)
    bad = [r["name"] for r in result["layers"] if not r["bit_exact"]]
    assert not bad, bad
    assert result["total"]["macs"] > 0


@pytest.mark.parametrize("mode", ["jpeg", "lossless"])
def test_encode_unit_small_engine(mode):
    """Every layer's output also goes through the encode unit (banded maps in parts through the 4 K-word
    buffer), under plain and hostile DRAM: the coded bytes equal the golden codecs' byte for byte and the
    inference results and work counters do not change."""
    from sim.encoding import EncodeSpec, plan_encoding, read_encoding

    rng = np.random.default_rng(7 if mode == "jpeg" else 8)
    x, layers = directed_stack("banded", rng)
    exp = reference_outputs(layers, x)
    spec = EncodeSpec(mode, qf=30)
    plans = {n: plan_encoding(n, v, spec) for n, v in exp.items()}
    prog = compile_program(layers, x, SMALL, encode=plans)
    plain = compile_program(layers, x, SMALL)
    runs = {"plain": DramSettings(bytes_per_cycle=16, latency=1),
            "hostile": DramSettings(bytes_per_cycle=5.5, latency=37, gap_prob=0.3, jitter=20, seed=3)}
    for tag, dram in runs.items():
        res = run_program(prog, f"encode_{mode}_{tag}", dram, design=ENGINE_SMALL)
        for layer in layers:
            assert np.array_equal(prog.read_output(res.dram, layer.name), exp[layer.name]), (tag, layer.name)
            got = read_encoding(res.dram, plans[layer.name])
            assert got["data"] == plans[layer.name].expected, (tag, layer.name)
            assert got["bits"] == plans[layer.name].bits
        last = res.snapshots[-1]
        assert sum(last[c] for c in CLASSES) == last["cycles"]
        assert last["enc_samples"] == sum(read_encoding(res.dram, p)["samples"] for p in plans.values())
        if tag == "plain":
            ref = run_program(plain, f"encode_{mode}_reference", dram, design=ENGINE_SMALL).snapshots[-1]
            # the encoding adds its own LOADs (maps in DRAM come back in parts) and nothing else
            for n in ("macs", "pool_ops", "wb_read_words", "wb_write_words", "dram_write_words"):
                assert last[n] == ref[n], n


@pytest.mark.parametrize("qf", [5, 50, 100])
def test_compressed_weights_small_engine(qf):
    """JPEG-coded weights through the weight decoder (chunked FC heads, banded layers), plain and hostile
    DRAM: outputs bit-exact with the golden network that uses the decoded weights, and the DRAM read words
    drop by what the compressed weights save."""
    from dataclasses import replace

    from golden import weightcodec as wc

    rng = np.random.default_rng(200 + qf)
    cases = [directed_stack("fc_chunked", rng), directed_stack("banded", rng)]
    for ci, (x, layers) in enumerate(cases):
        layers = [replace(ly, weight=(ly.weight // 64).astype(np.int16)) if isinstance(ly, ConvLayer) else ly
                  for ly in layers]   # smoother weights than full-range noise: real coding gains
        packed = []
        for ly in layers:
            if isinstance(ly, ConvLayer):
                enc = wc.encode_layer(ly.weight, qf)
                ly = replace(ly, weight=wc.decode_layer(enc).reshape(ly.weight.shape).astype(np.int16), wcodec=enc)
            packed.append(ly)
        exp = reference_outputs(packed, x)
        prog = compile_program(packed, x, SMALL)
        plain = compile_program([replace(ly, wcodec=None) if isinstance(ly, ConvLayer) else ly for ly in packed],
                                x, SMALL)
        dram = DramSettings(bytes_per_cycle=5.5, latency=37, gap_prob=0.3, jitter=20, seed=qf)
        res = run_program(prog, f"wjpeg{qf}_{ci}", dram, design=ENGINE_SMALL)
        for ly in packed:
            assert np.array_equal(prog.read_output(res.dram, ly.name), exp[ly.name]), (qf, ly.name)
        ref = run_program(plain, f"wjpeg{qf}_{ci}_plain", DramSettings(), design=ENGINE_SMALL).snapshots[-1]
        last = res.snapshots[-1]
        assert last["macs"] == ref["macs"]
        # every DRAM read word is accounted for: the plain weight image out; the tables, biases and the
        # stream (whole beats) in
        saved = 0
        for ly in packed:
            if isinstance(ly, ConvLayer):
                pixels = prog.out_shapes[ly.name][1] * prog.out_shapes[ly.name][2]
                image, _, words, _ = compressed_weight_image(ly, raw_first_group(ly, pixels))
                # (a banded layer fetches its weights once per band)
                saved += prog.banded[ly.name] * (weight_image(ly).size - image.size - -(-words.size // 12) * 12)
        assert ref["dram_read_words"] - last["dram_read_words"] == saved
        if qf < 100:
            assert last["dram_read_words"] < ref["dram_read_words"]


@pytest.mark.parametrize("net", ["digits", pytest.param("resnet20", marks=pytest.mark.slow)])
def test_real_network_compressed_weights(net, request):
    """A real network with JPEG-coded weights (per-layer QF 30) on the default engine: every layer
    bit-exact with the golden network that uses the decoded weights, fewer DRAM words for the coded
    layers."""
    from sim.run import simulate

    if net == "resnet20":
        request.getfixturevalue("shared_data")
    result = simulate(net, None, None, 16.0, weights_codec="jpeg", weights_qf=30)
    bad = [r["name"] for r in result["layers"] if not r["bit_exact"]]
    assert not bad, bad
    coded = [r for r in result["layers"] if "weights" in r]
    assert coded and all(r["counters"]["wdec_weights"] > 0 for r in coded)
    assert all(r["weights"]["qf"] == 30 and r["weights"]["ratio"] > 1 for r in coded)
