"""pytest runner for the cocotb testbench of the RTL feature encoder (sim/tb_encoder.py) on Verilator.

Two builds: ``jpeg_encoder`` (the byte-stream output, what the CLI uses) and ``jpeg_encoder_w4`` (32-bit
output beats, the configuration that keeps 1 sample per cycle when the coded stream exceeds 8 bits per
sample).
"""

import json
import os

import pytest

from sim.designs import JPEG_ENCODER, JPEG_ENCODER_COLOUR, JPEG_ENCODER_W4
from sim.runner import BUILD_DIR, run

# the encoder's tests share two Verilator builds: keep them on one xdist worker
pytestmark = pytest.mark.xdist_group("jpeg_encoder")


def _env(**extra):
    return {"EDGESPLIT_SEED": os.environ.get("EDGESPLIT_SEED", "1"), **extra}


@pytest.mark.parametrize("testcase", ["jpeg_sweep", "lossless_maps", "edge_cases", "backpressure"])
def test_encoder_verilator(testcase):
    assert run(JPEG_ENCODER, "sim.tb_encoder", testcase=testcase, env=_env()) == (1, 0)


@pytest.mark.parametrize("testcase", ["edge_cases", "backpressure"])
def test_wide_encoder_verilator(testcase):
    assert run(JPEG_ENCODER_W4, "sim.tb_encoder", testcase=testcase, env=_env()) == (1, 0)


@pytest.mark.parametrize("design", [JPEG_ENCODER, JPEG_ENCODER_W4], ids=lambda d: d.name)
def test_encoder_throughput(design):
    """Samples per cycle, no input gaps, output always ready (numbers in build/bench/<design>_throughput.json).

    Byte stream: JPEG on real feature maps at 1 sample per cycle with no stall; streams above 8 coded bits
    per sample are output-bound (lossless int16 ReLU maps average 6 bits per sample but have dense channels
    well above 8). 32-bit output: every real map at 1 sample per cycle. Worst cases: never below 90 % of
    what the output width allows."""
    result = BUILD_DIR / "bench" / f"{design.name}_throughput.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    assert run(design, "sim.tb_encoder", testcase="throughput", env=_env(EDGESPLIT_RESULT=str(result))) == (1, 0)
    report = json.loads(result.read_text())
    for r in report:
        if r["kind"] == "real" and (r["out_bytes"] > 1 or r["case"].startswith("JPEG")):
            assert r["samples_per_cycle"] >= 1.0 and r["stall_cycles"] == 0, r
        elif r["kind"] == "real":
            assert r["samples_per_cycle"] >= 0.8, r
        else:
            assert r["samples_per_cycle"] >= 0.9 * r["output_bound"], r


@pytest.mark.slow
@pytest.mark.parametrize("design", [JPEG_ENCODER, JPEG_ENCODER_W4], ids=lambda d: d.name)
def test_encoder_large_sweep(design):
    assert run(design, "sim.tb_encoder", testcase="large_sweep", env=_env()) == (1, 0)


# ---- colour (issue 16, item 6): the 3-component build ---------------------------------------------------


def test_colour_encoder_verilator():
    """Colour JPEG (4:4:4 and 4:2:0, QF 1..100, extremes and odd sizes) byte for byte against golden, opened
    by Pillow with the right subsampling (sim/tb_encoder.py ``colour_sweep``)."""
    assert run(JPEG_ENCODER_COLOUR, "sim.tb_encoder", testcase="colour_sweep", env=_env()) == (1, 0)


@pytest.mark.parametrize("side", [96, pytest.param(224, marks=pytest.mark.slow)])
def test_colour_encoder_throughput(side):
    """A side x side colour photo at 4:4:4 and 4:2:0 (96 here, 224 in the slow run: the README's numbers).
    Host-converted YCbCr: 1 sample per cycle, no input stall.
    RGB pixels through the colour stage: the same cycles plus its fill (one whole MCU, 64 or 256 pixels, before
    its first block leaves), so 1 pixel per 3 cycles (4:4:4) or 2 per 3 (4:2:0) and the encoder behind it
    never starves. The cycles per image go to
    build/bench/jpeg_encoder_colour_cycles_<side>.json (and the README)."""
    result = BUILD_DIR / "bench" / f"jpeg_encoder_colour_cycles_{side}.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    assert run(JPEG_ENCODER_COLOUR, "sim.tb_encoder", testcase="colour_cycles",
               env=_env(EDGESPLIT_RESULT=str(result), EDGESPLIT_SIDE=str(side))) == (1, 0)
    report = json.loads(result.read_text())
    assert [(r["subsampling"], r["rgb"]) for r in report] == [("444", True), ("444", False), ("420", True),
                                                               ("420", False)]
    for rgb_run, ycc in zip(report[0::2], report[1::2], strict=True):
        samples = (3 if ycc["subsampling"] == "444" else 1.5) * side * side
        assert ycc["beats"] == samples and rgb_run["beats"] == side * side, (rgb_run, ycc)
        assert rgb_run["blocks"] == ycc["blocks"] == samples // 64
        assert ycc["beats_per_cycle"] >= 1.0 and ycc["stall_cycles"] == 0, ycc
        # the image's cycles: its samples plus the pipeline's fill and drain (well under one MCU row)
        assert samples <= ycc["cycles"] <= samples + 2000, ycc
        mcu_pixels = 64 if ycc["subsampling"] == "444" else 256   # the colour stage's fill: one whole MCU
        assert ycc["cycles"] <= rgb_run["cycles"] <= ycc["cycles"] + mcu_pixels + 16, (rgb_run, ycc)
