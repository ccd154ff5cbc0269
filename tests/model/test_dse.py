"""``edgesplit dse`` (model.dse, model.cli_dse): the Pareto front, the cost model's own values, the area rule,
the command's errors and outputs. Fast: a small synthesis table made here (the real one where ``make synth``
left it), the digits network, a few architectures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from golden.arch import DEFAULT_ARCH, EngineArch
from golden.errors import UserError
from model import dse
from model.cli import main

REAL_TABLE = dse.SYNTH_DIR


# ---- a synthesis table of the default engine, made from the technology file's area model -----------------------


def _sram(name: str, words: int, width: int, area) -> dict:
    bits = words * width
    return {"name": name, "words": words, "width": width, "bits": bits, "read_ports": 1, "write_ports": 1,
            "area_m2": area.sram_macro_m2(bits, two_port=True)}


def _module(ff_m2: float, srams=(), logic_m2=None) -> dict:
    return {"instances": 1, "ff_area_m2": ff_m2, "logic_area_m2": logic_m2, "srams": list(srams)}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    """``engine.coarse.json`` of the 12 x 12 engine: 32 feature-buffer macros of 8192 x 16, 2 x 12 weight-buffer
    macros of 4608 x 16, flip-flop areas per part (logic unknown, as the coarse flow gives it)."""
    from hw.tech import load_tech

    area = load_tech().area
    a = DEFAULT_ARCH
    per = a.fb_words // 32
    mods = {
        "engine": _module(1e-9, [_sram(f"wb{b}_{i}", a.wb_depth, 16, area) for b in (0, 1) for i in range(12)]),
        "engine.array": _module(10e-9),
        **{f"engine.array.pe_0_{i}": _module(1e-9) for i in range(12)},
        "engine.dw": _module(12e-9),
        "engine.encode": _module(3e-9, [_sram("table", 512, 21, area)]),
        "engine.wdec0": _module(24e-9, [_sram("tbuf", 16, 224, area)]),
        "engine.fb": _module(0.1e-9, [_sram(f"bank{i}_{j}", per, 16, area) for i in range(16) for j in (0, 1)]),
        "engine.ld": _module(5e-9),
    }
    d = tmp_path_factory.mktemp("synth")
    (d / "engine.coarse.json").write_text(json.dumps({"flow": "coarse", "modules": mods}))
    return d


def _table_total(synth_dir: Path) -> float:
    doc = json.loads((synth_dir / "engine.coarse.json").read_text())
    return sum(m["ff_area_m2"] + sum(s["area_m2"] for s in m["srams"]) for m in doc["modules"].values())


# ---- the Pareto front --------------------------------------------------------------------------------------------


def test_pareto_mask_hand_made():
    pts = [(1, 2, 3),   # front
           (2, 2, 3),   # dominated by the first (worse area, the rest equal)
           (1, 2, 3),   # a tie with the first: equal points do not dominate each other, both kept
           (0, 5, 5),   # the least area: front
           (1, 2, 4),   # dominated by the first (slower)
           (3, 1, 3)]   # the least energy: front
    assert dse.pareto_mask(pts) == [True, False, True, True, False, True]
    assert dse.dominates((1, 1, 1), (1, 1, 2)) and not dse.dominates((1, 1, 1), (1, 1, 1))
    assert dse.pareto_mask([]) == []


def _pt(arch, link, area, energy, fps, split="conv1"):
    return dse.DsePoint(arch=arch, array=arch, fb_words=2**18, link=link, rate_bps=2e6, split=split, encoding="none",
                        qf=None, fps=fps, time_s=1 / fps, energy_j=energy, area_m2=area, edge_cycles=1.0,
                        bottleneck="inference", accuracy_loss=0.0, counts_source="analytical")


def test_mark_front_per_link_and_best_per_architecture():
    pts = [_pt("8x8", "2mbps", 1.0, 5.0, 10.0),
           _pt("8x8", "2mbps", 1.0, 4.0, 10.0, "conv2"),   # dominates the one above; the best of 8x8
           _pt("16x16", "2mbps", 2.0, 4.0, 10.0),           # dominated (more area, nothing better)
           _pt("16x16", "2mbps", 2.0, 4.5, 30.0, "conv3"),  # faster: front, but not 16x16's least energy
           _pt("16x16", "22mbps", 2.0, 1.0, 5.0)]           # another link: its own front, never compared with 2mbps
    m = dse.mark(pts)
    assert [p.pareto for p in m] == [False, True, False, True, True]
    # best = least energy of the architecture and link (ties: most frames/s)
    assert [p.best for p in m] == [False, True, True, False, True]


# ---- the search: the cost model's own numbers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_result(synth_dir):
    return dse.search("digits", ["12x12", "16x16"], [2**17, 2**18], ["2mbps", "22mbps"], 0.01, synth_dir=synth_dir)


def test_points_equal_query(digits_result):
    """Every point is model.api.query's result for that split, encoding, link and engine (RTL counts where the
    default engine has them, analytical for the other architectures)."""
    from model.api import query
    from model.counts import EngineParams

    res = digits_result
    assert {a.name for a in res.archs} == {EngineArch(rows=n, cols=n, fb_words=w).name
                                           for n in (12, 16) for w in (2**17, 2**18)}
    assert res.counts_source[DEFAULT_ARCH.name] == "auto"
    assert all(v == "analytical" for k, v in res.counts_source.items() if k != DEFAULT_ARCH.name)
    archs = {a.name: a for a in res.archs}
    checked = 0
    for p in res.points:
        if p.arch not in (DEFAULT_ARCH.name, "16x16") or p.link != "2mbps":
            continue
        a = archs[p.arch]
        q = query("digits", p.split, p.encoding, p.qf, p.link, engine=EngineParams.from_arch(a),
                  counts_source="auto" if a == DEFAULT_ARCH else "analytical")
        assert p.fps == pytest.approx(q.fps, rel=1e-12)
        assert p.energy_j == pytest.approx(q.energy_per_frame_j, rel=1e-12)
        assert p.counts_source == q.counts_source
        checked += 1
    assert checked >= 8
    # the budget: only what best_split admits
    assert all(p.accuracy_loss is not None and p.accuracy_loss <= 0.01 + 1e-12 for p in res.points)
    # the best of each architecture and link is best_split's choice (energy objective) for the default engine
    from model.api import best_split

    b = best_split("digits", "2mbps", "energy", 0.01)
    best = [p for p in res.best("2mbps") if p.arch == DEFAULT_ARCH.name]
    assert len(best) == 1 and (best[0].split, best[0].encoding) == (b.best.split, b.best.encoding)
    assert best[0].energy_j == pytest.approx(b.best.energy_per_frame_j, rel=1e-12)


def test_front_is_undominated(digits_result):
    for lk in digits_result.links:
        pts = [p for p in digits_result.points if p.link == lk]
        front = [p for p in pts if p.pareto]
        assert front
        for p in pts:
            dominated = any(dse.dominates(q.objectives(), p.objectives()) for q in pts)
            assert p.pareto == (not dominated)


def test_table_and_json(digits_result):
    text = dse.format_table(digits_result)
    assert "Pareto front" in text and "12x12" in text and "16x16" in text and "128Ki" in text
    doc = json.loads(json.dumps(digits_result.to_dict(), allow_nan=False))
    assert len(doc["points"]) == len(digits_result.points) and len(doc["archs"]) == 4
    assert {"energy_j", "time_s", "rate_bps", "area_m2", "pareto", "best"} <= set(doc["points"][0])


# ---- area ------------------------------------------------------------------------------------------------------


def test_area_default_is_the_table_and_grows(synth_dir):
    a0 = dse.arch_area(DEFAULT_ARCH, synth_dir=synth_dir)
    assert a0.area_m2 == pytest.approx(_table_total(synth_dir), rel=1e-9)
    assert not a0.logic_complete        # a coarse table: flip-flops and SRAM only, said so
    areas = [dse.arch_area(EngineArch(rows=n, cols=n), synth_dir=synth_dir).area_m2 for n in (8, 12, 16, 24)]
    assert areas == sorted(areas) and len(set(areas)) == 4
    bufs = [dse.arch_area(EngineArch(fb_words=w), synth_dir=synth_dir).area_m2 for w in (2**16, 2**17, 2**18, 2**19)]
    assert bufs == sorted(bufs) and len(set(bufs)) == 4
    # the MAC array's part scales with rows x cols, the constant parts do not move
    a24 = dse.arch_area(EngineArch(rows=24, cols=24), synth_dir=synth_dir)
    p0, p24 = ({p.name: p.area_m2 for p in a.parts} for a in (a0, a24))
    assert p24[dse.MAC] == pytest.approx(4 * p0[dse.MAC]) and p24[dse.DWU] == pytest.approx(2 * p0[dse.DWU])
    assert p24[dse.CTRL] == p0[dse.CTRL] and p24[dse.ENC] == p0[dse.ENC]


def test_area_real_table_buffers_rebuilt_exactly():
    """The buffers of the default engine, rebuilt from their bits by the rule, are the synthesised macros."""
    if not (REAL_TABLE / "engine.coarse.json").exists() and not (REAL_TABLE / "engine.full.json").exists():
        from tests.ci import skip_unless_ci

        skip_unless_ci("no make synth table in build/synth (run make synth)")   # .ci/run synthesises first
    tab = dse.load_table()
    a0 = dse.arch_area(DEFAULT_ARCH)
    parts = {p.name: p for p in a0.parts}
    for name in (dse.FB, dse.WB):
        t = tab.parts[name]
        assert parts[name].area_m2 == pytest.approx(t["sram_m2"] + t["ff_m2"] + (t["logic_m2"] or 0.0), rel=1e-9)
    big = dse.arch_area(EngineArch(rows=24, cols=24))
    assert big.area_m2 > a0.area_m2


def test_missing_table_is_a_user_error(tmp_path):
    with pytest.raises(dse.SynthTableMissing, match="make synth"):
        dse.arch_area(DEFAULT_ARCH, synth_dir=tmp_path)


# ---- the command -------------------------------------------------------------------------------------------------


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("argv, words", [
    (["--arrays", "7x9"], ["7x9", "square"]),
    (["--arrays", "32x32"], ["32x32", "24x24"]),
    (["--arrays", "big"], ["'big'", "ROWSxCOLS"]),
    (["--links", "5gbps"], ["5gbps", "1mbps"]),
    (["--budget", "1.5"], ["1.5", "[0, 1)"]),
    (["--budget", "lots"], ["lots", "[0, 1)"]),
    (["--buffers", "100"], ["100", "multiple of 32"]),
    (["--verify", "0"], ["'0'", "1..48"]),
    (["--counts", "rtl"], ["rtl", "auto, analytical"]),
])
def test_bad_values_one_line_exit_2(capsys, synth_dir, tmp_path, argv, words):
    plot = tmp_path / "p.png"
    rc, out, err = run(capsys, "dse", "--net", "digits", "--synth", str(synth_dir), "--plot", str(plot), *argv)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("edgesplit dse: error:")
    for w in words:
        assert w in err
    assert not plot.exists() and out == ""


def test_no_synth_table_one_line(capsys, tmp_path):
    rc, out, err = run(capsys, "dse", "--net", "digits", "--synth", str(tmp_path), "--no-plot")
    assert rc == 2 and err.count("\n") == 1 and "run `make synth`" in err


def test_writes_plot_and_json(capsys, synth_dir, tmp_path):
    plot, js = tmp_path / "d.png", tmp_path / "d.json"
    rc, out, err = run(capsys, "dse", "--net", "digits", "--arrays", "8x8,12x12", "--buffers", "2**18",
                       "--links", "2mbps", "--synth", str(synth_dir), "--plot", str(plot), "--json", str(js))
    assert rc == 0, err
    assert "Pareto front" in out and f"wrote {plot}" in out and f"wrote {js}" in out
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(js.read_text())
    assert doc["net"] == "digits" and doc["links"] == ["2mbps"] and doc["verify"] == []
    assert any(p["pareto"] for p in doc["points"])
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".")] == []   # no temporary files left


def test_unwritable_output_nothing_written(capsys, synth_dir, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    plot = tmp_path / "d.png"
    rc, out, err = run(capsys, "dse", "--net", "digits", "--arrays", "12x12", "--buffers", "2**18",
                       "--synth", str(synth_dir), "--plot", str(plot), "--json", str(blocker / "d.json"))
    assert rc == 2 and err.count("\n") == 1 and "--json file" in err and "afile" in err
    assert not plot.exists() and out == ""
    rc, out, err = run(capsys, "dse", "--net", "digits", "--arrays", "12x12", "--buffers", "2**18",
                       "--synth", str(synth_dir), "--plot", str(tmp_path / "d.txt"), "--no-plot")
    assert rc == 2 and "exclude" in err


def test_verify_without_arch_support_is_honest(capsys, monkeypatch, digits_result):
    """An architecture the RTL is not built for gets one line, never a number."""
    from golden.network import network
    from model import cli_dse

    monkeypatch.setattr(cli_dse, "sim_run_accepts_arch", lambda: False)
    other = [a for a in digits_result.archs if a != DEFAULT_ARCH]
    sub = dse.DseResult(net="digits", budget=0.01, links=["2mbps"], archs=other, areas=digits_result.areas,
                        counts_source=digits_result.counts_source, tech=digits_result.tech,
                        points=dse.mark([p for p in digits_result.points if p.arch != DEFAULT_ARCH.name
                                         and p.link == "2mbps"]))
    recs, status = cli_dse.verify(sub, 2, network("digits"), "digits", None)
    out = capsys.readouterr().out
    assert status == 0 and len(recs) == 2 and {r["arch"] for r in recs} <= {a.name for a in other}
    assert all(not r["verified"] and "model_cycles" not in r for r in recs)
    assert out.count("not verified: the RTL is built for 12x12 only") == 2


def test_parse_helpers():
    assert dse.parse_words("2**18") == dse.parse_words("2^18") == dse.parse_words("256k") == 262144
    assert dse.parse_buffers("2**17, 2**17,2**19") == [2**17, 2**19]
    assert dse.parse_arrays(" 8x8,12X12 ,8x8") == ["8x8", "12x12"]
    with pytest.raises(UserError, match="empty"):
        dse.parse_arrays(",")
    assert dse.words_text(2**18) == "256Ki"


def test_an_architecture_synthesised_itself_is_read_as_it_is(synth_dir, tmp_path):
    """make synth ARCH=16x16 writes build/synth/16x16/: its blocks are read from there (top engine_16x16), with
    no scaling; the encoder and weight decoders its plain build lacks are scaled from the default table."""
    import shutil

    from hw.tech import load_tech

    area = load_tech().area
    a = EngineArch(rows=16, cols=16)
    d = tmp_path / "synth"
    shutil.copytree(synth_dir, d)
    per = a.fb_words // 32
    mods = {
        "engine_16x16": _module(2e-9, [_sram(f"wb{b}_{i}", a.wb_depth, 16, area) for b in (0, 1) for i in range(16)]),
        "engine_16x16.array": _module(30e-9),
        **{f"engine_16x16.array.pe_0_{i}": _module(1e-9) for i in range(16)},
        "engine_16x16.dw": _module(7e-9),
        "engine_16x16.fb": _module(0.1e-9, [_sram(f"bank{i}_{j}", per, 16, area) for i in range(16) for j in (0, 1)]),
        "engine_16x16.ld": _module(6e-9),
    }
    (d / "16x16").mkdir()
    (d / "16x16" / "engine.coarse.json").write_text(json.dumps({"flow": "coarse", "modules": mods}))
    own = {p.name: p for p in dse.arch_area(a, synth_dir=d).parts}
    scaled = {p.name: p for p in dse.arch_area(a, synth_dir=synth_dir).parts}
    assert own[dse.MAC].area_m2 == pytest.approx(30e-9 + 16e-9) and own[dse.DWU].area_m2 == pytest.approx(7e-9)
    assert own[dse.CTRL].area_m2 == pytest.approx(8e-9) and "16x16" in own[dse.MAC].source
    for name in (dse.ENC, dse.WDEC):          # not in the plain 16x16 build: scaled from the default
        assert own[name].area_m2 == pytest.approx(scaled[name].area_m2) and "16x16" not in own[name].source
    assert own[dse.WB].area_m2 == pytest.approx(scaled[dse.WB].area_m2)    # the same 2 x 16 macros either way
