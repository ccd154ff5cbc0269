"""The bounds on every number a user gives edgesplit, in one place.

Each bound is physical or practical: a value outside it is a typo or a unit mistake (a link of 1e-300 bit/s,
a ratio of 1e-9, 1e300 J per MAC, a learning rate of 1e30), and accepting it would print ``inf`` or nonsense.
Values outside are refused with a :class:`~golden.errors.UserError` naming the value and the bound
(:meth:`Bound.check`); the command-line help states the same bounds (:meth:`Bound.text`).

======================== ============================ ===============================================================
what                     allowed                      why
======================== ============================ ===============================================================
link rate                1e3 .. 1e12 bit/s            1 kbit/s (slowest LPWAN) .. 1 Tbit/s (beyond any radio)
link power               0 .. 100 W                   a transmitter's power draw; 0 leaves the radio's energy out
compression ratio        0.1 .. 1e5                   raw / sent bytes: codes expand 2x at worst
clock (tech file)        1e3 .. 1e10 Hz               1 kHz .. 10 GHz
energy per action        0 .. 1e-8 J                  10 nJ; the 28 nm file's largest is 20 pJ (a DRAM bit)
leakage per block        0 .. 100 W
SRAM read energy         > 0 .. 1e4 pJ                per access; macro sizes > 0 .. 1e12 bytes, ports > 0 .. 4096 bits
write / read energy      > 0 .. 100
area figures             see :data:`AREA`             gate and bitcell areas, leakage per gate or bit, gate sizes
learning rate            > 0 .. 10                    ``finetune``, ``train`` (SGD diverges long before 10)
epochs                   1 .. 1000
batch size               1 .. 4096
threads                  1 .. 256
seed                     0 .. 2**63 - 1
image counts             1 .. 1e7                     ``--limit``, ``--test-limit``, ``--search-images``, ...
--resize                 input side .. 4096 pixels
--mean / --std           0 .. 1 / 0.001 .. 1          per channel, on pixel values scaled to [0, 1]
array size               2**26 values                 a feature map read from ``.npy`` or decoded from a stream
image size               2**26 pixels                 8192 x 8192; checked from the header before decoding
coded file size          1 GiB                        a ``.jpg`` / ``.esll`` to decode, an image to encode
======================== ============================ ===============================================================

Quality factors (1..100) are :func:`golden.jpeg.check_qf`'s; accuracy budgets (0..1) are checked where they are
used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from golden.errors import UserError


@dataclass(frozen=True)
class Bound:
    """``lo <= value <= hi`` (``lo < value`` when ``lo_open``); ``integer``: whole numbers only."""

    lo: float
    hi: float
    unit: str = ""
    lo_open: bool = False
    integer: bool = False

    def text(self) -> str:
        """The range as the help and the errors write it, e.g. ``1e+03..1e+12 bit/s``."""
        lo = f"above {_num(self.lo)} up to " if self.lo_open else f"{_num(self.lo)}.."
        return f"{lo}{_num(self.hi)}{f' {self.unit}' if self.unit else ''}"

    def ok(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.integer and value != int(value):
            return False
        return (value > self.lo if self.lo_open else value >= self.lo) and value <= self.hi

    def check(self, value: float, what: str) -> float:
        """``value`` if within the bound, else UserError ``"{what} {value} is outside {text}"``."""
        if not self.ok(value):
            raise UserError(f"{what} {_num(value) if isinstance(value, int | float) else repr(value)} is outside "
                            f"the allowed range {self.text()}")
        return int(value) if self.integer else float(value)


def _num(v: float) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return repr(v)
    if isinstance(v, int) or (math.isfinite(v) and v == int(v) and abs(v) < 1e6):
        return str(int(v))
    return f"{v:g}"


def parse_number(text: str | float | None, what: str, bound: Bound) -> float | None:
    """A command-line number checked against ``bound`` (None passes through)."""
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{what} {text!r} is not a number; allowed: {bound.text()}") from None
    return bound.check(value, what)


# ---- the cost model -------------------------------------------------------------------------------------

LINK_RATE_BPS = Bound(1e3, 1e12, "bit/s")
LINK_POWER_W = Bound(0.0, 100.0, "W")
COMPRESSION_RATIO = Bound(0.1, 1e5)
CLOCK_HZ = Bound(1e3, 1e10, "Hz")
ENERGY_PER_ACTION_J = Bound(0.0, 1e-8, "J")
LEAKAGE_W = Bound(0.0, 100.0, "W")
SRAM_READ_PJ = Bound(0.0, 1e4, "pJ", lo_open=True)
SRAM_SIZE_BYTES = Bound(0.0, 1e12, "bytes", lo_open=True)
SRAM_PORT_BITS = Bound(0.0, 4096.0, "bits", lo_open=True)
WRITE_OVER_READ = Bound(0.0, 100.0, lo_open=True)
AREA: dict[str, Bound] = {
    "ge_m2": Bound(0.0, 1e-9, "m^2", lo_open=True),
    "sram_bitcell_m2": Bound(0.0, 1e-9, "m^2", lo_open=True),
    "sram_two_port_factor": Bound(1.0, 10.0),
    "leakage_per_ge_w": Bound(0.0, 1e-3, "W"),
    "leakage_per_sram_bit_w": Bound(0.0, 1e-3, "W"),
}
GATE_GE = Bound(0.0, 1000.0, "NAND2 equivalents", lo_open=True)
SRAM_EFFICIENCY = Bound(0.0, 1.0, lo_open=True)
SRAM_EFFICIENCY_SIZE_BITS = Bound(0.0, 1e13, "bits", lo_open=True)

TECH_HELP = (f"clock {CLOCK_HZ.text()}, energies {ENERGY_PER_ACTION_J.text()} per action, leakage "
             f"{LEAKAGE_W.text()} per block")
LINK_HELP = f"rate {LINK_RATE_BPS.text()}, power {LINK_POWER_W.text()}"

# ---- training ------------------------------------------------------------------------------------------

LEARNING_RATE = Bound(0.0, 10.0, lo_open=True)
EPOCHS = Bound(1, 1000, integer=True)
BATCH_SIZE = Bound(1, 4096, integer=True)
THREADS = Bound(1, 256, integer=True)
SEED = Bound(0, 2**63 - 1, integer=True)
IMAGE_COUNT = Bound(1, 10_000_000, integer=True)
RESIZE_PX = Bound(1, 4096, "pixels", integer=True)
NORM_MEAN = Bound(0.0, 1.0)
NORM_STD = Bound(0.001, 1.0)

# ---- sizes of what is read ---------------------------------------------------------------------------------

MAX_ARRAY_VALUES = 1 << 26
"""Values of a feature map read from a ``.npy`` file or decoded from a container (128 MiB as int16)."""
MAX_IMAGE_PIXELS = 1 << 26
"""Pixels of an image read (8192 x 8192), checked from its header before it is decoded."""
MAX_CODED_BYTES = 1 << 30
"""Bytes of a coded file to decode or an image file to encode (1 GiB)."""


def check_array_size(shape: tuple[int, ...], what: str) -> None:
    """UserError if an array of ``shape`` holds more than :data:`MAX_ARRAY_VALUES` values."""
    n = math.prod(int(s) for s in shape)
    if n > MAX_ARRAY_VALUES:
        raise UserError(f"{what} has shape {tuple(shape)} = {n:,} values; at most {MAX_ARRAY_VALUES:,} are allowed")


def check_image_size(width: int, height: int, what: str) -> None:
    """UserError if a ``width x height`` image has more than :data:`MAX_IMAGE_PIXELS` pixels."""
    if width * height > MAX_IMAGE_PIXELS:
        raise UserError(f"{what} is {width} x {height} = {width * height:,} pixels; at most {MAX_IMAGE_PIXELS:,} "
                        "are allowed")


def check_file_size(size: int, what: str) -> None:
    """UserError if a file to read is larger than :data:`MAX_CODED_BYTES`."""
    if size > MAX_CODED_BYTES:
        raise UserError(f"{what} is {size:,} bytes; at most {MAX_CODED_BYTES:,} are allowed")

