"""``edgesplit dse --text-plot`` (model.dse_text): hand-made fronts whose points land in known cells, the log
axes' ticks, the verified markers, the width limit, and the command's option with its bad values."""

from __future__ import annotations

import math

import pytest

from model import dse
from model.dse_text import MARKERS, cell, log_range, log_ticks, text_plot
from tests.model.test_dse import run, synth_dir  # noqa: F401  (the fixture: a small synthesis table)


def _pt(arch, fps, mj, area_mm2=1.0, split="conv1", link="2mbps", encoding="none"):
    return dse.DsePoint(arch=arch, array=arch.split("-")[0], fb_words=2**18, link=link, rate_bps=2e6, split=split,
                        encoding=encoding, qf=None, fps=fps, time_s=1 / fps, energy_j=mj * 1e-3,
                        area_m2=area_mm2 * 1e-6, edge_cycles=1.0, bottleneck="inference", accuracy_loss=0.0,
                        counts_source="analytical")


def _result(points, links=("2mbps",)):
    return dse.DseResult(net="toy", budget=0.01, links=list(links), archs=[], areas={}, counts_source={},
                         points=dse.mark(points), tech="28nm")


def _grid(text: str):
    """(rows of the grid without the y labels, the label width, the axis line, the x-label line)."""
    lines = text.splitlines()
    top = next(i for i, ln in enumerate(lines) if ln.strip() == "mJ") + 1
    axis = next(i for i in range(top, len(lines)) if lines[i].lstrip().startswith("+-"))
    yw = lines[axis].index("+") - 1
    return [ln[yw + 2:] for ln in lines[top:axis]], yw, lines[axis], lines[axis + 1]


def _where(rows, ch):
    return [(r, c) for r, row in enumerate(rows) for c, x in enumerate(row) if x == ch]


# three points on a diagonal: 10, 100, 1000 frames/s at 1, 10, 100 mJ (each faster one costs more: all on the
# front). Height 19 and width 99 leave 19 rows and 91 columns: the extremes one cell inside the frame, the middle
# one exactly in the centre (log scale)
DIAG = [_pt("8x8", 10.0, 1.0), _pt("12x12", 100.0, 10.0), _pt("16x16", 1000.0, 100.0)]


def test_points_land_in_known_cells():
    text = text_plot(_result(DIAG), "2mbps", width=99, height=19)
    rows, yw, axis, labels = _grid(text)
    assert yw == 3 and len(rows) == 19 and all(len(r) <= 91 for r in rows)
    # the front by area then energy: a = 10 fps / 1 mJ, b = 100 / 10, c = 1000 / 100; y grows upwards
    assert _where(rows, "a") == [(17, 1)]
    assert _where(rows, "b") == [(9, 45)]
    assert _where(rows, "c") == [(1, 89)]
    # nothing else drawn in the grid
    assert sum(ch not in " " for row in rows for ch in row) == 3


def test_log_axes_ticks():
    text = text_plot(_result(DIAG), "2mbps", width=99, height=19)
    lines = text.splitlines()
    top = next(i for i, ln in enumerate(lines) if ln.strip() == "mJ") + 1
    # y: a decade per tick (three of them), at the rows of 1, 10 and 100 mJ: 8 rows apart, evenly (log)
    ticks = {i - top: ln[:3].strip() for i, ln in enumerate(lines[top:top + 19], top) if ln[4] == "+"}
    assert ticks == {1: "100", 9: "10", 17: "1"}
    # x: 1-2-5 ticks (1-10-100 gives only three, the x axis asks for four), each '+' under its label's centre
    rows, yw, axis, labels = _grid(text)
    plus = [i - yw - 2 for i, ch in enumerate(axis) if ch == "+" and i > yw + 1]
    values = labels.split()
    assert values == ["10", "20", "50", "100", "200", "500", "1000"]
    assert plus == [1, 14, 32, 45, 58, 76, 89]
    # log: 10 -> 100 and 100 -> 1000 span the same columns; 20 sits log10(2) of a decade past 10
    assert plus[3] - plus[0] == plus[6] - plus[3] == 44
    assert plus[1] == 1 + round(math.log10(2) * 44) and plus[2] == 1 + round(math.log10(5) * 44)


def test_log_helpers():
    lo, hi = log_range([10.0, 1000.0], 91)
    assert cell(10.0, lo, hi, 91) == 1 and cell(1000.0, lo, hi, 91) == 89 and cell(100.0, lo, hi, 91) == 45
    assert log_ticks(0.0, 1.0) == [1.0, 2.0, 5.0, 10.0]                  # (1,) gives two: 1-2-5
    assert log_ticks(-0.5, 2.5) == [1.0, 10.0, 100.0]                      # decades suffice
    assert log_ticks(math.log10(1.6), math.log10(4.3)) == [2.0, 2.5, 3.0, 4.0]   # the finest set
    assert log_ticks(math.log10(1.61), math.log10(1.64)) == [1.61, 1.64]       # no round value: the ends
    # one value: a range around it, the value in the middle cell
    lo, hi = log_range([5.0], 19)
    assert cell(5.0, lo, hi, 19) == 9


