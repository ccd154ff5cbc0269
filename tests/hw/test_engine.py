"""The engine in Amaranth's simulator on small random layers (every output bit-exact with golden.layers),
with DRAM latency and bandwidth gaps; the Verilator runs (tests/hw/test_engine_cocotb.py) cover size."""

import numpy as np
import pytest

from sim.amaranth_engine import run_engine_amaranth
from sim.program import ConvLayer, EngineConfig, EngineLimitError, PoolLayer, compile_program, reference_outputs


def ref_network(layers, x):
    """Every layer's golden output (golden.layers through sim.program.reference_outputs)."""
    return reference_outputs(layers, x)


def rtl_network(layers, x, config, **kw):
    prog = compile_program(layers, x, config)
    dram, snaps = run_engine_amaranth(prog, config, **kw)
    return {name: prog.read_output(dram, name) for name in prog.layer_names}, prog, snaps


def random_conv(rng, name, cin, cout, k, stride, pad, relu=True, flatten=False, small=False):
    lim = 300 if small else 32767
    w = rng.integers(-lim, lim + 1, size=(cout, cin, k, k)).astype(np.int16)
    if rng.random() < 0.2:
        w[0, 0, 0, 0] = -32768
    bias = rng.integers(-(2**20), 2**20, size=cout)
    k_rows = cin * k * k
    shift = int(np.clip(np.log2(lim * 300 * np.sqrt(k_rows)) - 13 + rng.integers(-2, 3), 0, 31))
    return ConvLayer(name, w, bias, shift, relu=relu, stride=stride, pad=pad, flatten=flatten)


def check(layers, x, config, **kw):
    got, prog, snaps = rtl_network(layers, x, config, **kw)
    exp = ref_network(layers, x)
    for name in exp:
        assert np.array_equal(got[name], exp[name]), f"layer {name} differs"
    return prog, snaps


CASES = [
    # (cin, h, w, cout, k, stride, pad)
    (3, 9, 9, 5, 3, 1, 1),
    (2, 11, 13, 13, 5, 2, 2),
    (1, 15, 15, 12, 11, 4, 2),
    (7, 6, 7, 25, 1, 1, 0),
    (4, 7, 5, 3, 3, 3, 0),
    (5, 8, 8, 14, 2, 2, 1),
]


@pytest.mark.parametrize("case", CASES, ids=[f"c{c}h{h}w{w}o{o}k{k}s{s}p{p}" for c, h, w, o, k, s, p in CASES])
def test_conv_random(case):
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    cin, h, w, cout, k, s, p = case
    x = rng.integers(-32768, 32768, size=(cin, h, w)).astype(np.int16)
    layer = random_conv(rng, "conv", cin, cout, k, s, p, relu=bool(rng.integers(2)))
    prog, snaps = check([layer], x, EngineConfig(fb_words=4096, wb_depth=256))
    final = snaps[-1]
    assert final["macs"] == prog.macs["conv"]
    classes = ("busy", "stall_dram", "stall_fetch", "stall_drain", "stall_control")
    assert sum(final[c] for c in classes) == final["cycles"]


def test_conv_pool_stack_with_dram_gaps():
    rng = np.random.default_rng(11)
    x = rng.integers(-1000, 1000, size=(3, 13, 13)).astype(np.int16)
    layers = [random_conv(rng, "c1", 3, 8, 3, 1, 1, small=True), PoolLayer("p1", 3, 2),
              random_conv(rng, "c2", 8, 6, 3, 1, 0, small=True), PoolLayer("p2", 2, 1, 1)]
    cfg = EngineConfig(fb_words=4096, wb_depth=128)
    _, base = check(layers, x, cfg)
    _, gappy = check(layers, x, cfg, latency=9, gap_prob=0.4, seed=3, jitter=25)
    # same results (checked above); only the DRAM stall count and the cycles change
    for n in ("macs", "busy", "fb_read_words", "fb_write_words", "wb_read_words", "dram_read_words"):
        assert base[-1][n] == gappy[-1][n], n
    assert gappy[-1]["stall_dram"] > base[-1]["stall_dram"]


