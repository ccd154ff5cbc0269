"""Technology file: per-action energies, SRAM energy vs size, leakage per block and area figures.

``load_tech(path=None)`` reads a YAML file (default ``hw/tech/28nm.yaml``), checks it against the schema
below and returns a :class:`Tech`. Every number in the file is a *quantity* ``{value, unit, source,
scaling}`` so the provenance of each figure travels with it; a file that breaks the schema raises
:class:`~golden.errors.UserError` with one line naming the file, the key and what is expected.

Schema (``schema_version: 1``); every number also has an upper bound, physical rather than tight
(:mod:`golden.limits`: a value of 1e300 J per MAC is refused, not turned into ``inf``)::

    name: str
    energy.{mac_16b, register_bit, compare_16b, requantize, rf_read_word, rf_write_word, dram_bit,
            encoder_jpeg_sample, encoder_lossless_sample}          quantity, 0..1e-8 (J per action)
    energy.weight_decoder (optional; weights=jpeg needs it)   quantity, 0..1e-8 (J per restored weight)
    sram.read_pj: {unit, source, scaling, sizes_bytes: [increasing, 0 < x <= 1e12],
                   port_bits: [increasing, 0 < x <= 4096],
                   values: [[0 < x <= 1e4] * len(port_bits)] * len(sizes_bytes)}
    sram.write_over_read                    quantity, 0 < x <= 100
    leakage.{feature_buffer_w, weight_buffer_w, mac_array_w, control_w, encoder_w}   quantity, 0..100 (W)
    area (optional; ``make synth`` needs it):
        ge_m2, sram_bitcell_m2                  quantity, 0 < x <= 1e-9 (m^2)
        sram_two_port_factor                    quantity, 1..10
        leakage_per_ge_w, leakage_per_sram_bit_w  quantity, 0..1e-3 (W)
        gate_ge: {unit, source, scaling, cells: {NOT, BUF, NAND, NOR, AND, OR, ANDNOT, ORNOT, XOR, XNOR, MUX,
                  NMUX, AOI3, OAI3, AOI4, OAI4, DFF, DFFR, LATCH: 0 < x <= 1000}}   (NAND2-equivalents per cell)
        sram_efficiency: {unit, source, scaling, sizes_bits: [increasing, 0 < x <= 1e13],
                          values: [0 < x <= 1] * len(sizes_bits)}

The clock is not part of the technology: it is the engine architecture's (:attr:`golden.arch.EngineArch.clock_hz`);
a file that still has a ``clock`` section is a one-line error asking to remove it.

The file is read as UTF-8 text; one that is not (or is not YAML, or is larger than 1 MiB) is a one-line error.

SRAM energy per 16-bit word (:meth:`Tech.sram_word_energy_j`): the access energy of a macro of the given
size and port width, interpolated log-log in size (extrapolated below or above the table with the slope of
its nearest segment) and linearly in port width, divided by the words per access; writes cost
``write_over_read`` times a read.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from golden import limits
from golden.errors import UserError
from golden.limits import Bound

DEFAULT_TECH = Path(__file__).resolve().parent / "tech" / "28nm.yaml"
SCHEMA_VERSION = 1
ENERGY_KEYS = (
    "mac_16b", "register_bit", "compare_16b", "requantize", "rf_read_word", "rf_write_word", "dram_bit",
    "encoder_jpeg_sample", "encoder_lossless_sample",
)
#: energy keys a file may leave out (the cost model asks for them only when it needs them)
OPTIONAL_ENERGY_KEYS = ("weight_decoder",)
LEAKAGE_KEYS = ("feature_buffer_w", "weight_buffer_w", "mac_array_w", "control_w", "encoder_w")
QUANTITY_KEYS = ("value", "unit", "source", "scaling")
AREA_KEYS = ("ge_m2", "sram_bitcell_m2", "sram_two_port_factor", "leakage_per_ge_w", "leakage_per_sram_bit_w")
AREA_TABLES = ("gate_ge", "sram_efficiency")
#: Yosys's generic gates (``$_<NAME>_``) and flip-flop bases, in NAND2-equivalents (``area.gate_ge.cells``)
GATE_KEYS = ("NOT", "BUF", "NAND", "NOR", "AND", "OR", "ANDNOT", "ORNOT", "XOR", "XNOR", "MUX", "NMUX",
             "AOI3", "OAI3", "AOI4", "OAI4", "DFF", "DFFR", "LATCH")


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str
    source: str
    scaling: str


@dataclass(frozen=True)
class SramTable:
    sizes_bytes: tuple[float, ...]
    port_bits: tuple[float, ...]
    read_pj: tuple[tuple[float, ...], ...]
    source: str

    def read_pj_at(self, size_bytes: float, port_bits: float) -> float:
        """Access energy (pJ) of a macro of ``size_bytes`` with a ``port_bits`` port."""
        col = [_interp_loglog(self.sizes_bytes, [row[j] for row in self.read_pj], size_bytes)
               for j in range(len(self.port_bits))]
        return _interp_lin(self.port_bits, col, port_bits)


@dataclass(frozen=True)
class AreaModel:
    """28 nm area figures for synthesised logic and SRAM macros (the ``area`` section)."""

    ge_m2: Quantity
    sram_bitcell_m2: Quantity
    sram_two_port_factor: Quantity
    leakage_per_ge_w: Quantity
    leakage_per_sram_bit_w: Quantity
    gate_ge: dict[str, float]
    gate_source: str
    efficiency_sizes_bits: tuple[float, ...]
    efficiency: tuple[float, ...]
    efficiency_source: str

    def sram_efficiency(self, bits: float) -> float:
        """Array efficiency of a macro of ``bits`` (linear in log2 size, clamped at the table's ends)."""
        xs, ys = self.efficiency_sizes_bits, self.efficiency
        if bits <= xs[0] or len(xs) == 1:
            return ys[0]
        if bits >= xs[-1]:
            return ys[-1]
        i = _segment(xs, bits)
        f = (math.log2(bits) - math.log2(xs[i])) / (math.log2(xs[i + 1]) - math.log2(xs[i]))
        return ys[i] + f * (ys[i + 1] - ys[i])

    def sram_macro_m2(self, bits: float, two_port: bool = True) -> float:
        """Area of one SRAM macro of ``bits`` (bitcells / array efficiency), m^2."""
        if bits <= 0:
            raise ValueError(f"SRAM macro of {bits} bits")
        cell = self.sram_bitcell_m2.value * (self.sram_two_port_factor.value if two_port else 1.0)
        return bits * cell / self.sram_efficiency(bits)

    def quantities(self) -> dict[str, Quantity]:
        return {k: getattr(self, k) for k in AREA_KEYS}


@dataclass(frozen=True, eq=False)
class Tech:
    """A checked technology file. ``energy[k]``/``leakage[k]`` are quantities in J / W."""

    name: str
    path: str
    energy: dict[str, Quantity]
    leakage: dict[str, Quantity]
    sram: SramTable
    write_over_read: float
    area: AreaModel | None = None       # the optional ``area`` section (``make synth``)

    def e(self, key: str) -> float:
        """Energy of one action, J."""
        return self.energy[key].value

    def sram_word_energy_j(self, size_bytes: float, port_bits: int = 16, write: bool = False) -> float:
        """Energy per 16-bit word moved through a ``port_bits``-wide port of a ``size_bytes`` SRAM macro."""
        if size_bytes <= 0 or port_bits < 16:
            raise ValueError(f"SRAM size {size_bytes} B / port {port_bits} bits out of range")
        e = self.sram.read_pj_at(size_bytes, port_bits) * 1e-12 / (port_bits / 16)
        return e * self.write_over_read if write else e

    @property
    def leakage_w(self) -> dict[str, float]:
        return {k: q.value for k, q in self.leakage.items()}

    def table(self) -> list[dict[str, Any]]:
        """Every scalar of the file as rows ``{group, key, value, unit, source, scaling}`` (for reports)."""
        rows = [{"group": "energy", "key": k, **q.__dict__} for k, q in self.energy.items()]
        rows += [{"group": "leakage", "key": k, **q.__dict__} for k, q in self.leakage.items()]
        if self.area is not None:
            rows += [{"group": "area", "key": k, **q.__dict__} for k, q in self.area.quantities().items()]
        return rows


# ---- interpolation ---------------------------------------------------------------------------------------


def _segment(xs: tuple[float, ...] | list[float], x: float) -> int:
    return min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)


