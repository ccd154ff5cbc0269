"""The network front end on the command line (issue "Your network"): ``--net PATH.onnx`` and
``--net PATH.py:FACTORY`` for ``splits``, ``query``, ``sweep``, ``best``, ``accuracy``, ``finetune`` and
``weights``; the same small CNN as a Python factory and as its ONNX export gives the same tables and costs;
bad model files fail in one line; caches never mix two networks of the same name."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from golden.network import load_network, network
from model import accuracy as A
from model import api, counts, system
from model.cli import main

torch.set_num_threads(1)

#: a 16-primitive CNN: conv/BN/ReLU, max-pool, a residual block (add), global average pool, flatten, linear
TINY = '''
import torch
from torch import nn

WIDTH = {width}


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + x)


class Tiny(nn.Module):
    def __init__(self, classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, WIDTH, 3, padding=1), nn.BatchNorm2d(WIDTH), nn.ReLU(),
                                  nn.MaxPool2d(2))
        self.block = Block(WIDTH)
        self.down = nn.Sequential(nn.Conv2d(WIDTH, 2 * WIDTH, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * WIDTH, classes)

    def forward(self, x):
        x = self.down(self.block(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def factory():
    torch.manual_seed(0)
    return Tiny().eval()
'''

#: what the .py model and its ONNX export agree on (not the bias counts: the exporter folds the BatchNorms of this
#: freshly initialised model into its convolutions and drops the all-zero biases)
NUMBERS = ("shape", "tensor_shape", "elements", "feature_bytes", "edge_macs", "host_macs", "edge_weights",
           "host_weights")


@pytest.fixture(autouse=True)
def _no_results(monkeypatch, tmp_path):
    """No accuracy study, RTL run or weight table of this checkout leaks in."""
    monkeypatch.setattr(system, "ACCURACY_DIR", tmp_path / "no-accuracy")
    monkeypatch.setattr(counts, "SIM_DIR", tmp_path / "no-sim")
    monkeypatch.setattr(counts, "WEIGHTS_DIR", tmp_path / "no-weights")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """``tiny.py:factory`` (no fixed input shape) and its export ``tiny.onnx`` (torch.export-based exporter)."""
    d = tmp_path_factory.mktemp("models")
    (d / "tiny.py").write_text(TINY.format(width=16))
    py = f"{d / 'tiny.py'}:factory"
    module = load_network(py, input_shape="3,32,32").module()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        torch.onnx.export(module, (torch.zeros(1, 3, 32, 32),), str(d / "tiny.onnx"))
    return {"dir": d, "py": py, "onnx": str(d / "tiny.onnx")}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A labelled tar.gz ``train/<class>/<image>``, ``test/<class>/<image>``: 3 classes of 40x48 RGB images."""
    d = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    path = d / "images.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for split, n in (("train", 4), ("test", 3)):
            for c in ("cat", "dog", "eel"):
                for i in range(n):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"{split}/{c}/{i:03d}.png")
                    info.size = len(buf.getvalue())
                    tf.addfile(info, io.BytesIO(buf.getvalue()))
    return str(path)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *argv: str):
    rc, out, err = run(capsys, *argv)
    assert rc == 0, err
    return json.loads(out)


def _split_tables(models, capsys):
    onnx = cli_json(capsys, "splits", "--net", models["onnx"], "--json")
    py = cli_json(capsys, "splits", "--net", models["py"], "--input-shape", "3,32,32", "--json")
    return onnx, py


# ---- the same network from a .py factory and from ONNX -----------------------------------------------------


def test_splits_of_onnx_and_py_agree(models, capsys):
    onnx, py = _split_tables(models, capsys)
    assert len(onnx) == len(py) == 7 and onnx[0]["name"] == py[0]["name"] == "input"
    assert [[s[k] for k in NUMBERS] for s in onnx] == [[s[k] for k in NUMBERS] for s in py]
    net = load_network(models["py"], input_shape=(3, 32, 32))
    assert py[-1]["name"] == "fc" and py[-1]["host_macs"] == 0
    assert py[-1]["edge_macs"] == sum(la.macs for la in net.layers)
    assert [s["net"] for s in onnx + py] == ["tiny"] * 14
    assert py == json.loads(json.dumps([s.as_dict() for s in net.splits]))   # the table is the Network's
    rc, out, _ = run(capsys, "splits", "--net", models["onnx"])
    assert rc == 0 and out.startswith(f"tiny: source {models['onnx']}, input 3x32x32, ") and " MACs, 7 split" in out


