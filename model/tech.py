"""Technology file: per-action energies, SRAM energy vs size, leakage per block and the clock.

``load_tech(path=None)`` reads a YAML file (default ``model/tech/28nm.yaml``), checks it against the schema
below and returns a :class:`Tech`. Every number in the file is a *quantity* ``{value, unit, source,
scaling}`` so the provenance of each figure travels with it; a file that breaks the schema raises
:class:`~golden.errors.UserError` with one line naming the file, the key and what is expected.

Schema (``schema_version: 1``)::

    name: str
    clock.frequency_hz                      quantity, > 0
    energy.{mac_16b, register_bit, compare_16b, requantize, rf_read_word, rf_write_word, dram_bit,
            encoder_jpeg_sample, encoder_lossless_sample}          quantity, >= 0 (J per action)
    sram.read_pj: {unit, source, scaling, sizes_bytes: [increasing > 0], port_bits: [increasing > 0],
                   values: [[> 0] * len(port_bits)] * len(sizes_bytes)}
    sram.write_over_read                    quantity, > 0
    leakage.{feature_buffer_w, weight_buffer_w, mac_array_w, control_w, encoder_w}   quantity, >= 0 (W)

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

from golden.errors import UserError

DEFAULT_TECH = Path(__file__).resolve().parent / "tech" / "28nm.yaml"
SCHEMA_VERSION = 1
ENERGY_KEYS = (
    "mac_16b", "register_bit", "compare_16b", "requantize", "rf_read_word", "rf_write_word", "dram_bit",
    "encoder_jpeg_sample", "encoder_lossless_sample",
)
LEAKAGE_KEYS = ("feature_buffer_w", "weight_buffer_w", "mac_array_w", "control_w", "encoder_w")
QUANTITY_KEYS = ("value", "unit", "source", "scaling")


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


@dataclass(frozen=True, eq=False)
class Tech:
    """A checked technology file. ``energy[k]``/``leakage[k]`` are quantities in J / W."""

    name: str
    path: str
    clock_hz: float
    energy: dict[str, Quantity]
    leakage: dict[str, Quantity]
    sram: SramTable
    write_over_read: float
    clock: Quantity

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
        rows = [{"group": "clock", "key": "frequency_hz", **self.clock.__dict__}]
        rows += [{"group": "energy", "key": k, **q.__dict__} for k, q in self.energy.items()]
        rows += [{"group": "leakage", "key": k, **q.__dict__} for k, q in self.leakage.items()]
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

    def number(self, v: Any, key: str, minimum: float = 0.0, strict: bool = False) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(key, f"expected a number, got {v!r}")
        if v < minimum or (strict and v <= minimum):
            raise self.fail(key, f"{v!r} must be {'>' if strict else '>='} {minimum:g}")
        return float(v)

    def text(self, v: Any, key: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, f"expected a non-empty string, got {v!r}")
        return v

    def quantity(self, obj: Any, key: str, strict: bool = False) -> Quantity:
        q = self.mapping(obj, key)
        unknown = sorted(set(q) - set(QUANTITY_KEYS))
        if unknown:
            raise self.fail(key, f"unknown field {unknown[0]!r}; allowed: {', '.join(QUANTITY_KEYS)}")
        value = self.number(self.get(q, "value", key), f"{key}.value", strict=strict)
        return Quantity(value, *(self.text(self.get(q, f, key), f"{key}.{f}") for f in QUANTITY_KEYS[1:]))

    def increasing(self, v: Any, key: str) -> tuple[float, ...]:
        if not isinstance(v, list) or not v:
            raise self.fail(key, "expected a non-empty list of numbers")
        xs = tuple(self.number(x, f"{key}[{i}]", strict=True) for i, x in enumerate(v))
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
    clock = c.quantity(c.get(c.mapping(c.get(doc, "clock", ""), "clock"), "frequency_hz", "clock"),
                       "clock.frequency_hz", strict=True)
    sections = {}
    for sec, keys in (("energy", ENERGY_KEYS), ("leakage", LEAKAGE_KEYS)):
        body = c.mapping(c.get(doc, sec, ""), sec)
        unknown = sorted(set(body) - set(keys))
        if unknown:
            raise c.fail(f"{sec}.{unknown[0]}", f"unknown key; allowed: {', '.join(keys)}")
        sections[sec] = {k: c.quantity(c.get(body, k, sec), f"{sec}.{k}") for k in keys}
    sram = c.mapping(c.get(doc, "sram", ""), "sram")
    tbl = c.mapping(c.get(sram, "read_pj", "sram"), "sram.read_pj")
    for f in ("unit", "source", "scaling"):
        c.text(c.get(tbl, f, "sram.read_pj"), f"sram.read_pj.{f}")
    sizes = c.increasing(c.get(tbl, "sizes_bytes", "sram.read_pj"), "sram.read_pj.sizes_bytes")
    ports = c.increasing(c.get(tbl, "port_bits", "sram.read_pj"), "sram.read_pj.port_bits")
    values = c.get(tbl, "values", "sram.read_pj")
    if not isinstance(values, list) or len(values) != len(sizes):
        raise c.fail("sram.read_pj.values", f"expected {len(sizes)} rows (one per size)")
    rows = []
    for i, row in enumerate(values):
        if not isinstance(row, list) or len(row) != len(ports):
            raise c.fail(f"sram.read_pj.values[{i}]", f"expected {len(ports)} numbers (one per port width)")
        rows.append(tuple(c.number(x, f"sram.read_pj.values[{i}][{j}]", strict=True) for j, x in enumerate(row)))
    wor = c.quantity(c.get(sram, "write_over_read", "sram"), "sram.write_over_read", strict=True)
    return Tech(name=name, path=path, clock_hz=clock.value, energy=sections["energy"], leakage=sections["leakage"],
                sram=SramTable(sizes, ports, tuple(rows), tbl["source"]), write_over_read=wor.value, clock=clock)


@cache
def _load(path: str, mtime_ns: int) -> Tech:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise UserError(f"technology file {path}: cannot be read ({e.strerror or e})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"technology file {path}: not valid YAML{where}") from None
    return check_tech(doc, path)


def load_tech(path: str | Path | None = None) -> Tech:
    """The technology file at ``path`` (default: ``model/tech/28nm.yaml``), schema-checked; cached per file."""
    if isinstance(path, Tech):
        return path
    p = Path(path) if path is not None else DEFAULT_TECH
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise UserError(f"technology file {p}: not found") from None
    return _load(str(p), mtime)


__all__ = ["DEFAULT_TECH", "Quantity", "SramTable", "Tech", "check_tech", "load_tech"]
