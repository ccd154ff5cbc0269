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
    with warnings.catch_warnings(record=True) as w:       # another architecture's run is refused silently
        warnings.simplefilter("always")
        assert rtl_refusal(other, path="build/sim/x_test_refusal_16x16.json")
    assert not w


@pytest.mark.parametrize("arch, words", [
    ("banks16.yaml", "fb_banks 16 is not built at 20x20"),
    ("16x16 --encode jpeg", "ENCODE needs the 12-lane encode unit"),
    ("8x8 --weights-codec jpeg", "coded weights (WEIGHTS_CODEC) needs the 12-lane"),
    ("7x9", "square arrays"),
    ("banks.yaml", "fb_banks 8"),
])
def test_make_sim_refuses_an_arch_it_cannot_build(tmp_path, arch, words):
    (tmp_path / "banks.yaml").write_text("fb_banks: 8\n")
    (tmp_path / "banks16.yaml").write_text("rows: 20\ncols: 20\nfb_banks: 16\n")
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
    # 24x24 has 32 banks (golden.arch.default_fb_banks): 2**19 words make banks of the default's size, so the same
    # energy per word; with 16 banks, each bank is twice as big and costs more per access
    assert big.mac == base.mac and big.fb_r == pytest.approx(base.fb_r)
    banks16 = _energies(tech, EngineParams.from_arch(replace(parse_arch("24x24"), fb_words=2**19, fb_banks=16)))
    assert banks16.fb_r > base.fb_r


def test_descriptor_beats_follow_the_lanes():
    """A descriptor is whole DRAM beats of ``lanes`` words: the model reads as many words as the engine."""
    from hw.descriptor import DESC_WORDS, desc_beats

    for lanes, beats in ((8, -(-DESC_WORDS // 8)), (12, 3), (16, -(-DESC_WORDS // 16))):
        e = EngineParams.from_arch(parse_arch(f"{lanes}x{lanes}"))
        assert e.desc_beats == desc_beats(lanes) == beats
    assert DEFAULT_ENGINE.desc_beats == 3


def test_weight_bank_ring_and_bank_claim():
    """The two weight banks are a ring (hw/engine.py's weight fetcher): group g + 2 is fetched into group g's bank
    only once group g is computed, and group g is computed only once its last beat has landed. When an FC group's
    rows come at the array's rate (8 lanes: a 16-byte beat per cycle = the DRAM's 16 bytes per cycle, one row per
    cycle), the DRAM latency is not hidden: two groups take one group's requests + latency + compute + the release
    cycle, not 2 max(fetch, compute). Below that rate (12 and 16 lanes: 1.5 and 2 cycles per beat) the groups are
    DRAM-bound and the ring costs nothing. Between chunks the fetcher spends a cycle claiming the free bank; the
    DRAM's token bucket hides it unless a beat takes a cycle or less. (Verilator, 8 lanes, one FC command of K = 64,
    128 and 4096 rows: every extra group costs exactly what the ring below says.)"""
    from model.counts import _chunk_pipeline, chunk_claim_cycles

    assert chunk_claim_cycles(131, 1.0, 1.0) == 1.0        # 8 lanes: a beat a cycle, the claim cycle is lost
    assert chunk_claim_cycles(131, 0.5, 1.0) == 1.0        # 4 lanes: the port's one request a cycle binds
    assert chunk_claim_cycles(131, 1.5, 1.0) == 0.0        # 12 lanes: banked by the token bucket
    assert chunk_claim_cycles(131, 2.0, 1.0) == 0.0        # 16 lanes

    kk, t_row = 128, 1.0                                   # an FC group: K rows, one row per cycle
    e8 = EngineParams.from_arch(parse_arch("8x8"))
    beats, lat = kk + e8.bias_beats, e8.dram_latency_cycles

    def fc(eng, groups):
        return _chunk_pipeline(groups, kk, t_row, eng, claim_cycles=eng.wfetch_claim_cycles)

    assert e8.beat_cycles == 1.0 and fc(e8, 1) == beats + lat + kk
    assert fc(e8, 2) - fc(e8, 1) == beats + 1              # its bank is free: its requests + the claim cycle
    ring = beats + lat + kk * t_row + 1                    # two groups: requests, latency, compute, release
    assert ring > 2 * max(beats, kk * t_row)               # the latency is not hidden
    for g in range(2, 7):
        assert fc(e8, g + 2) - fc(e8, g) == ring
    # the same layer before the ring: (g - 1) max(fetch, compute) after the first group, 55 cycles short on 8 groups
    assert fc(e8, 8) - (beats + lat + 7 * max(beats, kk * t_row) + kk) == 55

    for name in ("12x12", "16x16"):                        # DRAM-bound: a group per fetch, latency hidden
        e = EngineParams.from_arch(parse_arch(name))
        fetch = beats * e.beat_cycles
        assert fetch > kk * t_row and (fetch - e.beat_cycles + lat + kk * t_row + 2) / 2 < fetch
        for g in range(1, 8):
            assert fc(e, g + 1) - fc(e, g) == fetch

    # a convolution whose compute has the latency's slack over the fetch: compute-bound, as before the ring
    t_conv = beats + lat + 10
    conv = [_chunk_pipeline(g, kk, t_conv / kk, e8, claim_cycles=1.0) for g in (4, 5)]
    assert conv[1] - conv[0] == pytest.approx(t_conv)


def test_fc_on_8_lanes_counts_the_ring():
    """digits' fc5 (K = 128, 64 outputs: 8 groups of 8 lanes) in the layer model: at 8 lanes the ring's cycles over
    ``max(fetch, compute)`` per group (the -4.0 % the model had against the RTL's 1,385 cycles); at 12 and 16 lanes
    (DRAM-bound) a group per fetch, as before."""
    for name, over in (("8x8", 55), ("12x12", 0), ("16x16", 0)):
        e = EngineParams.from_arch(parse_arch(name))
        fc5 = next(c for c in analytical_layer_counts("digits", e) if c.split == "fc5" and c.type == "linear")
        groups, beats, compute = -(-64 // e.lanes), 128 + e.bias_beats, 128
        fetch = beats * e.beat_cycles
        flat = fetch + e.dram_latency_cycles + (groups - 1) * max(fetch, compute) + compute
        assert fc5.cycles - (fc5.commands * e.command_cycles + e.drain_cycles + flat) == over, name
        assert fc5.dram_read_words == fc5.commands * e.desc_beats * e.lanes + groups * beats * e.lanes