def _interp_loglog(xs, ys, x: float) -> float:
    if len(xs) == 1:
        return ys[0]
    i = _segment(xs, x)
    slope = math.log(ys[i + 1] / ys[i]) / math.log(xs[i + 1] / xs[i])
    return ys[i] * (x / xs[i]) ** slope


def _interp_lin(xs, ys, x: float) -> float:
    if len(xs) == 1:
        return ys[0]
    i = _segment(xs, x)
    return ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])


# ---- schema check ----------------------------------------------------------------------------------------


class _Checker:
    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, msg: str) -> UserError:
        return UserError(f"technology file {self.path}: {key}: {msg}")

    def mapping(self, obj: Any, key: str) -> dict:
        if not isinstance(obj, dict):
            raise self.fail(key, f"expected a mapping, got {type(obj).__name__}")
        return obj

    def get(self, obj: dict, name: str, key: str) -> Any:
        if name not in obj:
            raise self.fail(f"{key}.{name}" if key else name, "missing (required)")
        return obj[name]

    def number(self, v: Any, key: str, minimum: float = 0.0, strict: bool = False,
               bound: Bound | None = None) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(key, f"expected a number, got {v!r}")
        if v < minimum or (strict and v <= minimum):
            raise self.fail(key, f"{v!r} must be {'>' if strict else '>='} {minimum:g}")
        if bound is not None and not bound.ok(v):
            side = f"<= {bound.hi:g}" if v > bound.hi else f"{'>' if bound.lo_open else '>='} {bound.lo:g}"
            raise self.fail(key, f"{v!r} must be {side} (allowed range {bound.text()})")
        return float(v)

    def text(self, v: Any, key: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, f"expected a non-empty string, got {v!r}")
        return v

    def quantity(self, obj: Any, key: str, bound: Bound, strict: bool = False) -> Quantity:
        q = self.mapping(obj, key)
        unknown = sorted(set(q) - set(QUANTITY_KEYS))
        if unknown:
            raise self.fail(key, f"unknown field {unknown[0]!r}; allowed: {', '.join(QUANTITY_KEYS)}")
        value = self.number(self.get(q, "value", key), f"{key}.value", strict=strict, bound=bound)
        return Quantity(value, *(self.text(self.get(q, f, key), f"{key}.{f}") for f in QUANTITY_KEYS[1:]))

    def increasing(self, v: Any, key: str, bound: Bound) -> tuple[float, ...]:
        if not isinstance(v, list) or not v:
            raise self.fail(key, "expected a non-empty list of numbers")
        xs = tuple(self.number(x, f"{key}[{i}]", strict=True, bound=bound) for i, x in enumerate(v))
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise self.fail(key, f"must be strictly increasing, got {list(xs)}")
        return xs


