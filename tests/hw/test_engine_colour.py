"""The camera image JPEG-coded on the engine (issue 16 item 6, the host-only split): the engine's colour build
(``hw.engine.Engine(colour=True)``, ``hw.encode_unit`` colour) runs ``sim.program.compile_image``'s program --
two ENC_TABLES (luminance at table address 0, chrominance at ``CHROMA_BASE``: the command's ``fb_addr``), the
RGB planes LOADed in parts of whole MCU rows into the two halves of the buffer in turn, one ENCODE per part
(``enc_mode`` = sampling) -- in Amaranth's simulator with a Python DRAM model (random latency, jitter and
refused requests). The coded bytes equal golden's JPEG scan byte for byte and the JFIF file decodes with
Pillow. The Verilator run of a real photo is ``make sim SPLIT=input ENCODE=jpeg`` (``sim.run``)."""

import io

import numpy as np
import pytest
from PIL import Image

from golden import jpeg
from golden.errors import UserError
from hw.descriptor import Op
from hw.encode_unit import RECORD_WORDS
from hw.engine import Engine
from hw.jpeg.encoder import CHROMA_BASE, SAMPLING_MODES
from sim.amaranth_engine import run_engine_amaranth
from sim.encoding import image_parts, plan_image, read_encoding, table_runs
from sim.program import EngineConfig, compile_image


def camera_like(rng, h, w):
    """A smooth RGB gradient with noise (what a camera sees, not white noise), uint8."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / max(w - 1, 1), y * 255 / max(h - 1, 1), (x + y) * 127 / max(h + w - 2, 1)], axis=-1)
    return np.clip(base + rng.normal(0, 12, size=(h, w, 3)), 0, 255).astype(np.uint8)


CASES = {
    # name: (subsampling, H, W, QF, feature-buffer words): 37 x 29 in 4 parts (4:4:4, one MCU row each) and in
    # 2 parts (4:2:0: one 16-row MCU row of 3 x 16 x 37 words per half of the buffer)
    "444_parts": ("444", 29, 37, 50, 4096),
    "420_parts": ("420", 29, 37, 90, 4096),
}


@pytest.mark.parametrize("case", list(CASES))
def test_camera_image_bytes_equal_golden(case):
    sub, h, w, qf, fbw = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    image = camera_like(rng, h, w)
    plan = plan_image(image, qf, sub)
    config = EngineConfig(fb_words=fbw, wb_depth=256)
    prog = compile_image(plan, image, config)
    tables = [c for c in prog.commands if c.op == Op.ENC_TABLES]
    assert [(c.fb_addr, c.rows, c.enc_mode) for c in tables] == [(0, 576, 0), (CHROMA_BASE, 576, 0)]
    encodes = [c for c in prog.commands if c.op == Op.ENCODE]
    m = jpeg.mcu_size(sub)
    assert len(encodes) == len(image_parts(h, w, sub, fbw // 2)) > 1
    assert {c.enc_mode for c in encodes} == {SAMPLING_MODES[sub]}
    assert {c.in_addr for c in encodes} == {0, fbw // 2}            # the two halves in turn
    assert sum(c.enc_ybn for c in encodes) == -(-h // m)
    dram, snaps = run_engine_amaranth(prog, config, latency=int(rng.integers(1, 9)), jitter=int(rng.integers(0, 5)),
                                      gap_prob=0.2, seed=int(rng.integers(99)))
    got = read_encoding(dram, plan)
    assert got["data"] == plan.expected, f"coded bytes differ ({len(got['data'])} vs {len(plan.expected)})"
    assert got["bytes"] == len(plan.expected) and got["bits"] == plan.bits and got["match"]
    padded = -(-h // m) * m * -(-w // m) * m
    assert got["samples"] == padded
    # the encoder codes 3 (4:4:4) or 1.5 (4:2:0) samples per pixel, one per cycle
    assert got["cycles"] >= padded * (3 if sub == "444" else 1.5)
    last = snaps[-1]
    assert last["enc_samples"] == padded and last["enc_bits"] == plan.bits
    assert last["enc_out_words"] == RECORD_WORDS + -(-got["bytes"] // 2)
    assert last["macs"] == 0 and last["cycles"] > got["cycles"]
    # the file around the engine's bytes is golden's file, and libjpeg decodes it
    assert plan.wrap(got["data"]) == jpeg.encode_jpeg(image, qf, sub)
    decoded = Image.open(io.BytesIO(plan.wrap(got["data"])))
    decoded.load()
    assert decoded.size == (w, h) and decoded.mode == "RGB"
    err = np.abs(np.asarray(decoded, dtype=np.int64) - image.astype(np.int64)).mean()
    assert err < 16, err        # a sanity check that it is the picture (the exact check is the bytes above)


def test_table_runs_and_bases():
    plan = plan_image(np.zeros((8, 8, 3), np.uint8), 75, "420")
    runs = table_runs(plan.tables)
    assert [(b, len(t)) for b, t in runs] == [(0, 576), (CHROMA_BASE, 576)]
    assert [(b, len(t)) for b, t in table_runs(plan_image(np.zeros((8, 8, 3), np.uint8), 75).tables)] == \
        [(0, 576), (CHROMA_BASE, 576)]


def test_image_parts_cover_the_image_once():
    for sub, h, w, words in (("444", 29, 37, 2048), ("420", 224, 224, 131072), ("444", 8, 8, 192), ("420", 17, 5, 240)):
        m = jpeg.mcu_size(sub)
        parts = image_parts(h, w, sub, words)
        assert [p.yb0 for p in parts] == list(np.cumsum([0] + [p.ybn for p in parts[:-1]]))
        assert sum(p.ybn for p in parts) == -(-h // m) and parts[-1].y1 == h
        assert all(3 * (p.y1 - p.y0) * w <= words for p in parts)


def test_bad_input_is_one_line():
    with pytest.raises(UserError, match=r"^subsampling '422' is not one of 444, 420$"):
        plan_image(np.zeros((8, 8, 3), np.uint8), 75, "422")
    with pytest.raises(UserError, match=r"uint8 H x W x 3"):
        plan_image(np.zeros((8, 8), np.uint8), 75)
    with pytest.raises(UserError, match=r"does not fit half the feature buffer \(512 words\); allowed: width up to 10"):
        image_parts(29, 37, "420", 512)
    with pytest.raises(ValueError, match="colour"):
        Engine(fb_words=1024, wb_depth=256, encoder=False, colour=True)


def test_make_sim_input_split_rejects_bad_options(capsys):
    from sim.run import main

    for argv, msg in (
        (["--split", "input"], "allowed: ENCODE=jpeg"),
        (["--split", "input", "--encode", "lossless"], "allowed: ENCODE=jpeg"),
        (["--split", "input", "--encode", "jpeg", "--subsampling", "422"], "not one of 444, 420"),
        (["--split", "conv5", "--encode", "jpeg", "--subsampling", "420"], "applies only to SPLIT=input"),
    ):
        assert main(["--net", "alexnet", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err, err


def test_camera_image_runs_on_the_colour_build():
    """sim.run / sim.engine_run pick the colour build for a camera image's program (ENCODE with enc_mode != 0)."""
    from sim.designs import ENGINE_COLOUR, engine_for

    image = np.zeros((16, 24, 3), np.uint8)
    prog = compile_image(plan_image(image, 75, "420"), image)
    assert engine_for(prog) is ENGINE_COLOUR
    assert ENGINE_COLOUR.parameters["colour"] is True
    with pytest.raises(ValueError, match="colour build"):
        engine_for(prog, small=True)