def test_banding_forced_by_small_buffer():
    rng = np.random.default_rng(5)
    x = rng.integers(-500, 500, size=(2, 20, 12)).astype(np.int16)
    layers = [random_conv(rng, "c1", 2, 4, 3, 1, 1, small=True), PoolLayer("p1", 2, 2)]
    cfg = EngineConfig(fb_words=512, wb_depth=64)
    prog, snaps = check(layers, x, cfg)
    assert prog.banded["c1"] > 1
    assert snaps[-1]["dram_write_words"] > 0  # spilled bands were counted


def test_fc_deeper_than_weight_buffer():
    rng = np.random.default_rng(6)
    x = rng.integers(-500, 500, size=(10, 3, 3)).astype(np.int16)
    fc = random_conv(rng, "fc", 90, 14, 1, 1, 0, flatten=True, small=True)
    prog, snaps = check([fc], x, EngineConfig(fb_words=1024, wb_depth=32))  # K = 90 > 32: chunked
    assert snaps[-1]["macs"] == 90 * 14


def test_driver_rejects_what_the_engine_cannot_run():
    rng = np.random.default_rng(0)
    x = np.zeros((3, 20, 20), np.int16)
    with pytest.raises(EngineLimitError, match=r"layer big: kernel 13 .*1\.\.11"):
        compile_program([ConvLayer("big", np.zeros((4, 3, 13, 13), np.int16), np.zeros(4), 8)], x)
    with pytest.raises(EngineLimitError, match=r"layer s: shift 40"):
        compile_program([ConvLayer("s", np.zeros((4, 3, 3, 3), np.int16), np.zeros(4), 40)], x)
    with pytest.raises(EngineLimitError, match=r"layer huge: one output row needs"):
        compile_program([random_conv(rng, "huge", 3, 600, 3, 1, 1)], x, EngineConfig(fb_words=1024))
    with pytest.raises(EngineLimitError, match=r"layer d: dot product length 27 exceeds"):
        compile_program([random_conv(rng, "d", 3, 4, 3, 1, 1)], x, EngineConfig(wb_depth=16))


def test_residual_block_gap_fc():
    """A ResNet-style block (1x1 fast path, 3x3, downsample, residual add + ReLU), global average pool
    and an FC head: the branchy path where every layer goes DRAM -> buffer -> DRAM in bands."""
    from sim.program import AddLayer, GapLayer

    rng = np.random.default_rng(21)
    x = rng.integers(-3000, 3000, size=(6, 9, 10)).astype(np.int16)
    layers = [
        random_conv(rng, "a", 6, 8, 1, 1, 0, small=True),
        random_conv(rng, "b", 8, 8, 3, 1, 1, small=True),
        random_conv(rng, "c", 8, 16, 1, 1, 0, relu=False, small=True),
        random_conv(rng, "ds", 6, 16, 1, 1, 0, relu=False, small=True),
        AddLayer("add", ("c", "ds"), 2, -4, 2, relu=True),
        GapLayer("gap", 21400, 20),
        random_conv(rng, "fc", 16, 10, 1, 1, 0, relu=False, flatten=True, small=True),
    ]
    layers[3].inputs = ("input",)
    cfg = EngineConfig(fb_words=1024, wb_depth=256)
    prog = compile_program(layers, x, cfg)
    assert prog.banded["add"] > 1 and prog.banded["a"] > 1
    dram, snaps = run_engine_amaranth(prog, cfg, latency=5, gap_prob=0.2, jitter=7)
    exp = reference_outputs(layers, x)
    for name, ref in exp.items():
        assert np.array_equal(prog.read_output(dram, name), ref), name
    assert snaps[-1]["macs"] == sum(prog.macs.values())
