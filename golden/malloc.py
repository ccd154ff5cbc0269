"""The C allocator's settings for array work: :func:`tune`, called once by each entry point and Dask worker.

glibc's ``malloc`` maps a block of 128 KiB or more straight from the kernel, raising that threshold only after
such blocks are freed, and gives the top of its heap back to the kernel once 128 KiB are free there. numpy and
torch allocate and free tensors of megabytes on every layer, so each one was page-faulted in afresh (half the
CPU time of the accuracy study's two workers on ResNet-56 and 10,000 images was the kernel's). With
the threshold fixed at its largest (32 MiB) and the heap kept (up to 1 GiB free), blocks below 32 MiB are
reused. Results do not change, only where memory comes from.

Measured (ResNet-56's int16 network on 1,000 CIFAR images, one thread): 31.2 s (11.9 s computing, 19.3 s of the
kernel's page faults) in batches of 500 images; 13.4 s with :func:`golden.quantize.run_fast`'s batches under
24 MiB; 11.1 s with both. The study of four ResNet-56 splits on 1,000 images: 197 s -> 170 s."""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
"""glibc's largest mmap threshold on 64-bit systems."""
TRIM_THRESHOLD_BYTES = 1 << 30

_DONE: list[bool] = []


def tune() -> bool:
    """Set the two thresholds (once per process); False where the C library is not glibc (nothing changes)."""
    if _DONE:
        return _DONE[0]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    _DONE.append(ok)
    return ok
