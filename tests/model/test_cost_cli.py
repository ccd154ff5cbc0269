"""``edgesplit query / sweep / best`` (model/cli_cost.py): JSON keys, text output, plots, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from model import system
from model.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_accuracy_study(monkeypatch, tmp_path):
    monkeypatch.setattr(system, "ACCURACY_DIR", tmp_path / "no-accuracy")


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_query_json_keys(capsys):
    rc, out, err = run(capsys, "query", "--net", "alexnet", "--split", "conv5", "--encoding", "jpeg",
                       "--link", "2mbps", "--json")
    assert rc == 0 and err == ""
    d = json.loads(out)
    for k in ("fps", "energy_per_frame_j", "breakdown", "bottleneck", "feature_bytes", "provenance"):
        assert k in d
    assert set(d["breakdown"]) == set(system.BREAKDOWN_KEYS)
    assert d["feature_bytes"] == 18432 and d["bottleneck"] == "inference"


def test_query_text_and_custom_link(capsys):
    rc, out, _ = run(capsys, "query", "--net", "alexnet", "--split", "fc6", "--link", "5e6:0.2", "--counts",
                     "analytical")
    assert rc == 0 and "fps" in out and "provenance: counts analytical" in out and "200 mW" in out


def test_best_json_keys(capsys):
    rc, out, _ = run(capsys, "best", "--net", "alexnet", "--link", "2mbps", "--objective", "energy", "--json")
    assert rc == 0
    d = json.loads(out)
    for k in ("split", "fps", "energy_per_frame_j", "edge_only", "host_only"):
        assert k in d
    for base in ("edge_only", "host_only"):
        for k in ("split", "fps", "energy_per_frame_j", "energy_gain", "throughput_gain"):
            assert k in d[base]
    assert d["split"] == "conv5" and d["edge_only"]["split"] == "fc8" and d["host_only"]["split"] == "input"


def test_best_text_with_encoding(capsys):
    rc, out, _ = run(capsys, "best", "--net", "alexnet", "--link", "22mbps", "--encoding", "none",
                     "--objective", "throughput")
    assert rc == 0 and "best: conv2 (none)" in out and "edge-only" in out and "host-only" in out


def test_sweep_json_and_plot(capsys, tmp_path):
    png = tmp_path / "sweep.png"
    rc, out, _ = run(capsys, "sweep", "--net", "alexnet", "--link", "2mbps", "--link", "22mbps", "--encoding",
                     "jpeg", "--json", "--plot", str(png))
    assert rc == 0
    rows = json.loads(out)
    assert len(rows) == 2 * 9 and {r["link"] for r in rows} == {"2mbps", "22mbps"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_plot(capsys, tmp_path):
    png = tmp_path / "best.png"
    rc, out, _ = run(capsys, "best", "--net", "alexnet", "--link", "2mbps", "--plot", str(png))
    assert rc == 0 and png.stat().st_size > 1000


@pytest.mark.parametrize("argv,needle", [
    (["query", "--net", "lenet", "--split", "conv5"], "unknown network 'lenet'; allowed: alexnet"),
    (["query", "--net", "alexnet", "--split", "pool9"], "unknown split 'pool9' for network alexnet; allowed:"),
    (["query", "--net", "alexnet", "--split", "conv5", "--link", "3mbps"], "unknown link '3mbps'; allowed: 1mbps"),
    (["query", "--net", "alexnet", "--split", "conv5", "--encoding", "png"], "unknown encoding 'png'; allowed:"),
    (["query", "--net", "alexnet", "--split", "conv5", "--encoding", "jpeg", "--qf", "0"], "QF '0' is outside"),
    (["query", "--net", "alexnet", "--split", "conv5", "--encoding", "jpeg", "--qf", "101"], "QF '101' is outside"),
    (["query", "--net", "alexnet", "--split", "conv5", "--link=-2e6:0.1"], "rate -2e+06 bit/s must be a positive"),
    (["query", "--net", "alexnet", "--split", "conv5", "--link", "2e6:-0.1"], "power -0.1 W must be a number >= 0"),
    (["sweep", "--net", "alexnet", "--encoding", "rle"], "unknown encoding 'rle'"),
    (["best", "--net", "alexnet", "--objective", "speed"], "unknown objective 'speed'; allowed: energy, throughput"),
    (["best", "--net", "vgg19", "--link", "2mbps"], "unknown network 'vgg19'"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_malformed_tech_file(capsys, tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("schema_version: 1\nname: x\nclock: {frequency_hz: {value: fast}}\n")
    rc, _, err = run(capsys, "query", "--net", "alexnet", "--split", "conv5", "--tech", str(bad))
    assert rc == 2 and "technology file" in err and "clock.frequency_hz" in err and err.count("\n") == 1


def test_parser_encodings_match_the_model():
    from model import cli_cost

    assert cli_cost.ENCODINGS == system.ENCODINGS


def test_console_script_exit_status():
    p = subprocess.run([sys.executable, "-m", "model.cli", "query", "--net", "alexnet", "--split", "conv5",
                        "--encoding", "lzw"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1
