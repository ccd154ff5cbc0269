"""The fault battery (issue 17): bad, hostile and edge inputs across every ``edgesplit`` command.

Every case runs the CLI in-process (``model.cli.main``) in a workspace of good and bad input files and asserts
the README's promise: exit status 2, exactly one line on stderr naming the value or file and what is allowed,
no traceback, nothing on stdout, every input file unchanged and no file left behind (temporary ones
included). Then: a damaged cache under ``build/`` is rebuilt, a result of several files is complete or absent,
and Ctrl-C at several moments (in a subprocess) prints ``edgesplit: interrupted``, exits 130 and leaves
nothing partial.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
import yaml
from PIL import Image

from golden import data as D
from golden import featpack, files, jpeg, lossless
from golden.errors import UserError
from hw.tech import DEFAULT_TECH
from model import cli_codec
from model.cli import main

REPO = Path(__file__).resolve().parents[2]

torch.set_num_threads(1)


# ---- the workspace of inputs ---------------------------------------------------------------------------------


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb: the data is one row)."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


def _npy_header_only(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<i2", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\x00" * 64


def _feature_jpeg(feats: np.ndarray, qf: int = 90) -> bytes:
    mosaic, side = featpack.pack(feats, "layer", qf)
    return cli_codec.add_side_info(jpeg.encode(mosaic, qf).data, side.to_bytes())


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    """Good and bad inputs for every command (see the module docstring)."""
    w = tmp_path_factory.mktemp("battery")
    gray = skimage.data.camera()[100:140, 120:170]
    feats = lossless.synthetic_relu_maps(skimage.data.camera()[200:216, 200:216], 3, 0)   # int16 [3, 16, 16]
    Image.fromarray(gray).save(w / "gray.png")
    Image.fromarray(gray).save(w / "img.jpg", quality=90)
    np.save(w / "feats.npy", feats)
    np.save(w / "rank2.npy", feats[0])
    np.save(w / "nan.npy", np.where(feats > 100, np.nan, feats).astype(np.float32))
    np.save(w / "big.npy", (feats.astype(np.float32) + 1e6))
    np.save(w / "f32.npy", feats.astype(np.float32))
    np.save(w / "object.npy", np.array([[["a"]]], dtype=object), allow_pickle=True)
    (w / "empty.npy").write_bytes(b"")
    (w / "huge.npy").write_bytes(_npy_header_only((4096, 4096, 4096)))
    (w / "truncated.npy").write_bytes((w / "feats.npy").read_bytes()[:-100])
    (w / "garbage.png").write_bytes(b"this is not an image " * 8)
    (w / "bomb.png").write_bytes(_png_with_size(100_000, 100_000))

    esll = lossless.encode(feats)
    (w / "feats.esll").write_bytes(esll)
    (w / "v1.esll").write_bytes(esll[:4] + b"\x01" + esll[5:-4])
    flipped = bytearray(esll)
    flipped[len(esll) // 2] ^= 0x20
    (w / "flipped.esll").write_bytes(bytes(flipped))
    (w / "truncated.esll").write_bytes(esll[:-7])
    (w / "garbage.esll").write_bytes(b"XXXX" * 10)

    fj = _feature_jpeg(feats)
    (w / "feats.jpg").write_bytes(fj)
    (w / "badid.jpg").write_bytes(fj.replace(b"EDGESPLIT", b"EDGESPLIU", 1))
    side_at = fj.index(b"EDGESPLIT\x00") + 10
    bad_side = bytearray(fj)
    bad_side[side_at + 5] ^= 0x01   # H of the side information: the CRC-32 catches it
    (w / "badside.jpg").write_bytes(bytes(bad_side))
    plain = (w / "img.jpg").read_bytes()
    (w / "cut.jpg").write_bytes(plain[:-40])
    huge = bytearray(plain)
    sof = huge.index(b"\xff\xc0")
    huge[sof + 5:sof + 9] = b"\xff\xff\xff\xff"
    (w / "hugesof.jpg").write_bytes(bytes(huge))
    (w / "empty.jpg").write_bytes(b"")

    doc = yaml.safe_load(DEFAULT_TECH.read_text())
    doc["energy"]["mac_16b"]["value"] = 1e300
    (w / "bigtech.yaml").write_text(yaml.safe_dump(doc))
    doc = yaml.safe_load(DEFAULT_TECH.read_text())
    doc["clock"] = {"frequency_hz": {"value": 1e-3, "unit": "Hz", "source": "s", "scaling": "none"}}
    (w / "slowtech.yaml").write_text(yaml.safe_dump(doc))
    (w / "nonutf8.yaml").write_bytes(b"\xff\xfe\x00name: x\n")
    shutil.copy(DEFAULT_TECH, w / "tech.png")     # a valid technology file with a plot's name
    (w / "nonutf8.json").write_bytes(b"\xff\xfe{")

    (w / "bad.onnx").write_bytes(b"not a protobuf " * 4)
    (w / "bad.py").write_text("def make(:\n")
    (w / "m.py").write_text("import torch\n\ndef make():\n    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))\n")
    (w / "garbage.pt").write_bytes(b"garbage")
    (w / "notarun.json").write_text('{"x": 1}')
    (w / "badtrace.csv").write_text("t_seconds,mbps\n0,abc\n")
    from golden.nets import get_net

    torch.save(get_net("digits").state_dict(), w / "w.pt")

    for d in ("d.jpg", "d.npy", "p.png", "outdir"):
        (w / d).mkdir()
    (w / "afile").write_text("a file, not a folder")
    imgs = w / "imgs"
    for cls, ok in (("c0", True), ("c1", False)):
        (imgs / cls).mkdir(parents=True)
        for k in range(2):
            if ok or k == 0:
                Image.fromarray(np.full((16, 16), 40 * k, dtype=np.uint8)).save(imgs / cls / f"{k}.png")
            else:
                (imgs / cls / f"{k}.png").write_bytes(b"\x89PNG garbage, not an image")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as tf:
        for cls in ("c0", "c1"):
            for k in range(20):
                buf = io.BytesIO()
                noise = np.random.default_rng(k).integers(0, 256, (16, 16), dtype=np.uint8)
                Image.fromarray(noise).save(buf, format="PNG")
                info = tarfile.TarInfo(f"{cls}/{k}.png")
                info.size = len(buf.getvalue())
                tf.addfile(info, io.BytesIO(buf.getvalue()))
    (w / "trunc.tar.gz").write_bytes(tar.getvalue()[: len(tar.getvalue()) // 2])
    return w


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (hidden ones too) with a hash of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:   # argparse's own errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


# ---- the cases: (id, argv with {W} for the workspace, what the one line must say) ----------------------------

Q = ["query", "--net", "alexnet", "--split", "conv5"]
S = ["sweep", "--net", "digits", "--link", "2mbps", "--encoding", "none"]
B = ["best", "--net", "digits"]
A = ["accuracy", "--net", "digits", "--out", "{W}/outdir", "--quiet"]
F = ["finetune", "--net", "digits", "--split", "conv2", "--out", "{W}/outdir", "--quiet"]
WQ = ["weights", "--net", "digits", "--out", "{W}/outdir", "--quiet"]
T = ["train", "--net", "mobilenetv2_cifar", "--out", "{W}/outdir/t.pt", "--quiet"]
E = ["edge", "--connect", "127.0.0.1:1", "--net", "digits", "--images", "2", "--quiet"]

CASES = [
    # encode: outputs (checked before any work), then inputs read defensively
    ("encode-onto-its-input", ["encode", "{W}/img.jpg", "-o", "{W}/img.jpg"], "is also the input"),
    ("encode-missing-folder", ["encode", "{W}/feats.npy", "-o", "{W}/nowhere/x.jpg"], "does not exist"),
    ("encode-output-is-folder", ["encode", "{W}/feats.npy", "-o", "{W}/d.jpg"], "is a folder"),
    ("encode-output-under-file", ["encode", "{W}/feats.npy", "-o", "{W}/afile/x.jpg"], "is a file, not a folder"),
    ("encode-empty-npy", ["encode", "{W}/empty.npy", "-o", "{W}/x.jpg"], "not a readable .npy"),
    ("encode-huge-npy-header", ["encode", "{W}/huge.npy", "-o", "{W}/x.jpg"], "at most 67,108,864"),
    ("encode-truncated-npy", ["encode", "{W}/truncated.npy", "-o", "{W}/x.jpg"], "truncated"),
    ("encode-object-npy", ["encode", "{W}/object.npy", "-o", "{W}/x.jpg"], "holds object values"),
    ("encode-rank2-npy", ["encode", "{W}/rank2.npy", "-o", "{W}/x.jpg"], "rank 2"),
    ("encode-nan-npy", ["encode", "{W}/nan.npy", "-o", "{W}/x.jpg"], "NaN"),
    ("encode-out-of-float16", ["encode", "{W}/big.npy", "-o", "{W}/x.jpg"], "float16"),
    ("encode-float-lossless", ["encode", "{W}/f32.npy", "-o", "{W}/x.esll", "--lossless"], "float32"),
    ("encode-garbage-png", ["encode", "{W}/garbage.png", "-o", "{W}/x.jpg"], "cannot be decoded as an image"),
    ("encode-decompression-bomb", ["encode", "{W}/bomb.png", "-o", "{W}/x.jpg"], "at most 67,108,864"),
    ("encode-missing-input", ["encode", "{W}/missing.png", "-o", "{W}/x.jpg"], "does not exist"),
    ("encode-qf-0", ["encode", "{W}/gray.png", "-o", "{W}/x.jpg", "--qf", "0"], "1..100"),
    ("encode-qf-not-int", ["encode", "{W}/gray.png", "-o", "{W}/x.jpg", "--qf", "5.5"], "invalid int value"),
    ("encode-lossless-to-jpg", ["encode", "{W}/gray.png", "-o", "{W}/x.jpg", "--lossless"], "'.jpg'"),
    ("encode-unknown-ext", ["encode", "{W}/gray.png", "-o", "{W}/x.gif"], "'.gif'"),
    # decode: the checksummed formats, damaged files, outputs
    ("decode-version-1-esll", ["decode", "{W}/v1.esll", "-o", "{W}/x.npy"], "version 1 lossless container"),
    ("decode-flipped-esll", ["decode", "{W}/flipped.esll", "-o", "{W}/x.npy"], "damaged: CRC-32"),
    ("decode-truncated-esll", ["decode", "{W}/truncated.esll", "-o", "{W}/x.npy"], "truncated or damaged"),
    ("decode-garbage-esll", ["decode", "{W}/garbage.esll", "-o", "{W}/x.npy"], "magic"),
    ("decode-missing-folder", ["decode", "{W}/feats.esll", "-o", "{W}/nowhere/x.npy"], "does not exist"),
    ("decode-output-is-folder", ["decode", "{W}/feats.esll", "-o", "{W}/d.npy"], "is a folder"),
    ("decode-feature-to-png", ["decode", "{W}/feats.jpg", "-o", "{W}/x.png"], ".npy"),
    ("decode-damaged-side-id", ["decode", "{W}/badid.jpg", "-o", "{W}/x.npy"], "damaged edgesplit side information"),
    ("decode-damaged-side-info", ["decode", "{W}/badside.jpg", "-o", "{W}/x.npy"], "side information is damaged"),
    ("decode-cut-jpeg", ["decode", "{W}/cut.jpg", "-o", "{W}/x.png"], "corrupt or truncated"),
    ("decode-huge-frame", ["decode", "{W}/hugesof.jpg", "-o", "{W}/x.png"], "at most 67,108,864"),
    ("decode-empty-jpeg", ["decode", "{W}/empty.jpg", "-o", "{W}/x.png"], "not a JPEG"),
    ("decode-int16-to-png", ["decode", "{W}/feats.esll", "-o", "{W}/x.png"], "not an 8-bit image"),
    ("decode-missing-input", ["decode", "{W}/missing.esll", "-o", "{W}/x.npy"], "does not exist"),
    # query: physical bounds, files
    ("query-link-1e-300", [*Q, "--link", "1e-300:0.1"], "1000..1e+12 bit/s"),
    ("query-link-power", [*Q, "--link", "2e6:1e9"], "power 1e+09 W"),
    ("query-link-no-power", [*Q, "--link", "2e6"], "unknown link"),
    ("query-ratio-1e-9", [*Q, "--ratio", "1e-9"], "compression ratio 1e-09 is outside"),
    ("query-ratio-text", [*Q, "--ratio", "many"], "is not a number"),
    ("query-tech-1e300", [*Q, "--tech", "{W}/bigtech.yaml"], "energy.mac_16b.value: 1e+300 must be <= 1e-08"),
    ("query-tech-clock", [*Q, "--tech", "{W}/slowtech.yaml"], "golden.arch.EngineArch.clock_hz"),
    ("query-tech-not-utf8", [*Q, "--tech", "{W}/nonutf8.yaml"], "not UTF-8"),
    ("query-tech-folder", [*Q, "--tech", "{W}/outdir"], "cannot be read"),
    ("query-qf-inf", [*Q, "--encoding", "jpeg", "--qf", "1e400"], "outside the allowed range 1..100"),
    ("query-weights-qf-nan", [*Q, "--weights", "jpeg", "--weights-qf", "nan"], "weight QF 'nan'"),
    ("query-counts", [*Q, "--counts", "guess"], "unknown counts source"),
    ("query-bad-onnx", ["query", "--net", "{W}/bad.onnx", "--split", "x"], "is not an ONNX model"),
    ("query-bad-py", ["query", "--net", "{W}/bad.py:make", "--split", "x"], "SyntaxError"),
    ("query-missing-onnx", ["query", "--net", "{W}/missing.onnx", "--split", "x"], "not found"),
    # sweep: the plot location before the work
    ("sweep-plot-ext", [*S, "--plot", "{W}/x.gif"], "'.gif'"),
    ("sweep-plot-missing-folder", [*S, "--plot", "{W}/nowhere/x.png"], "does not exist"),
    ("sweep-plot-is-folder", [*S, "--plot", "{W}/p.png"], "is a folder"),
    ("sweep-plot-onto-tech", [*S, "--tech", "{W}/tech.png", "--plot", "{W}/tech.png"], "is also the input --tech"),
    ("sweep-link-1e13", [*S[:3], "--link", "1e13:1"], "1000..1e+12 bit/s"),
    # dse: architectures, buffers, links, budget and outputs refused before the search
    ("dse-array-not-square", ["dse", "--net", "digits", "--arrays", "7x9"], "square arrays"),
    ("dse-buffer-100", ["dse", "--net", "digits", "--buffers", "100"], "buffer size '100'"),
    ("dse-link-3mbps", ["dse", "--net", "digits", "--links", "3mbps"], "unknown link '3mbps'"),
    ("dse-budget-2", ["dse", "--net", "digits", "--budget", "2"], "budget 2.0 is not allowed"),
    # best
    ("best-loss-2", [*B, "--accuracy-loss", "2"], "[0, 1)"),
    ("best-loss-nan", [*B, "--accuracy-loss", "nan"], "[0, 1)"),
    ("best-objective", [*B, "--objective", "speed"], "unknown objective"),
    ("best-plot-ext", [*B, "--plot", "{W}/x.txt"], "'.txt'"),
    # accuracy
    ("accuracy-out-is-file", ["accuracy", "--net", "digits", "--out", "{W}/afile", "--quiet"], "is a file"),
    ("accuracy-limit-0", [*A, "--limit", "0"], "must be a positive number"),
    ("accuracy-budget", [*A, "--budget", "1.5"], "accuracy budget 1.5"),
    ("accuracy-curve-images", [*A, "--curve-images", "0"], "curve image count 0"),
    ("accuracy-search-images", [*A, "--search-images", "0"], "search image count 0"),
    ("accuracy-search-images-huge", [*A, "--search-images", "20000000"], "--search-images 20000000"),
    ("accuracy-mean", [*A, "--mean", "2"], "--mean 2 is outside"),
    ("accuracy-resize", [*A, "--resize", "99999"], "<= 4096"),
    ("accuracy-garbage-image", [*A, "--data", "{W}/imgs"], "cannot be decoded as an image"),
    ("accuracy-truncated-tarball", [*A, "--data", "{W}/trunc.tar.gz"], "damaged or truncated"),
    ("accuracy-weights-garbage", [*A, "--weights", "{W}/garbage.pt"], "garbage.pt"),
    # finetune
    ("finetune-lr-1e30", [*F, "--lr", "1e30"], "--lr 1e+30 is outside"),
    ("finetune-lr-nan", [*F, "--lr", "nan"], "--lr nan is outside"),
    ("finetune-epochs-0", [*F, "--epochs", "0"], "--epochs 0 is outside"),
    ("finetune-batch-0", [*F, "--batch-size", "0"], "--batch-size 0 is outside"),
    ("finetune-seed-negative", [*F, "--seed", "-1"], "--seed -1 is outside"),
    ("finetune-qf-range", [*F, "--qf-range", "40", "30"], "is empty"),
    ("finetune-save-missing-folder", [*F, "--save", "{W}/nowhere/t.pt"], "does not exist"),
    ("finetune-save-is-folder", [*F, "--save", "{W}/outdir"], "is a folder"),
    ("finetune-save-onto-weights", [*F, "--weights", "{W}/w.pt", "--save", "{W}/w.pt"], "is also the input --weights"),
    # weights
    ("weights-out-is-file", ["weights", "--net", "digits", "--out", "{W}/afile"], "is a file"),
    ("weights-search-images-0", [*WQ, "--search-images", "0"], "positive"),
    ("weights-test-limit-huge", [*WQ, "--test-limit", "99999999999"], "outside the allowed range"),
    ("weights-budget-nan", [*WQ, "--budget", "nan"], "top-1 budget nan"),
    ("weights-qfs-from-not-utf8", [*WQ, "--qfs-from", "{W}/nonutf8.json"], "is not JSON"),
    ("weights-qf-grid", [*WQ, "--qf", "0"], "quality factor"),
    # train (no data needed: everything fails before it is read)
    ("train-lr-1e30", [*T, "--lr", "1e30"], "--lr"),
    ("train-epochs-huge", [*T, "--epochs", "100000"], "--epochs 100000"),
    ("train-batch-0", [*T, "--batch-size", "0"], "--batch-size"),
    ("train-out-is-folder", ["train", "--net", "mobilenetv2_cifar", "--out", "{W}/outdir"], "is a folder"),
    ("train-log-is-out", [*T, "--log", "{W}/outdir/t.pt"], "is also the input --out"),
    ("train-out-under-file", ["train", "--net", "mobilenetv2_cifar", "--out", "{W}/afile/t.pt"], "is a file"),
    ("train-untrainable", ["train", "--net", "resnet20", "--out", "{W}/outdir/t.pt"], "cannot train"),
    # splits: bad model files
    ("splits-bad-onnx", ["splits", "--net", "{W}/bad.onnx"], "is not an ONNX model"),
    ("splits-no-factory", ["splits", "--net", "{W}/m.py:nope"], "has no function 'nope'"),
    ("splits-no-input-shape", ["splits", "--net", "{W}/m.py:make"], "--input-shape"),
    ("splits-bad-input-shape", ["splits", "--net", "{W}/m.py:make", "--input-shape", "0,0,0"], "input shape"),
    ("splits-weights-garbage", ["splits", "--net", "digits", "--weights", "{W}/garbage.pt"], "garbage.pt"),
    # the split runtime: edge (checked before it connects), host, runtime-report
    ("edge-unknown-split", [*E, "--split", "conv9"], "unknown split 'conv9'"),
    ("edge-unknown-net", ["edge", "--connect", "127.0.0.1:1", "--net", "nosuchnet"], "unknown network"),
    ("edge-address", ["edge", "--connect", "nohost", "--net", "digits"], "is not HOST:PORT"),
    ("edge-qf", [*E, "--split", "conv2", "--codec", "jpeg", "--qf", "101"], "1..100"),
    ("edge-out-missing-folder", [*E, "--split", "conv2", "--out", "{W}/nowhere/run.json"], "does not exist"),
    ("edge-out-under-file", [*E, "--split", "conv2", "--out", "{W}/afile/run.json"], "is a file, not a folder"),
    ("edge-trace-missing", [*E, "--trace", "{W}/missing.csv"], "cannot be read"),
    ("edge-trace-garbage", [*E, "--trace", "{W}/badtrace.csv"], "line 2"),
    ("host-address", ["host", "--listen", "127.0.0.1"], "is not HOST:PORT"),
    ("host-port", ["host", "--listen", "127.0.0.1:70000"], "port 0..65535"),
    ("host-server", ["host", "--listen", "127.0.0.1:0", "--server", "forks"], "unknown server 'forks'"),
    ("runtime-report-not-json", ["runtime-report", "{W}/nonutf8.json"], "is not JSON"),
    ("runtime-report-not-a-run", ["runtime-report", "{W}/notarun.json"], "is not a runtime run"),
    ("runtime-report-missing", ["runtime-report", "{W}/missing.json"], "cannot be read"),
    ("runtime-report-onto-input", ["runtime-report", "{W}/notarun.json", "-o", "{W}/notarun.json"], "extension"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
]


def test_battery_is_large_and_covers_every_command():
    from model.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    covered = {argv[0] for _, argv, _ in CASES}
    assert len(CASES) >= 60 and commands <= covered, (len(CASES), commands - covered)


@pytest.mark.parametrize("argv, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_everything_as_it_was(ws, capsys, argv, needle):
    before = _snapshot(ws)
    args = [a.replace("{W}", str(ws)) for a in argv]
    t0 = time.monotonic()
    rc, out, err = run(args, capsys)
    assert rc == 2, (rc, err)
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("edgesplit"), err
    assert "Traceback" not in err and needle in err, err
    assert out == ""
    assert _snapshot(ws) == before          # inputs unchanged, no output and no temporary file left
    assert time.monotonic() - t0 < 30       # refused before any long work


# ---- caches, results of several files ------------------------------------------------------------------------


def test_a_damaged_cache_under_build_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(D, "CACHE_MIN_IMAGES", 1)
    src = tmp_path / "set" / "test"
    for cls in ("a", "b"):
        (src / cls).mkdir(parents=True)
        Image.fromarray(np.full((4, 4, 3), ord(cls), dtype=np.uint8)).save(src / cls / "0.png")
    cache = D._cifar_cache_path(src)
    good = {}
    for damage in (b"", b"PK\x03\x04 not really a zip", b"\x93NUMPY garbage"):
        cache.write_bytes(damage)
        D._cifar_full.cache_clear()
        images, labels, classes = D.load_cifar10_u8("test", None, src)
        assert images.shape == (2, 4, 4, 3) and list(labels) == [0, 1] and classes == ("a", "b")
        with np.load(cache) as z:          # rewritten, and readable
            good[damage] = z["images"].tobytes()
    assert len(set(good.values())) == 1
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]   # no temporary file left


def test_a_garbage_image_in_a_data_set_names_it(tmp_path):
    (tmp_path / "cat").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "cat" / "ok.png")
    (tmp_path / "cat" / "bad.png").write_bytes(b"garbage")
    blobs, _, _, where = D._encoded.__wrapped__(tmp_path)
    with pytest.raises(UserError, match="cat/bad.png") as e:
        D._decode(blobs, where)
    assert "\n" not in str(e.value)


def test_group_is_complete_or_absent(tmp_path, monkeypatch):
    table, plot = tmp_path / "t.json", tmp_path / "t.png"
    table.write_text("old")
    with pytest.raises(KeyboardInterrupt), files.AtomicGroup() as g:
        g.path(plot).write_bytes(b"new plot")
        g.path(table).write_text("new table")
        raise KeyboardInterrupt
    assert table.read_text() == "old" and not plot.exists() and sorted(os.listdir(tmp_path)) == ["t.json"]
    order = []
    real = os.replace

    def replace(a, b):
        order.append(Path(b).name)
        real(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with files.AtomicGroup() as g:
        g.path(plot).write_bytes(b"new plot")
        g.path(table).write_text("new table")
    assert table.read_text() == "new table" and plot.read_bytes() == b"new plot"
    assert order == ["t.png", "t.json"] and sorted(os.listdir(tmp_path)) == ["t.json", "t.png"]


def test_a_full_disk_is_one_line_and_leaves_no_temporary(tmp_path, monkeypatch):
    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(UserError, match="cannot write .*x.bin: No space left on device"):
        files.write_bytes(tmp_path / "x.bin", b"data")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


# ---- Ctrl-C (SIGINT) at several moments, in a subprocess ------------------------------------------------------

DRIVER = r"""
import sys, time
moment, argv = sys.argv[1], sys.argv[2:]
if moment != "startup":
    if moment == "work":            # while the codec computes, before anything is written
        import golden.lossless as target
        name = "encode"
    else:                           # the plot written to its temporary file, not renamed yet
        from matplotlib.figure import Figure as target
        name = "savefig"
    real = getattr(target, name)

    def slow(*a, **k):
        r = real(*a, **k)
        print("READY", flush=True)
        time.sleep(30)
        return r

    setattr(target, name, slow)