def test_split_names_of_onnx_and_py_agree(models, capsys):
    onnx, py = _split_tables(models, capsys)
    assert [s["name"] for s in onnx] == [s["name"] for s in py]
    assert [s["name"] for s in py] == ["input", "stem.2", "stem", "block", "down", "pool", "fc"]


def _rename(d, names: dict[str, str]):
    """``d`` (a JSON answer) with every ``split`` value mapped through ``names``."""
    if isinstance(d, dict):
        return {k: names.get(v, v) if k == "split" else _rename(v, names) for k, v in d.items()}
    if isinstance(d, list):
        return [_rename(v, names) for v in d]
    return d


def test_best_and_query_agree(models, capsys):
    onnx_splits, py_splits = _split_tables(models, capsys)
    to_py = {a["name"]: b["name"] for a, b in zip(onnx_splits, py_splits, strict=True)}
    assert all(a == b for a, b in to_py.items())  # the same names (test_split_names_of_onnx_and_py_agree)
    b_onnx = cli_json(capsys, "best", "--net", models["onnx"], "--link", "2mbps", "--json")
    b_py = cli_json(capsys, "best", "--net", models["py"], "--input-shape", "3,32,32", "--link", "2mbps", "--json")
    assert _rename(b_onnx, to_py) == b_py     # split, encoding, QF, every number, provenance
    assert b_py["net"] == "tiny" and b_py["encoding"] in ("none", "lossless", "jpeg") and b_py["fps"] > 0
    assert b_py["provenance"]["ratio"] in ("assumed", "none")
    if b_py["provenance"]["ratio"] == "assumed":
        assert "default rule" in b_py["provenance"]["ratio_note"] and "no entry" in b_py["provenance"]["ratio_note"]
    # the Python API on the loaded Network gives the same answer
    assert json.loads(api.dumps(api.best_split(load_network(models["onnx"]), "2mbps"))) == b_onnx
    for k in (1, 3, 5):
        q_onnx = cli_json(capsys, "query", "--net", models["onnx"], "--split", onnx_splits[k]["name"], "--encoding",
                          "jpeg", "--link", "2mbps", "--json")
        q_py = cli_json(capsys, "query", "--net", models["py"], "--input-shape", "3,32,32", "--split",
                        py_splits[k]["name"], "--encoding", "jpeg", "--link", "2mbps", "--json")
        assert _rename(q_onnx, to_py) == q_py and q_py["edge_macs"] == py_splits[k]["edge_macs"]
        assert q_py["provenance"]["ratio"] == "assumed" and "default rule" in q_py["ratio_note"]
    rc, out, _ = run(capsys, "query", "--net", models["onnx"], "--split", "input", "--encoding", "lossless")
    assert rc == 0 and "tiny split at input (host_only)" in out and "provenance:" in out
    rc, out, _ = run(capsys, "best", "--net", models["py"], "--input-shape", "3,32,32")
    assert rc == 0 and out.startswith("tiny on 2mbps") and "edge-only: fc" in out


def test_sweep_resolves_each_net_once(models, capsys, tmp_path):
    rows = cli_json(capsys, "sweep", "--net", models["onnx"], "--net", "alexnet", "--net", models["onnx"],
                    "--encoding", "none", "--link", "2mbps", "--json")
    assert [r["net"] for r in rows] == ["tiny"] * 7 + ["alexnet"] * 9 + ["tiny"] * 7
    assert rows[:7] == rows[16:]
    assert rows[7:16] == api.sweep(nets=["alexnet"], encodings=["none"], links=["2mbps"]).to_json()
    rc, out, _ = run(capsys, "sweep", "--net", models["py"], "--input-shape", "3,32,32", "--net", "digits",
                     "--encoding", "jpeg", "--link", "22mbps")
    assert rc == 0 and out.count("\ntiny ") == 7 and out.count("\ndigits ") == 7
    # two networks of one name (tiny.onnx, tiny.py) in one plot: each panel from its own split table
    png = tmp_path / "sweep.png"
    rc, out, err = run(capsys, "sweep", "--net", models["onnx"], "--net", models["py"], "--input-shape", "3,32,32",
                       "--encoding", "none", "--link", "2mbps", "--plot", str(png))
    assert rc == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    png = tmp_path / "best.png"
    assert run(capsys, "best", "--net", models["onnx"], "--plot", str(png))[0] == 0 and png.stat().st_size > 1000


