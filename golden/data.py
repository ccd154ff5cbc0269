"""Data loading without network access: scikit-learn digits, CIFAR-10 from the shared data, sample photos.

Every loader returns ``(x, y)`` with ``x`` a float32 numpy array ``[N, C, H, W]`` already normalised the way
the matching network expects, and ``y`` int64 class indices (``-1`` where there is no label).

Where the data comes from
-------------------------
* Digits: ``sklearn.datasets.load_digits`` (bundled with scikit-learn, 1,797 8x8 images, values 0..16).
  Fixed split: a ``numpy.random.default_rng(0)`` permutation, the first 450 images are the test set, the
  other 1,347 the training set. Preprocessing: ``x / 16``, bilinear 2x upsampling to 16x16
  (``torch.nn.functional.interpolate``, ``align_corners=False``), then ``(x - 0.5) / 0.5`` (range [-1, 1]).
* CIFAR-10: the shared data folder (argument ``data``, else env ``EDGESPLIT_DATA``, else ``../shared/data``
  relative to the repository root). Accepted layouts, looked for in this order under the folder:
  ``cifar10/cifar10-<split>.tar.gz``, ``cifar10-<split>.tar.gz``, ``cifar10/<split>/<class>/*``,
  ``<split>/<class>/*``; ``data`` may also name a tar.gz or an ImageFolder-style directory directly.
  Class index = position of the class folder name in sorted order (airplane=0 ... truck=9); images are in
  (class, file name) order. A fully decoded split is cached once as ``build/data/cifar10-<split>-<key>.npz``
  (uint8, never committed; the key hashes the source path, size and mtime; sets under 1,000 images are
  not cached). Normalisation: RGB in [0, 1], then ImageNet mean/std (as in the checkpoints' training).
* Photos: real photographs shipped with scikit-image (``astronaut``, ``coffee``, ``chelsea``, ``rocket``,
  ``immunohistochemistry``, ``hubble_deep_field``), resized (shorter side 256, bilinear) and centre-cropped
  to 224x224, ImageNet normalisation; the inputs of the ImageNet networks.

A missing or empty data folder raises :class:`golden.errors.UserError` naming the path; so does a damaged
archive (a truncated or corrupt tar.gz) or an image that cannot be decoded or is larger than
:data:`golden.limits.MAX_IMAGE_PIXELS` (its size is read from its header first), naming the member. A cache
file under ``build/data/`` that fails to read (damaged, cut short, another layout) is removed and rebuilt; it
is written atomically (:mod:`golden.files`), so an interrupted run never leaves half a cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from golden import files, limits
from golden.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp")

DIGITS_TEST_SIZE = 450
CACHE_MIN_IMAGES = 1000
DIGITS_SIZE = 16
_SPLITS = ("train", "test")


def build_dir(*parts: str) -> Path:
    """``<repo>/build/<parts>``, created if missing (generated files only, never in git)."""
    return files.make_dir(REPO_ROOT.joinpath("build", *parts), "build folder")


def data_root(data: str | os.PathLike | None = None) -> Path:
    """The shared data folder: ``data``, else env ``EDGESPLIT_DATA``, else ``<repo>/../shared/data``.

    Raises UserError naming the path when it does not exist or is empty.
    """
    if data is not None:
        p, how = Path(data), "given"
    elif os.environ.get("EDGESPLIT_DATA"):
        p, how = Path(os.environ["EDGESPLIT_DATA"]), "from EDGESPLIT_DATA"
    else:
        p, how = DEFAULT_DATA, "default"
    p = p.resolve()
    if not p.exists():
        raise UserError(f"data folder {p} ({how}) does not exist; set EDGESPLIT_DATA or pass the data path")
    if p.is_dir() and not any(p.iterdir()):
        raise UserError(f"data folder {p} ({how}) is empty; set EDGESPLIT_DATA or pass the data path")
    return p


def checkpoint_path(name: str, data: str | os.PathLike | None = None) -> Path:
    """Path of a shared checkpoint ``models/<name>`` (e.g. ``resnet20-cifar10.th``); UserError if absent."""
    root = data_root(data)
    p = root / "models" / name
    if not p.is_file():
        raise UserError(f"checkpoint {p} not found in the data folder {root}")
    return p


# ---- digits -------------------------------------------------------------------------------------------


def digits_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """The fixed (train, test) index split of scikit-learn's 1,797 digits (sorted index arrays)."""
    perm = np.random.default_rng(0).permutation(1797)
    return np.sort(perm[DIGITS_TEST_SIZE:]), np.sort(perm[:DIGITS_TEST_SIZE])


