"""The cost model with JPEG-coded weights (issue #8 item 5): ``weights="jpeg"`` in model.counts / model.api
/ the CLI: compressed DRAM words per layer, the weight decoder's timing against the RTL (pinned counters of
``make sim WEIGHTS_CODEC=jpeg`` and the live JSON when present), energy, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest

from golden.errors import UserError
from golden.splits import layers
from model import counts, system
from model.api import best_split, query
from model.cli import main
from model.counts import (
    DEFAULT_ENGINE,
    analytical_layer_counts,
    compressed_weight_words,
    net_counts,
    rtl_error,
    rtl_error_auto,
    rtl_json_paths,
    weight_table,
)
from tests.ci import skip_unless_ci

#: the engine before coded layers kept their first group plain (what the pinned RTL rows ran on)


@pytest.fixture(autouse=True)
def _no_accuracy_study(monkeypatch, tmp_path):
    monkeypatch.setattr(system, "ACCURACY_DIR", tmp_path / "no-accuracy")


def _synthetic_row(name: str, o: int, k: int, qf: int) -> dict:
    """A weight-table row with round numbers: stream = a third of the int16 words, 130 table bytes."""
    raw = 2 * o * k
    stream = 2 * (o * k // 3)
    comp = stream + 130 + 52
    return {"name": name, "qf": qf, "O": o, "K": k, "raw_bytes": raw, "stream_bytes": stream, "table_bytes": 130,
            "header_bytes": 52, "compressed_bytes": comp, "ratio": raw / comp}


@pytest.fixture
def wdir(tmp_path):
    """Weight tables for digits (trained layout: chosen QF 5 per layer) and alexnet (untrained: per_qf)."""
    d = tmp_path / "weights"
    d.mkdir()
    for net, trained in (("digits", True), ("alexnet", False)):
        per_qf, chosen = {}, []
        for la in layers(net):
            if la.type not in ("conv", "linear"):
                continue
            o, k = la.out_shape[0], _k(la)
            per_qf[la.name] = {str(q): _synthetic_row(la.name, o, k, q) for q in (5, 50)}
            chosen.append(_synthetic_row(la.name, o, k, 5))
        doc = {"schema_version": 1, "net": net, "trained": trained, "per_qf": per_qf}
        if trained:
            doc["layers"] = chosen
        (d / f"{net}.json").write_text(json.dumps(doc))
    return d


def _k(la) -> int:
    return math.prod(la.in_shape) if la.type == "linear" else la.weights // la.out_shape[0]


@pytest.mark.parametrize("net", ["digits", "alexnet"])
def test_compressed_dram_words_per_layer_follow_the_formula(net, wdir):
    """Per coded layer and CONV command: int16 weight rows out; tables ceil((entries + 24 lane entries) / 4)
    + lane streams ceil((words + 12 x 5.5 mean lane padding) / 12) beats + 3 bias beats per group in (first
    group plain where the engine keeps it so)."""
    plain = {lc.layer: lc for lc in analytical_layer_counts(net)}
    coded = {lc.layer: lc for lc in analytical_layer_counts(net, weights="jpeg", weights_dir=wdir)}
    table = weight_table(net, directory=wdir)
    checked = 0
    for la in layers(net):
        if la.name not in table:
            assert coded[la.name].dram_read_words == plain[la.name].dram_read_words
            continue
        lw, k = table[la.name], _k(la)
        g12 = -(-la.out_shape[0] // 12)
        raw0 = la.type == "conv" and math.prod(la.out_shape[1:]) > 1 and la.out_shape[0] > 12
        assert lw.table_entries == 132 and lw.stream_words == la.out_shape[0] * k // 3
        sw = round(lw.stream_words * (g12 - 1) / g12) if raw0 else lw.stream_words
        per_cmd = compressed_weight_words(sw, 132, g12 - raw0) + raw0 * (k + 3) * 12
        assert per_cmd == 12 * (39 + -(-(sw + 66) // 12) + 3 * (g12 - raw0)) + raw0 * (k + 3) * 12
        bands = plain[la.name].bands
        expect = plain[la.name].dram_read_words - bands * g12 * (k + 3) * 12 + bands * per_cmd
        assert coded[la.name].dram_read_words == expect, la.name
        padded = (g12 - raw0) * 12 * -(-k // 64) * 64 * bands
        assert coded[la.name].wdec_weights == padded
        assert coded[la.name].wb_write_words == padded + raw0 * bands * k * 12
        checked += 1
    assert checked == {"digits": 6, "alexnet": 8}[net]


# pinned: AlexNet, synthetic table (a third of the words, QF 50), edge layers' DRAM read words
PINNED_ALEXNET_DRAM = {"features.0": 194_964,  # (7 Dec: conv1 in double-buffered bands)
                       "features.3": 116_352, "features.6": 236_736,
                       "features.8": 324_348, "features.10": 216_684, "classifier.1": 12_595_800,
                       "classifier.4": 5_605_296, "classifier.6": 1_368_936}


def test_pinned_alexnet_compressed_dram_words(wdir):
    coded = {lc.layer: lc for lc in analytical_layer_counts("alexnet", weights="jpeg", weights_dir=wdir)}
    got = {k: round(coded[k].dram_read_words) for k in PINNED_ALEXNET_DRAM}
    assert got == PINNED_ALEXNET_DRAM


def test_trained_table_uses_the_chosen_qf_and_weights_qf_overrides(wdir):
    assert {lw.qf for lw in weight_table("digits", directory=wdir).values()} == {5}
    assert {lw.qf for lw in weight_table("digits", 50, directory=wdir).values()} == {50}
    assert {lw.qf for lw in weight_table("alexnet", directory=wdir).values()} == {50}   # untrained: default 50
    with pytest.raises(UserError, match=r"weight QF 75 is not in .* allowed: 5, 50$"):
        weight_table("alexnet", 75, directory=wdir)


def test_jpeg_weights_cut_edge_only_alexnet_energy(wdir):
    """FC weights dominate edge-only AlexNet's DRAM energy: coded, it falls; the twelve lane decoders feed
    the FC layers a row per cycle (uncompressed they wait for DRAM, 8 words per cycle), so the frame rate
    rises too."""
    kw = {"counts_source": "analytical", "weights_dir": wdir}
    a = query("alexnet", "fc8", "none", **kw)
    b = query("alexnet", "fc8", "none", weights="jpeg", **kw)
    assert a.weights == "int16" and b.weights == "jpeg" and set(b.weight_qfs.values()) == {50}
    assert b.energy_per_frame_j < 0.6 * a.energy_per_frame_j
    assert b.breakdown["dram_j"] < 0.4 * a.breakdown["dram_j"]
    assert b.breakdown["weight_decoder_j"] > 0 and a.breakdown["weight_decoder_j"] == 0
    assert sum(b.breakdown.values()) == pytest.approx(b.energy_per_frame_j)
    assert b.fps > 1.2 * a.fps and b.bottleneck == "inference"
    assert b.energy_per_frame_j == pytest.approx(0.0096483, rel=1e-4)   # (7 Dec: conv1's bands, hw.plan)
    assert b.fps == pytest.approx(20.2448, rel=1e-4)
    # nothing on the edge, nothing changes
    assert query("alexnet", "input", "jpeg", weights="jpeg", **kw).energy_per_frame_j == \
        pytest.approx(query("alexnet", "input", "jpeg", **kw).energy_per_frame_j)
    best = best_split("alexnet", "2mbps", weights="jpeg", **kw)
    assert best.weights == "jpeg" and best.edge_only.split == "fc8" and best.to_dict()["weights"] == "jpeg"


def test_real_alexnet_table_when_present():
    """``edgesplit weights --net alexnet``'s table (QF 50) gives the same stream as make sim's run."""
    try:
        table = weight_table("alexnet")
    except UserError:
        skip_unless_ci("build/weights/alexnet.json absent (edgesplit weights --net alexnet)")
    for name, sw, comp in PINNED_STREAMS:
        assert (table[name].stream_words, table[name].compressed_bytes) == (sw, comp)
    a = query("alexnet", "fc8", "none", counts_source="analytical")
    b = query("alexnet", "fc8", "none", counts_source="analytical", weights="jpeg")
    assert b.energy_per_frame_j < a.energy_per_frame_j


# `make sim SPLIT=fc8 WEIGHTS_CODEC=jpeg` (AlexNet, QF 50, twelve lane decoders; conv layers and pools) and
# `make sim NET=digits WEIGHTS_CODEC=jpeg WEIGHTS_QF=5`; weights: (QF, stream words, compressed bytes, table
# entries of the CONV command, lane-stream area words)
PINNED_STREAMS = [("features.0", 8141, 16461), ("features.3", 100736, 201659), ("features.6", 215286, 430762),
                  ("features.8", 315560, 631310), ("features.10", 184572, 369335)]
_C = ("cycles", "busy", "macs", "pool_ops", "stall_dram", "fb_read_words", "fb_write_words", "wb_read_words",
      "wb_write_words", "dram_read_words", "dram_write_words", "wdec_weights")
RTL_ROWS = {
    "alexnet": [
        # (conv1 remeasured 7 Dec: three double-buffered bands, hw.plan.plan_bands; the weights fetched per band)
        ("conv1", "features.0", 3, (566790, 551034, 70276800, 0, 15454, 3550336, 353536, 6612408, 82188, 195396,
                                    193600, 69120), (50, 8141, 16461, 153, 6672)),
        ("conv1.pool", "features.2", 1, (59440, 35136, 0, 419904, 24220, 414720, 240256, 0, 0, 193708, 0, 0), None),
        ("conv2", "features.3", 1, (1564093, 1561600, 223948800, 0, 2422, 6340608, 139968, 18739200, 307200, 114852,
                                    0, 288000), (50, 100736, 201659, 161, 94512)),
        ("conv2.pool", "features.5", 1, (25978, 25920, 0, 292032, 0, 340992, 32448, 0, 0, 72, 0, 0), None),
        ("conv3", "features.6", 1, (832125, 829440, 112140288, 0, 2614, 7274496, 64896, 9953280, 663552, 231072, 0,
                                    642816), (50, 215286, 430762, 164, 208620)),
        ("conv4", "features.8", 1, (1145757, 1140480, 149520384, 0, 5206, 10002432, 43264, 13685760, 912384, 343680,
                                    0, 870912), (50, 315560, 631310, 164, 300852)),
        ("conv5", "features.10", 1, (763868, 760320, 99680256, 0, 3478, 6668288, 43264, 9123840, 608256, 204984, 0,
                                     580608), (50, 184572, 369335, 165, 175968)),
        ("conv5.pool", "features.12", 1, (6969, 6912, 0, 82944, 0, 73728, 9216, 0, 0, 72, 0, 0), None),
    ],
    "digits": [   # small layers: the tables and the first block rows are exposed
        ("conv1", "features.0", 1, (1307, 1100, 102400, 0, 111, 4736, 4352, 13200, 1068, 1324, 0, 768),
         (5, 163, 499, 147, 144)),
        ("conv2", "features.3", 1, (2036, 1728, 221184, 0, 237, 15360, 1536, 20736, 4032, 2664, 0, 2304),
         (5, 514, 1211, 157, 312)),
        ("conv3", "features.6", 1, (2318, 1728, 138240, 0, 516, 15360, 640, 20736, 11808, 3996, 0, 9216),
         (5, 939, 2064, 160, 708)),
        ("conv4", "features.8", 1, (2813, 2160, 184320, 0, 580, 19200, 512, 25920, 13536, 5832, 0, 9216),
         (5, 1159, 2504, 160, 852)),
        ("fc5", "classifier.0", 1, (1433, 768, 8192, 0, 564, 12288, 192, 9216, 9216, 1976, 0, 9216),
         (5, 1011, 2204, 156, 1056)),
        ("fc6", "classifier.2", 1, (617, 64, 640, 0, 457, 1024, 74, 768, 768, 892, 0, 768), (5, 136, 438, 140, 264)),
    ],
}
#: analytical vs RTL cycles: what the model achieves on the pinned runs
CYCLE_TOL = {"alexnet": 0.001, "digits": 0.03}


def _pinned_json(tmp_path, net: str):
    rows = []
    for name, module, bands, ctr, w in RTL_ROWS[net]:
        row = {"name": name, "module": module, "bands": bands, "counters": dict(zip(_C, ctr, strict=True))}
        if w:
            row["weights"] = {"qf": w[0], "stream_words": w[1], "compressed_bytes": w[2], "table_entries": w[3],
                              "area_words": w[4]}
        rows.append(row)
    p = tmp_path / f"{net}_wjpeg.json"
    p.write_text(json.dumps({"net": net, "weights_codec": {"codec": "jpeg"}, "dram_bytes_per_cycle": 16.0,
                             "engine": {"fb_words": 2**18, "wb_depth": 4608}, "layers": rows}))
    return p


@pytest.mark.parametrize("net", ["alexnet", "digits"])
def test_decoder_model_matches_pinned_rtl(net, tmp_path, wdir):
    p = _pinned_json(tmp_path, net)
    errs = rtl_error(net, p, weights="jpeg")
    assert len(errs) == len(RTL_ROWS[net])
    for e in errs:
        assert abs(e.cycle_error) <= CYCLE_TOL[net], (e.name, e.cycle_error)
        for key in ("dram_read_words", "wdec_weights", "wb_write_words", "busy"):
            r, m = e.counters[key]
            assert m == pytest.approx(r, rel=1e-9, abs=0.5), (e.name, key, r, m)
    assert len(net_counts(net, rtl_path=p, weights="jpeg", weights_dir=wdir).rtl_layers) == len(RTL_ROWS[net])


def test_runs_of_the_single_decoder_engine_are_not_used(tmp_path, wdir):
    """A JSON from the engine before the lane decoders (its weight rows have no table_entries) is ignored."""
    p = _pinned_json(tmp_path, "alexnet")
    doc = json.loads(p.read_text())
    for row in doc["layers"]:
        if "weights" in row:
            del row["weights"]["table_entries"], row["weights"]["area_words"]
    p.write_text(json.dumps(doc))
    assert rtl_error("alexnet", p, weights="jpeg") == []
    assert net_counts("alexnet", rtl_path=p, weights="jpeg", weights_dir=wdir).rtl_layers == ()


def test_raw_first_group_hides_the_decoder_on_alexnet_convs(tmp_path):
    """With w_raw0 the conv layers cost about their int16 cycles (group 2's decode hides behind group 1)."""
    p = _pinned_json(tmp_path, "alexnet")
    wc = tuple(sorted((m, w[1], w[3] - 24, w[0], w[4]) for _, m, _, _, w in RTL_ROWS["alexnet"] if w))
    plain = {lc.layer: lc for lc in counts._analytical("alexnet", DEFAULT_ENGINE)}
    raw0 = {lc.layer: lc for lc in counts._analytical("alexnet", DEFAULT_ENGINE, wc)}
    for name, *_ in wc:
        assert raw0[name].cycles == pytest.approx(plain[name].cycles, rel=0.001), name
        share = 0.9 if name == "features.0" else 0.6     # conv1's DRAM reads are mostly its input bands
        assert raw0[name].dram_read_words < share * plain[name].dram_read_words
    assert p.exists()


def test_live_rtl_json_when_present():
    """Against whatever `make sim WEIGHTS_CODEC=jpeg` wrote here (skipped when it has not run)."""
    paths = rtl_json_paths("alexnet", weights="jpeg")
    if not paths:
        skip_unless_ci("build/sim/alexnet_wjpeg.json absent (make sim WEIGHTS_CODEC=jpeg)")
    errs, _stale = rtl_error_auto("alexnet", weights="jpeg")
    assert errs
    bad = [(e.name, f"{e.cycle_error:+.2%}") for e in errs if abs(e.cycle_error) > 0.02]
    assert not bad, f"analytical cycles off by more than 2%: {bad}"


def test_int16_counts_never_read_a_compressed_or_encoding_run(tmp_path):
    for stem in ("alexnet", "alexnet_fc8", "alexnet_wjpeg", "alexnet_fc8_wjpeg"):
        (tmp_path / f"{stem}.json").write_text("{}")
    assert {p.stem for p in rtl_json_paths("alexnet", tmp_path)} == {"alexnet", "alexnet_fc8"}
    assert {p.stem for p in rtl_json_paths("alexnet", tmp_path, "jpeg")} == {"alexnet_wjpeg", "alexnet_fc8_wjpeg"}
    p = _pinned_json(tmp_path, "alexnet")
    assert counts.rtl_layer_counts("alexnet", p) == {}       # int16 does not take a weights_codec run
    data = json.loads(p.read_text())
    data.pop("weights_codec")
    data["encode"] = {"mode": "lossless"}
    q = tmp_path / "alexnet_lossless.json"
    q.write_text(json.dumps(data))
    assert counts.rtl_layer_counts("alexnet", q) == {}       # nor a run whose layers waited for the encoder


@pytest.mark.parametrize("kw,needle", [
    ({"weights": "png"}, "unknown weights format 'png'; allowed: int16, jpeg"),
    ({"weights": "jpeg", "weights_qf": 0}, "weight QF 0 is outside the allowed range 1..100"),
    ({"weights_qf": 50}, "weight QF 50 applies only to weights=jpeg"),
])
def test_bad_weights_arguments_are_one_line_errors(kw, needle):
    with pytest.raises(UserError) as ei:
        query("alexnet", "fc8", counts_source="analytical", **kw)
    msg = str(ei.value)
    assert needle in msg and "\n" not in msg


def test_missing_weight_table_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"no weight table .*resnet50.json .*edgesplit weights --net resnet50"):
        query("resnet50", "fc", weights="jpeg", counts_source="analytical", weights_dir=tmp_path)


