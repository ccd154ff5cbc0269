"""A text rendering of one link's Pareto front (``edgesplit dse --text-plot LINK``; docs/dse.md).

:func:`text_plot` draws the front of :class:`model.dse.DseResult` for one link on a character grid: x = frames
per second, y = energy per frame in mJ, both logarithmic, with tick labels on round values (1-2-5 steps, finer
where the range is narrow). Each front point is one marker (``a``, ``b``, ... in the order of the front: by
area, then energy), keyed in a legend under the grid with its array, feature-buffer words, area, split and
encoding, frames/s and mJ; a point verified on the RTL (``edgesplit dse --verify``) is drawn in upper case and
its legend row gives the model's and the RTL's cycles of the edge part and the model's error. Every line fits
in ``width`` columns (default 100).

Placement: a value's cell is the nearest one on the log scale; the axes are stretched so that the smallest
and largest values of the front lie one cell inside the frame. Where a cell is already taken the marker goes
to the nearest free cell of the same row (at most two columns away), else it is drawn as ``#``; the legend
has the exact numbers either way.

Hand-written, not a plotting library: the venv has matplotlib (a PNG, ``model.dse.plot``) but no terminal
plotter (plotext and the like are not installed), and a grid of markers with a keyed legend is about a hundred
lines. Pure functions: nothing here prints, writes files or imports ``sim``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from golden.errors import UserError

WIDTH = 100
HEIGHT = 18                      # rows of the grid
MARKERS = "abcdefghijklmnopqrstuvwxyz0123456789"
MORE = "+"                       # the marker of every front point after the 36th
CLASH = "#"                      # a cell and its row's neighbours all taken
NUDGE = (1, -1, 2, -2)           # columns tried, in order, when a marker's cell is taken
PAD_CELLS = 1                    # the extreme values lie this many cells inside the frame
#: tick mantissas, coarsest first: the first set giving at least MIN_TICKS ticks in the range is used
MANTISSAS = ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0),
             (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0))
MIN_TICKS = 3                    # on the y axis; the x axis (wider) asks for X_MIN_TICKS
X_MIN_TICKS = 4


# ---- log axes --------------------------------------------------------------------------------------------------


def log_range(values: Iterable[float], cells: int, pad: int = PAD_CELLS) -> tuple[float, float]:
    """``(lo, hi)`` in log10 such that min(values) falls on cell ``pad`` and max(values) on ``cells - 1 - pad``
    (one value, or equal ones: a factor of about 1.12 either side)."""
    logs = [math.log10(v) for v in values]
    a, b = min(logs), max(logs)
    if b - a < 1e-12:
        a, b = a - 0.05, b + 0.05
    step = (b - a) / (cells - 1 - 2 * pad)
    return a - pad * step, b + pad * step


def cell(value: float, lo: float, hi: float, cells: int) -> int:
    """The cell (0 .. cells-1) of ``value`` on the log axis ``lo .. hi`` (log10)."""
    return min(cells - 1, max(0, round((math.log10(value) - lo) / (hi - lo) * (cells - 1))))


def log_ticks(lo: float, hi: float, min_ticks: int = MIN_TICKS) -> list[float]:
    """Round values in ``10**lo .. 10**hi``: the coarsest mantissa set with at least ``min_ticks`` of them (the
    finest set's where none has; the two ends where not even that has two)."""
    ticks: list[float] = []
    for ms in MANTISSAS:
        ticks = [m * 10.0**e for e in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in ms
                 if lo - 1e-9 <= math.log10(m * 10.0**e) <= hi + 1e-9]
        if len(ticks) >= min_ticks:
            return ticks
    return ticks if len(ticks) >= 2 else [float(f"{10**lo:.3g}"), float(f"{10**hi:.3g}")]


def tick_text(v: float) -> str:
    return f"{v:g}"


# ---- the chart -------------------------------------------------------------------------------------------------


def _check_of(p, checks: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The verification record of ``p``'s architecture and split (the cycles compared are the edge part's, the
    same for every link and encoding); a verified record before any other."""
    mine = [c for c in checks if c.get("arch") == p.arch and c.get("split") == p.split]
    return next((c for c in mine if c.get("verified")), mine[0] if mine else None)


def _check_text(c: dict[str, Any] | None) -> str:
    if c is None:
        return ""
    if c.get("verified"):
        return f"{c['model_cycles']:,.0f} vs {c['rtl_cycles']:,.0f} ({c['relative_error']:+.2%})"
    note = str(c.get("note", "not verified"))
    if note.startswith("host-only"):
        return "nothing to verify (host-only)"
    # "not verified: sim.run refused it: make sim: error: ...": the first reason (the verify lines have the rest)
    parts = note.removeprefix("not verified: ").split(": ")
    return "not verified: " + parts[0]


def _fit(line: str, width: int) -> str:
    line = line.rstrip()
    return line if len(line) <= width else line[:width - 3] + "..."


def text_plot(res, link: str, checks: Sequence[dict[str, Any]] = (), *, width: int = WIDTH,
              height: int = HEIGHT) -> str:
    """The Pareto front of ``res`` (a :class:`model.dse.DseResult`) for ``link`` as text: title, grid, x axis,
    legend. ``checks``: the records of ``model.cli_dse.verify`` (may be of any link). UserError for a link the
    result does not have."""
    from model.dse import words_text

    if link not in res.links:
        raise UserError(f"link {link!r} is not in this search; allowed: {', '.join(res.links)}")
    if width < 60 or height < 5:
        raise UserError(f"text plot of {width} x {height} is too small; allowed: width >= 60, height >= 5")
    front = res.pareto(link)
    ok = {i for i, p in enumerate(front) if p.fps > 0 and p.energy_j > 0 and math.isfinite(p.fps * p.energy_j)}
    drawn = [p for i, p in enumerate(front) if i in ok]
    marks: dict[int, str] = {}
    checked = {}
    for i, p in enumerate(front):
        m = MARKERS[i] if i < len(MARKERS) else MORE
        checked[i] = _check_of(p, checks)
        marks[i] = m.upper() if checked[i] and checked[i].get("verified") and m.isalpha() else m
    n_ver = sum(1 for c in checked.values() if c and c.get("verified"))
    lines = [_fit(f"{res.net}, link {link}: Pareto front of area x energy x frames/s, {len(front)} points, "
                  f"{n_ver} verified on the RTL", width)]
    if not drawn:
        return "\n".join(lines + ["(no point of the front has positive frames/s and energy: nothing to draw)"])

    # y labels, the frame, the grid
    ylo, yhi = log_range([p.energy_j * 1e3 for p in drawn], height)
    yt = {}
    for v in log_ticks(ylo, yhi):
        yt.setdefault(cell(v, ylo, yhi, height), tick_text(v))
    yw = max(len(t) for t in yt.values())
    cols = width - yw - 2 - 3                         # "LABEL +" on the left, room for the last x label
    xlo, xhi = log_range([p.fps for p in drawn], cols)
    grid = [[" "] * cols for _ in range(height)]
    for i, p in enumerate(front):
        if i not in ok:
            continue
        r, c = height - 1 - cell(p.energy_j * 1e3, ylo, yhi, height), cell(p.fps, xlo, xhi, cols)
        for dc in (0, *NUDGE):
            if 0 <= c + dc < cols and grid[r][c + dc] == " ":
                grid[r][c + dc] = marks[i]
                break
        else:
            grid[r][c] = CLASH
    lines.append(f"{'mJ':>{yw}}")
    for r in range(height):
        t = yt.get(height - 1 - r)
        lines.append(f"{t or '':>{yw}} {'+' if t else '|'}" + "".join(grid[r]))

    # x axis: ticks that do not overlap the previous label
    axis, labels, end = ["-"] * cols, [" "] * (cols + yw + 5), -2
    for v in log_ticks(xlo, xhi, X_MIN_TICKS):
        c, t = cell(v, xlo, xhi, cols), tick_text(v)
        start = yw + 2 + c - (len(t) - 1) // 2
        if start <= end + 1 or start + len(t) > len(labels):
            continue
        axis[c] = "+"
        labels[start:start + len(t)] = t
        end = start + len(t) - 1
    lines.append(" " * yw + " +" + "".join(axis))
    lines.append("".join(labels))
    lines.append(f"{'frames/s (log); mJ = energy per frame (log)':^{width}}")

    # the legend
    sw = max([5] + [len(p.label) for p in front])
    lines.append("")
    lines.append(_fit(f"  {'array':6} {'buffer':>6} {'mm2':>6}  {'split':{sw}} {'frames/s':>9} {'mJ':>7}  "
                      f"RTL check: model vs RTL cycles (error)", width))
    for i, p in enumerate(front):
        where = "" if i in ok else "  (not drawn: no positive frames/s or energy)"
        lines.append(_fit(f"{marks[i]} {p.array:6} {words_text(p.fb_words):>6} {p.area_m2 * 1e6:6.3f}  "
                          f"{p.label:{sw}} {p.fps:9.2f} {p.energy_j * 1e3:7.3f}  {_check_text(checked[i])}{where}",
                          width))
    lines.append(_fit("buffer: feature-buffer words (Ki = 1024); mm2: area, 28 nm; UPPER CASE: verified on the RTL",
                      width))
    return "\n".join(line.rstrip() for line in lines)


__all__ = ["HEIGHT", "MARKERS", "WIDTH", "cell", "log_range", "log_ticks", "text_plot"]