def preprocess_digits(images: np.ndarray) -> np.ndarray:
    """8x8 digit images (values 0..16, ``[N, 8, 8]``) to the digits net input: float32 ``[N, 1, 16, 16]``."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(images, dtype=np.float32)[:, None] / 16.0)
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    return ((x - 0.5) / 0.5).numpy().astype(np.float32)


def load_digits(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The digits data set, preprocessed for the digits net: ``x`` float32 [N, 1, 16, 16], ``y`` int64."""
    from sklearn.datasets import load_digits as _sk_digits

    _check_split(split)
    d = _sk_digits()
    train, test = digits_split_indices()
    idx = train if split == "train" else test
    return preprocess_digits(d.images[idx]), d.target[idx].astype(np.int64)


# ---- CIFAR-10 -----------------------------------------------------------------------------------------


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise UserError(f"unknown split {split!r}; allowed: {', '.join(_SPLITS)}")


def find_cifar10(split: str = "test", data: str | os.PathLike | None = None) -> Path:
    """Locate the CIFAR-10 ``split`` (a tar.gz or an ImageFolder-style directory); UserError if absent."""
    _check_split(split)
    root = data_root(data)
    if root.is_file():
        return root
    candidates = [
        root / "cifar10" / f"cifar10-{split}.tar.gz",
        root / f"cifar10-{split}.tar.gz",
        root / "cifar10" / split,
        root / split,
    ]
    for c in candidates:
        if c.is_file() or (c.is_dir() and any(c.iterdir())):
            return c
    if _is_image_folder(root):
        return root
    looked = ", ".join(str(c) for c in candidates)
    raise UserError(f"CIFAR-10 {split} set not found in {root} (looked for {looked})")


def _is_image_folder(p: Path) -> bool:
    return p.is_dir() and any(
        d.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir()) for d in p.iterdir()
    )


ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
"""What reading a damaged or truncated tar.gz raises (gzip: EOFError, zlib.error, BadGzipFile)."""


def read_encoded(src: Path) -> tuple[list[bytes], list[str], list[str]]:
    """Encoded image files of a tar.gz or an ImageFolder: (bytes, class names, file names), sorted."""
    items: list[tuple[str, str, bytes]] = []
    if src.is_file():
        try:
            with tarfile.open(src, "r:*") as tf:
                for m in tf:
                    pp = PurePosixPath(m.name)
                    if m.isfile() and pp.suffix.lower() in IMAGE_EXTENSIONS and len(pp.parts) >= 2:
                        f = tf.extractfile(m)
                        assert f is not None
                        items.append((pp.parts[-2], pp.name, f.read()))
        except ARCHIVE_ERRORS as e:
            raise UserError(f"cannot read the image archive {src} (damaged or truncated?): "
                            f"{type(e).__name__}: {e}") from None
    else:
        try:
            for d in sorted(p for p in src.iterdir() if p.is_dir()):
                for f in sorted(d.iterdir()):
                    if f.suffix.lower() in IMAGE_EXTENSIONS:
                        items.append((d.name, f.name, f.read_bytes()))
        except OSError as e:
            raise UserError(f"cannot read the image folder {src}: {e.strerror or e}"
                            f"{f' ({e.filename})' if e.filename else ''}") from None
    if not items:
        raise UserError(f"no images found in {src} (expected <class>/<image> entries)")
    items.sort(key=lambda t: (t[0], t[1]))
    return [t[2] for t in items], [t[0] for t in items], [t[1] for t in items]