def test_tech_file_without_weight_decoder(tmp_path, wdir):
    import yaml

    from hw.tech import DEFAULT_TECH, check_tech, load_tech

    assert load_tech().e("weight_decoder") == pytest.approx(18.5e-12)
    doc = yaml.safe_load(DEFAULT_TECH.read_text())
    doc["energy"]["weight_decoder"]["value"] = -1
    with pytest.raises(UserError, match="energy.weight_decoder.value: -1 must be >= 0"):
        check_tech(doc, "t.yaml")
    del doc["energy"]["weight_decoder"]
    p = tmp_path / "old.yaml"
    p.write_text(yaml.safe_dump(doc))
    assert "weight_decoder" not in load_tech(p).energy                   # optional: int16 queries work
    query("alexnet", "fc8", tech=p, counts_source="analytical")
    with pytest.raises(UserError, match="energy.weight_decoder: missing"):
        query("alexnet", "fc8", tech=p, counts_source="analytical", weights="jpeg", weights_dir=wdir)


def test_cli_weights_flag(capsys, monkeypatch, wdir):
    monkeypatch.setattr(counts, "WEIGHTS_DIR", wdir)
    rc = main(["query", "--net", "alexnet", "--split", "fc8", "--weights", "jpeg", "--counts", "analytical",
               "--json"])
    out, err = capsys.readouterr()
    d = json.loads(out)
    assert rc == 0 and d["weights"] == "jpeg" and d["provenance"]["weights"] == "jpeg"
    assert d["breakdown"]["weight_decoder_j"] > 0
    for argv in (["query", "--net", "alexnet", "--split", "fc8", "--weights", "png"],
                 ["best", "--net", "alexnet", "--weights", "jpeg", "--weights-qf", "101"],
                 ["sweep", "--net", "alexnet", "--weights-qf", "30"]):
        rc = main(argv)
        out, err = capsys.readouterr()
        assert rc == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and "weight" in err, err
