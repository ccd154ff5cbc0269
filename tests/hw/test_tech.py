"""hw.tech: the 28 nm technology file, its schema check and the SRAM energy interpolation."""

from __future__ import annotations

import copy

import pytest
import yaml

from golden.arch import DEFAULT_ARCH
from golden.errors import UserError
from hw.tech import DEFAULT_TECH, check_tech, load_tech


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(DEFAULT_TECH.read_text())


def test_default_file_loads_with_provenance():
    t = load_tech()
    assert t.name == "28nm" and not hasattr(t, "clock_hz")     # the clock is the architecture's
    assert t.e("mac_16b") == pytest.approx(0.48e-12)
    assert t.e("dram_bit") * 32 == pytest.approx(640e-12)     # the paper's 640 pJ per 32-bit access
    assert "clock" not in {row["group"] for row in t.table()}
    for row in t.table():
        assert row["source"].strip() and row["scaling"].strip() and row["unit"].strip()


def test_sram_energy_table_nodes_and_monotonic():
    t = load_tech()
    assert t.sram_word_energy_j(131072, 16) == pytest.approx(3.6e-12)
    assert t.sram_word_energy_j(1048576, 128) == pytest.approx(26.7e-12 / 8)
    sizes = [8192, 32768, 131072, 300000, 524288, 2**21]
    e = [t.sram_word_energy_j(s) for s in sizes]
    assert all(b > a for a, b in zip(e, e[1:], strict=False))
    assert t.sram_word_energy_j(32768, write=True) == pytest.approx(1.2 * t.sram_word_energy_j(32768))
    # wider ports cost less per word
    assert t.sram_word_energy_j(131072, 128) < t.sram_word_energy_j(131072, 16)


