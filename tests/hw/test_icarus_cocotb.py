"""A second simulator: the cocotb tests of the MAC array and the encoder on Icarus Verilog, same results as Verilator.

The same cocotb modules (``sim/tb_mac_array.py``, ``sim/tb_encoder.py``) run on both simulators with a reduced
case count (Icarus runs a few hundred cycles per second here). Each run checks itself against the golden
models, and both runs write every output they saw (``EDGESPLIT_OUTPUTS``); the two files must be identical:
the same output tiles / bytes, counters and cycle counts.

Icarus Verilog is the Debian package ``iverilog`` (``.ci/run`` installs it). Without it these tests are skipped
locally, and fail under CI (``CI=true``) with the command that installs it.
"""

import json
import os
import shutil

import pytest

from sim.designs import JPEG_ENCODER, JPEG_ENCODER_COLOUR, JPEG_WDECODER, MAC_ARRAY
from sim.runner import run

INSTALL = "Icarus Verilog is missing: `sudo apt-get install -y iverilog` (Debian/Ubuntu package iverilog)"

pytestmark = pytest.mark.xdist_group("icarus")


@pytest.fixture(scope="module", autouse=True)
def icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(INSTALL, pytrace=False)
        pytest.skip(INSTALL)


def _both(design, module, testcase, env, tmp_path):
    results = {}
    for sim in ("verilator", "icarus"):
        out = tmp_path / f"{sim}.json"
        assert run(design, module, testcase=testcase, simulator=sim,
                   env={**env, "EDGESPLIT_OUTPUTS": str(out)}) == (1, 0)
        results[sim] = json.loads(out.read_text())
    return results["verilator"], results["icarus"]


@pytest.mark.parametrize("testcase,env", [
    ("random_tiles", {"EDGESPLIT_TILES": "8", "EDGESPLIT_MAX_K": "40", "EDGESPLIT_GAPS": "0.2"}),
    ("full_rate", {}),
])
def test_mac_array_icarus_matches_verilator(testcase, env, tmp_path):
    v, i = _both(MAC_ARRAY, "sim.tb_mac_array", testcase, {"EDGESPLIT_SEED": "3", **env}, tmp_path)
    assert len(v["tiles"]) > 0 and v["labels"] == i["labels"]
    assert v["tiles"] == i["tiles"]            # every output value, bit for bit
    assert v["cycles"] == i["cycles"]          # and cycle for cycle


# The JPEG path used to hang on Icarus (strict xfail until the fix): cocotb builds with `iverilog -g2012`, where a
# declaration initialiser (`reg t = 0`, Yosys's time-zero trigger for `always @*` blocks) fires no event, so a
# combinational `always @*` block whose inputs are all registers idling at their reset values stays X until
# one of them changes. The DCT's constant-coefficient selects (`row_k*` on `x`, `col_k*` on `d_y`, a Switch)
# were X for the first sample / first column read, the first block came out X, and the zero tests downstream
# (the zigzag buffer's end-of-block length, the run-length coder's `emit` -> `out.valid`) turned control X;
# with that fixed, the zigzag read address (`zigzag` LUT on `p`) was X for the first DC read, and X reached
# the packer's `inp.ready` through the Huffman length. hw/jpeg now builds such selects and the ping-pong
# set/release pulses as continuous logic (hw/jpeg/lut.py). The transpose buffer's read register (`rp.data`,
# no reset) was not the cause: it is consumed only under `d_valid`, after a read of a written row.
@pytest.mark.parametrize("testcase,cases", [("edge_cases", "4"), ("lossless_maps", "3")])
def test_encoder_icarus_matches_verilator(testcase, cases, tmp_path):
    v, i = _both(JPEG_ENCODER, "sim.tb_encoder", testcase, {"EDGESPLIT_SEED": "1", "EDGESPLIT_CASES": cases},
                 tmp_path)
    assert len(v) == int(cases)
    assert [o["label"] for o in v] == [o["label"] for o in i]
    for a, b in zip(v, i, strict=True):
        assert a["data"] == b["data"], a["label"]            # the coded bytes
        assert a["counters"] == b["counters"], a["label"]    # cycles, stalls, bits, blocks, samples
        assert a["cycles"] == b["cycles"], a["label"]


def test_colour_encoder_icarus_matches_verilator(tmp_path):
    """The colour build (colour stage, table sets, per-component DC predictors) on Icarus: the first colour
    image of each subsampling, bytes, counters and cycles equal to Verilator's (issue 16, item 6)."""
    v, i = _both(JPEG_ENCODER_COLOUR, "sim.tb_encoder", "colour_sweep",
                 {"EDGESPLIT_SEED": "1", "EDGESPLIT_CASES": "1"}, tmp_path)
    assert len(v) == 2
    assert [o["label"] for o in v] == [o["label"] for o in i]
    for a, b in zip(v, i, strict=True):
        assert a["data"] == b["data"], a["label"]
        assert a["counters"] == b["counters"], a["label"]
        assert a["cycles"] == b["cycles"], a["label"]


def test_wdecoder_icarus_golden():
    """The weight decoder (Huffman decoder + IDCT) on Icarus: every weight equal to golden's (the bench checks).
    It hung the same way before hw/jpeg/lut.py: the IDCT's bank flags `cfull`/`tfull` went X at the first clock
    (their set/release pulses came from `always @*` blocks over idle registers)."""
    assert run(JPEG_WDECODER, "sim.tb_wdecoder", testcase="edge_cases", simulator="icarus",
               env={"EDGESPLIT_SEED": "1"}) == (1, 0)
