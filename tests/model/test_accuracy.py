"""The encoding study (model/accuracy.py, ``edgesplit accuracy``): exact sizes and decodes against the
reference encoder/decoder, the budget search, the whole digits study end to end, a generic module through a
DataLoader, the CLI's errors; and (slow) a reduced but real CIFAR-10 ResNet-20 study."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from golden.data import load_digits
from golden.nets import get_net
from golden.quantize import default_qnet
from golden.splits import edge_model, host_model, split_names
from model import accuracy as A
from model.cli import main
from tests.golden import conftest as golden_conftest

shared_data = golden_conftest.shared_data  # the shared-data fixture (fails in CI when data is missing)

SUMMARY_SPLIT_KEYS = {"name", "feature_bytes", "lossless_ratio", "lossy_ratio_at_budget", "qf_at_budget",
                      "top1_at_budget"}


@pytest.fixture(scope="module")
def digits_feats() -> dict[str, np.ndarray]:
    x, _ = load_digits("test")
    x = x[:24]
    q = default_qnet("digits")
    out = {s: A.int16_features(q, x, s) for s in ("conv1", "conv4", "fc5", "fc6")}
    out["input"] = A.NET_NORMS["digits"].to_u8(x)
    return out


# ---- exactness of the batched codec ----------------------------------------------------------------------


@pytest.mark.parametrize("split", ["input", "conv1", "conv4", "fc5", "fc6"])
@pytest.mark.parametrize("mode, container", [("layer", "scan"), ("channel", "jfif")])
def test_batched_sizes_and_decodes_equal_the_reference(digits_feats, split, mode, container):
    values = digits_feats[split]
    codec = A.SplitCodec(values, "image" if split == "input" else "feature", mode, container)
    idx = np.array([0, 3, 7, 8, 23])
    for qf in (1, 23, 50, 97, 100):
        sizes, dec = codec.jpeg(qf, idx, decode=True)
        assert dec.shape == (len(idx), *values.shape[1:]) and dec.dtype == values.dtype
        for k, i in enumerate(idx):
            # every image encoded alone by golden.featpack/golden.jpeg, decoded from its bytes by decode_jpeg
            assert sizes[k] == codec.reference_bytes(int(i), qf), (split, qf, i)
            assert np.array_equal(dec[k], codec.reference_decode(int(i), qf)), (split, qf, i)
    ll = codec.lossless_bytes()
    assert len(ll) == len(values) and (ll > 18).all()


@pytest.mark.parametrize("kind", ["feature", "image"])
def test_table_quantizer_and_sizes_equal_the_reference_on_random_extreme_maps(kind):
    """The batched quantizer (zigzag coefficient cache, per-QF magnitude table) gives golden.jpeg.quantize_image's
    coefficients exactly, and the batched sizes every image's bytes through the reference encoder, on random
    maps with the extremes: all-max, all-min, half zero, int16 / uint8 full range, odd sizes, colour."""
    import dataclasses

    from golden import jpeg

    rng = np.random.default_rng(15)
    if kind == "feature":
        values = rng.integers(-32768, 32768, size=(6, 5, 9, 13)).astype(np.int16)
        values[0], values[1], values[2, :, ::2] = 32767, -32768, 0
        values[3] = np.where(rng.random(values[3].shape) < 0.5, 32767, -32768)
    else:
        values = rng.integers(0, 256, size=(6, 17, 11, 3)).astype(np.uint8)
        values[0], values[1] = 255, 0
        values[2] = np.where(rng.random(values[2].shape) < 0.5, 255, 0)
    codec = A.SplitCodec(values, kind)
    idx = np.arange(len(values))
    for qf in (1, 2, 13, 50, 77, 99, 100):
        q = codec._quantize(qf, idx)
        nat = codec.coeffs.astype(np.int64).reshape(-1, 8, 8)
        ref = jpeg.quantize_image(dataclasses.replace(codec.template, coeffs=nat,
                                                      component=np.tile(codec.pattern, len(idx))), qf)
        assert np.array_equal(q.zz, ref.zz), qf
        sizes, _ = codec.jpeg(qf, idx)
        assert [int(v) for v in sizes] == [codec.reference_bytes(int(i), qf) for i in idx], qf


def test_vector_layout_and_cifar_normalisation_round_trip():
    v = np.arange(2 * 70, dtype=np.int16).reshape(2, 70)
    m = A.to_maps(v, pad="edge")
    assert m.shape == (2, 2, 8, 8) and (m.reshape(2, -1)[:, 70:] == v[:, -1:]).all()
    assert (A.to_maps(v, pad="zero").reshape(2, -1)[:, 70:] == 0).all()
    assert np.array_equal(A.from_maps(m, (70,)), v)
    u8 = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    norm = A.IMAGENET_NORM
    assert np.array_equal(norm.to_u8(norm.from_u8(u8)), u8)


def test_budget_point_takes_the_monotone_envelope():
    ref = 0.80
    pts = {1: 0.795, 5: 0.70, 10: 0.792, 20: 0.79, 50: 0.80, 100: 0.80}
    # QF 1 passes by luck, QF 5 fails: the answer is 10 (all evaluated QFs above it pass)
    assert A.budget_point(pts, ref, 0.01) == 10
    assert A._next_qf(pts, ref, 0.01) == 7
    assert A.budget_point({50: 0.5, 100: 0.79}, ref, 0.01) == 100
    assert A.budget_point({100: 0.7}, ref, 0.01) is None
    assert A._next_qf({9: 0.5, 10: 0.8}, ref, 0.01) is None


def _full_and_subset_answers(top1_all, top1_sub, ref: float, budget: float = 0.01):
    """Budget points of the search on all images and of the subset search + refinement (QF -> top-1 functions)."""
    config = A.StudyConfig(budget=budget)
    full: dict[int, dict] = {}
    A._search(lambda q: full.__setitem__(q, {"top1": top1_all(q)}), full, ref, config)
    sub: dict[int, dict] = {}
    A._search(lambda q: sub.__setitem__(q, {"top1": top1_sub(q)}), sub, ref, config)
    start = A.budget_point({k: v["top1"] for k, v in sub.items()}, ref, budget)
    refined: dict[int, dict] = {}
    A._refine(lambda q: refined.__setitem__(q, {"top1": top1_all(q)}), refined, ref, budget,
              100 if start is None else start)
    answer = A.budget_point({k: v["top1"] for k, v in refined.items()}, ref, budget)
    return A.budget_point({k: v["top1"] for k, v in full.items()}, ref, budget), answer, refined


@pytest.mark.parametrize("knee", [1, 2, 7, 33, 34, 60, 99, 100, 101])
@pytest.mark.parametrize("shift", [-40, -9, -1, 0, 1, 3, 25, 90])
def test_refinement_on_all_images_finds_the_full_searchs_answer(knee, shift):
    """On a monotone top-1 curve (passing from ``knee`` up; 101: never), the refinement from any subset answer
    (the subset's knee off by ``shift`` QFs) ends on the full search's answer, on adjacent QFs, passing above."""
    ref, budget = 0.80, 0.01

    def curve(k):
        return lambda q: 0.80 - (0.0 if q >= k else 0.02 + 0.001 * (k - q))

    full, answer, refined = _full_and_subset_answers(curve(knee), curve(min(101, max(1, knee + shift))), ref)
    assert answer == full == (knee if knee <= 100 else None)
    top1 = {q: v["top1"] for q, v in refined.items()}
    if answer is not None:
        assert all(ref - t <= budget for q, t in top1.items() if q >= answer)
        assert answer == 1 or ref - top1[answer - 1] > budget
    else:
        assert ref - top1[100] > budget
    # each gallop step doubles: from a subset answer off by d QFs, about 2 log2(d) + 2 evaluations
    assert len(refined) <= 2 * int(np.ceil(np.log2(abs(shift) + 1))) + 3, sorted(refined)
    if shift == 0 and 1 < knee <= 100:
        assert sorted(refined) == [knee - 1, knee]


def test_refinement_is_bounded_on_a_noisy_curve():
    """Not monotone (a lucky QF below the knee): the answer still passes, with the QF below it failing."""
    rng = np.random.default_rng(0)
    noise = {q: rng.normal(0, 0.006) for q in range(1, 101)}
    ref = 0.80

    def top1(q):
        return 0.80 - (0.0 if q >= 40 else 0.005 * (40 - q)) + noise[q]

    for start in (1, 20, 39, 40, 41, 70, 100):
        refined: dict[int, dict] = {}
        A._refine(lambda q, d=refined: d.__setitem__(q, {"top1": top1(q)}), refined, ref, 0.01, start)
        pts = {q: v["top1"] for q, v in refined.items()}
        best = A.budget_point(pts, ref, 0.01)
        assert len(refined) <= 20
        if best is not None:
            assert all(ref - t <= 0.01 + 1e-12 for q, t in pts.items() if q >= best)
            assert best == 1 or (best - 1 in pts and ref - pts[best - 1] > 0.01)


def test_digits_study_searching_on_a_subset(tmp_path, capsys):
    """``--search-images 150`` of 450: the coarse search's points are on 150 images (``searched``), the answer's
    on all 450, adjacent to a failing QF; sizes at the QFs evaluated on all equal the full search's."""
    args = ["accuracy", "--net", "digits", "--json", "--quiet", "--curve-images", "50", "--no-plots"]
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    assert main(args + ["--search-images", "150", "--out", str(tmp_path / "sub")]) == 0
    capsys.readouterr()
    full = json.loads((tmp_path / "full" / "digits.json").read_text())
    sub = json.loads((tmp_path / "sub" / "digits.json").read_text())
    assert full["search"]["search_images"] is None and sub["search"]["search_images"] == 150
    ref = sub["reference_top1"]
    assert ref == full["reference_top1"]
    fewer = 0
    for f, s in zip(full["splits"], sub["splits"], strict=True):
        assert "searched" not in f and s["searched"]["images"] == 150 and len(s["searched"]["points"]) >= 5
        assert s["lossless_ratio"] == f["lossless_ratio"] and s["top1_uncoded"] == f["top1_uncoded"]
        ev = {p["qf"]: p for p in s["evaluated"]}
        fev = {p["qf"]: p for p in f["evaluated"]}
        for q in set(ev) & set(fev):
            assert ev[q] == fev[q]   # on all images: the same bytes and top-1 as the full search's
        best = s["qf_at_budget"]
        if best is not None:
            assert ev[best]["top1"] == s["top1_at_budget"] and ref - s["top1_at_budget"] <= 0.01 + 1e-12
            assert all(ref - p["top1"] <= 0.01 + 1e-12 for q, p in ev.items() if q >= best)
            assert best == 1 or ref - ev[best - 1]["top1"] > 0.01
        else:
            assert ref - ev[100]["top1"] > 0.01
        fewer += len(ev) < len(fev)
    assert fewer >= len(full["splits"]) // 2   # the point: fewer evaluations on all images


# ---- the whole digits study --------------------------------------------------------------------------------


def test_digits_study_end_to_end(tmp_path, capsys):
    rc = main(["accuracy", "--net", "digits", "--json", "--quiet", "--curve-images", "150", "--out", str(tmp_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["net"] == "digits" and out["images"] == 450
    assert abs(out["float_top1"] - 0.9756) <= 0.01, out["float_top1"]
    assert abs(out["int16_top1"] - out["float_top1"]) <= 0.005
    assert [s["name"] for s in out["splits"]] == list(split_names("digits"))
    for s in out["splits"]:
        assert SUMMARY_SPLIT_KEYS <= set(s)
        assert s["lossless_ratio"] > 0
        if s["qf_at_budget"] is not None:
            assert 1 <= s["qf_at_budget"] <= 100
            assert out["int16_top1"] - s["top1_at_budget"] <= 0.01 + 1e-9
    rows = {s["name"]: s for s in out["splits"]}
    for s in ("conv1", "conv2", "conv3", "conv4", "fc5"):  # ReLU maps: zero runs pay off
        assert rows[s]["lossless_ratio"] > 1.3, s
    for s in ("input", "conv1", "conv2", "fc5"):
        assert rows[s]["lossy_ratio_at_budget"] > 2.5, s
    assert rows["conv1"]["lossy_ratio_at_budget"] > rows["conv1"]["lossless_ratio"] * 2
    assert rows["input"]["feature_bytes"] == 512 and rows["input"]["raw_bytes"] == 256  # 8-bit camera image

    full = json.loads((tmp_path / "digits.json").read_text())
    assert full["int16_top1"] == out["int16_top1"]
    for r in full["splits"]:
        assert len(r["curve"]["ratio"]) == 100 and r["curve"]["images"] == 150
        ev = {p["qf"]: p for p in r["evaluated"]}
        assert 100 in ev and len(ev) >= 5
        if r["qf_at_budget"] is not None:
            assert ev[r["qf_at_budget"]]["ratio"] == pytest.approx(r["lossy_ratio_at_budget"])
            below = [q for q in ev if q < r["qf_at_budget"]]
            if below:  # the search ends on adjacent QFs: the next lower evaluated one fails
                assert max(below) == r["qf_at_budget"] - 1
                assert full["reference_top1"] - ev[max(below)]["top1"] > 0.01
        # sizes grow with QF (the curve), so ratios shrink
        c = r["curve"]["ratio"]
        assert c[0] > c[49] > c[99]
    for name in ("digits_compression.png", "digits_top1_vs_ratio.png"):
        p = tmp_path / name
        assert p.is_file() and p.stat().st_size > 10_000
        assert Image.open(p).size[0] > 500


def test_generic_module_through_a_dataloader():
    net = get_net("digits")
    x, y = load_digits("test")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=64)
    points = [("input", None, net), ("conv2", edge_model(net, "conv2"), host_model(net, "conv2")),
              A.SplitPoint("fc5", edge_model(net, "fc5"), host_model(net, "fc5"))]
    cfg = A.StudyConfig(coarse_qfs=(10, 50, 100), curve_images=40)
    res = A.study_model(net, points, loader, cfg, input_norm=A.NET_NORMS["digits"], name="mine", limit=200)
    assert res["net"] == "mine" and res["images"] == 200 and res["int16_top1"] is None
    assert res["reference"] == "float" and res["reference_top1"] == res["float_top1"] > 0.9
    assert [r["name"] for r in res["splits"]] == ["input", "conv2", "fc5"]
    conv2 = res["splits"][1]
    assert conv2["tensor_shape"] == [24, 4, 4] and conv2["raw_bytes"] == 768
    assert conv2["lossless_ratio"] > 1.5 and conv2["qf_at_budget"] is not None
    assert res["splits"][2]["tensor_shape"] == [64]
    assert A.format_table(res).count("\n") == 4
    with pytest.raises(A.UserError, match="input_norm"):
        A.study_model(net, points[:1], (x[:10], y[:10]), cfg)


def test_image_folder_data_and_merge(tmp_path):
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    for c in (0, 1):
        folder = tmp_path / "test" / f"class{c}"
        folder.mkdir(parents=True)
        for k, img in enumerate(d.images[d.target == c][:3]):
            Image.fromarray((img * 15).astype(np.uint8)).resize((20, 20)).save(folder / f"{k}.png")
    x, y = A.load_dataset("digits", tmp_path, "test")
    assert x.shape == (6, 1, 16, 16) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert -1.0 <= x.min() and x.max() <= 1.0
    x2, _ = A.load_dataset("digits", tmp_path, "test", limit=2)
    assert len(x2) == 2

    old = {"schema_version": 1, "net": "n", "images": 5, "weights": "w", "float_top1": 0.5, "int16_top1": 0.5,
           "budget": 0.01, "encoding": {"m": 1}, "splits": [{"name": "a", "index": 0}, {"name": "b", "index": 1}]}
    new = {**old, "splits": [{"name": "b", "index": 1, "new": True}]}
    merged = A.merge_results(old, new)
    assert [r["name"] for r in merged["splits"]] == ["a", "b"] and merged["splits"][1]["new"]
    assert A.merge_results({**old, "images": 6}, new) is new


# ---- CLI errors -----------------------------------------------------------------------------------------------


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save({"features.0.weight": torch.zeros(1), "extra.bias": torch.zeros(1)}, bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    flat = tmp_path / "flat" / "class0"  # an ImageFolder without train/ and test/: no separate training split
    flat.mkdir(parents=True)
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(flat / "a.png")
    cases = [
        (["accuracy", "--net", "lenet"], "unknown network 'lenet'"),
        (["accuracy", "--net", "digits", "--split", "conv1", "conv9"], "unknown split 'conv9'"),
        (["accuracy", "--net", "digits", "--weights", str(bad)], "first missing key 'features.0.bias'"),
        (["accuracy", "--net", "digits", "--data", str(empty)], "is empty"),
        (["accuracy", "--net", "digits", "--limit", "0"], "must be a positive number"),
        (["finetune", "--net", "resnet20", "--split", "bogus"], "unknown split 'bogus'"),
        (["finetune", "--net", "digits", "--split", "fc6"], "no host part"),
        (["finetune", "--net", "digits", "--split", "conv2", "--data", str(flat.parent)], "both come from"),
    ]
    for argv, msg in cases:
        assert main([*argv, "--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err and "Traceback" not in err, err
    assert main(["accuracy", "--net", "digits", "--weights", str(bad), "--quiet"]) == 2
    assert "first unexpected key 'extra.bias'" in capsys.readouterr().err


# ---- CIFAR-10 (slow) --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_cifar_resnet20_study_reduced(shared_data, tmp_path, capsys):
    rc = main(["accuracy", "--net", "resnet20", "--limit", "1000", "--split", "layer2.1", "layer3.2",
               "--curve-images", "100", "--json", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    # every 10th test image: 79.5% float (tests/golden/test_nets.py); int16 within 0.5%
    assert abs(out["float_top1"] - 0.795) <= 0.01
    assert abs(out["int16_top1"] - out["float_top1"]) <= 0.005
    rows = {s["name"]: s for s in out["splits"]}
    assert set(rows) == {"layer2.1", "layer3.2"}
    for r in rows.values():
        assert r["lossless_ratio"] > 1.2
        assert r["lossy_ratio_at_budget"] > 5 and 1 <= r["qf_at_budget"] <= 100
        assert out["int16_top1"] - r["top1_at_budget"] <= 0.01 + 1e-9
    # layer3.2 feeds the global average pool: only each 8x8 channel's mean (the DC) matters
    assert rows["layer3.2"]["lossy_ratio_at_budget"] > rows["layer2.1"]["lossy_ratio_at_budget"]
    assert Path(tmp_path / "resnet20_top1_vs_ratio.png").is_file()


def test_int16_host_gives_the_same_budget_points_on_digits():
    x, y = load_digits("test")
    cfg = dict(coarse_qfs=(20, 50, 100), curve_images=20)
    res = {h: A.study_net("digits", (x[::3], y[::3]), ["conv3", "fc5"], config=A.StudyConfig(host=h, **cfg))
           for h in ("float", "int16")}
    assert res["int16"]["encoding"]["host"] == "int16"
    for a, b in zip(res["float"]["splits"], res["int16"]["splits"], strict=True):
        assert a["top1_uncoded"] == b["top1_uncoded"] == res["int16"]["int16_top1"]
        assert a["qf_at_budget"] == b["qf_at_budget"], a["name"]


# ---- on a cluster (sim.cluster) -----------------------------------------------------------------------------


def _without_seconds(d):
    if isinstance(d, dict):
        return {k: _without_seconds(v) for k, v in d.items() if k != "seconds"}
    if isinstance(d, list):
        return [_without_seconds(v) for v in d]
    return d


def test_study_on_two_local_workers_equals_the_serial_run(tmp_path):
    """The study split into pieces on a 2-worker LocalCluster gives the serial study's result exactly: every
    size to the byte, every top-1 count, every QF (only the ``seconds`` differ). 60 images in three batches
    of 20, so the uncoded top-1 runs as shards of whole batches."""
    from sim import cluster as CL

    config = A.StudyConfig(curve_images=10, batch_size=20, chunk=20)
    splits = ["input", "conv2", "fc5"]
    serial, _ = A.run("digits", splits=splits, limit=60, config=config, out_dir=tmp_path / "serial", plots=False,
                      cluster=CL.resolve(1))
    spread, _ = A.run("digits", splits=splits, limit=60, config=config, out_dir=tmp_path / "two", plots=False,
                      cluster=CL.resolve(2))
    assert [r["name"] for r in spread["splits"]] == splits
    assert _without_seconds(spread) == _without_seconds(serial)
    assert json.loads((tmp_path / "two" / "digits.json").read_text())["splits"][1]["evaluated"] == \
        serial["splits"][1]["evaluated"]


def test_a_stopped_study_keeps_its_finished_splits_and_resume_reuses_them(tmp_path, monkeypatch):
    """Every finished split is saved as it comes: a study stopped during its second split leaves the first in
    ``<out>/<net>.json``; ``resume`` reuses it (its row as saved, seconds included) and computes only the others,
    and the result equals a whole run's. A different setup (another budget) reuses nothing."""
    config = A.StudyConfig(curve_images=10, batch_size=20, chunk=20)
    splits = ["input", "conv2", "fc5"]
    whole, _ = A.run("digits", splits=splits, limit=60, config=config, out_dir=tmp_path / "whole", plots=False)
    calls = []
    real = A.study_split

    def stop_at_second(task, *args, **kwargs):
        calls.append(task.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(task, *args, **kwargs)

    monkeypatch.setattr(A, "study_split", stop_at_second)
    with pytest.raises(KeyboardInterrupt):
        A.run("digits", splits=splits, limit=60, config=config, out_dir=tmp_path / "part", plots=False)
    saved = json.loads((tmp_path / "part" / "digits.json").read_text())
    assert [r["name"] for r in saved["splits"]] == ["input"]
    assert _without_seconds(saved["splits"]) == _without_seconds(whole["splits"][:1])
    assert not list((tmp_path / "part").glob("*.png")) and not list((tmp_path / "part").glob("*.tmp*"))

    calls.clear()
    monkeypatch.setattr(A, "study_split", lambda task, *a, **k: calls.append(task.name) or real(task, *a, **k))
    resumed, paths = A.run("digits", splits=splits, limit=60, config=config, out_dir=tmp_path / "part",
                           plots=False, resume=True)
    assert calls == ["conv2", "fc5"]
    assert resumed["splits"][0] == saved["splits"][0]              # reused as saved
    assert _without_seconds(resumed) == _without_seconds(whole)
    assert _without_seconds(json.loads(paths["json"].read_text())) == _without_seconds(whole)

    calls.clear()
    other = dataclasses.replace(config, budget=0.02)
    A.run("digits", splits=["input"], limit=60, config=other, out_dir=tmp_path / "part", plots=False, resume=True)
    assert calls == ["input"]
