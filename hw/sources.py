"""Which RTL a set of simulator counts came from: a hash of the sources the Verilog is generated from.

``make sim`` records :func:`rtl_sources_hash` in its JSON beside the architecture; the cost model uses counts
only from a JSON whose hash is today's (counts of an older RTL are refused, not mixed in). The hash covers
every ``hw/**/*.py`` except the technology table (``hw/tech*``: energies and areas, not logic), the number
formats (``golden/fixedpoint.py``) and the architecture description (``golden/arch.py``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

HW_DIR = Path(__file__).resolve().parent
REPO_ROOT = HW_DIR.parent


def _snapshot() -> dict[Path, bytes]:
    files = sorted(HW_DIR.rglob("*.py")) + [REPO_ROOT / "golden" / "fixedpoint.py", REPO_ROOT / "golden" / "arch.py"]
    return {f: f.read_bytes() for f in files}


# The sources as this process loads them: taken when the hw package is first imported (hw/__init__.py imports
# this module), before any of its modules. A file edited while a run goes on would otherwise label the run's
# counts (rtl_sources_hash) and key its Verilog (sim.runner.Design.source_key) with code it did not run.
_LOADED = _snapshot()


def source_bytes(path: Path) -> bytes:
    """``path``'s text as it was when this process imported the hw package (a file added since: as it is)."""
    text = _LOADED.get(Path(path))
    return text if text is not None else Path(path).read_bytes()


def rtl_source_files() -> list[Path]:
    files = [f for f in sorted(HW_DIR.rglob("*.py")) if not f.relative_to(HW_DIR).parts[0].startswith("tech")]
    return files + [REPO_ROOT / "golden" / "fixedpoint.py", REPO_ROOT / "golden" / "arch.py"]


@cache
def rtl_sources_hash() -> str:
    """sha256 (first 16 hex digits) of the RTL's sources, by path and content (computed once per process)."""
    h = hashlib.sha256()
    for f in rtl_source_files():
        h.update(str(f.relative_to(REPO_ROOT)).encode())
        h.update(b"\0")
        h.update(source_bytes(f))
        h.update(b"\0")
    return h.hexdigest()[:16]


__all__ = ["rtl_source_files", "rtl_sources_hash", "source_bytes"]