def _broken(doc, path, value):
    d = copy.deepcopy(doc)
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize("path,value,needle", [
    (("energy", "mac_16b"), KeyError, "energy.mac_16b: missing"),
    (("energy", "mac_16b", "value"), "cheap", "energy.mac_16b.value: expected a number"),
    (("energy", "dram_bit", "value"), -1.0, "energy.dram_bit.value: -1.0 must be >= 0"),
    (("energy", "mac_16b", "source"), "", "energy.mac_16b.source: expected a non-empty string"),
    (("energy", "mac_16b", "colour"), "red", "unknown field 'colour'"),
    (("energy", "fancy_op"), {"value": 1, "unit": "J", "source": "s", "scaling": "x"}, "energy.fancy_op: unknown key"),
    (("leakage", "encoder_w"), KeyError, "leakage.encoder_w: missing"),
    (("sram", "read_pj", "sizes_bytes"), [262144, 131072, 524288, 1048576], "strictly increasing"),
    (("sram", "read_pj", "values"), [[1, 2, 3]], "expected 4 rows"),
    (("schema_version",), 7, "schema_version: 7 is not supported"),
])
def test_schema_errors_name_the_key(doc, path, value, needle):
    with pytest.raises(UserError) as e:
        check_tech(_broken(doc, path, value), "t.yaml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("technology file t.yaml: ") and "\n" not in msg


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("energy: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_tech(bad)
    with pytest.raises(UserError, match="not found"):
        load_tech(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(UserError, match="top level: expected a mapping"):
        load_tech(scalar)


def test_a_clock_in_the_tech_file_is_a_one_line_error(tmp_path, doc):
    """The clock moved to the engine architecture (golden.arch.EngineArch.clock_hz, issue 16)."""
    assert "clock" not in doc and DEFAULT_ARCH.clock_hz == 200e6
    d = copy.deepcopy(doc)
    d["clock"] = {"frequency_hz": {"value": 100e6, "unit": "Hz", "source": "s", "scaling": "none"}}
    with pytest.raises(UserError) as e:
        check_tech(d, "t.yaml")
    msg = str(e.value)
    assert msg.startswith("technology file t.yaml: clock: ") and "\n" not in msg
    assert "engine architecture (golden.arch.EngineArch.clock_hz)" in msg and "remove" in msg
    p = tmp_path / "clocked.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(UserError, match="golden.arch.EngineArch.clock_hz"):
        load_tech(p)


def test_another_tech_file_and_another_clock_change_results(tmp_path, doc):
    from dataclasses import replace

    from model.api import query
    from model.counts import DEFAULT_ENGINE

    d = copy.deepcopy(doc)
    d["name"] = "costly-mac"
    d["energy"]["mac_16b"]["value"] *= 2
    p = tmp_path / "costly.yaml"
    p.write_text(yaml.safe_dump(d))
    a = query("alexnet", "fc8", "none", counts_source="analytical")
    b = query("alexnet", "fc8", "none", tech=p, counts_source="analytical")
    assert b.tech == "costly-mac" and b.fps == a.fps and b.energy_per_frame_j > a.energy_per_frame_j
    # the clock is the engine's (EngineParams.clock_hz, from golden.arch.EngineArch): half the clock, half the fps
    assert DEFAULT_ENGINE.clock_hz == DEFAULT_ARCH.clock_hz
    slow = query("alexnet", "fc8", "none", engine=replace(DEFAULT_ENGINE, clock_hz=100e6),
                 counts_source="analytical")
    assert slow.fps == pytest.approx(a.fps / 2, rel=1e-9)


# ---- the area section (make synth) -------------------------------------------------------------------------


def test_area_section_loads_with_provenance():
    a = load_tech().area
    assert a is not None
    assert a.ge_m2.value == pytest.approx(0.798e-12 * (28 / 45) ** 2, rel=1e-3)   # Nangate 45 NAND2_X1 scaled
    assert a.gate_ge["NAND"] == 1.0 and a.gate_ge["DFF"] == pytest.approx(4.522 / 0.798, rel=1e-3)
    rows = [r for r in load_tech().table() if r["group"] == "area"]
    assert {r["key"] for r in rows} >= {"ge_m2", "sram_bitcell_m2", "leakage_per_sram_bit_w"}
    assert all(r["source"].strip() and r["scaling"].strip() for r in rows)


def test_sram_macro_area_grows_with_size_and_efficiency_is_clamped():
    a = load_tech().area
    assert a.sram_efficiency(64) == a.efficiency[0] and a.sram_efficiency(2**30) == a.efficiency[-1]
    assert a.sram_efficiency(8192) == pytest.approx(0.45)
    per_bit = [a.sram_macro_m2(b) / b for b in (512, 4096, 32768, 262144, 2**22)]
    assert all(y <= x for x, y in zip(per_bit, per_bit[1:], strict=False))    # bigger macros: denser
    assert a.sram_macro_m2(262144, two_port=False) == pytest.approx(262144 * 0.127e-12 / 0.70)
    assert a.sram_macro_m2(262144) == pytest.approx(1.6 * a.sram_macro_m2(262144, two_port=False))


def test_a_file_without_area_still_loads(doc):
    d = copy.deepcopy(doc)
    del d["area"]
    assert check_tech(d, "t.yaml").area is None


@pytest.mark.parametrize("path,value,needle", [
    (("area", "ge_m2"), KeyError, "area.ge_m2: missing"),
    (("area", "ge_m2", "value"), 0, "area.ge_m2.value: 0 must be > 0"),
    (("area", "sram_bitcell_m2", "source"), "", "area.sram_bitcell_m2.source: expected a non-empty string"),
    (("area", "sram_two_port_factor", "value"), 0.5, "area.sram_two_port_factor.value: 0.5 must be >= 1"),
    (("area", "gate_ge", "cells", "XOR"), KeyError, "area.gate_ge.cells.XOR: missing"),
    (("area", "gate_ge", "cells", "FANCY"), 3, "area.gate_ge.cells.FANCY: unknown cell"),
    (("area", "gate_ge", "source"), KeyError, "area.gate_ge.source: missing"),
    (("area", "sram_efficiency", "values"), [0.2, 0.4], "expected 4 numbers"),
    (("area", "sram_efficiency", "values"), [0.2, 0.4, 0.6, 1.5], "values[3]: 1.5 must be <= 1"),
    (("area", "sram_efficiency", "sizes_bits"), [8192, 1024, 65536, 262144], "strictly increasing"),
    (("area", "die_cost"), {"value": 1, "unit": "$", "source": "s", "scaling": "x"}, "area.die_cost: unknown key"),
])
def test_area_schema_errors_name_the_key(doc, path, value, needle):
    with pytest.raises(UserError) as e:
        check_tech(_broken(doc, path, value), "t.yaml")
    msg = str(e.value)
    assert needle in msg and msg.startswith("technology file t.yaml: ") and "\n" not in msg
