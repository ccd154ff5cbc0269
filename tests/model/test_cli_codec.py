"""``edgesplit encode`` / ``edgesplit decode`` (model/cli_codec.py): files in, files out, errors as one line
with exit status 2, nothing half-written; ``--rtl`` gives the software reference's bytes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from golden import featpack, jpeg, lossless
from model import cli_codec
from model.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("codec")
    gray = skimage.data.camera()[200:237, 180:230]            # 37 x 50: not a multiple of 8
    colour = skimage.data.astronaut()[20:60, 150:198]
    feats = lossless.synthetic_relu_maps(skimage.data.camera()[100:132, 100:140], 3, 0)   # int16 [3, 32, 40]
    paths = {"gray": d / "gray.png", "colour": d / "colour.png", "feats": d / "feats.npy",
             "feats_f32": d / "feats_f32.npy", "rank2": d / "rank2.npy", "bmp": d / "img.bmp",
             "gray_jpg_in": d / "gray_in.jpg", "dense": d / "dense.npy"}
    Image.fromarray(gray).save(paths["gray"])
    Image.fromarray(colour).save(paths["colour"])
    Image.fromarray(gray).save(paths["gray_jpg_in"], quality=95)
    Image.fromarray(gray).save(paths["bmp"])
    np.save(paths["feats"], feats)
    np.save(paths["feats_f32"], feats.astype(np.float32) / 1000)
    np.save(paths["rank2"], feats[0])
    np.save(paths["dense"], np.random.default_rng(18).integers(-32768, 32768, (4, 8, 8)).astype(np.int16))
    return paths


def run_cli(args, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_encode_gray_png_to_jpeg_and_back(files, tmp_path, capsys):
    out = tmp_path / "g.jpg"
    rc, stdout, _ = run_cli(["encode", files["gray"], "-o", out, "--qf", 60], capsys)
    assert rc == 0
    data = out.read_bytes()
    assert data == jpeg.encode_jpeg(np.asarray(Image.open(files["gray"])), 60)
    assert f"{len(data)} bytes" in stdout and "ratio" in stdout and f"raw {37 * 50} bytes" in stdout
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.size == (50, 37) and img.mode == "L"
    png = tmp_path / "g.png"
    assert run_cli(["decode", out, "-o", png], capsys)[0] == 0
    assert np.asarray(Image.open(png)).shape == (37, 50)


def test_encode_jpeg_input_and_default_qf(files, tmp_path, capsys):
    out = tmp_path / "j.jpeg"
    rc, stdout, _ = run_cli(["encode", files["gray_jpg_in"], "-o", out], capsys)
    assert rc == 0 and "QF 75" in stdout


def test_bad_subsampling_names_the_allowed_values(files, tmp_path, capsys):
    out = tmp_path / "x.jpg"
    rc, _, err = run_cli(["encode", files["colour"], "-o", out, "--subsampling", "411", "--rtl"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert err.strip() == "edgesplit encode: error: chroma subsampling '411' is not one of 444, 420"
    assert not out.exists()


def test_colour_image_420(files, tmp_path, capsys):
    from PIL import JpegImagePlugin

    out = tmp_path / "c420.jpg"
    rc, stdout, _ = run_cli(["encode", files["colour"], "-o", out, "--qf", 90, "--subsampling", "420"], capsys)
    assert rc == 0 and "YCbCr 4:2:0" in stdout
    rgb = np.asarray(Image.open(files["colour"]))
    assert out.read_bytes() == jpeg.encode_jpeg(rgb, 90, "420")
    img = Image.open(out)
    img.load()
    assert img.mode == "RGB" and img.layers == 3 and img.size == (48, 40) and JpegImagePlugin.get_sampling(img) == 2
    assert jpeg.psnr(rgb, np.asarray(img)) > 30


def test_colour_image_is_444_ycbcr(files, tmp_path, capsys):
    out = tmp_path / "c.jpg"
    assert run_cli(["encode", files["colour"], "-o", out, "--qf", 90], capsys)[0] == 0
    data = out.read_bytes()
    rgb = np.asarray(Image.open(files["colour"]))
    assert data == jpeg.encode_jpeg(rgb, 90, "444")
    img = Image.open(out)
    img.load()
    assert img.mode == "RGB" and img.size == (48, 40)
    assert np.abs(np.asarray(img, dtype=np.int64) - rgb).mean() < 6


def test_feature_map_lossy_roundtrip(files, tmp_path, capsys):
    out = tmp_path / "f.jpg"
    rc, stdout, _ = run_cli(["encode", files["feats"], "-o", out, "--qf", 95], capsys)
    assert rc == 0 and f"raw {2 * 3 * 32 * 40} bytes (16-bit" in stdout
    data = out.read_bytes()
    feats = np.load(files["feats"])
    side, jfif = featpack.encode_jpeg(feats, 95)
    # the golden JFIF with the side information in an APP9 segment; any viewer opens it
    assert cli_codec.find_side_info(data) == side
    assert data == cli_codec.add_side_info(jfif, side)
    img = Image.open(out)
    img.load()
    assert img.size == (80, 64)    # 2 x 2 tiles of 40 x 32
    back = tmp_path / "f.npy"
    assert run_cli(["decode", out, "-o", back], capsys)[0] == 0
    dec = np.load(back)
    assert dec.shape == feats.shape and dec.dtype == feats.dtype
    assert np.array_equal(dec, featpack.decode_jpeg(side, jfif))
    scale = float(featpack.pack(feats)[1].scales[0])   # one 8-bit code step
    assert np.sqrt(np.mean((dec.astype(np.float64) - feats) ** 2)) < 2 * scale
    # a feature JPEG decodes to a feature map only
    rc, _, err = run_cli(["decode", out, "-o", tmp_path / "f.png"], capsys)
    assert rc == 2 and ".png" in err and ".npy" in err


def test_feature_map_lossless_roundtrip(files, tmp_path, capsys):
    out = tmp_path / "f.esll"
    rc, stdout, _ = run_cli(["encode", files["feats"], "-o", out, "--lossless"], capsys)
    assert rc == 0 and "lossless" in stdout
    feats = np.load(files["feats"])
    assert out.read_bytes() == lossless.encode(feats)
    back = tmp_path / "f.npy"
    assert run_cli(["decode", out, "-o", back], capsys)[0] == 0
    assert np.array_equal(np.load(back), feats) and np.load(back).dtype == feats.dtype


def test_dense_feature_map_is_sent_raw(files, tmp_path, capsys):
    """A dense map codes longer than its samples: the file is the raw container, 22 bytes over the samples."""
    out = tmp_path / "d.esll"
    rc, stdout, _ = run_cli(["encode", files["dense"], "-o", out, "--lossless"], capsys)
    dense = np.load(files["dense"])
    data = out.read_bytes()
    assert rc == 0 and data == lossless.encode(dense) and data[5] & lossless.FLAG_RAW
    assert len(data) == 22 + 2 * 256 and f"{len(data)} bytes (lossless), raw 512 bytes" in stdout
    back = tmp_path / "d.npy"
    assert run_cli(["decode", out, "-o", back], capsys)[0] == 0
    assert np.array_equal(np.load(back), dense) and np.load(back).dtype == np.int16


def test_image_lossless_roundtrip_to_png(files, tmp_path, capsys):
    out = tmp_path / "g.esll"
    assert run_cli(["encode", files["gray"], "-o", out, "--lossless"], capsys)[0] == 0
    png = tmp_path / "g.png"
    assert run_cli(["decode", out, "-o", png], capsys)[0] == 0
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(files["gray"])))


@pytest.mark.parametrize("case, needle", [
    (["--qf", "0"], "0"),
    (["--qf", "101"], "101"),
])
def test_bad_qf(files, tmp_path, capsys, case, needle):
    out = tmp_path / "x.jpg"
    rc, _, err = run_cli(["encode", files["gray"], "-o", out, *case], capsys)
    assert rc == 2 and needle in err and "1..100" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_inputs(files, tmp_path, capsys):
    cases = [
        (["encode", tmp_path / "missing.png", "-o", tmp_path / "x.jpg"], "does not exist"),
        (["encode", files["bmp"], "-o", tmp_path / "x.jpg"], "'.bmp'"),
        (["encode", files["gray"], "-o", tmp_path / "x.png"], "'.png'"),
        (["encode", files["gray"], "-o", tmp_path / "x.jpg", "--lossless"], "'.jpg'"),
        (["encode", files["rank2"], "-o", tmp_path / "x.jpg"], "rank 2"),
        (["encode", files["feats_f32"], "-o", tmp_path / "x.esll", "--lossless"], "float32"),
        (["encode", files["colour"], "-o", tmp_path / "x.jpg", "--subsampling", "422"], "'422'"),
        (["encode", files["colour"], "-o", tmp_path / "x.jpg", "--rtl", "--subsampling", "4:2:0"], "'4:2:0'"),
        (["encode", files["colour"], "-o", tmp_path / "x.esll", "--lossless", "--subsampling", "420"], "--lossless"),
        (["encode", files["gray"], "-o", tmp_path / "x.jpg", "--subsampling", "420"], "grayscale"),
        (["encode", files["feats"], "-o", tmp_path / "x.jpg", "--subsampling", "444"], "feature map"),
        (["encode", files["gray"], "-o", tmp_path / "nodir" / "x.jpg"], "does not exist"),
        (["decode", files["gray"], "-o", tmp_path / "x.png"], "'.png'"),
        (["decode", tmp_path / "missing.esll", "-o", tmp_path / "x.npy"], "does not exist"),
    ]
    for args, needle in cases:
        rc, stdout, err = run_cli(args, capsys)
        assert rc == 2, (args, err)
        assert needle in err and err.startswith("edgesplit ") and len(err.strip().splitlines()) == 1, (args, err)
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".x.*"))


def test_corrupt_files_are_user_errors(files, tmp_path, capsys):
    good = tmp_path / "g.jpg"
    assert run_cli(["encode", files["gray"], "-o", good], capsys)[0] == 0
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:-40])   # no EOI, part of the scan gone
    rc, _, err = run_cli(["decode", cut, "-o", tmp_path / "x.png"], capsys)
    assert rc == 2 and "corrupt or truncated" in err and len(err.strip().splitlines()) == 1
    esll = tmp_path / "f.esll"
    assert run_cli(["encode", files["feats"], "-o", esll, "--lossless"], capsys)[0] == 0
    esll.write_bytes(esll.read_bytes()[:-10])
    rc, _, err = run_cli(["decode", esll, "-o", tmp_path / "x.npy"], capsys)
    assert rc == 2 and "payload" in err
    assert not list(tmp_path.glob("x.*"))


def test_qf_and_lossless_exclusive(files, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["encode", str(files["gray"]), "-o", str(tmp_path / "x.esll"), "--qf", "50", "--lossless"])
    assert e.value.code == 2


def test_error_leaves_existing_output_untouched(files, tmp_path, capsys):
    out = tmp_path / "keep.jpg"
    out.write_bytes(b"old")
    assert run_cli(["encode", files["gray"], "-o", out, "--qf", "200"], capsys)[0] == 2
    assert out.read_bytes() == b"old"


def test_rtl_mismatch_fails_loudly_and_writes_nothing(files, tmp_path, capsys, monkeypatch):
    import sim.tb_encoder as tb

    def broken(job, workdir):
        data = bytearray(job.expected)
        data[len(data) // 2] ^= 0x10
        return tb.RtlResult(data=bytes(data), counters={"cycles": 1, "blocks": 1, "samples": 1,
                                                          "out_bits": job.bits, "stall_cycles": 0})

    monkeypatch.setattr(tb, "run_job", broken)
    out = tmp_path / "m.jpg"
    out.write_bytes(b"old")
    rc, _, err = run_cli(["encode", files["gray"], "-o", out, "--rtl"], capsys)
    assert rc == 1 and "RTL MISMATCH" in err and "first difference at byte" in err
    assert out.read_bytes() == b"old"


def test_errors_without_traceback_in_a_subprocess(files, tmp_path):
    p = subprocess.run([sys.executable, "-m", "model.cli", "encode", str(files["gray"]), "-o",
                        str(tmp_path / "x.jpg"), "--qf", "0"], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "edgesplit encode: error: JPEG quality factor 0 is outside 1..100"


# ---- --rtl: the Verilator model (cached build; first run builds it, about 30 s) --------------------------


@pytest.mark.xdist_group("jpeg_encoder")
@pytest.mark.parametrize("kind, args", [
    ("gray", ["--qf", "30"]),
    ("feats", ["--qf", "90"]),
    ("feats", ["--lossless"]),
    ("dense", ["--lossless"]),      # the RTL codes it; the host sends the raw container
    ("colour", ["--qf", "30"]),     # the 3-component build, golden's default 4:4:4
    ("colour", ["--qf", "90", "--subsampling", "420"]),
])
def test_rtl_gives_the_software_bytes(files, tmp_path, capsys, kind, args):
    ext = ".esll" if "--lossless" in args else ".jpg"
    sw, hw = tmp_path / f"sw{ext}", tmp_path / f"hw{ext}"
    assert run_cli(["encode", files[kind], "-o", sw, *args], capsys)[0] == 0
    rc, stdout, _ = run_cli(["encode", files[kind], "-o", hw, *args, "--rtl"], capsys)
    assert rc == 0 and "cycles" in stdout and "identical" in stdout
    assert hw.read_bytes() == sw.read_bytes()