def test_splits_all_marks_the_aliases(capsys):
    rows = cli_json(capsys, "splits", "--net", "alexnet", "--all", "--json")
    alias = {r["name"]: r["alias"] for r in rows}
    assert alias == {"input": "input", "features.1": None, "features.2": "conv1", "features.4": None,
                     "features.5": "conv2", "features.7": "conv3", "features.9": "conv4", "features.11": None,
                     "features": "conv5", "classifier.2": "fc6", "classifier.5": "fc7", "classifier": "fc8"}
    listed = {s.name: s for s in network("alexnet").splits}
    for r in rows:
        if r["alias"]:   # an alias and its automatic point: the same feature and counts
            assert [r[k] for k in NUMBERS] == [json.loads(json.dumps(getattr(listed[r["alias"]], k)))
                                               for k in NUMBERS]
    assert cli_json(capsys, "splits", "--net", "alexnet", "--json") == \
        json.loads(json.dumps([s.as_dict() for s in network("alexnet").splits]))
    rc, out, _ = run(capsys, "splits", "--net", "alexnet", "--all")
    lines = {ln.split()[0]: ln.split() for ln in out.splitlines()[3:-1]}
    assert rc == 0 and out.startswith("alexnet: source builtin, input 3x224x224, 12 layers, ")
    assert lines["features.2"][1] == "conv1" and lines["features.1"][1] == "-" and lines["input"][1] == "="
    assert lines["features"][1:3] == ["conv5", "256x6x6"] and lines["features"][3] == "18,432"


# ---- bad input ---------------------------------------------------------------------------------------------------


def _py(tmp_path, name: str, body: str) -> str:
    (tmp_path / f"{name}.py").write_text("import torch\nfrom torch import nn\n\n" + body)
    return str(tmp_path / f"{name}.py")


def test_bad_networks_one_line_exit_2(models, images, tmp_path, capsys):
    (tmp_path / "text.onnx").write_text("not a model\n")
    weights = tmp_path / "w.pt"
    torch.save({"x": torch.zeros(1)}, weights)
    onnx, py = models["onnx"], models["py"]
    raises = _py(tmp_path, "raises", "def make():\n    raise RuntimeError('boom')\n")
    syntax = _py(tmp_path, "syntax", "def make(:\n    pass\n")
    notmod = _py(tmp_path, "notmod", "def make():\n    return 3\n")
    sigmoid = _py(tmp_path, "sig", "def make():\n    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid())\n")
    cases = [
        (["splits", "--net", "nosuch"], "unknown network 'nosuch'; allowed: alexnet"),
        (["query", "--net", py.split(":")[0], "--split", "input"], "name the factory function"),
        (["best", "--net", str(tmp_path / "missing.onnx")], "not found"),
        (["splits", "--net", str(tmp_path / "text.onnx")], "is not an ONNX model"),
        (["splits", "--net", f"{raises}:make", "--input-shape", "3,8,8"], "raised RuntimeError: boom"),
        (["sweep", "--net", f"{syntax}:make"], "cannot import"),
        (["splits", "--net", py.replace(":factory", ":nosuchfn")], "has no function 'nosuchfn'"),
        (["best", "--net", f"{notmod}:make", "--input-shape", "3,8,8"], "not a torch nn.Module"),
        (["query", "--net", f"{sigmoid}:make", "--input-shape", "3,16,16", "--split", "input"],
         "module Sigmoid is not supported"),
        (["splits", "--net", py], "give --input-shape C,H,W"),
        (["best", "--net", py, "--input-shape", "3,x,32"], "input shape '3,x,32' is not C,H,W"),
        (["accuracy", "--net", onnx], "has no default data set: give --data"),
        (["finetune", "--net", onnx, "--split", "pool"], "has no default data set"),
        (["weights", "--net", py, "--input-shape", "3,32,32"], "has no default data set"),
        (["splits", "--net", onnx, "--weights", str(weights)], "carries its weights"),
        (["splits", "--net", py, "--input-shape", "3,32,32", "--weights", str(weights)], "first missing key"),
        (["query", "--net", onnx, "--split", "conv5"], "unknown split 'conv5' for network tiny"),
        (["sweep", "--net", "alexnet", "--input-shape", "3,32,32"], "--input-shape applies to model files"),
        (["query", "--net", "alexnet", "--split", "conv5", "--input-shape", "3,32,32"], "does not match alexnet"),
        (["accuracy", "--net", onnx, "--data", images, "--mean", "0.5,0.5"], "--mean has 2 values"),
        (["accuracy", "--net", onnx, "--data", images, "--std", "0,1,1"], "--std 0,1,1 must be positive"),
        (["accuracy", "--net", onnx, "--data", images, "--resize", "16"], "--resize 16 must be"),
        (["weights", "--net", "alexnet", "--data", images], "gets a ratio table only"),
    ]
    for argv, needle in cases:
        rc, out, err = run(capsys, *argv, *(["--quiet"] if argv[0] in ("accuracy", "finetune", "weights") else []))
        assert rc == 2 and out == "", (argv, out, err)
        assert err.startswith(f"edgesplit {argv[0]}: error: ") and needle in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_a_layer_type_the_cost_model_lacks_is_one_line(models, tmp_path, monkeypatch, capsys):
    # a fresh network (the counts of one already costed are cached); the model "forgets" max-pool
    shutil.copy(models["dir"] / "tiny.py", tmp_path / "tiny.py")
    monkeypatch.setattr(counts, "MODELLED_TYPES", tuple(t for t in counts.MODELLED_TYPES if t != "maxpool"))
    rc, out, err = run(capsys, "query", "--net", f"{tmp_path / 'tiny.py'}:factory", "--input-shape", "3,32,32",
                       "--split", "pool")
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "layer stem.3 is a maxpool layer, which the cost model does not cover" in err


