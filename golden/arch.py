"""The engine's architecture: the one description of its size that the RTL, the compiler, the cost model,
``make synth``, the weight codec and the design-space search all take (issue 16).

It lives in ``golden/``, the lowest floor, because the weight codec (``golden.weightcodec``) needs its lane
count; ``hw``, ``sim`` and ``model`` read it from here and hold none of these numbers themselves.

    rows x cols           the MAC array: ``rows`` output channels (a weight group) x ``cols`` output pixels
                          (a tile). The RTL, the compiler and the weight codec use one lane count for both
                          today, so ``rows == cols`` (a beat of DRAM is one weight row of ``cols`` words)
    fb_words, fb_banks    the feature buffer: 16-bit words and banks (``fb_banks`` left out: 16, or 32 above 16
                          lanes, :func:`default_fb_banks`: a buffer write is one row of ``cols`` words)
    wb_depth              rows of ``cols`` weights in each of the two weight-buffer banks
    dram_bytes_per_cycle  DRAM bandwidth and read latency (the testbench's DRAM model and the cost model)
    dram_latency_cycles
    clock_hz              the engine clock (energy per second, frames per second)
    encoder, weight_decoders, dw_unit   units present in the build

:func:`parse_arch` reads ``12x12`` or a YAML/JSON file of these fields (any field left out keeps its
default). :attr:`EngineArch.suffix` names the files of a non-default architecture (``build/sim/alexnet_16x16
.json``); the default has none, so today's paths stay.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from golden.errors import UserError

#: the array sizes the RTL is checked at (8 x 8 up to 24 x 24; a lane index fits 5 bits)
MIN_LANES, MAX_LANES = 4, 24


def default_fb_banks(lanes: int) -> int:
    """The feature buffer's banks when an architecture leaves them out: 16, or 32 above 16 lanes (the engine
    writes a row of ``lanes`` words, a DRAM beat or a drained array row, in one access of its banks)."""
    return 16 if lanes <= 16 else 32


@dataclass(frozen=True)
class EngineArch:
    rows: int = 12
    cols: int = 12
    fb_words: int = 2**18
    fb_banks: int | None = None      # None: default_fb_banks(cols)
    wb_depth: int = 4608
    dram_bytes_per_cycle: float = 16.0
    dram_latency_cycles: int = 20
    clock_hz: float = 200e6
    encoder: bool = True
    weight_decoders: bool = True
    dw_unit: bool = True

    def __post_init__(self):
        if self.fb_banks is None and isinstance(self.cols, int) and not isinstance(self.cols, bool):
            object.__setattr__(self, "fb_banks", default_fb_banks(self.cols))
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not MIN_LANES <= v <= MAX_LANES:
                raise UserError(f"architecture {name} {v!r} is not allowed; allowed: an integer in "
                                f"{MIN_LANES}..{MAX_LANES}")
        if self.rows != self.cols:
            raise UserError(f"architecture {self.rows}x{self.cols} is not allowed; allowed: square arrays "
                            f"(rows == cols: the weight group, the tile and the DRAM beat share one lane count)")
        checks = (
            ("fb_words", lambda v: isinstance(v, int) and 256 <= v <= 2**24 and v % 32 == 0,
             "a multiple of 32 in 256..16777216"),
            ("fb_banks", lambda v: isinstance(v, int) and v in (1, 2, 4, 8, 16, 32), "1, 2, 4, 8, 16 or 32"),
            ("wb_depth", lambda v: isinstance(v, int) and 16 <= v <= 2**16, "an integer in 16..65536"),
            ("dram_bytes_per_cycle", lambda v: isinstance(v, (int, float)) and 1 <= v <= 1024, "1..1024"),
            ("dram_latency_cycles", lambda v: isinstance(v, int) and 0 <= v <= 10000, "an integer in 0..10000"),
            ("clock_hz", lambda v: isinstance(v, (int, float)) and 1e3 <= v <= 1e10, "1e3..1e10 Hz"),
            ("encoder", lambda v: isinstance(v, bool), "true or false"),
            ("weight_decoders", lambda v: isinstance(v, bool), "true or false"),
            ("dw_unit", lambda v: isinstance(v, bool), "true or false"),
        )
        for name, ok, allowed in checks:
            v = getattr(self, name)
            if isinstance(v, bool) and allowed != "true or false" or not ok(v):
                raise UserError(f"architecture {name} {v!r} is not allowed; allowed: {allowed}")

    @property
    def lanes(self) -> int:
        """Output channels per weight group = output pixels per tile = 16-bit words per DRAM beat."""
        return self.cols

    @property
    def macs(self) -> int:
        return self.rows * self.cols

    @property
    def array(self) -> str:
        return f"{self.rows}x{self.cols}"

    @property
    def name(self) -> str:
        """``12x12`` for an array size with every other field at its default, else ``12x12-<hash>``."""
        own = self.fb_banks == default_fb_banks(self.cols)     # banks left at this array's default
        rest = replace(self, rows=DEFAULT_ARCH.rows, cols=DEFAULT_ARCH.cols,
                       fb_banks=DEFAULT_ARCH.fb_banks if own else self.fb_banks)
        if rest == DEFAULT_ARCH and own:
            return self.array
        key = rest.as_dict() if own or rest.fb_banks != DEFAULT_ARCH.fb_banks else {**rest.as_dict(), "banks_set": 1}
        return f"{self.array}-{digest(key)[:8]}"

    @property
    def suffix(self) -> str:
        """What files of this architecture carry after the network's name: ``""`` for the default."""
        return "" if self == DEFAULT_ARCH else "_" + self.name

    @property
    def rtl(self) -> EngineArch:
        """This architecture with the fields that do not change the RTL (DRAM timing: the testbench's DRAM model;
        the clock) at their defaults: what keys a Verilog build."""
        return replace(self, dram_bytes_per_cycle=DEFAULT_ARCH.dram_bytes_per_cycle,
                       dram_latency_cycles=DEFAULT_ARCH.dram_latency_cycles, clock_hz=DEFAULT_ARCH.clock_hz)

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_ARCH = EngineArch()

