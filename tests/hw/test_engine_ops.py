"""The operators of the network front end on the engine (Amaranth simulator, small layers, every output
bit-exact with golden.layers): depthwise and grouped convolutions (packs), ReLU6 clamps on convolutions and
residual adds, k x k average pools, ceil-mode max-pools, channel concatenations of uneven channel counts
(placed, and copied), with DRAM latency, jitter and refusals."""

import numpy as np
import pytest

from golden import fixedpoint as fp
from golden import layers as L
from hw.descriptor import Op
from sim.amaranth_engine import run_engine_amaranth
from sim.program import (
    AddLayer,
    ConcatLayer,
    ConvLayer,
    EngineConfig,
    EngineLimitError,
    PoolLayer,
    compile_program,
    conv_packs,
    reference_outputs,
)

CFG = EngineConfig(fb_words=1024, wb_depth=256)


def conv(rng, name, cin, cout, k, stride=1, pad=0, groups=1, relu=True, clamp=None, inputs=None):
    w = rng.integers(-300, 301, size=(cout, cin // groups, k, k)).astype(np.int16)
    w.flat[0] = -32768 if rng.random() < 0.3 else w.flat[0]
    bias = rng.integers(-(2**18), 2**18, size=cout)
    shift = int(np.clip(np.log2(300 * 300 * np.sqrt(cin // groups * k * k)) - 13, 0, 31))
    return ConvLayer(name, w, bias, shift, relu=relu, stride=stride, pad=pad, groups=groups, clamp=clamp,
                     inputs=inputs)


def run(layers, x, cfg=CFG, **dram):
    prog = compile_program(layers, x, cfg)
    out, snaps = run_engine_amaranth(prog, cfg, **dram)
    exp = reference_outputs(layers, x)
    for name, ref in exp.items():
        assert np.array_equal(prog.read_output(out, name), ref), f"layer {name} differs"
    final = snaps[-1]
    assert final["macs"] == sum(prog.array_macs.values())
    classes = ("busy", "stall_dram", "stall_fetch", "stall_drain", "stall_control")
    assert sum(final[c] for c in classes) == final["cycles"]
    return prog, final


@pytest.mark.parametrize("unit", [True, False], ids=["dw_unit", "packs"])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_relu6_17_channels(stride, unit):
    """17 channels (groups of 12 and 5), a 3x3 kernel, ReLU6 at a clamp that bites: on the depthwise unit
    (DWCONV, in bands through a small buffer) and as block-diagonal packs on the MAC array."""
    rng = np.random.default_rng(100 + stride)
    x = rng.integers(-20000, 20000, size=(17, 9, 10)).astype(np.int16)
    dw = conv(rng, "dw", 17, 17, 3, stride, 1, groups=17, clamp=fp.relu6_clamp(9))
    cfg = EngineConfig(fb_words=1024 if unit else 2048, wb_depth=256, dw_unit=unit)
    prog, final = run([dw, conv(rng, "pw", 17, 6, 1)], x, cfg, latency=7, jitter=5, gap_prob=0.2)
    pixels = prog.out_shapes["dw"][1] * prog.out_shapes["dw"][2]
    assert prog.macs["dw"] == pixels * 17 * 9
    if unit:
        assert prog.array_macs["dw"] == prog.macs["dw"] and prog.banded["dw"] > 1
        assert any(c.op == Op.DWCONV for c in prog.commands)
    else:
        assert len(conv_packs(dw)) == 2
        assert prog.array_macs["dw"] == pixels * (12 * 12 * 9 + 5 * 5 * 9)  # block-diagonal packs of 12 and 5
    got = reference_outputs([dw], x)["dw"]
    assert got.max() == fp.relu6_clamp(9) and got.min() == 0  # the clamp and the ReLU both acted


def test_grouped_conv_groups_not_a_multiple_of_12():
    """groups=3 of 3 -> 5 channels (packs of two groups: 10 rows) and groups=4 of 2 -> 7 channels."""
    rng = np.random.default_rng(7)
    x = rng.integers(-3000, 3000, size=(9, 7, 8)).astype(np.int16)
    g3 = conv(rng, "g3", 9, 15, 3, 1, 1, groups=3)
    g4 = conv(rng, "g4", 8, 28, 1, 1, 0, groups=4, relu=False, inputs=("g3x",))
    pad = conv(rng, "g3x", 15, 8, 1, inputs=("g3",))
    assert [p[:2] for p in conv_packs(g3)] == [(0, 0), (6, 10)]
    run([g3, pad, g4], x)


def test_avgpool_and_ceil_mode_pool():
    rng = np.random.default_rng(3)
    x = rng.integers(-30000, 30000, size=(5, 12, 12)).astype(np.int16)  # ceil mode: 6 pool rows, not 5
    r_weight, _, shift = L.avgpool_params(9, 10, 10)
    avg = ConvLayer("avg", L.avgpool2d_weight(5, 3, r_weight), np.zeros(5, np.int64), shift, relu=False, stride=2,
                    pad=1, groups=5)
    pool = PoolLayer("pool", 3, 2, 0, ceil_mode=True, inputs=("input",))
    prog, _ = run([avg, pool, AddLayer("sum", ("avg", "pool"), 1, 1, 1, relu=True, clamp=5000)], x, latency=4)
    assert prog.out_shapes["pool"] == (5, 6, 6) == prog.out_shapes["avg"]
    exp = reference_outputs([avg], x)["avg"]
    np.testing.assert_array_equal(exp, L.avgpool2d_int(x[None], 3, 2, 1, r_weight, shift)[0])


@pytest.mark.parametrize("resident", [False, True], ids=["dram", "resident"])
def test_concat_uneven_channels_placed_and_copied(resident):
    """A fire module: squeeze, two expands of 5 and 7 channels concatenated, that concat nested in a second one
    with the network input (copied), and a third reusing the first expand and the squeeze: a tensor is placed in
    the last concat that takes it and copied into the earlier ones. From DRAM, and with the maps kept in the
    buffer (hw.plan.plan_dag), where the placed inputs are made in their place and a concat moves nothing."""
    rng = np.random.default_rng(9)
    x = rng.integers(-3000, 3000, size=(4, 6, 7)).astype(np.int16)
    layers = [
        conv(rng, "sq", 4, 3, 1),
        conv(rng, "e1", 3, 5, 1, inputs=("sq",)),
        conv(rng, "e3", 3, 7, 3, 1, 1, inputs=("sq",)),
        ConcatLayer("cat", ("e1", "e3")),
        ConcatLayer("cat2", ("input", "cat")),
        ConcatLayer("cat3", ("e1", "sq")),
        conv(rng, "head", 8, 4, 1, inputs=("cat3",)),
    ]
    prog, _ = run(layers, x, EngineConfig(fb_words=1024, wb_depth=256, resident=resident), latency=6, jitter=3)
    moves = {n: [c.op.name for c, t in zip(prog.commands, prog.command_layer, strict=False) if t == n and not c.nocount]
             for n in ("cat", "cat2", "cat3")}
    assert prog.out_dram["cat"] == prog.out_dram["cat2"] + 4 * 6 * 7
    if not resident:
        assert prog.banded["cat3"] == 0  # e1 and sq placed in it: no command
        assert prog.banded["cat"] == 1  # e1 copied (e3 placed)
        assert prog.banded["cat2"] == 1  # the input copied (cat placed, nested)
    else:
        assert moves["cat3"] == []            # e1 and sq were made in place
        assert moves["cat"] == ["STORE", "LOAD"]  # e1 (made in cat3's place) written to DRAM, loaded into cat
        assert moves["cat2"] == ["LOAD"]      # the input loaded into its place; cat was made inside cat2


def test_grouped_limits_are_one_line():
    x = np.zeros((6, 5, 5), np.int16)
    with pytest.raises(EngineLimitError, match="groups 4 with 6 input"):
        compile_program([ConvLayer("g", np.zeros((8, 1, 3, 3), np.int16), np.zeros(8), 3, groups=4)], x)
    with pytest.raises(EngineLimitError, match="clamp 40000"):
        compile_program([ConvLayer("c", np.zeros((6, 6, 1, 1), np.int16), np.zeros(6), 3, clamp=40000)], x)


@pytest.mark.parametrize("dram", [dict(latency=3), dict(latency=9, jitter=6, gap_prob=0.3, seed=4)],
                         ids=["plain", "hostile"])
def test_double_buffered_bands(dram):
    """A banded 3x3 conv of a branchy network with its transfers in the background (bg LOADs and STOREs beside
    the compute, hw.dma; the plan of hw.plan.plan_bands), then a residual add: bit-exact, the same MACs as the
    sequential plan (its bands are twice as tall, so beats, halo rows and reads differ), fewer cycles."""
    rng = np.random.default_rng(31)
    # 24 x 24 through a 4096-word buffer: "a" runs in 8 double-buffered bands against 4 sequential ones (the
    # 40 x 40 map through 8192 words it used to be cost CI 200 s per case for the same coverage)
    x = rng.integers(-3000, 3000, size=(8, 24, 24)).astype(np.int16)
    layers = [conv(rng, "a", 8, 12, 3, 1, 1), conv(rng, "b", 12, 8, 1, 1, 0, relu=False),
              AddLayer("sum", ("b", "input"), 1, 1, 1, relu=True)]
    seq_cfg = EngineConfig(fb_words=4096, wb_depth=256, overlap_dma=False)
    cfg = EngineConfig(fb_words=4096, wb_depth=256)
    prog, final = run(layers, x, cfg, **dram)
    seq, seq_final = run(layers, x, seq_cfg, **dram)
    assert any(c.bg for c in prog.commands if prog.command_layer[prog.commands.index(c)] == "a")
    assert not any(c.bg for c in seq.commands)
    assert prog.banded["a"] > seq.banded["a"] > 1
    assert final["macs"] == seq_final["macs"]
    assert final["cycles"] < seq_final["cycles"]