def load_image(source: bytes | str | os.PathLike, what: str, mode: str | None = None):
    """A decoded PIL image (``mode``: converted to it) from bytes or a file. Its size is read from the header
    and checked against :data:`golden.limits.MAX_IMAGE_PIXELS` before the pixels are decoded; anything the
    decoder raises on a damaged or foreign file becomes a one-line UserError naming ``what``."""
    from PIL import Image

    src = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with Image.open(src) as img:
            limits.check_image_size(*img.size, what)
            img.load()
            return img.convert(mode) if mode is not None and img.mode != mode else img.copy()
    except UserError:
        raise
    except (MemoryError, Image.DecompressionBombError) as e:
        raise UserError(f"{what} is too large to decode ({type(e).__name__}); at most {limits.MAX_IMAGE_PIXELS:,} "
                        "pixels are allowed") from None
    except Exception as e:  # noqa: BLE001 - a third-party decoder on untrusted bytes: any failure is bad input
        raise UserError(f"{what} cannot be decoded as an image: {type(e).__name__}: "
                        f"{' '.join(str(e).split()) or 'no detail'}") from None


def _decode(blobs: list[bytes], names: list[str] | None = None) -> np.ndarray:
    arrs = [np.asarray(load_image(b, f"image {names[i] if names else i}", "RGB"), dtype=np.uint8)
            for i, b in enumerate(blobs)]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1:
        raise UserError(f"images have different sizes {sorted(shapes)[:3]}; expected one size")
    return np.stack(arrs)


def _cache_key(src: Path) -> str:
    st = src.stat()
    h = hashlib.sha1(f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
    return h[:12]


def _cifar_cache_path(src: Path, n: int | None = None) -> Path:
    """The decoded set's cache under ``build/data/``; ``n``: the cache of its ``n`` evenly spaced images alone."""
    stem = src.name.split(".")[0]
    stem = stem if stem.startswith("cifar10") else f"cifar10-{stem}"
    return build_dir("data") / f"{stem}-{_cache_key(src)}{'' if n is None else f'-n{n}'}.npz"


@lru_cache(maxsize=2)
def _encoded(src: Path) -> tuple[list[bytes], np.ndarray, tuple[str, ...], list[str]]:
    blobs, cls, names = read_encoded(src)
    classes = tuple(sorted(set(cls)))
    index = {c: i for i, c in enumerate(classes)}
    where = [f"{c}/{n} of {src}" for c, n in zip(cls, names, strict=True)]
    return blobs, np.array([index[c] for c in cls], dtype=np.int64), classes, where


CACHE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)
"""What reading a damaged, truncated or foreign ``.npz`` cache raises."""


def _read_cache(cache: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]] | None:
    """The cached split, or None (and the file removed) if it fails to read or is not what this code writes."""
    try:
        with np.load(cache, allow_pickle=False) as z:
            images, labels, classes = z["images"], z["labels"], tuple(str(c) for c in z["classes"])
        if images.dtype == np.uint8 and images.ndim == 4 and labels.shape == (len(images),) and classes:
            return images, labels, classes
    except CACHE_ERRORS:
        pass
    with contextlib.suppress(OSError):   # damaged: decoded again and rewritten
        cache.unlink()
    return None


