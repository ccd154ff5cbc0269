"""model.synth_power: make synth's power table, the cost-model step after ``python -m sim.synth`` (no Yosys here:
a synth.json with area rows stands in for sim.synth's)."""

import json

import pytest

from golden.arch import DEFAULT_ARCH
from hw.tech import load_tech
from model.synth_power import main, power
from sim.runner import BUILD_DIR
from tests.ci import skip_unless_ci

SIM_JSON = BUILD_DIR / "sim" / "alexnet.json"
ROWS = [{"block": "MAC array", "leakage_w": 1e-4}, {"block": "feature buffer", "leakage_w": 2e-4},
        {"block": "depthwise unit (engine.dw: lanes x 9 taps of multipliers; 108 at 12 lanes)", "leakage_w": 5e-5}]


def _synth_dir(tmp_path, chip=ROWS):
    out = tmp_path / "synth"
    out.mkdir()
    doc = {"flow": "coarse", "yosys": "y", "tech": None, "blocks": {}, "chip_area": chip, "power": None, "wall_s": 1}
    (out / "synth.json").write_text(json.dumps(doc))
    (out / "synth.md").write_text("# Synthesis\n\nareas\n")
    return out


def test_no_counts_leaves_the_area_report_as_it_is(tmp_path, capsys):
    out = _synth_dir(tmp_path)
    before = (out / "synth.json").read_text(), (out / "synth.md").read_text()
    assert main(["--out", str(out), "--sim-json", str(tmp_path / "missing.json")]) == 0
    assert "power breakdown skipped" in capsys.readouterr().err
    assert ((out / "synth.json").read_text(), (out / "synth.md").read_text()) == before


def test_no_synth_json_is_one_line_exit_1(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "python -m sim.synth" in err


def test_power_over_make_sims_run_at_the_architectures_clock(tmp_path):
    if not SIM_JSON.exists():
        skip_unless_ci(f"{SIM_JSON} absent (make sim)")
    out = _synth_dir(tmp_path)
    assert main(["--out", str(out), "--sim-json", str(SIM_JSON)]) == 0
    doc = json.loads((out / "synth.json").read_text())
    pw = doc["power"]
    assert pw["clock_hz"] == DEFAULT_ARCH.clock_hz and pw["seconds"] == pytest.approx(pw["cycles"] / 200e6)
    assert [b["block"] for b in pw["blocks"]] == [r["block"] for r in ROWS]
    assert pw["blocks"][2]["dynamic_w"] is None and pw["blocks"][0]["dynamic_w"] > 0
    assert pw["on_chip_w"] == pytest.approx(sum(b["total_w"] for b in pw["blocks"]))
    md = (out / "synth.md").read_text()
    assert md.startswith("# Synthesis\n\nareas\n\n## Power over `make sim`") and md.count("## Power") == 1
    assert main(["--out", str(out), "--sim-json", str(SIM_JSON)]) == 0      # a second run replaces its section
    assert (out / "synth.md").read_text() == md
    assert power(ROWS, load_tech(), SIM_JSON)["on_chip_w"] == pytest.approx(pw["on_chip_w"])
