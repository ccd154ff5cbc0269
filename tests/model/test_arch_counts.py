"""The cost model and make sim take the engine's size from golden.arch, and the cost model refuses counts of
another architecture or an older RTL (issue 16 item 1)."""

import subprocess
import sys
import warnings
from dataclasses import replace

import pytest

from golden.arch import DEFAULT_ARCH, parse_arch
from hw.sources import rtl_source_files, rtl_sources_hash
from model.counts import DEFAULT_ENGINE, EngineParams, analytical_layer_counts, rtl_refusal
from sim.program import EngineConfig


def test_params_from_arch():
    assert EngineParams.from_arch(DEFAULT_ARCH) == DEFAULT_ENGINE
    assert DEFAULT_ENGINE.arch == DEFAULT_ARCH and DEFAULT_ENGINE.dram_beat_words == 12
    a = replace(parse_arch("16x16"), fb_words=2**17, dram_bytes_per_cycle=8.0)
    e = EngineParams.from_arch(a, early_release=False)
    assert (e.lanes, e.fb_words, e.words_per_cycle, e.dram_beat_words, e.early_release) == (16, 2**17, 4.0, 16, False)
    assert e.arch == a
    assert EngineConfig.from_arch(DEFAULT_ARCH) == EngineConfig()


def test_analytical_counts_follow_the_array():
    """The same network on more MACs: fewer cycles, the same MACs."""
    counts = {n: analytical_layer_counts("digits", EngineParams.from_arch(parse_arch(n))) for n in ("8x8", "16x16")}
    c8, c16 = (sum(c.cycles for c in counts[n]) for n in ("8x8", "16x16"))
    assert c16 < c8
    assert sum(c.macs for c in counts["8x8"]) == sum(c.macs for c in counts["16x16"]) > 0


def test_rtl_hash_covers_the_rtl_not_the_tech_table():
    names = {f.name for f in rtl_source_files()}
    assert {"engine.py", "mac_array.py", "fixedpoint.py", "arch.py"} <= names and "tech.py" not in names
    assert len(rtl_sources_hash()) == 16 and rtl_sources_hash() == rtl_sources_hash()


def test_refusals():
    today = {"arch": DEFAULT_ARCH.as_dict(), "rtl_hash": rtl_sources_hash()}
    assert rtl_refusal(today) is None
    assert rtl_refusal({}) is None        # a file from before these records: judged by its engine fields
    other = {**today, "arch": parse_arch("16x16").as_dict()}
    assert "architecture 16x16, not 12x12" in rtl_refusal(other)
    assert rtl_refusal(other, EngineParams.from_arch(parse_arch("16x16"))) is None
    old = {**today, "rtl_hash": "0123456789abcdef"}
    assert "older RTL" in rtl_refusal(old)
    bad = {**today, "arch": {"rows": 12, "cols": 12, "lanes": 3}}
    assert "unknown field 'lanes'" in rtl_refusal(bad)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rtl_refusal(old, path="build/sim/x_test_refusal.json")
    assert any("x_test_refusal.json: not used: counts of an older RTL" in str(m.message) for m in w)


@pytest.mark.parametrize("arch, words", [
    ("20x20", "arrays of more than 16 lanes are not built yet"),
    ("16x16 --encode jpeg", "ENCODE needs the 12-lane encode unit"),
    ("8x8 --weights-codec jpeg", "coded weights (WEIGHTS_CODEC) needs the 12-lane"),
    ("7x9", "square arrays"),
    ("banks.yaml", "fb_banks 8"),
])
def test_make_sim_refuses_an_arch_it_cannot_build(tmp_path, arch, words):
    (tmp_path / "banks.yaml").write_text("fb_banks: 8\n")
    arch, *more = arch.split()
    r = subprocess.run([sys.executable, "-m", "sim.run", "--net", "digits", "--workers", "1", "--arch",
                        str(tmp_path / arch) if arch.endswith(".yaml") else arch, *more],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr


def test_depthwise_schedule_of_any_lane_count():
    """The cost model's depthwise schedule is the unit's (hw.dw_unit) at every lane count."""
    from hw.dw_unit import ref_dw_cycles, seg_reads
    from model.counts import dw_cycles, dw_seg_reads

    for lanes in range(4, 25):
        for s in (1, 2):
            assert dw_seg_reads(s, lanes) == seg_reads(s, lanes)
            for c, w, h in ((1, 1, 1), (13, 29, 5), (lanes * 3 + 1, lanes + 1, 2)):
                assert dw_cycles(c, w, h, s, lanes) == ref_dw_cycles(c, w, h, s, False, lanes)
                assert dw_cycles(c, w, h, s, lanes, True) == ref_dw_cycles(c, w, h, s, True, lanes)


def test_energies_scale_with_the_architecture():
    """Leakage and per-beat register energy of another architecture scale from the default engine's."""
    from hw.tech import load_tech
    from model.system import _energies

    tech = load_tech()
    base = _energies(tech, DEFAULT_ENGINE)
    lk = tech.leakage_w
    assert base.leak_engine_w == pytest.approx(lk["feature_buffer_w"] + lk["weight_buffer_w"] + lk["mac_array_w"]
                                               + lk["control_w"])
    big = _energies(tech, EngineParams.from_arch(replace(parse_arch("24x24"), fb_words=2**19)))
    assert big.beat == pytest.approx(2 * base.beat)
    assert big.leak_engine_w == pytest.approx(2 * lk["feature_buffer_w"] + 2 * lk["weight_buffer_w"]
                                              + 4 * lk["mac_array_w"] + lk["control_w"])
    assert big.mac == base.mac and big.fb_r > base.fb_r    # a bigger bank costs more per access


def test_descriptor_beats_follow_the_lanes():
    """A descriptor is whole DRAM beats of ``lanes`` words: the model reads as many words as the engine."""
    from hw.descriptor import DESC_WORDS, desc_beats

    for lanes, beats in ((8, -(-DESC_WORDS // 8)), (12, 3), (16, -(-DESC_WORDS // 16))):
        e = EngineParams.from_arch(parse_arch(f"{lanes}x{lanes}"))
        assert e.desc_beats == desc_beats(lanes) == beats
    assert DEFAULT_ENGINE.desc_beats == 3
