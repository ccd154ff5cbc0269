"""The engine at other array sizes than 12 x 12 (issue 16): 8 x 8, 16 x 16 and 24 x 24 small engines (4 K-word
feature buffer, 32 banks at 24 lanes; 1024-row weight banks; the plain build: no encode unit, no weight
decoders) in Verilator, random layers (convolutions of stride 1, 2 and 4 with kernels up to 11 and padding,
max-pools, an FC head deeper than a weight bank, a depthwise 3x3 layer on the depthwise unit, a residual add, a
global average pool), every layer's output bit-exact with the golden integer model, and the counters'
invariants; plus what the RTL and the compiler refuse.
"""

from dataclasses import replace

import numpy as np
import pytest

from golden.arch import EngineArch, parse_arch
from golden.errors import UserError
from sim.designs import ENGINE_SMALL_PARAMS, engine_small_design
from sim.engine_run import DramSettings, run_program
from sim.program import (
    AddLayer,
    ConvLayer,
    EngineConfig,
    EngineLimitError,
    GapLayer,
    PoolLayer,
    compile_program,
    reference_outputs,
)

LANE_COUNTS = (8, 16, 24)
CLASSES = ("busy", "stall_dram", "stall_fetch", "stall_drain", "stall_control")
WORK_COUNTERS = ("macs", "busy", "pool_ops", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words",
                 "dram_read_words", "dram_write_words")


def small_config(lanes: int) -> EngineConfig:
    """The compiler's view of the small engine of ``engine_small_design(lanes)``."""
    return EngineConfig.from_arch(EngineArch(rows=lanes, cols=lanes, **ENGINE_SMALL_PARAMS))