@lru_cache(maxsize=2)
def _cifar_full(src: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    cache = _cifar_cache_path(src)
    if cache.is_file():
        cached = _read_cache(cache)
        if cached is not None:
            return cached
    blobs, labels, classes, where = _encoded(src)
    images = _decode(blobs, where)
    if len(images) >= CACHE_MIN_IMAGES:  # small sets decode in no time: no cache files for them
        with files.atomic_path(cache, "data cache") as tmp:
            np.savez(tmp, images=images, labels=labels, classes=np.array(classes))
    return images, labels, classes


def load_cifar10_u8(
    split: str = "test", n: int | None = None, data: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Raw CIFAR-10 ``split``: uint8 images [N, 32, 32, 3] (RGB), int64 labels [N], the class names.

    ``n`` takes that many images evenly spaced over the set (:func:`evenly_spaced`); None takes all.
    The whole split is decoded (and cached in ``build/data/``) only when all images are asked for or the
    cache already exists; a subset is decoded on its own and cached as that subset (``-n<N>.npz``: the 500
    calibration images of the training set are read from a 50,000-file archive otherwise, 4.5 s in every
    process that calibrates a CIFAR network).
    """
    src = find_cifar10(split, data)
    if n is None or _cifar_cache_path(src).is_file():
        images, labels, classes = _cifar_full(src)
        idx = evenly_spaced(len(images), n)
        return images[idx], labels[idx], classes
    cache = _cifar_cache_path(src, n)
    if cache.is_file():
        cached = _read_cache(cache)
        if cached is not None and len(cached[0]) <= n:
            return cached
    blobs, labels, classes, where = _encoded(src)
    idx = evenly_spaced(len(blobs), n)
    images = _decode([blobs[i] for i in idx], [where[i] for i in idx])
    if len(blobs) >= CACHE_MIN_IMAGES:    # a subset of a large set: cached (small sets decode in no time)
        with files.atomic_path(cache, "data cache") as tmp:
            np.savez(tmp, images=images, labels=labels[idx], classes=np.array(classes))
    return images, labels[idx], classes


def normalize_imagenet(images_u8: np.ndarray) -> np.ndarray:
    """uint8 RGB ``[N, H, W, 3]`` to float32 ``[N, 3, H, W]``: ``(x / 255 - mean) / std`` (ImageNet stats)."""
    x = np.asarray(images_u8, dtype=np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, dtype=np.float32)) / np.array(IMAGENET_STD, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def evenly_spaced(total: int, n: int | None) -> np.ndarray:
    """``n`` indices spread evenly over ``range(total)`` (all when ``n`` is None or >= total).

    The CIFAR-10 sets are stored class by class, so a prefix would hold one class only; taking every
    ``total / n``-th image gives every class the same share.
    """
    if n is None or n >= total:
        return np.arange(total)
    if n <= 0:
        raise UserError(f"image count must be positive, got {n}")
    return (np.arange(n) * total) // n


def load_cifar10(
    split: str = "test", n: int | None = None, data: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` normalised for the CIFAR ResNets: ``x`` float32 [N, 3, 32, 32], ``y`` int64.

    ``n`` takes that many images evenly spaced over the (class-ordered) set; None takes all.
    """
    images, labels, _ = load_cifar10_u8(split, n, data)
    return normalize_imagenet(images), labels


# ---- photos -------------------------------------------------------------------------------------------


def resize_center_crop(img, size: int):
    """The ImageNet evaluation transform on a PIL image: resize the short side to ``size * 256 / 224``
    (bilinear), then crop the central ``size x size``."""
    from PIL import Image

    short = round(size * 256 / 224)
    w, h = img.size
    scale = short / min(w, h)
    img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def load_photos_for(input_shape: tuple[int, int, int], names: tuple[str, ...] | list[str] = PHOTO_NAMES
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The sample photos as inputs of a network without a data set of its own (calibration of a user
    model): resized (short side, then centre crop) to its H x W; 3 channels: RGB with ImageNet
    normalisation; any other count: the luminance repeated, normalised with mean 0.449, std 0.226."""
    from PIL import Image

    c, h, w = input_shape
    x, y = load_photos(names, max(h, w))
    if (h, w) != (x.shape[2], x.shape[3]):
        u8 = np.clip(np.rint((x.transpose(0, 2, 3, 1) * IMAGENET_STD + IMAGENET_MEAN) * 255), 0, 255).astype(np.uint8)
        u8 = np.stack([np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR)) for a in u8])
        x = normalize_imagenet(u8)
    if c != 3:
        rgb = x * np.array(IMAGENET_STD, np.float32)[:, None, None] + np.array(IMAGENET_MEAN, np.float32)[:, None, None]
        gray = rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114
        x = np.repeat(((gray - 0.449) / 0.226)[:, None], c, axis=1).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), y


def load_photos(
    names: tuple[str, ...] | list[str] = PHOTO_NAMES, size: int = 224
) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's sample photos for the ImageNet nets: float32 [N, 3, size, size], labels all -1.

    Each photo: to RGB, shorter side resized to ``round(size * 256 / 224)`` (bilinear), centre crop
    ``size`` x ``size``, ImageNet normalisation.
    """
    import skimage.data
    from PIL import Image

    out = []
    for name in names:
        fn = getattr(skimage.data, name, None)
        if fn is None or name.startswith("_") or not callable(fn):
            raise UserError(f"unknown photo {name!r}; allowed: {', '.join(PHOTO_NAMES)}")
        a = np.asarray(fn())
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        img = Image.fromarray(a.astype(np.uint8)).convert("RGB")
        out.append(np.asarray(resize_center_crop(img, size), dtype=np.uint8))
    return normalize_imagenet(np.stack(out)), np.full(len(out), -1, dtype=np.int64)
