"""Data loading: the data folder and its errors, CIFAR-10 layouts, digits split, photos."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

from golden import data as D
from golden.errors import UserError


def test_missing_or_empty_data_folder_names_the_path(tmp_path, monkeypatch):
    with pytest.raises(UserError, match=str(tmp_path / "nowhere")):
        D.data_root(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty"):
        D.load_cifar10("test", data=tmp_path / "empty")
    monkeypatch.setenv("EDGESPLIT_DATA", str(tmp_path / "env-missing"))
    with pytest.raises(UserError, match="env-missing"):
        D.data_root()
    with pytest.raises(UserError, match="env-missing"):
        D.checkpoint_path("resnet20-cifar10.th")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(UserError, match="CIFAR-10 test set not found"):
        D.load_cifar10("test", data=tmp_path / "other")
    with pytest.raises(UserError, match="checkpoint"):
        D.checkpoint_path("resnet20-cifar10.th", tmp_path / "other")
    with pytest.raises(UserError, match="allowed: train, test"):
        D.load_cifar10("val", data=tmp_path / "other")


def make_folder(root, classes=("zebra", "ant", "moth"), per_class=2):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / c / f"{i:04d}.png")


def test_image_folder_and_tarball_layouts(tmp_path):
    make_folder(tmp_path / "data" / "cifar10" / "test")
    x, y = D.load_cifar10("test", data=tmp_path / "data")
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 1, 1, 2, 2]  # sorted class names: ant, moth, zebra
    u8, _, classes = D.load_cifar10_u8("test", data=tmp_path / "data")
    assert classes == ("ant", "moth", "zebra")
    np.testing.assert_array_equal(
        u8[0], np.asarray(Image.open(tmp_path / "data" / "cifar10" / "test" / "ant" / "0000.png"))
    )
    tgz = tmp_path / "set.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(tmp_path / "data" / "cifar10" / "test", arcname="test")
    x2, y2 = D.load_cifar10("test", data=tgz)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)
    x3, y3 = D.load_cifar10("test", n=3, data=tmp_path / "data" / "cifar10" / "test")  # a bare ImageFolder
    assert y3.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(x3, x[[0, 2, 4]])


def test_a_subset_is_cached_as_that_subset(tmp_path, monkeypatch):
    """``n`` evenly spaced images of a large set (the 500 calibration images of CIFAR-10's training set) are
    cached under build/data/ as that subset: the same images, labels and classes as decoding them, and a
    damaged cache is decoded again and rewritten."""
    monkeypatch.setattr(D, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(D, "CACHE_MIN_IMAGES", 4)
    src = tmp_path / "set"
    make_folder(src, per_class=3)                      # 9 images in 3 classes
    D._encoded.cache_clear()
    decoded = D.load_cifar10_u8("test", 5, src)
    cache = D._cifar_cache_path(src, 5)
    assert cache.is_file() and not D._cifar_cache_path(src).exists()   # the subset only, not the whole set
    for damage in (None, b"", b"\x93NUMPY garbage"):
        if damage is not None:
            cache.write_bytes(damage)
        again = D.load_cifar10_u8("test", 5, src)
        for a, b in zip(again, decoded, strict=True):
            np.testing.assert_array_equal(a, b)
        assert again[2] == ("ant", "moth", "zebra") and again[1].tolist() == [0, 0, 1, 1, 2]
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]   # no temporary file left
    D._encoded.cache_clear()


def test_normalisation():
    u8 = np.zeros((1, 2, 2, 3), np.uint8)
    u8[..., 0] = 255
    x = D.normalize_imagenet(u8)
    assert x.shape == (1, 3, 2, 2)
    assert np.allclose(x[0, :, 0, 0], [(1 - 0.485) / 0.229, -0.456 / 0.224, -0.406 / 0.225])


def test_evenly_spaced():
    assert D.evenly_spaced(10_000, 1000)[:3].tolist() == [0, 10, 20]
    assert len(D.evenly_spaced(5, None)) == len(D.evenly_spaced(5, 9)) == 5
    with pytest.raises(UserError):
        D.evenly_spaced(5, 0)


def test_digits_split_is_fixed_and_disjoint():
    tr, te = D.digits_split_indices()
    assert len(tr) == 1347 and len(te) == 450 and not set(tr) & set(te)
    assert np.array_equal(te, D.digits_split_indices()[1])
    x, y = D.load_digits("train")
    assert x.shape == (1347, 1, 16, 16) and y.dtype == np.int64 and set(y.tolist()) == set(range(10))
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0


def test_photos():
    x, y = D.load_photos()
    assert x.shape == (len(D.PHOTO_NAMES), 3, 224, 224) and (y == -1).all()
    assert -2.2 < float(x.min()) < -1.5 and 2.0 < float(x.max()) < 2.7
    with pytest.raises(UserError, match="allowed"):
        D.load_photos(("mona_lisa",))


def test_shared_cifar10(shared_data):
    for split in ("test", "train"):
        x, y = D.load_cifar10(split, n=20, data=shared_data)
        assert x.shape == (20, 3, 32, 32) and np.bincount(y).tolist() == [2] * 10
    u8, y, classes = D.load_cifar10_u8("test")
    assert classes == D.CIFAR10_CLASSES and u8.shape == (10_000, 32, 32, 3) and u8.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10
