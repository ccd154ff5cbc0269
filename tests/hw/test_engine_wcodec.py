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


def test_lanes_of_unequal_length_through_chunks_and_hostile_dram():
    """Twelve decoders, one per lane: lanes whose streams differ 30-fold in length (channels of noise at
    QF 100 beside all-zero and near-constant channels), a fully-connected layer whose 5 K-blocks fill the
    128-row banks in chunks of 2, 2 and 1 block rows, 3 groups (the last with 2 real channels), and a conv
    layer with its raw first group; long DRAM latency with jitter and refusals. Outputs bit-exact; each
    lane's decoded weights and bits add up."""
    rng = np.random.default_rng(11)
    x = rng.integers(-2000, 2000, size=(4, 8, 8)).astype(np.int16)
    w1 = rng.integers(-20000, 20000, size=(26, 4, 3, 3)).astype(np.int16)
    w1[1::3] = 0                                               # lanes 1, 4, 7, 10: zero channels
    w2 = np.clip(rng.normal(0, 2000, size=(26, 320, 1, 1)), -32768, 32767).astype(np.int16)
    w2[::2] = 0                                                # even lanes: zero; odd: noise
    w2[3] = 1500                                               # a constant channel (DC only)
    k2 = w2.shape[1]
    assert wc.k_blocks(k2) == 5
    # c1 (26 ch, 8x8) -> pool (4x4) -> c2 1x1 (20 ch) -> fc over the flattened 20 x 4 x 4 = 320
    layers = [compressed(ConvLayer("c1", w1, rng.integers(-500, 500, 26), 13, pad=1), 100), PoolLayer("p1", 2, 2),
              compressed(ConvLayer("c2", rng.integers(-3000, 3000, size=(20, 26, 1, 1)).astype(np.int16),
                                   rng.integers(-500, 500, 20), 12), 60),
              compressed(ConvLayer("fc", w2, rng.integers(-1000, 1000, 26), 11, relu=False,
                                   flatten=True), 100)]
    config = EngineConfig(fb_words=4096, wb_depth=128)
    prog = compile_program(layers, x, config)
    assert [c.w_raw0 for c in prog.commands if c.op.name == "CONV"] == [1, 1, 0]
    fc = layers[-1].wcodec
    lens = [len(lane) for lane in fc.lanes]
    assert max(lens) > 30 * min(lens), lens
    dram, snaps = run_engine_amaranth(prog, config, latency=30, jitter=12, gap_prob=0.3, seed=7)
    exp = reference_outputs(layers, x)
    for name in exp:
        assert np.array_equal(prog.read_output(dram, name), exp[name]), name
    last = snaps[-1]
    convs = [ly for ly in layers if isinstance(ly, ConvLayer)]
    coded = [without_first_group(convs[0].wcodec), without_first_group(convs[1].wcodec), fc]
    assert last["wdec_weights"] == sum(e.n_blocks * 64 for e in coded)
    assert last["wdec_bits"] == sum(e.bits for e in coded)
    assert last["wdec_stall_out"] > 0          # short lanes wait for long ones at each bank


def test_lane_layout_and_its_limit():
    """Lane streams start on 12-word beats in lane order, zeros between them; a lane longer than the
    24-bit length register is refused with a one-line error naming the length."""
    from types import SimpleNamespace

    from sim.program import LANE_WORDS_MAX, lane_layout

    enc = wc.encode_layer(np.random.default_rng(2).integers(-4000, 4000, size=(24, 300)).astype(np.int16), 80)
    starts, lens, area = lane_layout(enc)
    beats = -(-lens // 12)
    assert starts.tolist() == np.concatenate([[0], np.cumsum(beats)[:-1]]).tolist()
    assert area.size == 12 * beats.sum()
    for j in range(12):
        w0 = 12 * starts[j]
        assert np.array_equal(area[w0:w0 + lens[j]], enc.lane_words(j))
        assert not area[w0 + lens[j]:w0 + 12 * beats[j]].any()

    class Long:
        def __len__(self):
            return 2 * (LANE_WORDS_MAX + 1)

    with pytest.raises(EngineLimitError, match=f"a lane stream of {LANE_WORDS_MAX + 1} words exceeds"):
        lane_layout(SimpleNamespace(lanes=[Long()] * 12))