def test_verified_markers_and_legend():
    checks = [
        # 12x12 conv1 verified on another link: the edge part's cycles are the same for every link
        {"arch": "12x12", "split": "conv1", "link": "22mbps", "encoding": "none", "verified": True,
         "model_cycles": 4944307, "rtl_cycles": 4944514, "relative_error": (4944307 - 4944514) / 4944514},
        {"arch": "16x16", "split": "conv1", "link": "2mbps", "encoding": "none", "verified": False,
         "note": "not verified: sim.run refused it: make sim: error: architecture 24x24: arrays of more than "
                 "16 lanes are not built yet; allowed: 4x4 .. 16x16"},
        {"arch": "8x8", "split": "conv9", "verified": True, "model_cycles": 1, "rtl_cycles": 1,
         "relative_error": 0.0},   # another split: not this point's
    ]
    text = text_plot(_result(DIAG), "2mbps", checks, width=99, height=19)
    rows, *_ = _grid(text)
    assert _where(rows, "a") == [(17, 1)] and _where(rows, "B") == [(9, 45)] and _where(rows, "c") == [(1, 89)]
    assert "3 points, 1 verified on the RTL" in text.splitlines()[0]
    legend = {ln[0]: ln for ln in text.splitlines() if ln[:2] in ("a ", "B ", "c ")}
    assert legend["B"].endswith("4,944,307 vs 4,944,514 (-0.00%)")
    assert legend["B"].split()[:4] == ["B", "12x12", "256Ki", "1.000"]
    assert legend["c"].endswith("not verified: sim.run refused it")
    assert legend["a"].split() == ["a", "8x8", "256Ki", "1.000", "conv1", "10.00", "1.000"]


def test_width_limit_many_points_and_a_shared_cell():
    # 40 front points: each faster one costs more energy; long split labels and notes
    pts = [_pt(f"{4 + i % 21}x{4 + i % 21}-{i}", 10.0 * 1.1**i, 1.0 * 1.05**i, area_mm2=1.0 + i * 0.01,
               split=f"layer_with_a_long_name_{i}", encoding="jpeg") for i in range(40)]
    checks = [{"arch": pts[0].arch, "split": pts[0].split, "verified": False, "note": "x" * 300}]
    text = text_plot(_result(pts), "2mbps", checks)
    assert max(len(ln) for ln in text.splitlines()) <= 100
    legend_marks = [ln[0] for ln in text.splitlines()[-41:-1]]
    assert legend_marks == list(MARKERS) + ["+"] * 4
    # two points in the same cell: the second drawn one column to the right
    twin = [_pt("8x8", 10.0, 1.0), _pt("12x12", 10.0001, 1.00001, area_mm2=0.5), _pt("16x16", 1000.0, 100.0)]
    rows, *_ = _grid(text_plot(_result(twin), "2mbps", width=99, height=19))
    assert _where(rows, "a") == [(17, 1)] and _where(rows, "b") == [(17, 2)]   # a: 0.5 mm2 is first


def test_unknown_link_is_a_user_error():
    from golden.errors import UserError

    with pytest.raises(UserError, match="'1mbps' is not in this search; allowed: 2mbps"):
        text_plot(_result(DIAG), "1mbps")


# ---- the command -------------------------------------------------------------------------------------------------


def test_cli_prints_the_chart(capsys, synth_dir):  # noqa: F811
    base = ["dse", "--net", "digits", "--arrays", "12x12,16x16", "--buffers", "2**18", "--links", "2mbps,22mbps",
            "--synth", str(synth_dir), "--no-plot"]
    rc, out, err = run(capsys, *base, "--text-plot", "22mbps")
    assert rc == 0, err
    assert "digits, link 22mbps: Pareto front" in out and "digits, link 2mbps: Pareto front" not in out
    assert out.index("link 22mbps: Pareto front (area") < out.index("digits, link 22mbps: Pareto front of")
    assert max(len(ln) for ln in out.split("digits, link 22mbps: Pareto front of")[1].splitlines()) <= 100
    rc, out, err = run(capsys, *base, "--text-plot", "all")
    assert rc == 0 and "digits, link 2mbps: Pareto front of" in out and "digits, link 22mbps: Pareto front of" in out
    rc, out, err = run(capsys, *base)
    assert rc == 0 and "Pareto front of" not in out


@pytest.mark.parametrize("value, words", [
    ("5gbps", ["'5gbps'", "all", "2mbps"]),
    ("1mbps", ["'1mbps'", "links of --links (2mbps)"]),    # a link, but not a searched one
    ("2mbps,", ["'2mbps,'"]),
    ("", ["''"]),
])
def test_cli_bad_text_plot_one_line_exit_2(capsys, synth_dir, value, words):  # noqa: F811
    rc, out, err = run(capsys, "dse", "--net", "digits", "--links", "2mbps", "--synth", str(synth_dir),
                       "--no-plot", "--text-plot", value)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("edgesplit dse: error: --text-plot")
    for w in words:
        assert w in err
