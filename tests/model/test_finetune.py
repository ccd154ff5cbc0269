"""Split fine-tuning (model/finetune.py, ``edgesplit finetune``): the training codec is the real round trip,
the edge stays frozen, training uses the training split only, the control trains the same host with the same
recipe on the uncoded features (and sees no coded data), and the report compares the budget point on the test
split before, after the control and after coded fine-tuning, all against the int16 reference; (slow) a short
real CIFAR-10 ResNet-20 fine-tune."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from golden.data import load_digits
from golden.nets import get_net
from golden.quantize import default_qnet
from golden.splits import host_model
from model import accuracy as A
from model import finetune as FT
from model.cli import main
from tests.golden import conftest as golden_conftest

shared_data = golden_conftest.shared_data


def test_training_codec_is_the_reference_round_trip():
    x, y = load_digits("train")
    q = default_qnet("digits")
    vals = FT.split_values(q, x[:40], "conv2", A.NET_NORMS["digits"])
    codec = A.SplitCodec(vals)
    qfs = np.random.default_rng(1).integers(30, 36, size=40)
    coded = FT.coded_epoch(codec, qfs, chunk=16)
    for i in (0, 5, 17, 39):
        assert np.array_equal(coded[i], codec.reference_decode(i, int(qfs[i])))


def test_train_host_changes_only_the_host_and_learns():
    net = get_net("digits")
    x, y = load_digits("train")
    q = default_qnet("digits")
    codec = A.SplitCodec(FT.split_values(q, x[:300], "conv3", A.NET_NORMS["digits"]))
    host = host_model(net, "conv3")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    tuned = copy.deepcopy(host)
    hist = FT.train_host(tuned, codec, y[:300], q.split_frac("conv3"), A.NET_NORMS["digits"],
                         FT.FinetuneConfig(epochs=2, lr=0.01, batch_size=50))
    assert len(hist) == 2 and hist[1]["loss"] < hist[0]["loss"] * 1.5
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original network is untouched
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, host.state_dict()[k])]
    assert changed and all("running" not in k for k in changed)


class _Recorder(torch.nn.Module):
    """A host that records every batch it is trained on."""

    def __init__(self, host: torch.nn.Module) -> None:
        super().__init__()
        self.host = host
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.host(x)


def test_control_trains_on_the_uncoded_features_in_the_same_order(monkeypatch):
    x, y = load_digits("train")
    q = default_qnet("digits")
    norm, frac = A.NET_NORMS["digits"], q.split_frac("conv3")
    codec = A.SplitCodec(FT.split_values(q, x[:100], "conv3", norm))
    config = FT.FinetuneConfig(epochs=2, lr=0.01, batch_size=32, seed=3)
    host = host_model(get_net("digits"), "conv3")
    uncoded = codec.values.astype(np.float32) * np.float32(2.0**-frac)
    # the schedule both runs follow: per epoch, the QF draws, then the batch order
    rng = np.random.default_rng(config.seed)
    draws = [(rng.integers(30, 36, size=100), rng.permutation(100)) for _ in range(config.epochs)]

    def no_coding(*args, **kwargs):
        raise AssertionError("the control coded a training feature")

    with monkeypatch.context() as m:
        m.setattr(A.SplitCodec, "jpeg", no_coding)
        m.setattr(FT, "coded_epoch", no_coding)
        control = _Recorder(copy.deepcopy(host))
        hist = FT.train_host(control, codec, y[:100], frac, norm, config, coded=False)
    assert [h["epoch"] for h in hist] == [1, 2] and all("train_top1_uncoded" in h for h in hist)
    seen = torch.cat(control.seen).numpy().reshape(config.epochs, 100, -1)
    for e, (_, order) in enumerate(draws):
        assert np.array_equal(seen[e], uncoded[order].reshape(100, -1))  # exactly the int16 features
    coded = _Recorder(copy.deepcopy(host))
    FT.train_host(coded, codec, y[:100], frac, norm, config)
    seen_coded = torch.cat(coded.seen).numpy().reshape(config.epochs, 100, -1)
    for e, (qfs, order) in enumerate(draws):
        want = FT.coded_epoch(codec, qfs).astype(np.float32) * np.float32(2.0**-frac)
        assert np.array_equal(seen_coded[e], want[order].reshape(100, -1))  # same QFs, same order
        assert not np.array_equal(seen_coded[e], seen[e])
    # the same initial host, but different data: different weights
    w_c, w_q = control.host.state_dict(), coded.host.state_dict()
    assert any(not torch.equal(w_c[k], w_q[k]) for k in w_c if "running" not in k)
    assert any(not torch.equal(w_c[k], host.state_dict()[k]) for k in w_c if "running" not in k)


def test_digits_finetune_end_to_end(tmp_path, capsys, monkeypatch):
    save = tmp_path / "tuned.pt"
    coded_epochs = []
    real_coded_epoch = FT.coded_epoch

    def counting(codec, qfs, chunk=500):
        coded_epochs.append(len(qfs))
        return real_coded_epoch(codec, qfs, chunk)

    monkeypatch.setattr(FT, "coded_epoch", counting)
    rc = main(["finetune", "--net", "digits", "--split", "conv2", "--epochs", "3", "--json", "--quiet",
               "--out", str(tmp_path), "--save", str(save)])
    assert rc == 0
    assert coded_epochs == [1347] * 3  # the coded run's epochs only: the control coded nothing
    out = json.loads(capsys.readouterr().out)
    assert out["net"] == "digits" and out["split"] == "conv2"
    assert out["train_images"] == 1347 and out["test_images"] == 450  # trained on train, measured on test
    assert out["config"]["qf_range"] == [30, 35]
    b, a = out["before"], out["after"]
    assert b["qf_at_budget"] is not None and b["lossy_ratio_at_budget"] > 2
    assert a["lossy_ratio_at_budget"] is not None
    assert out["gain_percent"] == pytest.approx(100 * (a["lossy_ratio_at_budget"] / b["lossy_ratio_at_budget"] - 1))
    # deterministic recipe (seed 0): the host learns to read QF 30..35 features, the budget QF drops
    assert out["gain_percent"] > 5 and a["qf_at_budget"] < b["qf_at_budget"]
    # the control: the same recipe on uncoded features, every row against the int16 network's top-1
    c = out["control"]
    assert out["config"]["control"] is True
    assert set(c) == set(a) and "evaluated" not in c and c["train_seconds"] > 0 and a["train_seconds"] > 0
    for r in (b, c, a):
        assert r["reference"] == "int16_top1" and r["reference_top1"] == out["int16_top1"]
        assert r["loss_at_budget"] == pytest.approx(out["int16_top1"] - r["top1_at_budget"])
        assert 0 < r["top1_uncoded"] <= 1
    assert c["lossy_ratio_at_budget"] > 2 and c["qf_at_budget"] is not None
    assert out["gain_due_to_coding"] == pytest.approx(
        100 * (a["lossy_ratio_at_budget"] / c["lossy_ratio_at_budget"] - 1))
    assert out["gain_due_to_coding"] > 5 and a["qf_at_budget"] < c["qf_at_budget"]
    co, ao = out["control_own_reference"], out["after_own_reference"]
    assert co["reference"] == "control.top1_uncoded" and co["reference_top1"] == c["top1_uncoded"]
    assert ao["reference"] == "after.top1_uncoded" and ao["reference_top1"] == a["top1_uncoded"]
    assert out["gain_due_to_coding_own_reference"] == pytest.approx(
        100 * (ao["lossy_ratio_at_budget"] / co["lossy_ratio_at_budget"] - 1))
    assert out["references"] == FT.REFERENCES
    assert "history" not in out and "control_history" not in out
    full = json.loads((tmp_path / "digits_finetune_conv2.json").read_text())
    assert len(full["history"]) == 3 and full["after"]["evaluated"]
    assert len(full["control_history"]) == 3 and full["control"]["evaluated"]
    assert all("train_top1_uncoded" in h for h in full["control_history"])
    text = FT.format_result(full)
    rows = [line.split()[0] for line in text.splitlines()[2:7]]
    assert rows == ["before", "control", "coded", "control*", "coded*"]
    assert f"coded vs control {out['gain_due_to_coding']:+.1f}%" in text
    sd = torch.load(save, weights_only=True)["state_dict"]
    net = get_net("digits", sd)  # a full, loadable state_dict: edge as before, host fine-tuned
    orig = get_net("digits").state_dict()
    assert torch.equal(net.state_dict()["features.0.weight"], orig["features.0.weight"])
    assert not torch.equal(net.state_dict()["classifier.0.weight"], orig["classifier.0.weight"])


SMALL = ["--net", "digits", "--split", "conv4", "--epochs", "2", "--limit-train", "200", "--limit", "150",
         "--lr", "0.01", "--seed", "5", "--json", "--quiet"]


@pytest.fixture(scope="module")
def small_run():
    """A small fine-tune with its control (the function, not the command line)."""
    config = FT.FinetuneConfig(epochs=2, lr=0.01, seed=5)
    return FT.finetune("digits", "conv4", config, limit_train=200, limit=150)


def _without_time(block: dict) -> dict:
    return {k: v for k, v in block.items() if k != "train_seconds"}


def test_control_is_deterministic(small_run):
    again = FT.finetune("digits", "conv4", FT.FinetuneConfig(epochs=2, lr=0.01, seed=5), limit_train=200, limit=150)
    for k in ("control", "after", "control_own_reference", "after_own_reference"):
        assert _without_time(again[k]) == _without_time(small_run[k])
    assert again["control_history"] == small_run["control_history"] and again["history"] == small_run["history"]
    assert again["gain_due_to_coding"] == small_run["gain_due_to_coding"]
    assert small_run["control"]["evaluated"] and small_run["control_history"] != small_run["history"]


def test_no_control_skips_it_and_keeps_the_coded_result(small_run, tmp_path, capsys):
    rc = main(["finetune", *SMALL, "--no-control", "--out", str(tmp_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert "control" not in out and "control_own_reference" not in out
    assert out["gain_due_to_coding"] is None and out["gain_due_to_coding_own_reference"] is None
    assert out["config"]["control"] is False and "control" not in out["references"]
    # the coded host does not depend on the control: the same numbers as the run with it
    full = json.loads((tmp_path / "digits_finetune_conv4.json").read_text())
    assert "control_history" not in full and full["history"] == small_run["history"]
    assert _without_time(full["after"]) == _without_time(small_run["after"])
    assert full["gain_percent"] == small_run["gain_percent"]
    text = FT.format_result(full)
    assert "no control" in text and "\ncontrol" not in text and "due to coding" not in text


@pytest.mark.slow
def test_cifar_resnet20_finetune_short(shared_data, tmp_path, capsys):
    # the pool-adjacent split: the host is the final FC layer, so the real round trip dominates the cost
    rc = main(["finetune", "--net", "resnet20", "--split", "pool", "--epochs", "2", "--limit-train", "2000",
               "--limit", "1000", "--json", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train_images"] == 2000 and out["test_images"] == 1000
    assert abs(out["int16_top1"] - 0.795) <= 0.01
    assert out["before"]["lossy_ratio_at_budget"] > 2 and out["before"]["qf_at_budget"] < 100
    assert out["after"]["lossy_ratio_at_budget"] is not None and out["gain_percent"] is not None
    assert out["after_own_reference"]["top1_uncoded"] == out["after"]["top1_uncoded"]
    c = out["control"]
    assert c["reference_top1"] == out["int16_top1"] and c["lossy_ratio_at_budget"] is not None
    assert out["gain_due_to_coding"] == pytest.approx(
        100 * (out["after"]["lossy_ratio_at_budget"] / c["lossy_ratio_at_budget"] - 1))