# ---- caches -------------------------------------------------------------------------------------------------------


def test_caches_never_mix_two_networks_of_one_name(tmp_path):
    for d, width in (("a", 16), ("b", 24)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "tiny.py").write_text(TINY.format(width=width))
    a = load_network(f"{tmp_path / 'a' / 'tiny.py'}:factory", input_shape="3,32,32")
    b = load_network(f"{tmp_path / 'b' / 'tiny.py'}:factory", input_shape="3,32,32")
    a64 = load_network(f"{tmp_path / 'a' / 'tiny.py'}:factory", input_shape="3,64,64")
    assert a.name == b.name == a64.name == "tiny"
    q = {n: api.query(n, n.split_names[-2], "none", counts_source="analytical") for n in (a, b, a64)}
    assert len({r.edge_macs for r in q.values()}) == 3 and len({r.edge_cycles for r in q.values()}) == 3
    assert all(r.edge_macs == n.split(r.split).edge_macs for n, r in q.items())
    assert len({id(counts.net_counts(n, source="analytical")) for n in (a, b, a64)}) == 3
    # weight variants share the architecture's counts; a built-in name still works everywhere
    assert counts.net_counts(a.with_weights({"x": torch.zeros(1)})) is counts.net_counts(a)
    assert counts.arch("alexnet") is network("alexnet")
    assert api.query("alexnet", "conv5").net == "alexnet" and api.best_split("digits").net == "digits"


# ---- data sets: accuracy, weights, fine-tuning of a user network ----------------------------------------------------


def test_user_data_sets(models, images, tmp_path):
    net = load_network(models["onnx"])
    x, y = A.load_dataset(net, images, "test")
    assert x.shape == (9, 3, 32, 32) and list(y) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    xt, _ = A.load_dataset(net, images, "train", limit=6)
    assert xt.shape == (6, 3, 32, 32)
    norm = A.input_norm(net, "0.5", "0.25,0.25,0.25")
    xr, _ = A.load_dataset(net, images, "test", limit=3, norm=norm, resize=36)
    assert xr.shape == (3, 3, 32, 32) and norm.mean == (0.5,) * 3 and xr.min() >= -2.0 and xr.max() <= 2.0
    assert A.data_source(net, images, "train").endswith("images.tar.gz#train")
    # a folder holding <class>/<image> only: one set, no separate training split
    flat = tmp_path / "flat"
    for c in ("a", "b"):
        (flat / c).mkdir(parents=True)
        Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(flat / c / "0.png")
    assert A.load_dataset(net, flat, "test")[0].shape == (2, 3, 32, 32)
    assert A.data_source(net, flat, "train") == A.data_source(net, flat, "test")