def check_tech(doc: Any, path: str = "<tech>") -> Tech:
    """Validate a parsed technology document and build a :class:`Tech` (UserError naming the first problem)."""
    c = _Checker(path)
    doc = c.mapping(doc, "top level")
    version = c.get(doc, "schema_version", "")
    if version != SCHEMA_VERSION:
        raise c.fail("schema_version", f"{version!r} is not supported; allowed: {SCHEMA_VERSION}")
    name = c.text(c.get(doc, "name", ""), "name")
    if "clock" in doc:
        raise c.fail("clock", "the clock is now part of the engine architecture (golden.arch.EngineArch.clock_hz); "
                              "remove the clock section (clock.frequency_hz) from this file")
    sections = {}
    for sec, keys, optional, bound in (("energy", ENERGY_KEYS, OPTIONAL_ENERGY_KEYS, limits.ENERGY_PER_ACTION_J),
                                       ("leakage", LEAKAGE_KEYS, (), limits.LEAKAGE_W)):
        body = c.mapping(c.get(doc, sec, ""), sec)
        unknown = sorted(set(body) - set(keys) - set(optional))
        if unknown:
            raise c.fail(f"{sec}.{unknown[0]}", f"unknown key; allowed: {', '.join((*keys, *optional))}")
        sections[sec] = {k: c.quantity(c.get(body, k, sec), f"{sec}.{k}", bound) for k in keys}
        sections[sec].update({k: c.quantity(body[k], f"{sec}.{k}", bound) for k in optional if k in body})
    sram = c.mapping(c.get(doc, "sram", ""), "sram")
    tbl = c.mapping(c.get(sram, "read_pj", "sram"), "sram.read_pj")
    for f in ("unit", "source", "scaling"):
        c.text(c.get(tbl, f, "sram.read_pj"), f"sram.read_pj.{f}")
    sizes = c.increasing(c.get(tbl, "sizes_bytes", "sram.read_pj"), "sram.read_pj.sizes_bytes",
                         limits.SRAM_SIZE_BYTES)
    ports = c.increasing(c.get(tbl, "port_bits", "sram.read_pj"), "sram.read_pj.port_bits", limits.SRAM_PORT_BITS)
    values = c.get(tbl, "values", "sram.read_pj")
    if not isinstance(values, list) or len(values) != len(sizes):
        raise c.fail("sram.read_pj.values", f"expected {len(sizes)} rows (one per size)")
    rows = []
    for i, row in enumerate(values):
        if not isinstance(row, list) or len(row) != len(ports):
            raise c.fail(f"sram.read_pj.values[{i}]", f"expected {len(ports)} numbers (one per port width)")
        rows.append(tuple(c.number(x, f"sram.read_pj.values[{i}][{j}]", strict=True, bound=limits.SRAM_READ_PJ)
                          for j, x in enumerate(row)))
    wor = c.quantity(c.get(sram, "write_over_read", "sram"), "sram.write_over_read", limits.WRITE_OVER_READ,
                     strict=True)
    area = _check_area(c, doc["area"]) if "area" in doc else None
    return Tech(name=name, path=path, energy=sections["energy"], leakage=sections["leakage"],
                sram=SramTable(sizes, ports, tuple(rows), tbl["source"]), write_over_read=wor.value, area=area)


