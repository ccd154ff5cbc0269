"""make synth (sim/synth.py): the coarse Yosys pass on real blocks, memories kept as SRAM macros, area rules."""

import pytest

from hw.tech import load_tech
from sim.designs import ENGINE_PARAMS, FEATURE_BUFFER
from sim.synth import SynthError, blocks, gate_ge, synth_block, synthesis_verilog


def test_mac_array_coarse_pass(tmp_path):
    r = synth_block(blocks()["mac_array"], "coarse", tmp_path, force=True)
    t = r["total"]
    assert t["multipliers"] == 144                       # one 16 x 16 product per PE, nothing else multiplies
    assert sum(1 for m in r["modules"] if ".pe_" in m) == 144
    # every PE keeps a 48-bit accumulator; the array a 48-bit shadow bank on top
    pe_ff = [row["ff_bits"] for m, row in r["modules"].items() if ".pe_" in m]
    assert set(pe_ff) == {48}
    assert t["ff_bits"] >= 144 * 48 * 2
    assert t["srams"] == [] and t["sram_bits"] == 0
    assert t["area_m2"] is None                          # coarse: no gates yet, so no logic area
    assert r["run"]["wall_s"] > 0 and r["run"]["peak_rss_bytes"] > 50e6
    again = synth_block(blocks()["mac_array"], "coarse", tmp_path)
    assert again["cached"] and again["total"] == t


def test_feature_buffer_memories_stay_sram_macros(tmp_path):
    r = synth_block(blocks()["feature_buffer"], "coarse", tmp_path, force=True)
    t = r["total"]
    words = ENGINE_PARAMS["fb_words"]
    params = FEATURE_BUFFER.parameters
    macros = params["banks"] * params["halves"]          # 16 banks, each two halves with their own ports
    assert macros == 32
    assert t["sram_bits"] == words * 16                  # the configured size, not flattened into flip-flops
    assert len(t["srams"]) == macros
    shapes = {(m["words"], m["width"], m["read_ports"], m["write_ports"]) for m in t["srams"]}
    assert shapes == {(words // macros, 16, 1, 1)}
    assert sorted(m["name"] for m in t["srams"]) == sorted(f"bank{b}_{h}" for b in range(16) for h in range(2))
    assert t["ff_bits"] < 160                            # read rotation and port-B routing registers
    a = load_tech().area
    assert t["sram_area_m2"] == pytest.approx(macros * a.sram_macro_m2(words // macros * 16))


def test_flip_flop_area_is_composed_from_the_gate_table():
    ge = load_tech().area.gate_ge
    assert gate_ge("$_DFF_P_", ge) == (ge["DFF"], True)
    assert gate_ge("$_SDFFE_PP0P_", ge) == (pytest.approx(ge["DFF"] + ge["MUX"] + ge["AND"]), True)
    assert gate_ge("$_DFF_PN0_", ge) == (ge["DFFR"], True)
    assert gate_ge("$_XOR_", ge) == (ge["XOR"], False)
    with pytest.raises(SynthError, match="no area for generic cell"):
        gate_ge("$_FANCY_", ge)


def test_synthesis_copy_drops_only_zero_memory_inits(tmp_path):
    src = tmp_path / "a.v"
    src.write_text("module a;\n  reg [3:0] m [1:0];\n  initial begin\n    m[0] = 4'h0;\n    m[1] = 4'h0;\n  end\n"
                   "  reg [3:0] t [1:0];\n  initial begin\n    t[0] = 4'h0;\n    t[1] = 4'h5;\n  end\nendmodule\n")
    out = synthesis_verilog(src, tmp_path / "b.v").read_text()
    assert "m[0]" not in out and "t[1] = 4'h5;" in out and out.count("initial begin") == 1


def test_bad_worker_count_is_one_line_exit_2(capsys):
    from sim.synth import main

    assert main(["--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--workers '0'" in err and "1 or more" in err


def test_blocks_of_another_architecture(tmp_path):
    """make synth ARCH=8x8: the same blocks built for that architecture (issue 16 item 1)."""
    from golden.arch import DEFAULT_ARCH, parse_arch

    assert blocks(DEFAULT_ARCH).keys() == blocks().keys()
    assert blocks(DEFAULT_ARCH)["engine"].design.name == "engine"
    small = blocks(parse_arch("8x8"))
    assert small.keys() == blocks().keys()
    assert small["mac_array"].design.name == "mac_array_8x8" and small["engine"].design.name == "engine_8x8"
    r = synth_block(small["mac_array"], "coarse", tmp_path, force=True)
    t = r["total"]
    assert t["multipliers"] == 64 and sum(1 for m in r["modules"] if ".pe_" in m) == 64
    assert {row["ff_bits"] for m, row in r["modules"].items() if ".pe_" in m} == {48}


def test_synth_refuses_an_arch_the_rtl_cannot_build(capsys, tmp_path):
    from sim.synth import main

    f = tmp_path / "banks16.yaml"          # 20 lanes need 32 banks (a row of 20 words is one write)
    f.write_text("rows: 20\ncols: 20\nfb_banks: 16\n")
    assert main(["--arch", str(f), "--blocks", "mac_array"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fb_banks 16 is not built at 20x20" in err and "Traceback" not in err


def test_area_per_block_of_another_architecture():
    """The chip's area per block goes by the engine's parts whatever the top's name (``engine_24x24`` for 24x24):
    before, every part of another architecture's engine fell into "control"."""
    from sim.synth import DWU, ENCODER, breakdown

    def mod(ff_m2, srams=()):
        return {"instances": 1, "ff_area_m2": ff_m2, "ff_bits": 10, "regfile_bits": 0, "logic_area_m2": None,
                "srams": [{"name": n, "area_m2": a, "bits": b} for n, a, b in srams]}

    for top in ("engine", "engine_24x24"):
        engine = {"total": {"logic_area_m2": None},
                  "modules": {top: mod(1e-9), f"{top}.array": mod(4e-9), f"{top}.dw": mod(2e-9),
                              f"{top}.fb": mod(0.0, [("fb_0", 8e-9, 64)]),
                              f"{top}.wbuf": mod(0.0, [("wb0_0", 3e-9, 32)])}}
        encoder = {"total": {"logic_area_m2": None, "ff_area_m2": 5e-9, "sram_area_m2": 0.0, "sram_bits": 0,
                             "ff_bits": 7, "regfile_bits": 0}}
        area = load_tech().area
        rows = {r["block"]: r for r in breakdown(engine, encoder, area)}
        assert rows["MAC array"]["ff_m2"] == 4e-9 and rows[DWU]["ff_m2"] == 2e-9
        assert rows["feature buffer"]["sram_m2"] == 8e-9 and rows["weight buffers"]["sram_m2"] == 3e-9
        assert rows[ENCODER]["ff_m2"] == 5e-9 and rows[ENCODER]["source"] == "jpeg_encoder_w4"
        assert rows["control (sequencer, DMA, window loader, pool/vector unit)"]["ff_m2"] == 1e-9