_ARRAY = re.compile(r"^\s*(\d{1,3})\s*x\s*(\d{1,3})\s*$", re.IGNORECASE)


def digest(obj) -> str:
    import hashlib
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def parse_arch(text: str | EngineArch | None) -> EngineArch:
    """``None`` or ``""``: the default; ``RxC``: that array with every other field at its default; a path to a
    ``.yaml``/``.yml``/``.json`` file: the fields it names over the defaults (unknown fields are refused)."""
    if text is None or text == "":
        return DEFAULT_ARCH
    if isinstance(text, EngineArch):
        return text
    m = _ARRAY.match(str(text))
    if m:
        return EngineArch(rows=int(m.group(1)), cols=int(m.group(2)))
    path = Path(text)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise UserError(f"architecture {text!r} is not allowed; allowed: ROWSxCOLS (e.g. 16x16) or a .yaml/.json "
                        f"file of {', '.join(f.name for f in fields(EngineArch))}")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"architecture file {text} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"architecture file {text} cannot be read: {e}") from None
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(raw)
        else:
            import yaml
            values = yaml.safe_load(raw)
    except Exception as e:   # noqa: BLE001 - any parse error is the file's
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"architecture file {text} is not valid {path.suffix[1:].upper()}: {first}") from None
    return from_dict(values, where=f"architecture file {text}")


def from_dict(values, where: str = "architecture") -> EngineArch:
    """An :class:`EngineArch` from a mapping of its fields (a JSON's ``"arch"`` record, a YAML file)."""
    known = {f.name for f in fields(EngineArch)}
    if not isinstance(values, dict):
        raise UserError(f"{where}: expected a mapping of {', '.join(sorted(known))}, got {type(values).__name__}")
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
    return EngineArch(**values)


__all__ = ["DEFAULT_ARCH", "EngineArch", "MAX_LANES", "MIN_LANES", "default_fb_banks", "digest", "from_dict",
           "parse_arch"]