def test_accuracy_weights_finetune_on_a_user_network(models, images, tmp_path, monkeypatch, capsys):
    onnx, py = models["onnx"], models["py"]
    acc = tmp_path / "acc"
    out = cli_json(capsys, "accuracy", "--net", onnx, "--data", images, "--split", "input", "pool",
                   "--curve-images", "3", "--no-plots", "--json", "--out", str(acc), "--quiet",
                   "--mean", "0.5,0.5,0.5", "--std", "0.25", "--resize", "36")
    assert out["net"] == "tiny" and out["images"] == 9 and out["dataset"] == "given"
    assert [s["name"] for s in out["splits"]] == ["input", "pool"]
    study = json.loads((acc / "tiny.json").read_text())
    assert study["source"] == onnx and study["input_shape"] == [3, 32, 32] and study["resize"] == 36
    assert study["input_norm"] == {"mean": [0.5] * 3, "std": [0.25] * 3}
    # the cost model reads the study for this network only (same name, another source: the default rule)
    monkeypatch.setattr(system, "ACCURACY_DIR", acc)
    q = cli_json(capsys, "query", "--net", onnx, "--split", "pool", "--encoding", "lossless", "--json")
    assert q["ratio_source"] == "accuracy-study" and q["compression_ratio"] == out["splits"][1]["lossless_ratio"]
    q = cli_json(capsys, "query", "--net", py, "--input-shape", "3,32,32", "--split", "pool", "--encoding",
                 "lossless", "--json")
    assert q["ratio_source"] == "assumed"

    wdir = tmp_path / "w"
    w = cli_json(capsys, "weights", "--net", onnx, "--data", images, "--qf", "10", "100", "--search-images", "6",
                 "--test-limit", "9", "--no-plots", "--json", "--out", str(wdir), "--quiet")
    assert w["net"] == "tiny" and w["trained"] and w["source"] == onnx and w["data"] == images
    assert [r["name"] for r in w["layers"]] == [la.name for la in load_network(onnx).layers
                                                if la.type in ("conv", "linear")]
    assert "train split of" in w["top1"]["search_data"]
    monkeypatch.setattr(counts, "WEIGHTS_DIR", wdir)
    q = cli_json(capsys, "query", "--net", onnx, "--split", "pool", "--weights", "jpeg", "--json")
    assert set(q["weight_qfs"]) == {r["name"] for r in w["layers"]} - {"fc"}
    rc, _, err = run(capsys, "query", "--net", py, "--input-shape", "3,32,32", "--split", "pool", "--weights", "jpeg")
    assert rc == 2 and "was made for network tiny from" in err and err.count("\n") == 1

    ft = cli_json(capsys, "finetune", "--net", onnx, "--data", images, "--split", "pool", "--epochs", "1",
                  "--limit-train", "6", "--limit", "9", "--json", "--out", str(tmp_path / "ft"), "--quiet")
    assert ft["net"] == "tiny" and ft["source"] == onnx and ft["train_images"] == 6 and ft["test_images"] == 9
    assert ft["split"] == "pool" and ft["before"]["lossy_ratio_at_budget"] is not None


def test_rtl_runs_are_read_for_their_own_network_only(models, tmp_path):
    """``build/sim/<name>.json`` is named after the network: a run of tiny.onnx is not one of tiny.py."""
    onnx = load_network(models["onnx"])
    py = load_network(models["py"], input_shape="3,32,32")
    lc = counts.analytical_layer_counts(onnx)[0]
    row = {"name": lc.name, "module": lc.layer, "bands": lc.bands,
           "counters": {f: getattr(lc, f) for f in counts.RTL_COMPARED}}
    doc = {"net": "tiny", "source": models["onnx"], "dram_bytes_per_cycle": 16.0,
           "engine": {"fb_words": 2**18, "wb_depth": 4608}, "layers": [row]}
    p = tmp_path / "tiny.json"
    p.write_text(json.dumps(doc))
    assert counts.net_counts(onnx, rtl_path=p).rtl_layers == (lc.layer,)
    assert counts.net_counts(py, rtl_path=p).rtl_layers == ()
    p.write_text(json.dumps({k: v for k, v in doc.items() if k != "source"}))   # a built-in's run of that name
    assert counts.net_counts(onnx, rtl_path=p).rtl_layers == ()


def test_every_built_in_is_named_in_the_help():
    from golden.network import builtin_names
    from model import cli_accuracy, cli_cost, cli_splits

    for mod in (cli_cost, cli_accuracy, cli_splits):
        assert all(name in mod.NET_HELP for name in builtin_names()) and "PATH.onnx" in mod.NET_HELP


def test_a_command_imports_only_its_own_module():
    """``edgesplit CMD`` registers only CMD's module (model.cli.COMMAND_MODULE, which must match what the modules
    register); ``edgesplit encode`` then never imports torch, the full parser (--help) still lists every command."""
    import argparse
    import importlib
    import subprocess
    import sys

    from model.cli import COMMAND_MODULE, SUBCOMMAND_MODULES, build_parser

    registered = {}
    for name in SUBCOMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(name).register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == COMMAND_MODULE
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMAND_MODULE)
    assert set(build_parser("dse")._subparsers._group_actions[0].choices) == {"dse"}
    code = ("import sys; from model.cli import build_parser; build_parser('encode'); "
            "print(sorted(m for m in ('torch', 'model.accuracy', 'model.weightqf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
