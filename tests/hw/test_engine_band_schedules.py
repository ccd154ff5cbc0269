"""A banded 1x1 conv at stride 2 (hw.plan.subsampled_conv: a POOL of kernel 1 subsamples each band into a
scratch map, then the conv runs at stride 1 over it as one long row), on the engine in the Amaranth simulator:
bit-exact with golden.layers, fewer cycles than the conv at its stride, with DRAM latency, jitter and refusals."""

import numpy as np
import pytest

import sim.program as P
from hw.descriptor import Op
from sim.amaranth_engine import run_engine_amaranth
from sim.program import AddLayer, ConvLayer, EngineConfig, compile_program, reference_outputs
from tests.hw.test_engine_ops import run as _run  # bit-exact on every layer, MACs and cycle classes checked


def conv(rng, name, cin, cout, k, stride=1, pad=0, relu=True, inputs=None):
    w = rng.integers(-300, 301, size=(cout, cin, k, k)).astype(np.int16)
    w.flat[0] = -32768
    w.flat[-1] = 32767
    bias = rng.integers(-(2**18), 2**18, size=cout)
    shift = int(np.clip(np.log2(300 * 300 * np.sqrt(cin * k * k)) - 13, 0, 31))
    return ConvLayer(name, w, bias, shift, relu=relu, stride=stride, pad=pad, inputs=inputs)


def _net(rng):
    # a residual block's downsample branch: "down" (1x1, stride 2, 60 channels: five weight groups, 12 outputs a
    # row: 23 input words, two reads a step at its stride) beside a 3x3 stride-2 conv of the input, then their sum
    return [conv(rng, "a", 3, 32, 1, 1, 0),
            conv(rng, "down", 32, 60, 1, 2, 0, relu=False, inputs=("a",)),
            conv(rng, "main", 3, 60, 3, 2, 1, relu=False, inputs=("input",)),
            AddLayer("sum", ("down", "main"), 1, 1, 1, relu=True)]


@pytest.mark.parametrize("overlap, dram", [(True, dict(latency=3)),
                                           (False, dict(latency=9, jitter=6, gap_prob=0.3, seed=4))],
                         ids=["double-plain", "sequential-hostile"])
def test_subsampled_downsample_conv(overlap, dram, monkeypatch):
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, size=(3, 9, 24)).astype(np.int16)   # odd height: a band of one input row
    x[:, 0, :] = 32767
    x[:, -1, :] = -32768
    layers = _net(rng)
    cfg = EngineConfig(fb_words=4096, wb_depth=64, overlap_dma=overlap)
    prog, final = _run(layers, x, cfg, **dram)
    mine = [c for c, t in zip(prog.commands[:-1], prog.command_layer, strict=True) if t == "down"]
    pools = [c for c in mine if c.op == Op.POOL]
    convs = [c for c in mine if c.op == Op.CONV]
    assert prog.banded["down"] > 1 and len(pools) == len(convs) == prog.banded["down"]
    assert all(p.k == 1 and p.stride == 2 and c.stride == 1 and c.in_h == 1 for p, c in zip(pools, convs, strict=True))
    if not overlap:
        return
    # the same network with the conv at its stride: same outputs (checked in _run), more cycles
    monkeypatch.setattr(P, "subsampled_conv", lambda *a, **k: False)
    plain, plain_final = _run(layers, x, cfg, **dram)
    assert not any(c.op == Op.POOL for c in plain.commands)
    assert final["cycles"] < plain_final["cycles"]


def _layer_cycles(prog, snaps, name):
    prev, total = 0, 0
    for i, s in enumerate(snaps[:len(prog.command_layer)]):
        if prog.command_layer[i] == name:
            total += s["cycles"] - prev
        prev = s["cycles"]
    return total


@pytest.mark.parametrize("dram", [dict(latency=3), dict(latency=9, jitter=6, gap_prob=0.3, seed=4)],
                         ids=["plain", "hostile"])
def test_double_buffered_add_bands(dram):
    """A residual ADD from DRAM in double-buffered bands (hw.plan.add_bands: the next band's inputs and this
    band's output move while the ADD runs): bit-exact, in fewer cycles than its sequential bands."""
    rng = np.random.default_rng(11)
    x = rng.integers(-32768, 32768, size=(8, 10, 12)).astype(np.int16)
    layers = [conv(rng, "p", 8, 8, 1, 1, 0, relu=False), conv(rng, "q", 8, 8, 1, 1, 0, relu=False, inputs=("input",)),
              AddLayer("sum", ("p", "q"), 3, -2, 1, relu=True, clamp=20000)]
    cycles = {}
    for overlap in (True, False):
        cfg = EngineConfig(fb_words=2048, wb_depth=64, overlap_dma=overlap, resident=False)
        prog = compile_program(layers, x, cfg)
        out, snaps = run_engine_amaranth(prog, cfg, **dram)
        for name, ref in reference_outputs(layers, x).items():
            assert np.array_equal(prog.read_output(out, name), ref), f"layer {name} differs"
        mine = [c for c, t in zip(prog.commands[:-1], prog.command_layer, strict=True) if t == "sum"]
        assert prog.banded["sum"] == sum(c.op == Op.ADD for c in mine) > 1
        assert any(c.bg for c in mine) == overlap
        cycles[overlap] = _layer_cycles(prog, snaps, "sum")
    assert cycles[True] < cycles[False]
