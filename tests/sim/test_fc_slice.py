"""FC layers simulated as two slices and extrapolated per weight group (``sim.fc_slice``; ``make sim``'s FC layers of
more than ``sim.run.FC_SLICE_WORDS`` weights): the extrapolated counters equal those of the whole layer simulated
whole, and the cost model's whole layer equals them in DRAM words exactly (issue 16)."""

import json

import numpy as np
import pytest

from sim import fc_slice

# a small CNN whose first FC layer has 13 weight groups (149 = 12 x 12 + 5 output channels, K = 8 x 7 x 7 = 392):
# sliced when FC_SLICE_WORDS is below its 58,408 weights
TINY = '''
import torch
from torch import nn


def factory():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(392, 149), nn.ReLU(),
                         nn.Linear(149, 10)).eval()
'''
FC = "4"   # the sliced layer's module name


def test_slice_channels_keep_the_last_group_width():
    assert fc_slice.slice_channels(4096, 12) == (112, 40)    # 342 groups, the last of 4 channels
    assert fc_slice.slice_channels(1000, 12) == (112, 40)    # 84
    assert fc_slice.slice_channels(1200, 12) == (120, 48)    # 100 whole groups
    assert fc_slice.slice_channels(149, 12) == (125, 53)     # 13 groups: 11 and 5, the whole layer two more
    assert fc_slice.slice_channels(4096, 16) == (160, 64)
    assert fc_slice.slice_groups(13) == (11, 5) and fc_slice.slice_groups(342) == (10, 4)


def test_extrapolate_per_group_and_dram_words_checked():
    a = {"cycles": 1000, "dram_read_words": 500 + 11 * 40, "macs": 125}
    b = {"cycles": 406, "dram_read_words": 500 + 5 * 40, "macs": 53}
    got = fc_slice.extrapolate(a, b, 13, {"dram_read_words": (440, 200, 13 * 40 + 7)})
    assert got == {"cycles": 1000 + 2 * 99, "dram_read_words": 500 + 13 * 40 + 7, "macs": 149}
    with pytest.raises(ValueError, match="dram_read_words less the commands' amounts differ"):
        fc_slice.extrapolate(a, {**b, "dram_read_words": 701}, 13, {"dram_read_words": (440, 200, 520)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny network simulated with its FC layer whole and (FC_SLICE_WORDS lowered) as two slices, int16 and
    coded weights (QF 50); each result also written as make sim writes it."""
    from golden.network import load_network
    from sim import run

    d = tmp_path_factory.mktemp("fcslice")
    (d / "tiny.py").write_text(TINY)
    nw = load_network(f"{d / 'tiny.py'}:factory", input_shape="3,16,16")
    out = {}
    saved = run.FC_SLICE_WORDS
    try:
        for key, words, codec in (("whole", saved, None), ("sliced", 50_000, None),
                                  ("whole_w", saved, "jpeg"), ("sliced_w", 50_000, "jpeg")):
            run.FC_SLICE_WORDS = words
            res = run.simulate(nw, None, weights_codec=codec, weights_qf=50 if codec else None)
            path = d / f"{key}.json"
            path.write_text(json.dumps(res))
            out[key] = (res, path)
    finally:
        run.FC_SLICE_WORDS = saved
    return nw, out


def _row(res, module):
    return next(r for r in res["layers"] if r["module"] == module)


def test_extrapolated_equals_the_whole_layer(runs):
    """int16 weights: every counter of the sliced layer as extrapolated equals the whole layer's simulated whole
    (cycles included), both slices bit-exact; the JSON says how it was extrapolated."""
    _, out = runs
    whole, sliced = _row(out["whole"][0], FC), _row(out["sliced"][0], FC)
    assert "extrapolated_from_slices" not in whole
    ex = sliced["extrapolated_from_slices"]
    assert ex["simulated_output_channels"] == [125, 53] and ex["weight_groups"] == [11, 5]
    assert ex["whole_weight_groups"] == 13 and ex["weight_words"] == {"A": 11 * 395 * 12, "B": 5 * 395 * 12,
                                                                      "whole": 13 * 395 * 12}
    assert sliced["bit_exact"] and sliced["macs"] == whole["macs"] == 149 * 392
    assert sliced["counters"] == whole["counters"]


def test_cost_model_equals_the_extrapolated_words(runs):
    """The cost model's whole layer (model.counts.rtl_error) against the extrapolated run: every compared counter
    but cycles equal, DRAM words included; cycles within 0.1%."""
    from model.counts import rtl_error, rtl_layer_counts

    nw, out = runs
    for key in ("sliced", "whole"):
        errs = {e.layer: e for e in rtl_error(nw, out[key][1])}
        e = errs[FC]
        assert abs(e.cycle_error) < 0.001, (key, e.cycle_error)
        for f, (rtl, model) in e.counters.items():
            assert f == "cycles" or rtl == model, (key, f, rtl, model)
    assert rtl_layer_counts(nw, out["sliced"][1])[FC].scale == 13 / 11
    assert FC not in rtl_layer_counts(nw, out["sliced"][1], include_scaled=False)


def test_coded_weights_dram_words_exact(runs):
    """Coded weights (each group's lane streams of their own length): the DRAM read words as accounted (the slices'
    fixed part plus the whole layer's tables, stream area and bias beats) and the decoders' stream bits equal the
    whole layer's simulated whole, and the cost model's DRAM words; the row records the whole layer's streams. The
    cycles, extrapolated from six groups' decoding, within 0.5% of the whole layer's (measured equal)."""
    from model.counts import rtl_error

    nw, out = runs
    whole, sliced = _row(out["whole_w"][0], FC), _row(out["sliced_w"][0], FC)
    assert sliced["bit_exact"]
    assert sliced["weights"] == whole["weights"]
    assert sliced["counters"]["dram_read_words"] == whole["counters"]["dram_read_words"]
    same = ("macs", "busy", "fb_read_words", "fb_write_words", "wb_read_words", "wb_write_words", "wdec_weights",
            "wdec_bits")
    assert {f: sliced["counters"][f] for f in same} == {f: whole["counters"][f] for f in same}
    assert abs(sliced["cycles"] - whole["cycles"]) / whole["cycles"] < 0.005, (sliced["cycles"], whole["cycles"])
    e = next(e for e in rtl_error(nw, out["sliced_w"][1], weights="jpeg") if e.layer == FC)
    assert e.counters["dram_read_words"][0] == e.counters["dram_read_words"][1]
    assert np.isfinite(e.cycle_error)
