"""Keep freed memory in the process instead of returning it to the OS (glibc, Linux).

glibc serves allocations above its mmap threshold (128 KiB at start, raised adaptively up to
32 MiB) with fresh ``mmap`` pages and unmaps them on free, so every new activation or gradient
of that size page-faults on first touch: on a 2-core machine a 32 MiB elementwise op took
8-9 ms this way and 1.3 ms with the memory kept. Raising the mmap and trim thresholds makes
large blocks come from (and go back to) the heap, where they are reused. Native and
from-scratch layers benefit alike; benchmarks compare them in one process, under one setting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLDS = (1 << 30, 32 << 20)  # 1 GiB; older glibc caps it at 32 MiB on 64-bit
_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where not glibc/Linux."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    ok = any(mallopt(M_MMAP_THRESHOLD, value) == 1 for value in MMAP_THRESHOLDS)
    ok = mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok
    _done = ok
    return ok
