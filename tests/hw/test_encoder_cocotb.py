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


def test_colour_encoder_throughput():
    """A 224 x 224 colour photo at 4:4:4 and 4:2:0: 1 sample per cycle, no input stall; the cycles per
    image go to build/bench/jpeg_encoder_colour_cycles.json (and the README)."""
    result = BUILD_DIR / "bench" / "jpeg_encoder_colour_cycles.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    assert run(JPEG_ENCODER_COLOUR, "sim.tb_encoder", testcase="colour_cycles",
               env=_env(EDGESPLIT_RESULT=str(result))) == (1, 0)
    report = json.loads(result.read_text())
    assert [r["subsampling"] for r in report] == ["444", "420"]
    for r in report:
        assert r["samples"] == (3 if r["subsampling"] == "444" else 1.5) * 224 * 224, r
        assert r["samples_per_cycle"] >= 1.0 and r["stall_cycles"] == 0, r
        # the image's cycles: its samples plus the pipeline's fill and drain (well under one MCU row)
        assert r["samples"] <= r["cycles"] <= r["samples"] + 2000, r