from model.cli import main
if moment == "startup":
    print("READY", flush=True)   # Ctrl-C lands while main() imports the commands (torch, ...)
sys.exit(main(argv))
"""


def _interrupt(argv: list[str], moment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-c", DRIVER, moment, *argv], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "READY", (line, p.stderr.read())
        if moment == "startup":
            time.sleep(0.1)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


@pytest.mark.parametrize("moment", ["startup", "work", "writing"])
def test_ctrl_c_is_interrupted_exit_130_and_leaves_nothing(ws, tmp_path, moment):
    out = tmp_path / "out"
    out.mkdir()
    if moment == "writing":
        argv = [*S, "--plot", str(out / "sweep.png"), "--json"]
    else:
        argv = ["encode", str(ws / "feats.npy"), "-o", str(out / "f.esll"), "--lossless"]
    (out / "old.txt").write_text("kept")
    p = _interrupt(argv, moment)
    assert p.returncode == 130, p.stderr
    assert p.stderr == "edgesplit: interrupted\n", p.stderr
    assert sorted(os.listdir(out)) == ["old.txt"]          # no output, no temporary file


def test_ctrl_c_during_the_renames_waits_for_the_whole_result(tmp_path):
    """SIGINT arriving while a group of files is renamed is held until all of them are in place."""
    code = r"""
import os, sys, time
from pathlib import Path
from golden import files
out = Path(sys.argv[1])
real = os.replace
def slow(a, b):
    real(a, b)
    if str(b).endswith("plot.png"):
        print("READY", flush=True)
        time.sleep(1.0)
os.replace = slow
try:
    with files.AtomicGroup() as g:
        g.path(out / "plot.png").write_bytes(b"plot")
        g.path(out / "table.json").write_text("table")
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
"""
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.stdout.readline().strip() == "READY"
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "INTERRUPTED" in out, err
    assert sorted(os.listdir(tmp_path)) == ["plot.png", "table.json"]
    assert (tmp_path / "table.json").read_text() == "table"
