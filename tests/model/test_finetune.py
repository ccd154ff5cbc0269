"""Split fine-tuning (model/finetune.py, ``edgesplit finetune``): the training codec is the real round trip,
the edge stays frozen, training uses the training split only, and the report compares the budget point on
the test split before and after; (slow) a short real CIFAR-10 ResNet-20 fine-tune."""

from __future__ import annotations

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
    import copy

    tuned = copy.deepcopy(host)
    hist = FT.train_host(tuned, codec, y[:300], q.split_frac("conv3"), A.NET_NORMS["digits"],
                         FT.FinetuneConfig(epochs=2, lr=0.01, batch_size=50))
    assert len(hist) == 2 and hist[1]["loss"] < hist[0]["loss"] * 1.5
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original network is untouched
    changed = [k for k, v in tuned.state_dict().items() if not torch.equal(v, host.state_dict()[k])]
    assert changed and all("running" not in k for k in changed)


def test_digits_finetune_end_to_end(tmp_path, capsys):
    save = tmp_path / "tuned.pt"
    rc = main(["finetune", "--net", "digits", "--split", "conv2", "--epochs", "3", "--json", "--quiet",
               "--out", str(tmp_path), "--save", str(save)])
    assert rc == 0
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
    full = json.loads((tmp_path / "digits_finetune_conv2.json").read_text())
    assert len(full["history"]) == 3 and full["after"]["evaluated"]
    sd = torch.load(save, weights_only=True)["state_dict"]
    net = get_net("digits", sd)  # a full, loadable state_dict: edge as before, host fine-tuned
    orig = get_net("digits").state_dict()
    assert torch.equal(net.state_dict()["features.0.weight"], orig["features.0.weight"])
    assert not torch.equal(net.state_dict()["classifier.0.weight"], orig["classifier.0.weight"])


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