def conv(rng, name, cin, cout, k, s=1, p=0, relu=True, flatten=False, groups=1, inputs=None):
    wt = rng.integers(-32768, 32768, size=(cout, cin // groups, k, k)).astype(np.int16)
    shift = int(np.clip(round(np.log2(32768.0 * 20000 * np.sqrt(cin // groups * k * k))) - 15, 0, 31))
    return ConvLayer(name, wt, rng.integers(-(2**39), 2**39, size=cout), shift, relu=relu, stride=s, pad=p,
                     flatten=flatten, groups=groups, inputs=inputs)


def linear_stack(rng):
    """conv k3 s1 p1 (banded: 3 x 34 x 33 in, 13 out > 4 K words), max-pool, conv k5 s2 p2, conv k11 s4 p2 on its
    own input, an FC head deeper than the 1024-row weight bank (chunked)."""
    x = rng.integers(-32768, 32768, size=(3, 34, 33)).astype(np.int16)
    layers = [conv(rng, "c1", 3, 13, 3, 1, 1), PoolLayer("p1", 3, 2, 1), conv(rng, "c2", 13, 19, 5, 2, 2)]
    x2 = rng.integers(-32768, 32768, size=(2, 47, 45)).astype(np.int16)
    big = [conv(rng, "c3", 2, 21, 11, 4, 2), PoolLayer("p3", 2, 2)]
    shape = (2, 47, 45)
    for la in big:
        shape = la.out_shape(shape)
    n_in = int(np.prod(shape))
    fc = conv(rng, "fc", n_in, 17, 1, relu=False, flatten=True)
    return [(x, layers), (x2, [*big, fc])]


def dag_stack(rng):
    """A residual block with a depthwise 3x3 (DWCONV, stride 1, padding 1), a 1x1 expansion, a strided 3x3, a
    residual add with ReLU, a global average pool and an FC head: the branchy (DRAM -> bands -> DRAM) path."""
    x = rng.integers(-3000, 3000, size=(20, 14, 15)).astype(np.int16)
    layers = [
        conv(rng, "dw", 20, 20, 3, 1, 1, groups=20),
        conv(rng, "pw", 20, 24, 1, relu=False),
        conv(rng, "ds", 20, 24, 1, relu=False, inputs=("input",)),
        AddLayer("add", ("pw", "ds"), 2, -3, 2, relu=True),
        conv(rng, "c3", 24, 18, 3, 2, 1),
        GapLayer("gap", 21400, 20),
        conv(rng, "fc", 18, 10, 1, relu=False, flatten=True),
    ]
    return x, layers


def run_checked(prog, layers, x, lanes, tag, dram):
    res = run_program(prog, f"arch{lanes}_{tag}", dram, design=engine_small_design(lanes))
    exp = reference_outputs(layers, x)
    for layer in layers:
        assert np.array_equal(prog.read_output(res.dram, layer.name), exp[layer.name]), (lanes, tag, layer.name)
    last = res.snapshots[-1]
    assert sum(last[c] for c in CLASSES) == last["cycles"]
    assert last["macs"] == sum(prog.array_macs.values())
    assert last["wdec_active"] == 0 and last["enc_active"] == 0
    return last


@pytest.mark.parametrize("lanes", LANE_COUNTS)
def test_linear_layers(lanes):
    rng = np.random.default_rng(1600 + lanes)
    cfg = small_config(lanes)
    for i, (x, layers) in enumerate(linear_stack(rng)):
        prog = compile_program(layers, x, cfg)
        if i == 0:
            assert prog.banded["c1"] > 1
        final = {}
        for tag, dram in (("plain", DramSettings(bytes_per_cycle=16, latency=1)),
                          ("hostile", DramSettings(bytes_per_cycle=5.5, latency=37, gap_prob=0.3, jitter=20,
                                                   seed=lanes))):
            final[tag] = run_checked(prog, layers, x, lanes, f"linear{i}_{tag}", dram)
        for n in WORK_COUNTERS:
            assert final["plain"][n] == final["hostile"][n], n
        assert final["hostile"]["stall_dram"] > final["plain"]["stall_dram"]
        # one weight row of `lanes` words per beat: a layer's weight words are a multiple of the lane count
        assert final["plain"]["wb_write_words"] % lanes == 0


@pytest.mark.parametrize("lanes", LANE_COUNTS)
def test_depthwise_residual_gap_fc(lanes):
    rng = np.random.default_rng(1700 + lanes)
    x, layers = dag_stack(rng)
    cfg = small_config(lanes)
    prog = compile_program(layers, x, cfg)
    from hw.descriptor import Op

    assert any(c.op == Op.DWCONV for c in prog.commands)
    run_checked(prog, layers, x, lanes, "dag", DramSettings(latency=9, gap_prob=0.2, jitter=7, seed=5))


def test_what_other_arrays_refuse():
    from hw.engine import Engine

    arch20 = parse_arch("20x20")
    assert arch20.fb_banks == 32 and EngineConfig.from_arch(arch20).lanes == 20
    banks16 = replace(arch20, fb_banks=16)      # a row of 20 words cannot be written to 16 banks at once
    with pytest.raises(UserError, match=r"fb_banks 16 is not built at 20x20: .*; allowed: 32$"):
        EngineConfig.from_arch(banks16)
    with pytest.raises(ValueError, match=r"fb_banks 16 is not built at 20x20"):
        Engine.from_arch(banks16, plain=True)
    with pytest.raises(ValueError, match=r"Engine fb_banks must be 16 or 32 and at least lanes \(20\), got 16"):
        Engine(lanes=20, fb_banks=16, encoder=False, weight_decoder=False)
    arch16 = parse_arch("16x16")
    assert EngineConfig.from_arch(arch16).lanes == 16
    with pytest.raises(UserError, match=r"ENCODE needs the 12-lane"):
        EngineConfig.from_arch(arch16, encode=True)
    with pytest.raises(UserError, match=r"coded weights"):
        EngineConfig.from_arch(arch16, coded=True)
    with pytest.raises(ValueError, match=r"only plain programs"):
        Engine.from_arch(arch16)          # the full build: encode unit and weight decoders
    Engine.from_arch(arch16, plain=True)  # constructs (elaborated by the tests above)
    with pytest.raises(ValueError, match=r"lanes must be an integer in 4\.\.24"):
        Engine(lanes=25, encoder=False, weight_decoder=False)
    rng = np.random.default_rng(0)
    x = rng.integers(-100, 100, size=(2, 8, 8)).astype(np.int16)
    with pytest.raises(EngineLimitError, match=r"encode"):
        compile_program([conv(rng, "c", 2, 3, 3)], x, EngineConfig.from_arch(parse_arch("8x8")),
                        encode={"c": object()})


def test_layouts_follow_the_lanes():
    """Weight groups, packs, DRAM alignment and descriptors of a 16-lane program (no simulation)."""
    from hw.descriptor import desc_words_padded
    from sim.program import conv_packs, weight_image

    rng = np.random.default_rng(3)
    la = conv(rng, "c", 5, 20, 3)
    img = weight_image(la, 16)
    assert img.size == 2 * (3 * 16 + 5 * 9 * 16)             # 2 groups of 16: 3 bias beats + K rows of 16
    assert weight_image(la).size == 2 * (3 * 12 + 5 * 9 * 12)  # the default, 12 lanes
    dw = conv(rng, "dw", 40, 40, 3, 1, 1, groups=40)
    assert len(conv_packs(dw, 16)) == 3 and len(conv_packs(dw)) == 4
    x = rng.integers(-100, 100, size=(5, 9, 9)).astype(np.int16)
    prog = compile_program([la], x, EngineConfig(fb_words=4096, wb_depth=1024, lanes=16))
    assert prog.cmd_addr % 16 == 0 and desc_words_padded(16) == 48 and desc_words_padded(8) == 40
