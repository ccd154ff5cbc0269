"""Compressed weights in the engine (``hw.jpeg.wdecoder`` in the weight path), Amaranth's simulator:
the engine computes with exactly golden's decoded weights (``golden.weightcodec.decode_layer``), through
conv layers and a fully-connected layer deeper than the weight banks (chunks), under DRAM latency,
jitter and refusals. The Verilator runs are in ``tests/hw/test_engine_cocotb.py``."""

from dataclasses import replace

import numpy as np
import pytest

from golden import weightcodec as wc
from sim.amaranth_engine import run_engine_amaranth
from sim.program import (
    ConvLayer,
    EngineConfig,
    EngineLimitError,
    PoolLayer,
    compile_program,
    reference_outputs,
    without_first_group,
)


def compressed(layer, qf):
    enc = wc.encode_layer(layer.weight, qf)
    return replace(layer, weight=wc.decode_layer(enc).reshape(layer.weight.shape).astype(np.int16), wcodec=enc)


def test_compressed_weights_bit_exact_with_decoded_network():
    rng = np.random.default_rng(3)
    x = rng.integers(-3000, 3000, size=(3, 9, 9)).astype(np.int16)
    w1 = np.clip(rng.normal(0, 3000, size=(14, 3, 3, 3)), -32768, 32767).astype(np.int16)
    w1[0, 0, 0, 0], w1[1, 0, 0, 0] = -32768, 32767            # extremes: pre-shift 4
    w2 = rng.normal(0, 300, size=(13, 14 * 4 * 4, 1, 1)).astype(np.int16)
    layers = [compressed(ConvLayer("c1", w1, rng.integers(-1000, 1000, 14), 12, pad=1), 90), PoolLayer("p1", 2, 2),
              compressed(ConvLayer("fc", w2, rng.integers(-1000, 1000, 13), 10, relu=False, flatten=True), 10)]
    config = EngineConfig(fb_words=4096, wb_depth=64)        # fc's 224-deep dot products stream in chunks
    prog = compile_program(layers, x, config)
    assert [c.w_raw0 for c in prog.commands if c.op.name == "CONV"] == [1, 0]   # c1 raw first group; fc all coded
    dram, snaps = run_engine_amaranth(prog, config, latency=5, jitter=3, gap_prob=0.2, seed=4)
    exp = reference_outputs(layers, x)
    for name in exp:
        assert np.array_equal(prog.read_output(dram, name), exp[name]), name
    last = snaps[-1]
    # decoded: every padded block of the coded groups; c1's first group comes as 27 plain 12-word rows
    convs = [ly for ly in layers if isinstance(ly, ConvLayer)]
    coded_groups = {"c1": wc.n_groups(14) - 1, "fc": wc.n_groups(13)}
    padded = sum(coded_groups[ly.name] * wc.LANES * wc.k_blocks(ly.weight[0].size) * 64 for ly in convs)
    assert last["wdec_weights"] == padded
    assert last["wb_write_words"] == padded + 27 * 12
    assert last["wdec_bits"] == without_first_group(convs[0].wcodec).bits + convs[1].wcodec.bits


def test_compressed_weights_need_a_bank_depth_multiple_of_64():
    rng = np.random.default_rng(0)
    layer = compressed(ConvLayer("c", rng.integers(-99, 99, size=(4, 2, 3, 3)).astype(np.int16), np.zeros(4), 4), 50)
    with pytest.raises(EngineLimitError, match="multiple of 64, got 100"):
        compile_program([layer], np.zeros((2, 5, 5), np.int16), EngineConfig(fb_words=4096, wb_depth=100))
    wrong = replace(layer, wcodec=wc.encode_layer(np.zeros((5, 18), np.int16), 50))
    with pytest.raises(EngineLimitError, match="compressed weights are for 5 x 18, the layer has 4 x 18"):
        compile_program([wrong], np.zeros((2, 5, 5), np.int16), EngineConfig(fb_words=4096, wb_depth=128))
