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
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


__all__ = ["rtl_source_files", "rtl_sources_hash"]
