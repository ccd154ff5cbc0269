"""``edgesplit train`` (model/train.py, model/cli_train.py): a tiny real training run learns and writes a
checkpoint that loads, runs are reproducible, augmentation and schedule behave, bad arguments exit 2 with one
line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golden.data import load_cifar10_u8
from golden.nets import get_net
from model import train as T
from model.cli import main
from tests.golden import conftest as golden_conftest

shared_data = golden_conftest.shared_data


def tiny(tmp_path, name: str = "m", **kw) -> T.TrainConfig:
    """A run of a few seconds: width 0.25, 512 training images, 200 test images."""
    base = dict(epochs=3, batch_size=32, lr=0.02, width=0.25, limit=512, test_limit=200, eval_every=0,
                warmup_epochs=0.0, out=str(tmp_path / f"{name}.pt"), progress=False)
    return T.TrainConfig(**(base | kw))


def test_tiny_run_learns_and_writes_a_checkpoint_that_loads(shared_data, tmp_path):
    lines: list[str] = []
    r = T.train(tiny(tmp_path), echo=lines.append)
    losses = [h["loss"] for h in r["history"]]
    assert losses[-1] < losses[0] and losses[-1] < math.log(10)  # below the loss of a uniform guess
    assert (r["train_images"], r["test_images"], r["width_mult"]) == (512, 200, 0.25)
    out = tmp_path / "m.pt"
    assert out.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["m.log", "m.pt"]  # no temp file left
    log = (tmp_path / "m.log").read_text().splitlines()
    assert log == lines and any(s.startswith("epoch 3/3: loss") for s in log) and log[-1].startswith("final:")

    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["net"] == "mobilenetv2_cifar" and ckpt["config"]["seed"] == 0
    assert all(v.dtype == torch.float16 for v in ckpt["state_dict"].values() if v.is_floating_point())
    net = get_net("mobilenetv2_cifar", weights=out)
    assert sum(p.numel() for p in net.parameters()) == r["parameters"]
    # the reported top-1 is that of exactly the stored weights
    x, y, _ = load_cifar10_u8("test", 200)
    assert T.evaluate(net.to(memory_format=torch.channels_last), x, y) == r["top1"] == ckpt["top1"]


def test_runs_are_reproducible(shared_data, tmp_path):
    a = T.train(tiny(tmp_path, "a", epochs=1, limit=128), echo=lambda s: None)
    b = T.train(tiny(tmp_path, "b", epochs=1, limit=128), echo=lambda s: None)
    c = T.train(tiny(tmp_path, "c", epochs=1, limit=128, seed=1), echo=lambda s: None)
    assert a["history"][0]["loss"] == b["history"][0]["loss"] != c["history"][0]["loss"]
    sa, sb = (torch.load(tmp_path / f"{n}.pt", weights_only=True)["state_dict"] for n in "ab")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_cli_train(shared_data, tmp_path, capsys):
    out = tmp_path / "sub" / "c.pt"
    rc = main(["train", "--net", "mobilenetv2_cifar", "--epochs", "1", "--limit", "128", "--test-limit", "100",
               "--width", "0.25", "--batch-size", "64", "--out", str(out), "--log", str(tmp_path / "c.txt"),
               "--quiet"])
    assert rc == 0
    o = capsys.readouterr()
    assert "top-1" in o.out and o.err == ""
    assert out.is_file() and (tmp_path / "c.txt").read_text().splitlines()[-1].startswith("final:")
    assert get_net("mobilenetv2_cifar", weights=out).features[0][0].out_channels == 8


def test_augment_crops_and_flips():
    rng = np.random.default_rng(0)
    img = np.arange(2 * 32 * 32 * 3, dtype=np.int64).reshape(2, 32, 32, 3) % 251 + 1
    img = img.astype(np.uint8)
    seen_flip = seen_shift = False
    for _ in range(20):
        out = T.augment(img, rng)
        assert out.shape == img.shape and out.dtype == np.uint8
        for a, o in zip(img, out, strict=True):
            # every output is a window of the zero-padded image or of its mirror image
            found = []
            for flip in (False, True):
                src = np.pad(a[:, ::-1] if flip else a, ((4, 4), (4, 4), (0, 0)))
                found += [(flip, dy, dx) for dy in range(9) for dx in range(9)
                          if np.array_equal(src[dy : dy + 32, dx : dx + 32], o)]
            assert found
            seen_flip |= found[0][0]
            seen_shift |= found[0][1:] != (4, 4)
    assert seen_flip and seen_shift


def test_learning_rate_schedule():
    total, warmup, peak = 100, 10, 0.1
    lrs = [T.lr_at(s, total, warmup, peak) for s in range(total)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(peak) and lrs[10] == pytest.approx(peak)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False)) and lrs[-1] < 1e-3


@pytest.mark.parametrize(
    "args, word",
    [
        (["--net", "resnet20"], "'resnet20'"),
        (["--net", "lenet"], "'lenet'"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--lr", "10.5"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--width", "0"], "--width"),
        (["--threads", "0"], "--threads"),
        (["--data", "MISSING"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, word, tmp_path, capsys):
    argv = ["train", "--net", "mobilenetv2_cifar", "--out", str(tmp_path / "x.pt")]
    argv += [str(tmp_path / "missing") if a == "MISSING" else a for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("edgesplit train: error:") and word in err
    assert not any(tmp_path.iterdir())  # nothing written
