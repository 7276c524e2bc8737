"""Allocator tuning for the CNN lab's large, short-lived activations.

Each epoch allocates and frees tens of tensors of 10–40 MB.  glibc serves blocks above its mmap
threshold with fresh ``mmap`` calls and returns them on ``free``, so every epoch page-faults the
same memory in again (measured here: 1.9 s of 16 s in the kernel, 11 % of the wall time).
Raising the mmap threshold and the trim threshold keeps freed blocks in the heap for reuse.
This is process-wide and only changes where freed memory waits; it is a no-op off glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_done = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed large blocks (idempotent); True when the setting was applied."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = bool(mallopt(_M_MMAP_THRESHOLD, 64 << 20) and mallopt(_M_TRIM_THRESHOLD, 1 << 30)
                 and mallopt(_M_TOP_PAD, 256 << 20))
    return _done
