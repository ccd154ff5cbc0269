"""model.counts: the analytical engine model against the RTL counters, and its building blocks."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from golden.splits import layers, split_names
from model import counts
from model.counts import (
    DEFAULT_ENGINE,
    EngineParams,
    analytical_layer_counts,
    ci_requires_rtl,
    net_counts,
    rtl_error,
    rtl_error_auto,
    rtl_json_path,
    rtl_json_paths,
    step_cycles,
)
from tests.ci import skip_unless_ci

TARGET = 0.05   # issue 6: analytical cycles within 5% of the RTL on every layer it ran

# `make sim` cycles per engine layer at d9dab0d (a segment buffer refilled in the cycle it is released), pinned
# so the comparison runs in every `make test`, with or without a simulation on this machine. ResNet-50: a
# sample of its 72 layers (DAG compiler). PRE: VGG-16's pools on the RTL just before d9dab0d, against the
# model's ``early_release=False`` variant.
ALEXNET_RTL_CYCLES = {   # (7 Dec: conv1 in double-buffered bands, hw.plan.plan_bands; the pool one cycle later)
    "features.0": 566790, "features.2": 59440, "features.3": 1564093, "features.5": 25978,
    "features.6": 832125, "features.8": 1145757, "features.10": 763868, "features.12": 6969,
}
VGG16_SEQUENTIAL = {
    "features.0": 1103679, "features.2": 15442841, "features.4": 773760, "features.5": 6976470,
    "features.7": 13779736, "features.9": 386872, "features.10": 6886845, "features.12": 13730375,
    "features.14": 13730374, "features.16": 195488, "features.17": 6628383, "features.19": 13414955,
    "features.21": 13414954, "features.23": 103886, "features.24": 3388041, "features.26": 3375453,
    "features.28": 3375453, "features.30": 12346,
}
RESNET50_RTL_CYCLES = {
    "conv1": 1044436, "maxpool": 280605, "layer1.0.conv1": 151253, "layer1.0.add": 436312,
    "layer2.0.downsample.0": 1586221, "layer3.1.conv2": 877835, "layer4.0.conv3": 454347, "layer4.0.add": 55423,
    "avgpool": 21091, "fc": 260989,
}
VGG16_RTL_CYCLES = {   # (7 Dec: banded layers in the one planner's bands, double-buffered where it favours them)
    "features.0": 700072, "features.2": 14537784, "features.4": 503357, "features.5": 6703483,
    "features.7": 13779736, "features.9": 253706, "features.10": 6886844, "features.12": 13730375,
    "features.14": 13730374, "features.16": 129085, "features.17": 6628384, "features.19": 13414955,
    "features.21": 13414954, "features.23": 68429, "features.24": 3388041, "features.26": 3375453,
    "features.28": 3375453, "features.30": 12346,
}
# the same layers at d9dab0d, in sequential bands (LOAD, compute, STORE): the plan the compiler still makes for
# linear networks with overlap_dma off
ALEXNET_SEQUENTIAL = {"features.0": 596003, "features.2": 59439}
SEQUENTIAL = EngineParams(overlap_dma=False)
VGG16_POOLS_PRE = {"features.4": 840304, "features.9": 419632, "features.16": 211868, "features.30": 13881}
PRE_RELEASE = EngineParams(early_release=False, overlap_dma=False)
# the ResNet-50 cycles above ran every layer DRAM -> bands -> DRAM, one transfer after the other, its max-pool
# on the max unit, its downsample convs at their stride: the plan the compiler still makes with these four off
# (sim.program.EngineConfig)
SEQUENTIAL_DAG = EngineParams(resident=False, overlap_dma=False, dw_unit=False, subsample=False)


# `make sim` cycles of the networks brought in by the network issue, on the engine with the depthwise unit (and
# its max-pool mode), the background DMA engines, the two-half buffer and the buffer plan of hw.plan.plan_dag:
# resident maps, double-buffered bands, placed and copied concatenations (a sample of layers of each kind)
MOBILENETV2_RTL_CYCLES = {
    "features.0.0": 92920, "features.1.conv.0.0": 110131, "features.2.conv.0.0": 188269,
    "features.2.conv.1.0": 213988, "features.3.conv.1.0": 133410, "features.5.conv.2": 57257,
    "features.8.add": 2146, "features.14.conv.1.0": 18430, "features.17.conv.2": 131133, "avgpool": 5175,
    "classifier.1": 163026,
}
SQUEEZENET_RTL_CYCLES = {
    "features.0": 179783, "features.2": 134128, "features.3.squeeze": 37894, "features.3.expand3x3": 224051,
    "features.4.expand1x1": 34140, "features.5": 69344, "features.7.expand3x3": 193773, "features.8": 27983,
    "classifier.1": 645980, "classifier.3": 11054,
}
# (the 55 x 55 fire modules' concatenations, larger than the buffer, cost 0 cycles: their expand layers stream
# their outputs into the concatenation's DRAM region in double-buffered bands, hw.plan.plan_dag)
SQUEEZENET_FREE_CONCATS = ("features.3.concat", "features.4.concat", "features.7.concat")
# (layer1.0.add and layer2.0.downsample.0 remeasured 7 Dec: double-buffered add bands, the subsampled 1x1 conv)
RESNET18_RTL_CYCLES = {
    "maxpool": 137790, "layer1.0.conv1": 926652, "layer1.0.add": 77300, "layer2.0.downsample.0": 74885,
    "layer3.1.conv2": 865244, "layer4.1.conv2": 997725, "avgpool": 2103, "fc": 65490,
}


@pytest.mark.parametrize("net,pinned,eng", [
    ("mobilenetv2", MOBILENETV2_RTL_CYCLES, DEFAULT_ENGINE),
    ("squeezenet1_1", SQUEEZENET_RTL_CYCLES, DEFAULT_ENGINE),
    ("resnet18", RESNET18_RTL_CYCLES, DEFAULT_ENGINE),
    ("alexnet", ALEXNET_RTL_CYCLES, DEFAULT_ENGINE),
    ("alexnet", ALEXNET_SEQUENTIAL, SEQUENTIAL),
    ("vgg16", VGG16_RTL_CYCLES, DEFAULT_ENGINE),
    ("vgg16", VGG16_SEQUENTIAL, SEQUENTIAL),
    ("resnet50", RESNET50_RTL_CYCLES, SEQUENTIAL_DAG),
    ("vgg16", VGG16_POOLS_PRE, PRE_RELEASE),
])
def test_analytical_matches_pinned_rtl_cycles(net, pinned, eng):
    model = {lc.layer: lc for lc in analytical_layer_counts(net, eng)}
    for name, rtl in pinned.items():
        lc = model[name]
        m = lc.cycles + (eng.command_cycles if lc.output_resident else 0)   # make sim's nocount output dump
        assert abs(m - rtl) / rtl <= TARGET, (name, m, rtl)
        # what the model achieves today (worst: VGG-16's conv4_3 pool in double-buffered bands, -1.74%, whose
        # transfers and pooling take about the same time per band; ResNet-50's layer4.0.add, 1.71%)
        assert abs(m - rtl) / rtl <= 0.02, (name, m, rtl)


def test_squeezenet_concatenations_are_free():
    model = {lc.layer: lc for lc in analytical_layer_counts("squeezenet1_1")}
    for name in SQUEEZENET_FREE_CONCATS:
        assert model[name].cycles == 0 and model[name].dram_write_words == 0, name
    # the expand layers before the 55 x 55 ones stream from DRAM; those of 27 x 27 and 13 x 13 stay in the buffer
    assert model["features.3.expand3x3"].bands > 1 and model["features.4.expand1x1"].bands > 1
    assert model["features.7.expand3x3"].bands <= 1 and model["features.9.expand3x3"].bands <= 1


# `make sim SPLIT=fc8`: each FC layer run as its own program; those of more than 4 M weights as two slices of 10 and 4
# weight groups (112 and 40 output channels: the last group of 4 channels as the whole layer's), their counters
# extrapolated per weight group to the whole layer (sim.fc_slice). The RTL counters compared with the model
# (model.counts.RTL_COMPARED order: cycles, busy, macs, pool_ops, fb_read_words, fb_write_words, wb_read_words,
# wb_write_words, dram_read_words, dram_write_words, wdec_weights) as `make sim NET=alexnet SPLIT=fc8` and
# `make sim NET=vgg16 SPLIT=fc8 FC_ONLY=1` reported them on 7 Dec; AlexNet's three FC layers simulated whole gave every
# counter the same. (Before, one slice of 120 channels scaled by O / 120: AlexNet fc6 4,921,242 cycles and 38,079,283
# words, VGG-16 fc6 13,558,340 cycles.)
FC_RTL = {
    ("alexnet", "classifier.1"): (4735239, 3151872, 37748736, 0, 50429952, 13312, 37822464, 37822464, 37844100, 0, 0),
    ("alexnet", "classifier.4"): (2107528, 1400832, 16777216, 0, 22413312, 8192, 16809984, 16809984, 16826500, 0, 0),
    ("alexnet", "classifier.6"): (521215, 344064, 4096000, 0, 5505024, 5096, 4128768, 4128768, 4135996, 0, 0),
    # K = 25088: 6 weight chunks per group (fc7 and fc8 count as AlexNet's: the same shapes)
    ("vgg16", "classifier.0"): (13408961, 8580096, 102760448, 0, 137281536, 29184, 102961152, 102961152, 102998660, 0,
                                0),
}


def _fc_json(tmp_path, net: str) -> Path:
    """The pinned FC rows of ``net`` as ``make sim`` writes them (each with its extrapolation record)."""
    rows = []
    for (n, module), ctr in FC_RTL.items():
        if n != net:
            continue
        la = next(x for x in layers(net) if x.name == module)
        g = -(-la.out_shape[0] // 12)
        rows.append({"name": module, "module": module, "macs": la.macs, "bands": 1,
                     "counters": dict(zip(counts.RTL_COMPARED, ctr, strict=True)),
                     "extrapolated_from_slices": {"simulated_output_channels": [112, 40], "weight_groups": [10, 4],
                                                  "whole_weight_groups": g}})
    path = tmp_path / f"{net}_fc8.json"
    path.write_text(json.dumps({"net": net, "split": "fc8", "dram_bytes_per_cycle": 16.0,
                                "engine": {"fb_words": DEFAULT_ENGINE.fb_words, "wb_depth": DEFAULT_ENGINE.wb_depth},
                                "layers": rows}))
    return path


@pytest.mark.parametrize("net", ["alexnet", "vgg16"])
def test_sliced_fc_layers_match_pinned_rtl(net, tmp_path):
    """Issue 16: the cost model's whole FC layer (its own program, as make sim runs it) against the extrapolated RTL
    counts: every compared counter but cycles exactly equal, DRAM words included; cycles within 0.01%."""
    errs = rtl_error(net, _fc_json(tmp_path, net))
    assert len(errs) == sum(1 for n, _ in FC_RTL if n == net)
    for e in errs:
        assert abs(e.cycle_error) <= 1e-4, (e.name, e.cycle_error)
        for f, (rtl, model) in e.counters.items():
            assert f == "cycles" or rtl == model, (e.name, f, rtl, model)
        # in the network the layer's input is resident: no LOAD, a little faster than its own program
        whole = {lc.layer: lc for lc in analytical_layer_counts(net)}[e.layer]
        assert 0.99 * e.rtl_cycles < whole.cycles < e.rtl_cycles
        assert whole.dram_read_words < e.counters["dram_read_words"][0]


def _check_live(net: str) -> None:
    errs, stale = rtl_error_auto(net, target=TARGET)
    assert errs, f"{rtl_json_path(net)} has no layer the model can compare"
    bad = [(e.name, f"{e.cycle_error:+.2%}") for e in errs if abs(e.cycle_error) > TARGET]
    assert not bad, f"analytical cycles off by more than {TARGET:.0%}: {bad}"
    if stale:
        skip_unless_ci(f"{rtl_json_path(net)} was simulated before d9dab0d (early segment release); it matches the "
                    f"model of that engine; rerun make sim NET={net}")


@pytest.mark.parametrize("net", ["alexnet", "vgg16", "resnet50", "mobilenetv2", "squeezenet1_1", "resnet18"])
def test_analytical_vs_rtl_json(net):
    """Against whatever `make sim` wrote on this machine (skipped when it has not run)."""
    if not rtl_json_paths(net):
        # .ci/run simulates every network but VGG-16 (its run does not fit CI's time: README)
        skip_unless_ci(f"{rtl_json_path(net)} absent (run make sim NET={net})", ci_makes_it=net != "vgg16")
    _check_live(net)


@pytest.mark.slow
def test_analytical_vs_rtl_json_ci():
    """CI runs `make sim` before `make test-slow`: there the AlexNet comparison must not be skipped."""
    path = rtl_json_path("alexnet")
    if not rtl_json_paths("alexnet"):
        if ci_requires_rtl():
            pytest.fail(f"CI: {path} is missing; `make sim` must run before the RTL comparison")
        pytest.skip(f"{path} absent (run make sim)")
    _check_live("alexnet")
    for net in ("vgg16", "resnet50", "mobilenetv2", "squeezenet1_1", "resnet18"):
        if rtl_json_paths(net):
            _check_live(net)


def test_tile_walk_matches_rtl_reference():
    from hw.tile_geometry import ref_tile_geometry

    rng = random.Random(0)
    for _ in range(60):
        out_w, out_h = rng.randint(1, 40), rng.randint(1, 12)
        k, s = rng.choice([1, 3, 5, 7, 11]), rng.randint(1, 4)
        pad = rng.randint(0, k - 1)
        m = out_w * out_h
        tiles = counts._tiles(m, out_w, s, k)
        oy, ox, p0 = 0, 0, 0
        for t in tiles:
            ref = ref_tile_geometry(oy, ox, p0, m, out_w, s, k, pad)
            assert t.n == ref["n"]
            assert sum(r for _, r in t.rows) == sum(r for r, p in zip(ref["reads"], ref["present"], strict=False) if p)
            oy, ox, p0 = ref["next_oy"], ref["next_ox"], p0 + ref["n"]
        assert p0 == m


@pytest.mark.parametrize("early", [True, False])
@pytest.mark.parametrize("k,reads", [(1, 1), (1, 2), (3, 1), (3, 2), (3, 3), (3, 4), (5, 2), (11, 4), (2, 5)])
def test_two_buffer_recurrence_steady_state(k, reads, early):
    n = 400
    t = counts._two_buffer_time([(reads, k)] * n, early)
    assert t / n == pytest.approx(step_cycles(k, reads, early), rel=0.02)
    if early and k == 1 and reads == 1:
        assert t / n == pytest.approx(1.0, rel=0.02)   # 1x1 layers: one step per cycle


def test_macs_equal_golden_table():
    for net in ("alexnet", "vgg16", "resnet50", "resnet20"):
        model = {lc.layer: lc for lc in analytical_layer_counts(net)}
        for la in layers(net):
            if la.type in ("conv", "linear", "add", "avgpool"):
                assert model[la.name].macs == pytest.approx(la.macs), (net, la.name)


def test_fc_layers_are_dram_bound():
    model = {lc.layer: lc for lc in analytical_layer_counts("alexnet")}
    for name in ("classifier.1", "classifier.4", "classifier.6"):
        la = next(x for x in layers("alexnet") if x.name == name)
        dram_cycles = la.weights * 2 / DEFAULT_ENGINE.dram_bytes_per_cycle   # K * O * 2 bytes at 16 B/cycle
        # + channel padding to groups of 12 (fc8: 1008 of 1000), bias beats, the first chunk's exposed fetch
        assert model[name].cycles == pytest.approx(dram_cycles, rel=0.03)


def test_bandwidth_changes_dram_bound_layers_only():
    slow = counts.EngineParams(dram_bytes_per_cycle=8.0)
    a = {lc.layer: lc.cycles for lc in analytical_layer_counts("alexnet")}
    b = {lc.layer: lc.cycles for lc in analytical_layer_counts("alexnet", slow)}
    assert b["classifier.1"] == pytest.approx(2 * a["classifier.1"], rel=0.01)
    assert b["features.3"] == pytest.approx(a["features.3"], rel=0.01)   # conv2: compute-bound, resident


def test_net_counts_prefix_sums_and_provenance():
    nc = net_counts("alexnet", source="analytical")
    names = split_names("alexnet")
    cyc = [nc.edge[s]["cycles"] for s in names]
    assert cyc[0] == 0 and all(b >= a for a, b in zip(cyc, cyc[1:], strict=False))
    assert nc.provenance["conv5"] == "analytical" and nc.provenance["input"] == "none"
    assert nc.resident["conv5"] and not nc.resident["input"]
    if rtl_json_paths("alexnet"):
        auto = net_counts("alexnet")
        assert auto.provenance["conv5"] == "rtl" and auto.provenance["fc6"] == "rtl+analytical"
        assert auto.edge["conv5"]["cycles"] == pytest.approx(nc.edge["conv5"]["cycles"], rel=0.001)


def test_every_network_has_counts():
    for net in ("alexnet", "vgg16", "resnet50", "resnet20", "resnet56", "digits"):
        nc = net_counts(net, source="analytical")
        last = split_names(net)[-1]
        assert nc.edge[last]["cycles"] > 0 and nc.edge[last]["macs"] > 0
        util = nc.edge[last]["macs"] / (144 * nc.edge[last]["cycles"])
        assert 0.01 < util <= 1.0, (net, util)


def test_depthwise_unit_schedule_is_the_rtl_reference():
    """The model's schedule of the depthwise unit is the unit's own reference (hw.dw_unit), which its tests
    check cycle for cycle."""
    from hw.dw_unit import ref_dw_cycles

    for c, w, h, s in ((1, 1, 1, 1), (12, 12, 5, 1), (13, 25, 7, 2), (144, 56, 56, 1), (960, 7, 7, 1), (96, 56, 2, 2)):
        assert counts.dw_cycles(c, w, h, s) == ref_dw_cycles(c, w, h, s)


def test_grouped_and_concat_plans_follow_the_compiler():
    """Which layers run on the depthwise unit, the packs of the others and the concatenations that copy:
    the model decides as sim.program does, on every layer of the new networks."""
    import numpy as np

    from golden.network import network
    from sim.program import ConvLayer, EngineConfig, conv_packs, on_dw_unit

    for net in ("mobilenetv2", "squeezenet1_1"):
        nw = network(net)
        for la in nw.layers:
            if la.type not in ("conv", "avgpool2d"):
                continue
            g = counts._geom(la)
            groups = g.groups
            w = np.zeros((la.out_shape[0], la.in_shape[0] // groups, *la.kernel), np.int16)
            cl = ConvLayer(la.name, w, np.zeros(la.out_shape[0]), 0, stride=la.stride[0], pad=la.padding[0],
                           groups=groups)
            assert counts._on_dw_unit(la, g, counts.DEFAULT_ENGINE) == on_dw_unit(cl, EngineConfig()), la.name
            assert counts._packs(g, 12) == [(p.weight.shape[1], p.weight.shape[0]) for _, _, p in conv_packs(cl)]
