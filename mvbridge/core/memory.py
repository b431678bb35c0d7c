"""Hand memory the C allocator keeps after a session ends back to the system.

A session that ends frees many small blocks from threads that then exit (a channel's, the
I/O thread's, libzmq's buffers). glibc keeps such memory in its per-thread arenas: freed, but
still counted in the process's RSS, so a service whose clients come and go grew by 3-70 KB per
session and never shrank, although nothing live was left (``malloc_trim`` returned it all;
``docs/reliability.md``, the soak). Other C libraries (musl, macOS) have no ``malloc_trim``:
there this does nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

MIN_INTERVAL = 1.0  # seconds between two trims: one walks every arena (milliseconds on big heaps)
_lock = threading.Lock()
_last = [float("-inf")]
_trim: list[Callable[[int], Any] | None] = []  # [] not looked up yet; [None] not available


def _malloc_trim() -> Callable[[int], Any] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, ImportError):  # musl, or no ctypes
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_freed_memory() -> None:
    """Return the allocator's free memory to the system (glibc's ``malloc_trim(0)``), at most
    once per ``MIN_INTERVAL``; called where a session ends, never on a call's path."""
    now = time.monotonic()
    with _lock:
        if now - _last[0] < MIN_INTERVAL:
            return
        _last[0] = now
        if not _trim:
            _trim.append(_malloc_trim())
        trim = _trim[0]
    if trim is not None:
        trim(0)
