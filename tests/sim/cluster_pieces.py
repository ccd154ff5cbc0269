"""Module-level pieces for tests/sim/test_cluster.py: the workers import them by reference (sim.cluster)."""

from __future__ import annotations

import os
from pathlib import Path

from golden.errors import UserError


def square_with_pid(x: int) -> tuple[int, int]:
    """x*x, and the process that computed it (so a test can see that several workers took part)."""
    s = 0
    for i in range(200_000):  # enough work that both workers get pieces
        s += i % 7
    return x * x, os.getpid()


def refuse_odd(x: int) -> int:
    if x % 2:
        raise UserError(f"piece value {x}: odd values are not allowed here")
    return x


def die_once(job: tuple[str, int]) -> int:
    """The first attempt at piece ``k`` kills its own worker process (no exception, no cleanup: a crash); the
    attempt after the cluster replaced the worker finds the marker and answers. Every attempt is counted."""
    folder, k = job
    marker = Path(folder) / f"attempt-{k}"
    attempts = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(attempts))
    if k == 0 and attempts == 1:
        os._exit(13)
    return 10 * k


def environ(_: int) -> dict[str, str | None]:
    """The worker's malloc and thread settings."""
    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "OMP_NUM_THREADS")}


def mark_pid(folder: str) -> None:
    """The warm-up of tests/sim/test_cluster.py: leave a file named after this worker's process."""
    (Path(folder) / f"warm-{os.getpid()}").write_text("1")