def _check_area(c: _Checker, obj: Any) -> AreaModel:
    body = c.mapping(obj, "area")
    allowed = (*AREA_KEYS, *AREA_TABLES)
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise c.fail(f"area.{unknown[0]}", f"unknown key; allowed: {', '.join(allowed)}")
    q = {k: c.quantity(c.get(body, k, "area"), f"area.{k}", limits.AREA[k], strict=k in ("ge_m2", "sram_bitcell_m2"))
         for k in AREA_KEYS}
    if q["sram_two_port_factor"].value < 1:
        raise c.fail("area.sram_two_port_factor.value", f"{q['sram_two_port_factor'].value!r} must be >= 1")
    gates = c.mapping(c.get(body, "gate_ge", "area"), "area.gate_ge")
    for f in ("unit", "source", "scaling"):
        c.text(c.get(gates, f, "area.gate_ge"), f"area.gate_ge.{f}")
    cells = c.mapping(c.get(gates, "cells", "area.gate_ge"), "area.gate_ge.cells")
    unknown = sorted(set(cells) - set(GATE_KEYS))
    if unknown:
        raise c.fail(f"area.gate_ge.cells.{unknown[0]}", f"unknown cell; allowed: {', '.join(GATE_KEYS)}")
    ge = {k: c.number(c.get(cells, k, "area.gate_ge.cells"), f"area.gate_ge.cells.{k}", strict=True,
                      bound=limits.GATE_GE) for k in GATE_KEYS}
    eff = c.mapping(c.get(body, "sram_efficiency", "area"), "area.sram_efficiency")
    for f in ("unit", "source", "scaling"):
        c.text(c.get(eff, f, "area.sram_efficiency"), f"area.sram_efficiency.{f}")
    sizes = c.increasing(c.get(eff, "sizes_bits", "area.sram_efficiency"), "area.sram_efficiency.sizes_bits",
                         limits.SRAM_EFFICIENCY_SIZE_BITS)
    values = c.get(eff, "values", "area.sram_efficiency")
    if not isinstance(values, list) or len(values) != len(sizes):
        raise c.fail("area.sram_efficiency.values", f"expected {len(sizes)} numbers (one per size)")
    vals = tuple(c.number(v, f"area.sram_efficiency.values[{i}]", strict=True) for i, v in enumerate(values))
    for i, v in enumerate(vals):
        if v > 1:
            raise c.fail(f"area.sram_efficiency.values[{i}]", f"{v!r} must be <= 1 (a fraction of the macro area)")
    return AreaModel(**q, gate_ge=ge, gate_source=gates["source"], efficiency_sizes_bits=sizes,
                     efficiency=vals, efficiency_source=eff["source"])


MAX_TECH_BYTES = 1 << 20


@cache
def _load(path: str, mtime_ns: int) -> Tech:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"technology file {path}: cannot be read ({e.strerror or e})") from None
    if len(raw) > MAX_TECH_BYTES:
        raise UserError(f"technology file {path}: {len(raw):,} bytes; at most {MAX_TECH_BYTES:,} are allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"technology file {path}: not UTF-8 text (byte {e.start})") from None
    try:
        doc = yaml.safe_load(text)
    except RecursionError:
        raise UserError(f"technology file {path}: nested too deeply to be a technology file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"technology file {path}: not valid YAML{where}") from None
    return check_tech(doc, path)


def load_tech(path: str | Path | None = None) -> Tech:
    """The technology file at ``path`` (default: ``hw/tech/28nm.yaml``), schema-checked; cached per file."""
    if isinstance(path, Tech):
        return path
    p = Path(path) if path is not None else DEFAULT_TECH
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise UserError(f"technology file {p}: not found") from None
    return _load(str(p), mtime)


__all__ = ["DEFAULT_TECH", "AreaModel", "Quantity", "SramTable", "Tech", "check_tech", "load_tech"]
