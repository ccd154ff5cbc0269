"""The encoding study: how far each split's feature can be compressed for at most 1% top-1 loss.

For a network, a labelled data set and every split point (:mod:`golden.splits`):

* ``float_top1`` (the float32 network) and ``int16_top1`` (the int16 engine network,
  :func:`golden.quantize.run_fast`, bit-exact with the integer reference);
* the **lossless** ratio: raw bytes / :func:`golden.lossless.encoded_size` (the ESLL container with its
  18-byte header; default table, which the RTL encoder holds; nothing else to send);
* for **every QF 1..100** the lossy ratio: raw bytes / transmitted bytes (side information included);
* **top-1 after the JPEG round trip** at the QFs a coarse-to-fine search visits (below), and the
  largest ratio within ``budget`` (1%) absolute top-1 loss against the int16 network, with its QF.

Ratios are ``raw bytes per image / mean transmitted bytes per image`` over the images (the radio's
average load). Every size is exact and per image, from the bit-exact software reference encoders (the
RTL's golden), never an estimate.

What is encoded
---------------
* **Hidden features** (every split but ``input``): the int16 map the edge engine computes (the int16
  network up to the split), raw = 16 bits per value (:attr:`golden.splits.Split.feature_bytes`).
  Lossy: :func:`golden.featpack.pack` (8-bit scaling, tiled mosaic) then baseline JPEG, grayscale,
  standard (Annex K) Huffman tables (what the RTL encoder is loaded with). An N-vector (the output of a
  global pool or an FC layer) is laid out as ``ceil(N / 64)`` channels of 8x8 = blocks of 64 consecutive
  values (as :mod:`model.system` counts the encoder's samples), padded with zeros for the lossless coder
  and by repeating the last value for JPEG (a flat tail costs no AC coefficients).
* **The input split** sends the camera image: 8 bits per sample (raw = C x H x W bytes, as
  :func:`model.system.raw_bytes` counts it), recovered from the normalised input by inverting the
  network's normalisation (:class:`InputNorm`; exact for CIFAR-10, whose images are 8-bit files). Lossless:
  the uint8 ``[C, H, W]`` map; lossy: a colour (4:4:4, as :mod:`model.system` assumes) or grayscale JPEG.

Transmitted bytes (``container``)
    ``"scan"`` (default): side information (:class:`golden.featpack.SideInfo`, 19 bytes per layer scaling,
    15 + 4 C per channel, CRC-32 included; 15 bytes of shape, QF and CRC-32 for the camera image) + the
    entropy-coded segment (padded, byte-stuffed). The host rebuilds the JFIF header from the side information:
    this is what a bare radio link sends (``docs/bitstream.md``). ``"jfif"``: side information + the whole JFIF file
    (~330 bytes of headers, which would dominate the small CIFAR/digits features).

The host side (``host``)
    The received map is decoded with the reference decoder's reconstruct path
    (:func:`golden.jpeg.reconstruct`: the same dequantisation and float IDCT as
    :func:`golden.jpeg.decode_jpeg`, without re-parsing the bytes; the tests check both agree), unpacked
    and dequantised back to int16 (:func:`golden.featpack.unpack`), i.e. exactly the map the host gets.
    ``"float"`` (default): the host part runs in float32 on ``int16 * 2**-frac`` -- the host is a
    general-purpose machine, 10-20x faster than the int16 model on a CPU (what makes all 10,000 CIFAR test
    images affordable), and it is what split fine-tuning trains. With exact features it agrees with the
    int16 network to a few hundredths of a percent (``top1_uncoded`` per split shows it).
    ``"int16"``: the host part runs the int16 network (:func:`golden.quantize.run_fast`) from the split.

Coarse-to-fine QF search
    Sizes for all 100 QFs are cheap (no decoding, no host); accuracy is not. Top-1 is evaluated on all
    images at the :data:`COARSE_QFS`, from 100 down, stopping below the first one that loses more than
    ``stop_loss`` (10%): lower QFs could not move the answer. The answer is the smallest evaluated QF at
    and above which every evaluated QF is within budget (robust to a lucky low QF); the interval between
    it and the failing QF below is then bisected until the two are adjacent QFs. So 6-8 + 3-4 evaluations
    instead of 100.

    On many images (``search_images``; ``edgesplit accuracy --search-images``, default 2,000), that search runs
    on that many evenly spaced images, against the reference shifted by the uncoded host's top-1 on them (a
    paired estimate), and its answer is only the starting point on all images: from it the search gallops down
    (1, 2, 4, ... QFs) while the QF passes on all images, or up while it fails, then bisects until a passing QF
    and the failing one below it are adjacent. The answer is again :func:`budget_point` over the QFs evaluated
    on all images (``evaluated``; the subset's points are under ``searched``): 2 evaluations on all images when
    the subset's answer holds, a few more when it is off, instead of 10-12.
    What it gives up: the coarse QFs above the answer are checked on the subset only, so a lucky low QF could
    be taken where a coarse QF above it fails on all images but not on the subset.

    The size curve over all 100 QFs is computed on ``curve_images`` evenly spaced images
    (default 500: the mean size of a feature is known to a fraction of a percent from them); the sizes at
    the evaluated QFs, and so at the budget, use all images.

Batching: each image is packed and DCT-transformed once (:func:`golden.jpeg.forward_dct`; the DCT does
not depend on QF) and the coefficients cached as int16. Per QF, a chunk of images is quantized in one
call (:func:`golden.jpeg.quantize_image`) and sized in one pass through the golden entropy coder
(:func:`golden.entropy.run_length_symbols`, :func:`~golden.entropy.huffman_encode`,
:func:`~golden.entropy.pack_bits`), each image's stream padded to a byte and its stuffed bytes counted
within its own byte range: the same bytes as encoding the images one by one (tested).

Networks and data
-----------------
A network is a built-in name or a :class:`golden.network.Network` (``--net PATH.onnx`` or ``PATH.py:FACTORY``,
resolved once by the command; ``--weights FILE`` a state_dict for built-in and ``.py`` networks). The
built-ins keep their data sets: digits (scikit-learn), CIFAR-10 (the shared tarballs), and for the ImageNet
networks an image folder given with ``--data``. A user network has no default data set: ``--data`` is an
image folder or a ``.tar.gz`` laid out ``<class>/<image>``, optionally under ``train/`` and ``test/`` (the shared
CIFAR-10 tarballs are exactly that; a folder holding ``*train.tar.gz`` and ``*test.tar.gz`` works too); class
index = position of the class folder in sorted order. Images are normalised with ``--mean`` / ``--std`` (per
channel, on [0, 1]; default ImageNet's for 3 channels, 0.449 / 0.226 otherwise, as the calibration photos;
the built-ins keep their own) and sized to the network's input: ``--resize N`` scales the shorter side to N
and centre-crops H x W; without it 224 x 224 inputs take the ImageNet rule (shorter side 256, centre crop)
and other sizes are resized straight to H x W. A user network's int16 twin is calibrated on at most
:data:`USER_CALIBRATION` of the command's images (evenly spaced; the training images where the command has
them), normalised the same way.

Python API
----------
* :func:`study_net` -- a network (built-in or :class:`golden.network.Network`), int16 edge, any images
  ``(x, y)`` or a DataLoader; :func:`study_model` -- any ``torch.nn.Module`` given as a list of
  :class:`SplitPoint` (name, edge module, host module); its features are quantized to int16 with a
  power-of-two scale per split (calibrated on the study's images), and the budget is against the float model.
* :func:`load_dataset` -- digits, CIFAR-10 (shared tarballs, or an ImageFolder tree), any ImageFolder or
  tar.gz; :func:`input_norm`, :func:`parse_channels`.
* :func:`write_study` -- ``build/accuracy/<net>.json`` and the two plots; :func:`format_table`.
* :class:`SplitCodec` -- one split's features and their encodings (also used by :mod:`model.finetune`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from torch import nn

from golden import data as D
from golden import entropy, featpack, files, jpeg, limits, lossless
from golden import fixedpoint as fp
from golden.errors import UserError
from golden.nets import predict as float_predict
from golden.network import INPUT, Network, network_of
from golden.network import network as as_network
from golden.quantize import QNet, calibration_images, default_qnet, quantize_net, run_fast

SCHEMA_VERSION = 1
BUDGET = 0.01
QFS = tuple(range(jpeg.QF_MIN, jpeg.QF_MAX + 1))
COARSE_QFS = (1, 5, 10, 20, 35, 50, 75, 100)
"""QFs where top-1 is always evaluated; the search bisects between them."""
CONTAINERS = ("scan", "jfif")
HOSTS = ("float", "int16")
DEFAULT_MODE = "layer"
"""Feature scaling of the JPEG path. Measured (ResNet-20, digits; see the module's report): per layer is the
better one at equal accuracy -- per channel pays 4 bytes of side information per channel and gains too
little precision for it."""
DEFAULT_CONTAINER = "scan"
DEFAULT_CURVE_IMAGES = 500
DEFAULT_SEARCH_IMAGES = 2000
"""``edgesplit accuracy``'s default ``--search-images`` (a study of at most this many images searches on all)."""
VECTOR_BLOCK = 64
OUT_DIR = D.REPO_ROOT / "build" / "accuracy"
USER_CALIBRATION = 500
"""Images a user network's int16 twin is calibrated on (at most; evenly spaced over the command's images)."""
SPLITS = ("train", "test")
SPILL_BYTES = 1 << 30
"""Features of the splits under study are kept in memory up to this many bytes, then spilled to disk."""


# ---- configuration, progress -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyConfig:
    """How the study encodes and searches (module docstring). ``curve_images`` None = all images;
    ``search_images`` None = the whole search on all images (else the coarse search runs on that many evenly
    spaced images when there are more, and only the last steps on all of them)."""

    budget: float = BUDGET
    mode: str = DEFAULT_MODE
    container: str = DEFAULT_CONTAINER
    host: str = "float"
    lossless_table: str = "default"
    coarse_qfs: tuple[int, ...] = COARSE_QFS
    curve_images: int | None = DEFAULT_CURVE_IMAGES
    stop_loss: float = 0.10
    chunk: int = 500
    batch_size: int = 500
    search_images: int | None = None

    def check(self) -> StudyConfig:
        if not 0 < self.budget < 1:
            raise UserError(f"accuracy budget {self.budget!r} must be in (0, 1) (0.01 = 1% top-1)")
        if self.mode not in featpack.MODES:
            raise UserError(f"feature scaling mode {self.mode!r} is not one of {', '.join(featpack.MODES)}")
        if self.container not in CONTAINERS:
            raise UserError(f"container {self.container!r} is not one of {', '.join(CONTAINERS)}")
        if self.host not in HOSTS:
            raise UserError(f"host precision {self.host!r} is not one of {', '.join(HOSTS)}")
        if self.lossless_table not in lossless.TABLE_CHOICES:
            raise UserError(f"lossless table {self.lossless_table!r} is not one of "
                            f"{', '.join(lossless.TABLE_CHOICES)}")
        if not self.coarse_qfs:
            raise UserError("the coarse QF list is empty")
        for q in self.coarse_qfs:
            jpeg.check_qf(q)
        if not self.stop_loss >= self.budget:
            raise UserError(f"stop loss {self.stop_loss!r} must be at least the budget {self.budget}")
        if self.curve_images is not None and self.curve_images < 1:
            raise UserError(f"curve image count {self.curve_images} must be positive")
        if self.search_images is not None and self.search_images < 1:
            raise UserError(f"search image count {self.search_images} must be positive")
        if self.chunk < 1 or self.batch_size < 1:
            raise UserError("chunk and batch sizes must be positive")
        return self


class Progress:
    """A one-line progress report on stderr (``\\r``-updated on a terminal, a line every 10 s otherwise)."""

    def __init__(self, label: str, enabled: bool = True, stream=None) -> None:
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self._last = -1e9
        self._width = 0

    def update(self, message: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < (0.2 if self.tty else 10.0):
            return
        self._last = now
        line = f"{self.label}: {message} [{now - self.start:.0f} s]"
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self, message: str = "done") -> None:
        if not self.enabled:
            return
        self.update(message, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _quiet() -> Progress:
    return Progress("", enabled=False)


# ---- data ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputNorm:
    """The input normalisation ``x = (u8 / 255 - mean) / std`` per channel, and its inverse (the camera's
    8-bit image, which the ``input`` split sends)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_u8(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Float ``[N, C, H, W]`` -> uint8 ``[N, H, W, C]`` (round to nearest, clamp)."""
        x = _np(x).astype(np.float64)
        m = np.asarray(self.mean, dtype=np.float64).reshape(1, -1, 1, 1)
        s = np.asarray(self.std, dtype=np.float64).reshape(1, -1, 1, 1)
        u = np.clip(np.floor((x * s + m) * 255.0 + 0.5), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(u.transpose(0, 2, 3, 1))

    def from_u8(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``[N, H, W, C]`` -> float32 ``[N, C, H, W]`` (float32 arithmetic, as
        :func:`golden.data.normalize_imagenet`, so CIFAR-10 round-trips bit for bit)."""
        x = np.asarray(images, dtype=np.float32) / 255.0
        x = (x - np.array(self.mean, dtype=np.float32)) / np.array(self.std, dtype=np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


IMAGENET_NORM = InputNorm(D.IMAGENET_MEAN, D.IMAGENET_STD)
NET_NORMS: dict[str, InputNorm] = {"cifar10": IMAGENET_NORM, "imagenet": IMAGENET_NORM,
                                   "digits": InputNorm((0.5,), (0.5,))}
"""Input normalisation per data set (:mod:`golden.data`)."""
GRAY_MEAN, GRAY_STD = 0.449, 0.226
"""The default normalisation of a user network whose input is not 3 channels (as golden.data.load_photos_for)."""


def _np(x: np.ndarray | torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _check_limit(limit: int | None) -> int | None:
    if limit is not None and not limits.IMAGE_COUNT.ok(limit):
        raise UserError(f"image limit {limit!r} must be a positive number, at most {limits.IMAGE_COUNT.hi:,}")
    return None if limit is None else int(limit)


def parse_channels(text: str | Sequence[float] | None, what: str = "--mean") -> tuple[float, ...] | None:
    """``"R,G,B"`` (or one value for every channel) as floats; None passes through; UserError otherwise."""
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        vals = tuple(float(v) for v in parts)
    except (TypeError, ValueError):
        vals = ()
    if not vals or not all(np.isfinite(vals)):
        raise UserError(f"{what} {text!r} is not a comma-separated list of numbers (e.g. 0.485,0.456,0.406)")
    return vals


def input_norm(net: str | Network, mean: Sequence[float] | str | None = None,
               std: Sequence[float] | str | None = None) -> InputNorm:
    """The input normalisation of ``net``: its data set's (built-ins) or, for a user network, ImageNet's
    (3 channels) or :data:`GRAY_MEAN` / :data:`GRAY_STD` (other channel counts); ``mean`` / ``std`` override
    (one value per input channel, or one for all)."""
    nw = as_network(net)
    c = nw.input_shape[0]
    if nw.dataset in NET_NORMS:
        base = NET_NORMS[nw.dataset]
    else:
        base = IMAGENET_NORM if c == 3 else InputNorm((GRAY_MEAN,) * c, (GRAY_STD,) * c)
    if mean is None and std is None:
        return base
    out = []
    for given, default, what in ((mean, base.mean, "--mean"), (std, base.std, "--std")):
        v = parse_channels(given, what) if given is not None else tuple(default)
        if len(v) == 1:
            v = v * c
        if len(v) != c:
            raise UserError(f"{what} has {len(v)} values; {nw.name} takes {c} input channels (give {c} or one)")
        if what == "--std" and min(v) <= 0:
            raise UserError(f"--std {','.join(f'{x:g}' for x in v)} must be positive")
        bound = limits.NORM_STD if what == "--std" else limits.NORM_MEAN
        if given is not None and not all(bound.ok(x) for x in v):
            raise UserError(f"{what} {','.join(f'{x:g}' for x in v)} is outside the allowed range {bound.text()} "
                            "(per channel, on pixel values scaled to [0, 1])")
        out.append(tuple(float(x) for x in v))
    return InputNorm(out[0], out[1])


def no_data_error(net: Network) -> UserError:
    return UserError(f"network {net.name} ({net.source}) has no default data set: give --data, an image folder or "
                     f"a .tar.gz of <class>/<image> (optionally under train/ and test/)")


def check_resize(resize: int | None, input_shape: tuple[int, int, int]) -> int | None:
    """``--resize N``: a whole number of pixels, at least the input's height and width."""
    if resize is None:
        return None
    _, h, w = input_shape
    if not limits.RESIZE_PX.ok(resize) or int(resize) < max(h, w):
        raise UserError(f"--resize {resize!r} must be a whole number of pixels >= the input's {h}x{w} and <= "
                        f"{limits.RESIZE_PX.hi:g} (the shorter side is scaled to it, then the centre {h}x{w} cropped)")
    return int(resize)


def load_dataset(net: str | Network, data: str | os.PathLike | None = None, split: str = "test",
                 limit: int | None = None, norm: InputNorm | None = None,
                 resize: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labelled images for ``net``: float32 ``x [N, C, H, W]`` (normalised for it) and int64 ``y``.

    ``data`` None: the digits split (scikit-learn) or CIFAR-10 from the shared data folder
    (:func:`golden.data.data_root`); a user network has none (UserError). Otherwise a data folder holding the
    shared tarballs (or ``*<split>.tar.gz``), a tar.gz of ``[<split>/]<class>/<image>`` entries, or an
    ImageFolder-style tree (``<class>/<image>``, or ``<split>/<class>/<image>``); class index = position of the
    class folder in sorted order. ``norm`` (default :func:`input_norm`) and ``resize`` (module docstring):
    given for a CIFAR-10 built-in, its images are read as such a tar.gz too. ``limit``: that many images evenly
    spaced over the (class-ordered) set.
    """
    nw = as_network(net)
    limit = _check_limit(limit)
    if split not in SPLITS:
        raise UserError(f"unknown data split {split!r}; allowed: train, test")
    resize = check_resize(resize, nw.input_shape)
    custom = norm is not None or resize is not None
    if nw.dataset == "cifar10" and not custom:
        x, y = D.load_cifar10(split, limit, data)
    elif nw.dataset == "cifar10":
        x, y = load_image_folder(D.find_cifar10(split, data), nw.input_shape, norm or input_norm(nw), split, limit,
                                 resize)
    elif data is None and nw.dataset == "digits":
        if custom:
            raise UserError("--mean, --std and --resize apply to images given with --data; the digits from "
                            "scikit-learn come preprocessed")
        x, y = D.load_digits(split)
        idx = D.evenly_spaced(len(x), limit)
        x, y = x[idx], y[idx]
    elif data is None and nw.dataset is None:
        raise no_data_error(nw)
    elif data is None:
        raise UserError(f"{nw.name} needs labelled images: pass a data folder (an ImageFolder-style tree "
                        "<class>/<image>, or a tar.gz of one)")
    else:
        x, y = load_image_folder(data, nw.input_shape, norm or input_norm(nw), split, limit, resize)
    if tuple(x.shape[1:]) != tuple(nw.input_shape):
        raise UserError(f"images of shape {tuple(x.shape[1:])} do not fit {nw.name}, which takes "
                        f"{tuple(nw.input_shape)}")
    if len(x) == 0:
        raise UserError(f"no images found for {nw.name} ({split} split)")
    return x, y


def _folder_source(path: str | os.PathLike, split: str) -> Path:
    root = D.data_root(path)
    if root.is_dir():
        for cand in (root / split, root / f"{split}.tar.gz"):
            if cand.is_file() or (cand.is_dir() and any(cand.iterdir())):
                return cand
        tars = sorted(p for p in root.glob(f"*{split}.tar.gz") if p.is_file())
        if len(tars) == 1:   # e.g. the shared cifar10/ folder: cifar10-train.tar.gz, cifar10-test.tar.gz
            return tars[0]
    return root


@lru_cache(maxsize=2)
def _tar_images(path: str, mtime_ns: int) -> tuple[tuple[str | None, str, str, bytes], ...]:
    """``(split or None, class, file name, bytes)`` of every image of a tar.gz (``[<split>/]<class>/<image>``)."""
    items = []
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                pp = PurePosixPath(m.name)
                if m.isfile() and pp.suffix.lower() in D.IMAGE_EXTENSIONS and len(pp.parts) >= 2:
                    f = tf.extractfile(m)
                    assert f is not None
                    split = pp.parts[-3] if len(pp.parts) >= 3 and pp.parts[-3] in SPLITS else None
                    items.append((split, pp.parts[-2], pp.name, f.read()))
    except D.ARCHIVE_ERRORS as e:
        raise UserError(f"cannot read the image archive {path} (damaged or truncated?): {type(e).__name__}: "
                        f"{e}") from None
    return tuple(items)


def _image_source(path: str | os.PathLike, split: str) -> tuple[Path, str | None]:
    """The file or folder ``split`` is read from, and the ``<split>/`` prefix to keep inside a tar.gz that has
    ``train/`` and ``test/`` folders (None: every image of it)."""
    src = _folder_source(path, split)
    if src.is_file():
        have = {t[0] for t in _tar_images(str(src), src.stat().st_mtime_ns)} - {None}
        if have:
            if split not in have:
                raise UserError(f"the image archive {src} has no {split}/ images (it has "
                                f"{', '.join(f'{h}/' for h in sorted(have))})")
            return src, split
    return src, None


def _read_images(src: Path, keep: str | None) -> tuple[list[bytes], list[str]]:
    if not src.is_file():
        blobs, cls, _ = D.read_encoded(src)
        return blobs, cls
    items = [t for t in _tar_images(str(src), src.stat().st_mtime_ns) if keep is None or t[0] == keep]
    if not items:
        raise UserError(f"no images found in {src} (expected <class>/<image> entries)")
    items.sort(key=lambda t: (t[1], t[2]))
    return [t[3] for t in items], [t[1] for t in items]


def data_source(net: str | Network, data: str | os.PathLike | None, split: str) -> str | None:
    """Where :func:`load_dataset` reads ``split`` from: a file or folder, ``#<split>`` appended for the part of
    a tar.gz holding both splits (None: scikit-learn's digits, or a built-in with no data set given)."""
    nw = as_network(net)
    if nw.dataset == "cifar10":
        return str(D.find_cifar10(split, data).resolve())
    if data is None:
        if nw.dataset is None:
            raise no_data_error(nw)
        return None
    src, keep = _image_source(data, split)
    return str(src.resolve()) + (f"#{keep}" if keep else "")


def _resize_crop(img: Any, short: int, h: int, w: int) -> Any:
    """The shorter side scaled to ``short`` (bilinear), then the centre ``h x w`` cropped."""
    from PIL import Image

    iw, ih = img.size
    scale = short / min(iw, ih)
    img = img.resize((max(short, round(iw * scale)), max(short, round(ih * scale))), Image.BILINEAR)
    iw, ih = img.size
    left, top = (iw - w) // 2, (ih - h) // 2
    return img.crop((left, top, left + w, top + h))


def load_image_folder(path: str | os.PathLike, input_shape: tuple[int, int, int], norm: InputNorm,
                      split: str = "test", limit: int | None = None,
                      resize: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """An ImageFolder tree or tar.gz (``[<split>/]<class>/<image>``) as normalised float images, sized to
    ``input_shape`` (``resize``: module docstring)."""
    from PIL import Image

    c, h, w = input_shape
    if c not in (1, 3):
        raise UserError(f"image data gives 1 (gray) or 3 (RGB) channels; the network takes {c}")
    resize = check_resize(resize, input_shape)
    blobs, cls = _read_images(*_image_source(path, split))
    classes = sorted(set(cls))
    labels = np.array([classes.index(c) for c in cls], dtype=np.int64)
    idx = D.evenly_spaced(len(blobs), _check_limit(limit))
    out = []
    for i in idx:
        img = D.load_image(blobs[i], f"image {i} (class {cls[i]}) of {path}", "L" if c == 1 else "RGB")
        if resize is not None:
            img = _resize_crop(img, resize, h, w)
        elif (h, w) == (224, 224):
            img = D.resize_center_crop(img, w)
        elif img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        a = np.asarray(img, dtype=np.uint8)
        out.append(a[:, :, None] if a.ndim == 2 else a)
    return norm.from_u8(np.stack(out)), labels[idx]


def materialize(data: Any, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` numpy arrays from a tuple of arrays/tensors or an iterable of ``(x, y, ...)`` batches
    (a ``torch.utils.data.DataLoader``); at most ``limit`` images (the first ones of a loader)."""
    limit = _check_limit(limit)
    if isinstance(data, tuple) and len(data) == 2 and not isinstance(data[0], tuple):
        x, y = _np(data[0]), _np(data[1])
        if limit is not None:
            idx = D.evenly_spaced(len(x), limit)
            x, y = x[idx], y[idx]
    else:
        xs, ys, n = [], [], 0
        for batch in data:
            xb, yb = _np(batch[0]), _np(batch[1])
            xs.append(xb)
            ys.append(yb)
            n += len(xb)
            if limit is not None and n >= limit:
                break
        if not xs:
            raise UserError("the data loader yielded no images")
        x, y = np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]
    if len(x) == 0:
        raise UserError("no images to study")
    if len(x) != len(y):
        raise UserError(f"{len(x)} images but {len(y)} labels")
    return x.astype(np.float32, copy=False), y.astype(np.int64, copy=False)


# ---- feature layout --------------------------------------------------------------------------------------------


def to_maps(values: np.ndarray, pad: str = "zero") -> np.ndarray:
    """Per-image features ``[N, ...]`` -> ``[N, C, H, W]`` maps: 3-D features as they are, an N-vector as
    ``ceil(N / 64)`` 8x8 channels of consecutive values (``pad`` "zero" or "edge": repeat the last value)."""
    v = np.asarray(values)
    if v.ndim == 4:
        return v
    if v.ndim != 2:
        raise UserError(f"features of shape {v.shape[1:]} are neither C x H x W maps nor vectors")
    n = v.shape[1]
    nb = -(-n // VECTOR_BLOCK)
    out = np.empty((len(v), nb * VECTOR_BLOCK), dtype=v.dtype)
    out[:, :n] = v
    out[:, n:] = 0 if pad == "zero" else v[:, n - 1 : n]
    return out.reshape(len(v), nb, 8, 8)


def from_maps(maps: np.ndarray, tensor_shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_maps` for features of ``tensor_shape``."""
    if len(tensor_shape) == 3:
        return maps
    return maps.reshape(len(maps), -1)[:, : tensor_shape[0]]


# ---- one split's codec -------------------------------------------------------------------------------------------


def _chunks(idx: np.ndarray, size: int) -> Iterable[np.ndarray]:
    for i in range(0, len(idx), size):
        yield idx[i : i + size]


def scan_bytes(qimg: jpeg.QuantizedImage, n: int, pattern: np.ndarray) -> np.ndarray:
    """Exact entropy-coded segment bytes (padded to a byte, 0xFF-stuffed), per image, of ``n`` images
    quantized together: ``qimg.zz`` holds their blocks one image after another, each image's blocks with
    components ``pattern``. Same bytes as :func:`golden.jpeg.encode_scan` per image (standard tables): the
    DC predictor restarts per image and component, each image's bits are padded with 1-bits to a byte
    before the next image starts, and stuffing is counted within each image's bytes."""
    zz = qimg.zz
    per = len(pattern)
    dc = zz[:, 0].reshape(n, per).astype(np.int64)
    diff = np.empty_like(dc)
    for c in np.unique(pattern):
        cols = np.flatnonzero(pattern == c)
        diff[:, cols] = np.diff(dc[:, cols], axis=1, prepend=0)
    rls = entropy.run_length_symbols(zz, diff.reshape(-1))
    dc_tables, ac_tables = jpeg.huffman_tables(qimg, optimize=False)
    tset = np.tile((np.asarray(pattern) > 0).astype(np.int64), n)[rls.block]
    table_index = np.where(rls.kind == entropy.KIND_DC, tset, len(dc_tables) + tset)
    code, code_len = entropy.huffman_encode(rls.symbols(jpeg.JPEG_SIZE_FIELD_BITS), table_index,
                                            [*dc_tables, *ac_tables])
    extra, extra_len = entropy.extra_bits(rls.value, rls.size)
    words = (code << extra_len) | extra
    lengths = code_len + extra_len
    image = rls.block // per
    bits = np.bincount(image, weights=lengths, minlength=n).astype(np.int64)
    pad = (-bits) % 8
    nbytes = (bits + pad) // 8
    return nbytes + ff_bytes(words, lengths, image, nbytes)


def ff_bytes(words: np.ndarray, lengths: np.ndarray, image: np.ndarray, nbytes: np.ndarray) -> np.ndarray:
    """Per image, the 0xFF bytes of its stream (which stuffing doubles): ``words[i]`` (``lengths[i]`` bits, 1..32,
    MSB first) of image ``image[i]`` (non-decreasing) written one after another, each image padded with 1-bits
    to its ``nbytes``, the images one after another from a byte boundary. The same count as
    :func:`golden.entropy.pack_bits` of the padded streams and counting 0xFF bytes, without packing: a byte is
    0xFF exactly when no word puts a 0 bit into it (the padding is 1-bits), so only each word's 0 bits are
    placed, and the bytes they touch marked."""
    words = np.asarray(words, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(nbytes)
    first = np.cumsum(nbytes) - nbytes                       # each image's first byte
    within = np.cumsum(lengths) - lengths                    # bit offset in the concatenation without padding
    image_bit0 = np.zeros(n, dtype=np.int64)
    counts = np.bincount(image, minlength=n)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    image_bit0[has] = within[starts[has]]
    start = within - image_bit0[image] + 8 * first[image]   # bit position in the padded streams
    zeros = (~words) & ((np.int64(1) << lengths) - 1)        # the word's 0 bits
    placed = zeros << (40 - (start & 7) - lengths)           # in the 5 bytes from start >> 3
    byte0 = start >> 3
    total = int(nbytes.sum())
    bad = np.zeros(total + 5, dtype=bool)
    for j in range(5):
        hit = ((placed >> (32 - 8 * j)) & 0xFF) != 0
        bad[byte0[hit] + j] = True
    ff = np.concatenate([[0], np.cumsum(~bad[:total])])
    end = first + nbytes
    return ff[end] - ff[first]


class SplitCodec:
    """One split's per-image values and their exact encodings.

    ``values``: int16 features ``[N, *tensor_shape]`` (``kind="feature"``) or uint8 camera images
    ``[N, H, W, C]`` (``kind="image"``). Each image is packed (features) and DCT-transformed once; the
    coefficients are cached as int16. :meth:`jpeg` gives exact transmitted bytes per image at a QF and,
    on request, the decoded values (same dtype and shape as ``values``).
    """

    def __init__(self, values: np.ndarray, kind: str = "feature", mode: str = DEFAULT_MODE,
                 container: str = DEFAULT_CONTAINER, lossless_table: str = "default",
                 progress: Progress | None = None) -> None:
        if kind not in ("feature", "image"):
            raise ValueError(f"kind {kind!r}")
        self.kind = kind
        self.values = values
        self.n = len(values)
        self.mode = mode
        self.container = container
        self.lossless_table = lossless_table
        progress = progress or _quiet()
        if kind == "feature":
            self.tensor_shape = tuple(values.shape[1:])
            self.raw_bytes = int(np.prod(self.tensor_shape)) * 2
            maps = to_maps(values, pad="edge")
        else:
            self.tensor_shape = tuple(values.shape[1:])
            self.raw_bytes = int(np.prod(self.tensor_shape))
            maps = values
        coeffs = None
        offsets = scales = None
        side = None
        for i in range(self.n):
            if kind == "feature":
                mosaic, side_i = featpack.pack(maps[i], mode)
                if side is None:
                    side = side_i
                    offsets = np.empty((self.n, len(side_i.offsets)), dtype=np.float16)
                    scales = np.empty_like(offsets)
                offsets[i], scales[i] = side_i.offsets, side_i.scales
            else:
                img = maps[i]
                mosaic = img[:, :, 0] if img.shape[2] == 1 else img
            dct = jpeg.forward_dct(mosaic, "444")
            if coeffs is None:
                self.template = dct
                coeffs = np.empty((self.n, *dct.coeffs.shape), dtype=np.int16)
            coeffs[i] = dct.coeffs
            if i % 200 == 0:
                progress.update(f"DCT {i}/{self.n}")
        # zigzag order, the order the coder reads: quantizing in it needs no reordering per QF (exact: the
        # quantizer works per coefficient, so zigzag(quantize(c, Q)) == quantize(zigzag(c), zigzag(Q)))
        self.zz_coeffs = coeffs.reshape(self.n, -1, 64)[:, :, jpeg.ZIGZAG]
        self._coeff_max = int(np.abs(self.zz_coeffs).max(initial=0))
        self._luts: dict[int, np.ndarray] = {}
        self.side = side
        self.offsets, self.scales = offsets, scales
        self.pattern = self.template.component
        if kind == "feature":
            self.side_bytes = side.nbytes
        else:
            self.side_bytes = featpack.SIDE_INFO_FIXED_BYTES + featpack.CRC_BYTES if container == "scan" else 0
        q0 = self._quantize(50, np.arange(1))
        dc_t, ac_t = jpeg.huffman_tables(q0)
        t = self.template
        self.header_bytes = len(jpeg.jfif_header(t.height, t.width, t.sampling, q0.qtables, dc_t, ac_t)) + \
            len(jpeg.EOI)
        self._lossless: np.ndarray | None = None

    # -- lossless
    def lossless_bytes(self) -> np.ndarray:
        """ESLL container bytes per image (:func:`golden.lossless.encoded_size`)."""
        if self._lossless is None:
            if self.kind == "feature":
                maps = to_maps(self.values, pad="zero")
            else:
                maps = self.values.transpose(0, 3, 1, 2)
            self._lossless = np.array([lossless.encoded_size(m, self.lossless_table) for m in maps],
                                      dtype=np.int64)
        return self._lossless

    @property
    def coeffs(self) -> np.ndarray:
        """The DCT coefficients, natural order, int16 ``[N, blocks, 8, 8]`` (computed from the zigzag cache)."""
        return jpeg.unzigzag(self.zz_coeffs)

    # -- JPEG
    def _lut(self, qf: int) -> np.ndarray:
        """``lut[t, k, a]``: the quantized magnitude of a coefficient of magnitude ``a`` at zigzag position ``k``
        with table set ``t``'s table for ``qf``, int16, by :func:`golden.jpeg.quantize_int` itself."""
        lut = self._luts.get(qf)
        if lut is None:
            tables = jpeg.quant_tables(qf)[: 1 if self.template.n_components == 1 else 2]
            a = np.broadcast_to(np.arange(self._coeff_max + 1, dtype=np.int64)[:, None, None],
                                (self._coeff_max + 1, 8, 8))
            lut = np.stack([jpeg.zigzag(jpeg.quantize_int(a, t)).T for t in tables]).astype(np.int16)
            if len(self._luts) > 8:
                self._luts.clear()
            self._luts[qf] = lut
        return lut

    def _quantize(self, qf: int, idx: np.ndarray) -> jpeg.QuantizedImage:
        """Images ``idx`` quantized at ``qf``: the same ``zz`` as :func:`golden.jpeg.quantize_image` of their
        blocks (each coefficient's magnitude looked up in :meth:`_lut`, its sign kept)."""
        qf = jpeg.check_qf(qf)
        cz = self.zz_coeffs[idx].reshape(-1, 64)
        lut = self._lut(qf)
        flat = np.abs(cz).astype(np.int32) + np.arange(64, dtype=np.int32) * np.int32(lut.shape[2])
        if lut.shape[0] > 1:   # colour: the chrominance blocks take table set 1
            tset = np.tile((np.asarray(self.pattern) > 0).astype(np.int32), len(idx))
            flat += (tset * np.int32(64 * lut.shape[2]))[:, None]
        q = lut.reshape(-1)[flat]
        np.negative(q, out=q, where=cz < 0)
        luma, chroma = jpeg.quant_tables(qf)
        qtables = (luma,) if self.template.n_components == 1 else (luma, chroma)
        dct = dataclasses.replace(self.template, coeffs=np.zeros((0, 8, 8), dtype=np.int16),
                                  component=np.tile(self.pattern, len(idx)))
        return jpeg.QuantizedImage(dct=dct, qf=qf, qtables=qtables, zz=q)

    def jpeg(self, qf: int, idx: np.ndarray | None = None, decode: bool = False
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(transmitted bytes per image, decoded values or None)`` at ``qf`` for images ``idx``."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        qimg = self._quantize(jpeg.check_qf(qf), idx)
        body = scan_bytes(qimg, len(idx), self.pattern)
        if self.container == "jfif":
            body = body + self.header_bytes
        sizes = body + self.side_bytes
        if not decode:
            return sizes, None
        per = len(self.pattern)
        out = np.empty((len(idx), *self.tensor_shape), dtype=self.values.dtype)
        for k, i in enumerate(idx):
            qi = jpeg.QuantizedImage(dct=self.template, qf=qimg.qf, qtables=qimg.qtables,
                                     zz=qimg.zz[k * per : (k + 1) * per])
            pixels = jpeg.reconstruct(qi)
            if self.kind == "feature":
                side = dataclasses.replace(self.side, qf=qimg.qf, offsets=self.offsets[i], scales=self.scales[i])
                out[k] = from_maps(featpack.unpack(pixels, side)[None], self.tensor_shape)[0]
            else:
                out[k] = pixels.reshape(self.tensor_shape)
        return sizes, out

    def jpeg_sizes(self, qf: int, idx: np.ndarray | None = None, chunk: int = 500) -> np.ndarray:
        """Transmitted bytes per image at ``qf`` (chunked)."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        return np.concatenate([self.jpeg(qf, part)[0] for part in _chunks(idx, chunk)])

    def reference_bytes(self, i: int, qf: int) -> int:
        """Image ``i``'s transmitted bytes encoded alone by the reference encoders (for the tests)."""
        if self.kind == "feature":
            maps = to_maps(self.values[i : i + 1], pad="edge")[0]
            mosaic, side = featpack.pack(maps, self.mode, qf)
            return featpack.transmitted_bytes(side, jpeg.encode(mosaic, qf), self.container)
        img = self.values[i]
        enc = jpeg.encode(img[:, :, 0] if img.shape[2] == 1 else img, qf)
        return self.side_bytes + (len(enc.data) if self.container == "jfif" else len(enc.scan.data))

    def reference_decode(self, i: int, qf: int) -> np.ndarray:
        """Image ``i`` through the reference encoder and decoder (bytes and back; for the tests)."""
        if self.kind == "feature":
            maps = to_maps(self.values[i : i + 1], pad="edge")[0]
            side_b, jfif = featpack.encode_jpeg(maps, qf, self.mode)
            return from_maps(featpack.decode_jpeg(side_b, jfif)[None], self.tensor_shape)[0]
        img = self.values[i]
        pix = jpeg.decode_jpeg(jpeg.encode_jpeg(img[:, :, 0] if img.shape[2] == 1 else img, qf))
        return pix.reshape(self.tensor_shape)


# ---- split points ---------------------------------------------------------------------------------------------


@dataclass
class SplitPoint:
    """A named split of a model: ``edge`` (float input -> feature; None for the input split, which sends the
    camera image) and ``host`` (feature -> logits), both torch modules."""

    name: str
    edge: nn.Module | Callable[[torch.Tensor], torch.Tensor] | None
    host: nn.Module | Callable[[torch.Tensor], torch.Tensor]


@dataclass
class _Task:
    """One split to study: its values (int16 features or uint8 images) and the host's classifier."""

    name: str
    index: int
    kind: str
    values: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    meta: dict[str, Any]


def _logits_argmax(fn: Callable[[torch.Tensor], torch.Tensor], x: np.ndarray, batch: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(fn(torch.from_numpy(np.ascontiguousarray(x[i : i + batch]))).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def float_host_predictor(host: nn.Module | Callable, frac: int, batch: int = 500
                         ) -> Callable[[np.ndarray], np.ndarray]:
    """Predictions of a float host from int16 features with ``frac`` fractional bits."""
    scale = np.float32(2.0**-frac)

    def predict(values: np.ndarray) -> np.ndarray:
        return _logits_argmax(host, values.astype(np.float32) * scale, batch)

    return predict


def image_host_predictor(model: nn.Module | Callable, norm: InputNorm, batch: int = 500
                         ) -> Callable[[np.ndarray], np.ndarray]:
    """Predictions of a float model from uint8 camera images ``[N, H, W, C]``."""
    return lambda u8: _logits_argmax(model, norm.from_u8(u8), batch)


# ---- the search ---------------------------------------------------------------------------------------------


def budget_point(points: dict[int, float], reference: float, budget: float) -> int | None:
    """The smallest evaluated QF at and above which every evaluated QF loses at most ``budget`` top-1
    (``points``: QF -> top-1); None if the highest evaluated QF already loses more."""
    best = None
    for q in sorted(points, reverse=True):
        if reference - points[q] <= budget + 1e-12:
            best = q
        else:
            break
    return best


def _next_qf(points: dict[int, float], reference: float, budget: float) -> int | None:
    best = budget_point(points, reference, budget)
    if best is None:
        return None
    below = [q for q in points if q < best]
    if not below:
        return None
    lo = max(below)
    return None if best - lo <= 1 else (lo + best) // 2


def _search(evaluate: Callable[[int], None], points: dict[int, dict[str, float]], reference: float,
            config: StudyConfig) -> None:
    """The coarse-to-fine search (module docstring): ``evaluate(qf)`` fills ``points[qf]``."""
    for qf in sorted(set(config.coarse_qfs), reverse=True):
        evaluate(qf)
        if reference - points[qf]["top1"] > config.stop_loss:
            break  # lower coarse QFs cannot move the budget point; the curve has shown its knee
    while (q := _next_qf({k: v["top1"] for k, v in points.items()}, reference, config.budget)) is not None:
        evaluate(q)


def _refine(evaluate: Callable[[int], None], points: dict[int, dict[str, float]], reference: float,
            budget: float, start: int) -> None:
    """The search's last steps on all images, from the subset's answer ``start``: gallop (1, 2, 4, ... QFs)
    down while the lowest QF evaluated passes, or up while the highest fails, then bisect until a passing QF and
    the failing QF below it are adjacent (or QF 1 passes, or QF 100 fails). :func:`budget_point` of the result
    is then the answer, as for the whole search on all images; 2 evaluations when the subset was right."""
    evaluate(start)
    step = 1
    for _ in range(200):   # bounded: each step evaluates a new QF of 1..100
        top1 = {k: v["top1"] for k, v in points.items()}
        best = budget_point(top1, reference, budget)
        if best is None:   # the highest evaluated QF fails: look higher
            hi = max(top1)
            if hi == 100:
                return
            q = min(100, hi + step)
        elif not [k for k in top1 if k < best]:   # nothing evaluated below the passing QF: look lower
            if best == 1:
                return
            q = max(1, best - step)
        else:
            q = _next_qf(top1, reference, budget)
            if q is None:
                return
            step = 0
        evaluate(q)
        step = max(1, 2 * step)
    raise AssertionError("the refinement did not converge")  # pragma: no cover - at most 100 QFs


def study_split(task: _Task, y: np.ndarray, reference: float, config: StudyConfig,
                progress: Progress | None = None, codec: SplitCodec | None = None,
                cache: dict[int, dict[str, float]] | None = None, curve: bool = True) -> dict[str, Any]:
    """Lossless ratio, 100-QF size curve, coarse-to-fine top-1 search and the budget point of one split.

    ``codec``: a :class:`SplitCodec` of ``task.values`` to reuse; ``cache``: QF -> evaluated point, read and
    filled (a second search of the same task against another reference only evaluates new QFs);
    ``curve`` False skips the 100-QF size curve."""
    progress = progress or _quiet()
    t0 = time.monotonic()
    n = len(task.values)
    label = task.name
    codec = codec or SplitCodec(task.values, task.kind, config.mode, config.container, config.lossless_table,
                                progress=_Prefixed(progress, label))
    raw = codec.raw_bytes
    progress.update(f"{label}: lossless", force=True)
    ll = codec.lossless_bytes()
    all_idx = np.arange(n)
    ok_uncoded = np.zeros(n, dtype=bool)
    for part in _chunks(all_idx, config.chunk):
        ok_uncoded[part] = task.predict(task.values[part]) == y[part]
    top1_uncoded = int(ok_uncoded.sum()) / n

    def evaluate_on(qf: int, idx: np.ndarray, what: str) -> dict[str, float]:
        sizes, correct = [], 0
        for k, part in enumerate(_chunks(idx, config.chunk)):
            progress.update(f"{label}: QF {qf} top-1 {k * config.chunk}/{len(idx)}{what}")
            b, dec = codec.jpeg(qf, part, decode=True)
            sizes.append(b)
            correct += int((task.predict(dec) == y[part]).sum())
        mean = float(np.concatenate(sizes).mean())
        return {"qf": qf, "bytes": mean, "ratio": raw / mean, "top1": correct / len(idx)}

    evaluated: dict[int, dict[str, float]] = {}

    def evaluate(qf: int) -> None:
        if cache is not None and qf in cache:
            evaluated[qf] = cache[qf]
            return
        evaluated[qf] = evaluate_on(qf, all_idx, "")
        if cache is not None:
            cache[qf] = evaluated[qf]

    searched: dict[int, dict[str, float]] = {}
    if config.search_images is None or config.search_images >= n:
        _search(evaluate, evaluated, reference, config)
    else:
        # the coarse-to-fine search on an evenly spaced subset, against the reference shifted by what the
        # uncoded host gets on the subset rather than on all images (a paired estimate of each QF's loss);
        # then on all images from the subset's answer: see _refine
        sub = D.evenly_spaced(n, config.search_images)
        ref_sub = reference - top1_uncoded + float(ok_uncoded[sub].mean())
        what = f" (search on {len(sub)} of {n})"
        _search(lambda q: searched.__setitem__(q, evaluate_on(q, sub, what)), searched, ref_sub, config)
        start = budget_point({k: v["top1"] for k, v in searched.items()}, ref_sub, config.budget)
        _refine(evaluate, evaluated, reference, config.budget, 100 if start is None else start)
    best = budget_point({k: v["top1"] for k, v in evaluated.items()}, reference, config.budget)

    curve_idx = D.evenly_spaced(n, config.curve_images)
    curve_bytes = []
    for qf in QFS if curve else ():
        progress.update(f"{label}: size curve QF {qf}")
        if qf in evaluated and len(curve_idx) == n:
            curve_bytes.append(evaluated[qf]["bytes"])
        else:
            curve_bytes.append(float(codec.jpeg_sizes(qf, curve_idx, config.chunk).mean()))
    ll_mean = float(ll.mean())
    row: dict[str, Any] = {
        "name": task.name,
        "index": task.index,
        "kind": task.kind,
        **task.meta,
        "raw_bytes": raw,
        "images": n,
        "lossless_bytes": ll_mean,
        "lossless_ratio": raw / ll_mean,
        "top1_uncoded": top1_uncoded,
        "lossy_ratio_at_budget": evaluated[best]["ratio"] if best is not None else None,
        "qf_at_budget": best,
        "top1_at_budget": evaluated[best]["top1"] if best is not None else None,
        "bytes_at_budget": evaluated[best]["bytes"] if best is not None else None,
        "loss_at_budget": reference - evaluated[best]["top1"] if best is not None else None,
        "side_info_bytes": codec.side_bytes,
        "evaluated": [evaluated[q] for q in sorted(evaluated)],
        **({"searched": {"images": len(sub), "top1_uncoded": float(ok_uncoded[sub].mean()),
                         "points": [searched[q] for q in sorted(searched)]}} if searched else {}),
        "curve": {"qf": list(QFS), "bytes": curve_bytes, "ratio": [raw / b for b in curve_bytes],
                  "images": int(len(curve_idx))} if curve else None,
        "seconds": round(time.monotonic() - t0, 1),
    }
    qtxt = f"QF {best}, {row['lossy_ratio_at_budget']:.1f}x" if best is not None else "no QF within budget"
    progress.update(f"{label}: lossless {row['lossless_ratio']:.2f}x, lossy {qtxt}", force=True)
    return row


class _Prefixed(Progress):
    def __init__(self, inner: Progress, prefix: str) -> None:
        self.inner, self.prefix = inner, prefix
        self.enabled = inner.enabled

    def update(self, message: str, force: bool = False) -> None:
        self.inner.update(f"{self.prefix}: {message}", force)

    def done(self, message: str = "done") -> None:  # pragma: no cover - not used
        pass


# ---- feature storage ------------------------------------------------------------------------------------------


class _Store:
    """Per-split arrays kept in memory up to :data:`SPILL_BYTES`, then as .npy files (memory-mapped)."""

    def __init__(self, limit: int = SPILL_BYTES) -> None:
        self.limit = limit
        self.used = 0
        self.items: dict[str, np.ndarray | str] = {}
        self._dir: tempfile.TemporaryDirectory | None = None

    def put(self, name: str, a: np.ndarray) -> None:
        if self.used + a.nbytes <= self.limit:
            self.items[name] = a
            self.used += a.nbytes
            return
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="spill-", dir=D.build_dir("accuracy"))
        path = os.path.join(self._dir.name, f"{len(self.items)}.npy")
        np.save(path, a)
        self.items[name] = path

    def get(self, name: str) -> np.ndarray:
        v = self.items[name]
        return np.load(v, mmap_mode="r") if isinstance(v, str) else v

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


# ---- studies ------------------------------------------------------------------------------------------------


def _check_splits(net: str | Network, splits: Sequence[str] | None) -> list[str]:
    nw = as_network(net)
    names = nw.split_names
    if not splits:
        return list(names)
    for s in splits:
        nw.split(s)
    return [s for s in names if s in set(splits)]


def _with_weights(net: str | Network, weights: str | os.PathLike | dict | None) -> Network:
    nw = as_network(net)
    return nw if weights is None else nw.with_weights(weights)


def weights_text(net: Network) -> str:
    """What a result says about the weights: the file, ``given`` (a state_dict), or the network's default."""
    w = net.weights
    if w is None:
        return net.default_weights
    return str(w) if isinstance(w, (str, os.PathLike)) else "given"


def user_calibration(x: np.ndarray) -> np.ndarray:
    """A user network's calibration images: at most :data:`USER_CALIBRATION` of ``x``, evenly spaced."""
    return x[D.evenly_spaced(len(x), USER_CALIBRATION)]


def network(net: str | Network, weights: str | os.PathLike | dict | None = None,
            data: str | os.PathLike | None = None, progress: Progress | None = None,
            calib: np.ndarray | None = None) -> tuple[nn.Module, QNet]:
    """Network ``net`` (float, eval mode) and its int16 twin (``weights``: a state_dict file or mapping
    replacing the network's own).

    Default weights are the network's (:meth:`golden.network.Network.module`; the CIFAR checkpoints from
    ``data`` when it holds ``models/``, else from the shared data folder). The int16 network is calibrated on
    ``calib`` when given; else it is :func:`golden.quantize.default_qnet` for a built-in with default weights,
    else calibrated on :func:`golden.quantize.calibration_images` (from ``data`` when it has them, else the
    default calibration set; the sample photos for a user network).
    """
    nw = _with_weights(net, weights)
    ckpt = data if data is not None and (Path(data) / "models").is_dir() else None
    module = nw.module(None if ckpt is None else str(ckpt))
    if calib is None and nw.is_builtin and nw.weights is None and ckpt is None:
        return module, default_qnet(nw.name)
    (progress or _quiet()).update("calibrating the int16 network", force=True)
    if calib is None:
        try:
            calib = calibration_images(nw, data=None if data is None else str(data))
        except UserError:
            calib = calibration_images(nw)
    return module, quantize_net(module, calib)


def study_net(net: str | Network | nn.Module, data: Any, splits: Sequence[str] | None = None,
              weights: str | os.PathLike | dict | None = None, qnet: QNet | None = None,
              config: StudyConfig | None = None, progress: Progress | None = None,
              data_dir: str | os.PathLike | None = None, host_modules: dict[str, nn.Module] | None = None,
              norm: InputNorm | None = None, journal: Journal | None = None) -> dict[str, Any]:
    """The encoding study of a network on labelled images.

    ``net``: a built-in name or a :class:`golden.network.Network` (weights: ``weights`` or its own, see
    :func:`network`) or a module from ``Network.module`` / :func:`golden.nets.get_net`. ``data``: ``(x, y)``
    (normalised float images, labels) or a DataLoader. ``qnet``: the int16 network (default: :func:`network`'s,
    or calibrated on :func:`golden.quantize.calibration_images` for a given module). ``host_modules``:
    replacement float host parts per split (fine-tuned ones). ``norm``: the images' normalisation (default
    :func:`input_norm`), inverted for the camera image the input split sends. ``journal``: where the finished
    splits are saved as they come, and the splits to reuse (:class:`Journal`). Returns the JSON-ready result
    (module docstring; :func:`write_study` saves it).
    """
    config = (config or StudyConfig()).check()
    progress = progress or _quiet()
    t0 = time.monotonic()
    if isinstance(net, str | Network):
        nw = _with_weights(net, weights)
        module, qnet0 = network(nw, None, data_dir, progress)
        qnet = qnet or qnet0
    else:
        module, nw = net.eval(), network_of(net)
        if weights is not None:
            nw = nw.with_weights(weights)
    name = nw.name
    wanted = _check_splits(nw, splits)
    x, y = materialize(data)
    if tuple(x.shape[1:]) != tuple(nw.input_shape):
        raise UserError(f"images of shape {tuple(x.shape[1:])} do not fit {name}, which takes "
                        f"{tuple(nw.input_shape)}")
    if qnet is None:
        progress.update("calibrating the int16 network", force=True)
        qnet = quantize_net(module, calibration_images(nw))
    if qnet.net != name:
        raise UserError(f"quantized network is {qnet.net}, not {name}")
    norm = norm or input_norm(nw)
    b = config.batch_size

    progress.update(f"float top-1 on {len(x)} images", force=True)
    float_top1 = float(np.mean(float_predict(module, x, b) == y))
    store = _Store()
    try:
        names = nw.split_names
        cur = qnet.quantize_input(x)
        prev = INPUT
        for s in names:
            if s != INPUT:
                progress.update(f"int16 network up to {s}", force=True)
                cur = np.concatenate([run_fast(qnet, cur[i : i + b], upto=s, start=prev)
                                      for i in range(0, len(cur), b)])
                prev = s
            if s in wanted and s != INPUT:
                store.put(s, cur)
        int16_top1 = float(np.mean(cur.argmax(1) == y))
        reference = int16_top1
        head = {**_result(name, len(x), float_top1, int16_top1, "int16", reference, config, [], t0),
                **_net_fields(nw, norm)}
        reused = journal.reuse(head) if journal is not None else {}
        rows = []
        for k, s in enumerate(wanted):
            # splits done / total on the progress line
            if s in reused:
                rows.append(reused[s])
                progress.update(f"split {k + 1}/{len(wanted)}: {s} reused (--resume)", force=True)
                continue
            values = norm.to_u8(x) if s == INPUT else store.get(s)
            host = (host_modules or {}).get(s) or nw.host_model(module, s)
            task = make_task(qnet, s, values, host, config.host, b, norm)
            rows.append(study_split(task, y, reference, config, _Prefixed(progress, f"split {k + 1}/{len(wanted)}")))
            if journal is not None:
                journal.record(head, rows)
    finally:
        store.close()
    result = {**_result(name, len(x), float_top1, int16_top1, "int16", reference, config, rows, t0),
              **_net_fields(nw, norm)}
    progress.done(f"{name}: {len(rows)} splits in {time.monotonic() - t0:.0f} s")
    return result


def _net_fields(nw: Network, norm: InputNorm) -> dict[str, Any]:
    """A study's fields that say which network and images it ran."""
    return {"weights": weights_text(nw), "dataset": nw.dataset or "given", "source": nw.source,
            "input_shape": list(nw.input_shape), "input_norm": {"mean": list(norm.mean), "std": list(norm.std)}}


def _int16_predict(qnet: QNet, values: np.ndarray, start: str, batch: int) -> np.ndarray:
    return np.concatenate([run_fast(qnet, values[i : i + batch], start=start).argmax(1)
                           for i in range(0, len(values), batch)])


def int16_features(qnet: QNet, x: np.ndarray, upto: str | None, batch: int = 500,
                   progress: Progress | None = None) -> np.ndarray:
    """The int16 network's output at split ``upto`` (None: the logits) for float images ``x``."""
    progress = progress or _quiet()
    out = []
    for i in range(0, len(x), batch):
        progress.update(f"int16 network up to {upto or 'the logits'}: {i}/{len(x)}")
        out.append(run_fast(qnet, qnet.quantize_input(x[i : i + batch]), upto=upto))
    return np.concatenate(out)


def make_task(qnet: QNet, split: str, values: np.ndarray, host: nn.Module | Callable, host_precision: str = "float",
              batch: int = 500, norm: InputNorm | None = None) -> _Task:
    """The study task of a network at ``split``: ``values`` are the int16 features there (uint8 camera images
    ``[N, H, W, C]`` at the input split, ``norm`` their normalisation, default :func:`input_norm`); ``host`` the
    float host part (used when ``host_precision`` is "float"; "int16" runs the int16 network from the split
    instead)."""
    nw = qnet.network
    sp = nw.split(split)
    norm = norm or input_norm(nw)
    meta = {"shape": list(sp.shape), "tensor_shape": list(sp.tensor_shape), "elements": sp.elements,
            "feature_bytes": sp.feature_bytes, "frac": qnet.split_frac(split)}
    if split == INPUT:
        if host_precision == "float":
            pred = image_host_predictor(host, norm, batch)
        else:
            def pred(u8: np.ndarray) -> np.ndarray:
                return _int16_predict(qnet, qnet.quantize_input(norm.from_u8(u8)), INPUT, batch)
        return _Task(split, sp.index, "image", values, pred, meta)
    if host_precision == "float":
        pred = float_host_predictor(host, qnet.split_frac(split), batch)
    else:
        def pred(v: np.ndarray) -> np.ndarray:
            return _int16_predict(qnet, v, split, batch)
    return _Task(split, sp.index, "feature", values, pred, meta)


def study_model(model: nn.Module, split_points: Sequence[SplitPoint | tuple], data: Any,
                config: StudyConfig | None = None, input_norm: InputNorm | None = None,
                name: str = "model", limit: int | None = None, progress: Progress | None = None
                ) -> dict[str, Any]:
    """The encoding study of any float model split at named points (``SplitPoint`` or ``(name, edge,
    host)``). Each split's float features are quantized to int16 with the power-of-two scale that fits
    their largest magnitude over the study's images (:func:`golden.fixedpoint.frac_bits_for`), then
    encoded like ours; the host runs in float. An edge of None is the input split: the 8-bit camera image
    is sent, which needs ``input_norm``. The budget is against the float model (``int16_top1`` is None).
    """
    config = (config or StudyConfig()).check()
    if config.host != "float":
        raise UserError("a generic model has no int16 network: use host='float'")
    progress = progress or _quiet()
    t0 = time.monotonic()
    x, y = materialize(data, limit)
    b = config.batch_size
    model.eval()
    float_top1 = float(np.mean(_logits_argmax(model, x, b) == y))
    rows = []
    seen = set()
    for k, sp in enumerate(split_points):
        sp = sp if isinstance(sp, SplitPoint) else SplitPoint(*sp)
        if sp.name in seen:
            raise UserError(f"split {sp.name!r} is given twice")
        seen.add(sp.name)
        if isinstance(sp.host, nn.Module):
            sp.host.eval()
        if sp.edge is None:
            if input_norm is None:
                raise UserError(f"split {sp.name!r} sends the input image: give input_norm (mean, std)")
            values = input_norm.to_u8(x)
            meta = {"shape": list(x.shape[1:]), "tensor_shape": list(x.shape[1:]),
                    "elements": int(np.prod(x.shape[1:])), "feature_bytes": int(np.prod(x.shape[1:])) * 2,
                    "frac": None}
            task = _Task(sp.name, k, "image", values, image_host_predictor(sp.host, input_norm, b), meta)
        else:
            if isinstance(sp.edge, nn.Module):
                sp.edge.eval()
            progress.update(f"{sp.name}: edge features", force=True)
            with torch.no_grad():
                feats = np.concatenate([_np(sp.edge(torch.from_numpy(x[i : i + b]))) for i in range(0, len(x), b)])
            tshape = feats.shape[1:]
            if len(tshape) == 3:
                shape3 = tuple(tshape)
            elif len(tshape) == 1:
                shape3 = (tshape[0], 1, 1)
            else:
                raise UserError(f"split {sp.name!r}: features of shape {tuple(tshape)} are neither C x H x W "
                                "nor vectors")
            frac = fp.frac_bits_for(float(np.abs(feats).max()))
            values = fp.quantize(feats, frac)
            meta = {"shape": list(shape3), "tensor_shape": list(tshape), "elements": int(np.prod(tshape)),
                    "feature_bytes": int(np.prod(tshape)) * 2, "frac": frac}
            task = _Task(sp.name, k, "feature", values, float_host_predictor(sp.host, frac, b), meta)
        rows.append(study_split(task, y, float_top1, config, progress))
    result = _result(name, len(x), float_top1, None, "float", float_top1, config, rows, t0)
    result["weights"] = "given module"
    result["dataset"] = "given"
    progress.done(f"{name}: {len(rows)} splits in {time.monotonic() - t0:.0f} s")
    return result


def _result(name: str, n: int, float_top1: float, int16_top1: float | None, ref_name: str, reference: float,
            config: StudyConfig, rows: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "net": name,
        "images": n,
        "float_top1": float_top1,
        "int16_top1": int16_top1,
        "reference": ref_name,
        "reference_top1": reference,
        "budget": config.budget,
        "encoding": {
            "ratio": "raw bytes per image / mean transmitted bytes per image",
            "raw": "16 bits per feature value; 8 bits per sample of the camera image at the input split",
            "lossless": f"golden.lossless ESLL container, {config.lossless_table} table",
            "lossy": f"golden.featpack {config.mode} scaling + baseline JPEG, standard tables, "
                     f"container {config.container} (side information included)",
            "mode": config.mode,
            "container": config.container,
            "vectors": "ceil(N/64) 8x8 channels of consecutive values",
            "host": config.host,
            "decoder": "golden.jpeg.reconstruct (= golden.jpeg.decode_jpeg), golden.featpack.unpack to int16",
        },
        "search": {"coarse_qfs": list(config.coarse_qfs), "curve_images": config.curve_images,
                   "search_images": config.search_images if config.search_images is not None
                   and config.search_images < n else None},
        "splits": rows,
        "seconds": round(time.monotonic() - t0, 1),
    }


# ---- output -----------------------------------------------------------------------------------------------


SUMMARY_KEYS = ("name", "feature_bytes", "lossless_ratio", "lossy_ratio_at_budget", "qf_at_budget",
                "top1_at_budget")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The short form (``--json``): the network's numbers and per split the budget point."""
    keep = ("net", "images", "dataset", "weights", "float_top1", "int16_top1", "reference", "reference_top1",
            "budget")
    out = {k: result.get(k) for k in keep}
    out["encoding"] = {k: result["encoding"][k] for k in ("mode", "container", "host")}
    out["splits"] = [{k: r.get(k) for k in (*SUMMARY_KEYS, "raw_bytes", "lossless_bytes", "bytes_at_budget",
                                             "top1_uncoded")} for r in result["splits"]]
    return out


def format_table(result: dict[str, Any]) -> str:
    """A text table of the per-split results."""
    lines = [f"{result['net']}: {result['images']} images, float top-1 {_pct(result['float_top1'])}, "
             f"int16 top-1 {_pct(result['int16_top1'])}, budget {result['budget'] * 100:.1f}% "
             f"vs {result['reference']} ({result['encoding']['mode']} scaling, {result['encoding']['container']} "
             f"container, {result['encoding']['host']} host)",
             f"{'split':<12} {'raw B':>7} {'lossless':>9} {'lossy@1%':>9} {'QF':>4} {'top-1':>7} {'uncoded':>8}"]
    for r in result["splits"]:
        lossy = f"{r['lossy_ratio_at_budget']:.2f}" if r["lossy_ratio_at_budget"] is not None else "-"
        qf = str(r["qf_at_budget"]) if r["qf_at_budget"] is not None else "-"
        lines.append(f"{r['name']:<12} {r['raw_bytes']:>7} {r['lossless_ratio']:>9.2f} {lossy:>9} {qf:>4} "
                     f"{_pct(r['top1_at_budget']):>7} {_pct(r['top1_uncoded']):>8}")
    return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


SETUP_KEYS = ("schema_version", "net", "images", "weights", "data", "resize", "float_top1", "int16_top1", "budget",
              "encoding", "search")
"""What two studies must share for their rows to stand in one table (:func:`merge_results`, ``--resume``)."""


def same_setup(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether ``old`` and ``new`` are studies of the same setup (:data:`SETUP_KEYS`, and the model's source):
    the same network, weights, images, top-1s, encoding, budget and search, so a split's row is the same."""
    return bool(old) and all(old.get(k) == new.get(k) for k in SETUP_KEYS) and \
        old.get("source", "builtin") == new.get("source", "builtin")


def merge_results(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` plus the rows of ``old`` for splits ``new`` lacks, if both come from the same setup
    (:func:`same_setup`); else ``new``."""
    if not same_setup(old, new):
        return new
    have = {r["name"] for r in new["splits"]}
    rows = new["splits"] + [r for r in old.get("splits", []) if r.get("name") not in have]
    return {**new, "splits": sorted(rows, key=lambda r: r.get("index", 0) if isinstance(r.get("index"), int) else 0)}


def write_study(result: dict[str, Any], out_dir: str | os.PathLike | None = None, plots: bool = True,
                merge: bool = True, plot_splits: Sequence[str] | None = None) -> dict[str, Path]:
    """Save ``<out>/<net>.json`` (merged with an existing study of the same setup when ``merge``; one that
    fails to read is replaced) and the plots ``<net>_compression.png`` (Fig. 4(b)) and
    ``<net>_top1_vs_ratio.png`` (Fig. 5(b)): all through temporary files renamed together, the JSON last, so
    the study is complete or absent (:class:`golden.files.AtomicGroup`)."""
    out = Path(out_dir) if out_dir is not None else OUT_DIR
    path = out / f"{result['net']}.json"
    if merge:
        old = read_study(path)
        if old is not None:
            result = merge_results(old, result)
    paths = {"json": path}
    with files.AtomicGroup() as group:
        if plots:
            paths["compression"] = out / f"{result['net']}_compression.png"
            paths["top1_vs_ratio"] = out / f"{result['net']}_top1_vs_ratio.png"
            plot_compression(result, group.path(paths["compression"], "plot"))
            plot_top1_vs_ratio(result, group.path(paths["top1_vs_ratio"], "plot"), plot_splits)
        group.path(path, "study").write_text(json.dumps(result, indent=1))
    return {k: paths[k] for k in ("json", "compression", "top1_vs_ratio") if k in paths}


def read_study(path: str | os.PathLike) -> dict[str, Any] | None:
    """The study saved at ``path``, or None where there is none or it does not read as one."""
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(old, dict) and isinstance(old.get("splits"), list) and \
            all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in old["splits"]):
        return old
    return None


class Journal:
    """Where a study keeps its finished splits while it runs: ``<out>/<net>.json`` is rewritten (merged as by
    :func:`write_study`, no plots) after every split, so a run stopped part-way leaves the splits it finished.
    With ``resume`` the study reuses the rows of a study of the same setup found there (:func:`same_setup`:
    checked once the uncoded top-1s are known) and computes only the other splits (``--resume``).
    ``fields``: what the run adds to the study (weights, data, resize)."""

    def __init__(self, out_dir: str | os.PathLike | None = None, fields: dict[str, Any] | None = None,
                 resume: bool = False) -> None:
        self.out = Path(out_dir) if out_dir is not None else OUT_DIR
        self.fields = dict(fields or {})
        self.resume = resume

    def head(self, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` with the run's own fields."""
        return {**result, **self.fields}

    def reuse(self, head: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Split name -> the row of a finished split to reuse (nothing unless ``resume``)."""
        if not self.resume:
            return {}
        head = self.head(head)
        old = read_study(self.out / f"{head['net']}.json")
        return {r["name"]: r for r in old["splits"]} if same_setup(old, head) else {}

    def record(self, head: dict[str, Any], rows: Sequence[dict[str, Any]]) -> None:
        """Save the splits finished so far."""
        rows = sorted(rows, key=lambda r: r["index"])
        write_study({**self.head(head), "splits": rows}, self.out, plots=False)


def check_out_dir(out_dir: str | os.PathLike | None) -> Path:
    """``--out``: a folder that exists or can be created, writable (checked before any work)."""
    return files.check_output_dir(out_dir if out_dir is not None else OUT_DIR, "--out folder")


def _save(fig, path: str | os.PathLike) -> None:
    """``fig`` to ``path`` through a temporary file renamed into place, in the format its extension names."""
    with files.atomic_path(path, "plot") as tmp:
        fig.savefig(tmp, dpi=130, format=Path(path).suffix.lower().lstrip(".") or "png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_compression(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Fig. 4(b): compression ratio per split, lossless and lossy within the budget (QF on each bar)."""
    plt = _pyplot()
    rows = result["splits"]
    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    ll = [r["lossless_ratio"] for r in rows]
    ly = [r["lossy_ratio_at_budget"] or 0.0 for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2), 4.2))
    ax.bar(x - 0.2, ll, 0.4, label="lossless (zero-RLE + Huffman)", color="#4c72b0")
    ax.bar(x + 0.2, ly, 0.4, label=f"lossy JPEG, <= {result['budget'] * 100:g}% top-1 loss", color="#dd8452")
    for i, r in enumerate(rows):
        if r["qf_at_budget"] is not None:
            ax.text(x[i] + 0.2, ly[i] * 1.05, f"{r['qf_at_budget']}", ha="center", va="bottom", fontsize=6)
    ax.set_yscale("log")
    ax.axhline(1.0, color="gray", lw=0.6)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("compression ratio (raw / transmitted)")
    ax.set_title(f"{result['net']}: feature compression per split ({result['images']} images; "
                 f"QF on the lossy bars)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return Path(path)


def default_plot_splits(result: dict[str, Any], count: int = 4) -> list[str]:
    """Splits for Fig. 5(b): the one feeding the global pool / first FC (the paper's conv5) and a few
    evenly spaced hidden ones."""
    rows = [r for r in result["splits"] if r["kind"] == "feature" and r["tensor_shape"] and
            len(r["tensor_shape"]) == 3]
    if not rows:
        rows = result["splits"]
    pick = {rows[-1]["name"]}
    for i in np.linspace(0, len(rows) - 1, count).round().astype(int):
        pick.add(rows[i]["name"])
    order = [r["name"] for r in result["splits"]]
    return sorted(pick, key=order.index)[:count + 1]


def plot_top1_vs_ratio(result: dict[str, Any], path: str | os.PathLike,
                       splits: Sequence[str] | None = None) -> Path:
    """Fig. 5(b): top-1 against the lossy compression ratio (one curve per split, points = evaluated QFs),
    with the reference top-1 and the budget line."""
    plt = _pyplot()
    rows = {r["name"]: r for r in result["splits"]}
    splits = [s for s in (splits or default_plot_splits(result)) if s in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ref, budget = result["reference_top1"], result["budget"]
    for s in splits:
        r = rows[s]
        pts = r["evaluated"]
        line, = ax.plot([p["ratio"] for p in pts], [100 * p["top1"] for p in pts], "o-", ms=3, label=s)
        if r.get("searched", {}).get("top1_uncoded") is not None:
            # the search on a subset, moved by the uncoded host's top-1 difference between the two sets
            sub = r["searched"]
            shift = r["top1_uncoded"] - sub["top1_uncoded"]
            ax.plot([p["ratio"] for p in sub["points"]], [100 * (p["top1"] + shift) for p in sub["points"]], ":",
                    lw=1, color=line.get_color())
        if r["qf_at_budget"] is not None:
            ax.plot([r["lossy_ratio_at_budget"]], [100 * r["top1_at_budget"]], "*", ms=11, color=line.get_color())
    ax.axhline(100 * ref, color="k", lw=0.8, label=f"{result['reference']} network {100 * ref:.2f}%")
    ax.axhline(100 * (ref - budget), color="k", lw=0.8, ls="--", label=f"-{budget * 100:g}% budget")
    ax.set_xscale("log")
    ax.set_xlabel("compression ratio (raw / transmitted)")
    ax.set_ylabel("top-1 (%)")
    lo = min([100 * p["top1"] for s in splits for p in rows[s]["evaluated"]] + [100 * (ref - 5 * budget)])
    ax.set_ylim(max(lo, 100 * ref - 30), 100 * ref + 2)
    title = f"{result['net']}: top-1 vs compression (JPEG QF sweep; star = largest ratio within budget)"
    searched = [rows[s]["searched"]["images"] for s in splits if rows[s].get("searched")]
    if searched:
        title += (f"\ndotted: the search on {searched[0]:,} of {result['images']:,} images, moved by the uncoded "
                  "host's top-1 difference")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return Path(path)


def run(net: str | Network, weights: str | None = None, data: str | None = None, splits: Sequence[str] | None = None,
        limit: int | None = None, config: StudyConfig | None = None, out_dir: str | os.PathLike | None = None,
        plots: bool = True, progress: Progress | None = None, norm: InputNorm | None = None,
        resize: int | None = None, cluster: Any = None, resume: bool = False
        ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Load the test images, run :func:`study_net`, write the JSON and the plots (the CLI's work). ``net``: a
    built-in name or a Network (its weights, or ``weights``); ``norm`` / ``resize``: how the images are read
    (:func:`load_dataset`); a user network's int16 twin is calibrated on the test images
    (:func:`user_calibration`). ``cluster``: a :class:`sim.cluster.ClusterSpec` (None or a serial one: in this
    process, :func:`study_net`); otherwise the study's pieces run there (:func:`study_distributed`), with the
    same result. Every finished split is saved in ``<out>/<net>.json`` as it comes; ``resume``: the splits a
    study of the same setup saved there are reused, not computed again (:class:`Journal`)."""
    nw = _with_weights(net, weights)
    wanted = _check_splits(nw, splits)
    progress = progress or _quiet()
    config = (config or StudyConfig()).check()
    fields = {"weights": weights_text(nw), "data": str(data) if data else "default",
              **({"resize": int(resize)} if resize is not None else {})}
    journal = Journal(out_dir, fields, resume)
    ref = study_ref(nw, data, limit, norm, resize, config)
    if cluster is not None and not cluster.serial and ref is not None and len(wanted) > 1:
        result = study_distributed(ref, wanted, cluster, progress, journal)
        return journal.head(result), write_study(journal.head(result), out_dir, plots)
    progress.update(f"loading {nw.name} test images", force=True)
    x, y = load_dataset(nw, data, "test", limit, norm, resize)
    module, qnet = network(nw, None, data, progress, calib=None if nw.is_builtin else user_calibration(x))
    result = study_net(module, (x, y), splits, qnet=qnet, config=config, progress=progress,
                       norm=norm or input_norm(nw), journal=journal)
    return journal.head(result), write_study(journal.head(result), out_dir, plots)


# ---- the study on a cluster (sim.cluster) ----------------------------------------------------------------


@dataclass(frozen=True)
class StudyRef:
    """What a worker needs to rebuild a study's inputs itself: a few names and numbers, never arrays (what
    crosses the wire; docs/cluster.md). ``net``: a built-in name or a model file spec (``PATH.onnx``,
    ``PATH.py:FACTORY``); ``weights``: a state_dict file or None; ``input_shape``: the model file's."""

    net: str
    weights: str | None
    input_shape: tuple[int, int, int] | None
    data: str | None
    limit: int | None
    norm: InputNorm | None
    resize: int | None
    config: StudyConfig


def study_ref(net: str | Network, data: str | os.PathLike | None, limit: int | None, norm: InputNorm | None,
              resize: int | None, config: StudyConfig) -> StudyRef | None:
    """The :class:`StudyRef` of a study, or None where a worker could not rebuild it (weights given as an
    in-memory state_dict, a network registered in this process only)."""
    from golden.network import load_args

    args = load_args(as_network(net))
    if args is None:
        return None
    spec, weights, shape = args
    return StudyRef(net=spec, weights=weights, input_shape=shape,
                    data=None if data is None else str(data), limit=limit, norm=norm, resize=resize, config=config)


_WORKER: dict[str, Any] = {}
"""Per worker process: the last study's network, images and int16 twin (:func:`_worker_state`), and the
int16 features of the last split it computed (the next split continues from there)."""


def _worker_state(ref: StudyRef) -> dict[str, Any]:
    """The study's network, images and int16 twin in this process, loaded once per process and study
    (exactly as :func:`run` loads them)."""
    st = _WORKER.get("study")
    if st is None or st["ref"] != ref:
        from golden.network import load_network

        _WORKER.pop("study", None)
        nw = load_network(ref.net, weights=ref.weights, input_shape=ref.input_shape)
        x, y = load_dataset(nw, ref.data, "test", ref.limit, ref.norm, ref.resize)
        module, qnet = network(nw, None, ref.data, None, calib=None if nw.is_builtin else user_calibration(x))
        st = {"ref": ref, "nw": nw, "x": x, "y": y, "module": module, "qnet": qnet,
              "norm": ref.norm or input_norm(nw), "features": None}
        _WORKER["study"] = st
    return st


def _warm_piece(ref: StudyRef) -> None:
    """Run on each worker while the cluster starts (:func:`sim.cluster.warm`): the study's state, loaded."""
    _worker_state(ref)


def _reference_piece(item: tuple[StudyRef, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``lo:hi`` (whole batches): float and int16 predictions (the uncoded networks)."""
    ref, lo, hi = item
    st = _worker_state(ref)
    qnet, b, x = st["qnet"], ref.config.batch_size, st["x"][lo:hi]
    last = st["nw"].split_names[-1]
    fpred = float_predict(st["module"], x, b)
    ipred = [run_fast(qnet, qnet.quantize_input(x[i : i + b]), upto=None if last == INPUT else last).argmax(1)
             for i in range(0, len(x), b)]
    return np.asarray(fpred), np.concatenate(ipred)


def _features_at(st: dict[str, Any], split: str, batch: int) -> np.ndarray:
    """The int16 features at ``split`` for all images, continued from the last split this process computed
    when that one comes earlier (exact: the int16 network is integer arithmetic)."""
    names = st["nw"].split_names
    qnet = st["qnet"]
    have = st["features"]
    if have is not None and names.index(have[0]) <= names.index(split):
        prev, cur = have
    else:
        prev, cur = INPUT, qnet.quantize_input(st["x"])
    if prev != split:
        cur = np.concatenate([run_fast(qnet, cur[i : i + batch], upto=split, start=prev)
                              for i in range(0, len(cur), batch)])
    st["features"] = None if split == INPUT else (split, cur)
    return cur


def _split_piece(item: tuple[StudyRef, str, float]) -> dict[str, Any]:
    """One split of the study (:func:`study_split`) against the reference top-1 ``reference``."""
    ref, split, reference = item
    st = _worker_state(ref)
    config, nw = ref.config, st["nw"]
    values = st["norm"].to_u8(st["x"]) if split == INPUT else _features_at(st, split, config.batch_size)
    task = make_task(st["qnet"], split, values, nw.host_model(st["module"], split), config.host,
                     config.batch_size, st["norm"])
    return study_split(task, st["y"], reference, config, _quiet())


def study_distributed(ref: StudyRef, wanted: Sequence[str], cluster: Any, progress: Progress | None = None,
                      journal: Journal | None = None) -> dict[str, Any]:
    """:func:`run`'s study as pieces on ``cluster`` (:func:`sim.cluster.run_pieces`): first the uncoded float
    and int16 predictions in shards of whole batches of images, then one piece per split (each worker loads
    the images and the network itself, once per process, and continues the int16 network from the last split
    it computed). The result equals :func:`study_net`'s (same sizes, top-1 counts and QFs; only the
    ``seconds`` differ). ``journal``: as for :func:`study_net` (each split saved as its piece comes back)."""
    from golden.network import load_network
    from sim import cluster as CL

    progress = progress or _quiet()
    t0 = time.monotonic()
    # the workers start and load the study's network and images while this process loads its own and (when the
    # images are one batch) computes the reference predictions itself
    CL.warm(cluster, _warm_piece, ref)
    config = ref.config
    quiet = not progress.enabled
    nw = load_network(ref.net, weights=ref.weights, input_shape=ref.input_shape)
    x, y = load_dataset(nw, ref.data, "test", ref.limit, ref.norm, ref.resize)
    n, b = len(x), config.batch_size
    workers = max(1, cluster.workers)
    per = max(1, -(-n // (b * 2 * workers))) * b   # whole batches: the same batches as the serial run
    shards = [(ref, lo, min(n, lo + per)) for lo in range(0, n, per)]
    preds = CL.run_pieces(_reference_piece, shards, cluster, desc=f"{nw.name} uncoded top-1",
                          labels=[f"images {lo}:{hi}" for _, lo, hi in shards], quiet=quiet)
    float_top1 = float(np.mean(np.concatenate([p[0] for p in preds]) == y))
    int16_top1 = float(np.mean(np.concatenate([p[1] for p in preds]) == y))
    reference = int16_top1
    fields = _net_fields(nw, ref.norm or input_norm(nw))
    head = {**_result(nw.name, n, float_top1, int16_top1, "int16", reference, config, [], t0), **fields}
    done = journal.reuse(head) if journal is not None else {}
    todo = [s for s in wanted if s not in done]
    if len(todo) < len(wanted):
        progress.update(f"{len(wanted) - len(todo)} of {len(wanted)} splits reused (--resume)", force=True)

    def finished(i: int, row: dict[str, Any]) -> None:
        done[todo[i]] = row
        if journal is not None:
            journal.record(head, [done[s] for s in wanted if s in done])

    CL.run_pieces(_split_piece, [(ref, s, reference) for s in todo], cluster, desc=f"{nw.name} splits",
                  labels=[f"split {s}" for s in todo], quiet=quiet, on_result=finished)
    rows = [done[s] for s in wanted]
    result = {**_result(nw.name, n, float_top1, int16_top1, "int16", reference, config, rows, t0), **fields}
    progress.done(f"{nw.name}: {len(rows)} splits in {time.monotonic() - t0:.0f} s on {cluster.describe()}")
    return result


__all__ = [
    "BUDGET",
    "COARSE_QFS",
    "CONTAINERS",
    "DEFAULT_MODE",
    "InputNorm",
    "NET_NORMS",
    "Progress",
    "SplitCodec",
    "SplitPoint",
    "StudyConfig",
    "StudyRef",
    "budget_point",
    "format_table",
    "from_maps",
    "input_norm",
    "load_dataset",
    "int16_features",
    "load_image_folder",
    "make_task",
    "materialize",
    "data_source",
    "merge_results",
    "network",
    "parse_channels",
    "plot_compression",
    "plot_top1_vs_ratio",
    "run",
    "scan_bytes",
    "study_model",
    "study_net",
    "study_distributed",
    "study_ref",
    "study_split",
    "summary",
    "to_maps",
    "write_study",
]
