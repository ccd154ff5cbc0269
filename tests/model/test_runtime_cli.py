"""``edgesplit host``, ``edge``, ``runtime-report`` (model.cli_runtime): runs and one-line errors."""

import json

import pytest

from model.cli import main

pytestmark = pytest.mark.xdist_group("runtime")


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("argv, words", [
    (["edge", "--connect", "nowhere", "--net", "digits", "--split", "conv2"], "HOST:PORT"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--policy", "greedy"], "unknown policy"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--split", "conv2", "--qf", "101"], "--qf"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--trace", "nope.csv"], "cannot be read"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--codec", "jpeg"], "--codec applies"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--edge", "rtl"], "--edge rtl"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--frames", "0"], "--frames"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--clock", "fast"], "unknown clock"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--budget", "2"], "--budget"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--host-speedup", "10"], "--clock simulated"),
    (["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--split", "conv2", "--out", "x.txt"], "extension"),
    (["host", "--listen", "127.0.0.1"], "HOST:PORT"),
    (["host", "--listen", "127.0.0.1:0", "--server", "forks"], "unknown server"),
    (["host", "--listen", "127.0.0.1:0", "--precision", "int8"], "precision"),
    (["runtime-report", "missing.json"], "cannot be read"),
])
def test_bad_values_are_one_line(capsys, argv, words):
    assert words in _err(capsys, argv)


def test_unknown_split_and_unreachable_host(capsys):
    assert "unknown split" in _err(capsys, ["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--split",
                                            "conv9", "--images", "2", "--quiet"])
    err = _err(capsys, ["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--split", "conv2", "--images", "2",
                        "--reconnect-timeout", "0.3", "--quiet"])
    assert "cannot reach the host" in err


def test_host_command_listens_and_stops(capsys):
    assert main(["host", "--listen", "127.0.0.1:0", "--duration", "0.3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "listening on 127.0.0.1:" in out and "served 0 connection(s)" in out


def test_edge_inline_json_and_report(tmp_path, capsys):
    run = tmp_path / "run.json"
    argv = ["edge", "--connect", "inline", "--net", "digits", "--policy", "dynamic", "--frames", "30", "--images",
            "4", "--trace", "step", "--clock", "simulated", "--baselines", "--json", "--out", str(run), "--quiet"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["policy"] == "dynamic" and doc["answered"] == 30 and doc["unique_answers"] == 30
    assert [b["policy"] for b in doc["baselines"]] == ["edge-only", "host-only", "best-static", "oracle"]
    assert "per_frame" not in doc and "lossless only" in doc["accuracy_note"]
    trials = doc["baselines"][2]["best_static_trials"]
    assert len(trials) == 3 and list(doc["baselines"][2]["splits_used"])[0] in {t["candidate"] for t in trials}
    png = tmp_path / "run.png"
    assert main(["runtime-report", str(run), "-o", str(png)]) == 0
    out = capsys.readouterr().out
    assert png.stat().st_size > 1000 and "dynamic vs best-static" in out and "oracle" in out


def test_static_run_compares_with_the_cost_model(capsys):
    argv = ["edge", "--connect", "inline", "--net", "digits", "--split", "conv3", "--frames", "12", "--images", "4",
            "--trace", "const_1mbps", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cost model at this split/codec/QF/rate" in out and "measured/model" in out
    assert "12 of 12 frames, each once" in out
