"""Large numpy buffers between a host and its local worker through pooled shared memory.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

On this kind of machine page faults, not copies, bound bulk transfers: copying 100 MB into
fresh memory costs 25x more than into memory already touched. So each side keeps a pool of
segments (files under /dev/shm) that stay mapped, and faulted in, for the whole session:

* the sender copies the buffer into a free segment of its own pool (one copy, no faults once
  the segment has been used) and lends the segment: ``[path, segment size, length]``;
* the receiver maps that segment once (and keeps the mapping) and wraps ``length`` bytes of it
  as the array's memory, with no copy. The array is the receiver's own: the sender never
  touches a lent segment, so by-value semantics hold, and the array is writable;
* when the last array or view over it is freed, a finaliser queues the segment's path; the
  release rides back on the next message, and the owner may lend the segment again.

The owner removes its segment files when the session ends; a worker whose host died removes
what it knows of too. Used only between a host and its local worker, on Linux.
"""

from __future__ import annotations

import collections
import itertools
import mmap
import os
import threading
import weakref
from typing import Any

from .objects import drain

THRESHOLD = 4 * 1024 * 1024  # smaller buffers travel in frames
MIN_SEGMENT = 4 * 1024 * 1024
PREFIX = "mvb-seg-"
_counter = itertools.count()


def default_dir() -> str | None:
    """The shared-memory folder of this machine, or None where there is none we can use."""
    folder = "/dev/shm"
    return folder if os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK) else None


class _Segment:
    __slots__ = ("lent", "mapping", "path", "size")

    def __init__(self, path: str, size: int, mapping: mmap.mmap) -> None:
        self.path = path
        self.size = size
        self.mapping = mapping
        self.lent = False


class SegmentPool:
    """This side's segments (lent out and free) and the peer's segments it has mapped."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._own: dict[str, _Segment] = {}
        self._mapped: dict[str, mmap.mmap] = {}  # the peer's segments, by path
        self.returned: collections.deque[str] = collections.deque()  # finalisers append here

    # -- sending --------------------------------------------------------------------------------
    def lend(self, buffer: Any) -> list[Any]:
        """Copy ``buffer`` into a free segment and lend it: ``[path, size, length]``."""
        view = memoryview(buffer).cast("B")
        length = len(view)
        with self._lock:
            segment = self._free_segment(length)
            segment.lent = True
        try:
            segment.mapping[:length] = view
        except BaseException:
            segment.lent = False
            raise
        return [segment.path, segment.size, length]

    def _free_segment(self, length: int) -> _Segment:
        fitting = [s for s in self._own.values() if not s.lent and s.size >= length]
        if fitting:
            return min(fitting, key=lambda s: s.size)
        size = max(MIN_SEGMENT, 1 << (length - 1).bit_length())
        path = os.path.join(self.folder, "%s%d-%d" % (PREFIX, os.getpid(), next(_counter)))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            _unlink(path)
            raise
        os.close(fd)
        segment = self._own[path] = _Segment(path, size, mapping)
        return segment

    def take_back(self, paths: list[str]) -> None:
        """The peer freed these lent segments: they may be lent again."""
        with self._lock:
            for path in paths:
                segment = self._own.get(path)
                if segment is not None:
                    segment.lent = False

    # -- receiving ------------------------------------------------------------------------------
    def borrow(self, path: str, size: int, length: int) -> Any:
        """A writable buffer over ``length`` bytes of the peer's segment, ours until freed."""
        if os.path.dirname(path) != self.folder or not os.path.basename(path).startswith(PREFIX):
            raise ValueError("refusing to map %r: not a segment of %s" % (path, self.folder))
        with self._lock:
            mapping = self._mapped.get(path)
            if mapping is None:
                fd = os.open(path, os.O_RDWR)
                try:
                    mapping = mmap.mmap(fd, size)
                finally:
                    os.close(fd)
                self._mapped[path] = mapping
        import ctypes  # here, not at import: 1.7 ms of every worker's start-up

        buffer = (ctypes.c_ubyte * length).from_buffer(mapping)
        weakref.finalize(buffer, self.returned.append, path)
        return buffer

    def take_returned(self) -> list[str] | None:
        """Segments of the peer this side has freed, to send back (or None)."""
        returned = self.returned
        if not returned:
            return None
        return drain(returned)

    # -- the end --------------------------------------------------------------------------------
    def close(self) -> None:
        """Remove our segment files and drop the mappings nobody uses any more."""
        with self._lock:
            for segment in self._own.values():
                _unlink(segment.path)
                _close(segment.mapping)
            self._own.clear()
            for path, mapping in self._mapped.items():
                _unlink(path)  # the owner may be gone (a crash): its files must not stay in RAM
                _close(mapping)
            self._mapped.clear()

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {
                "own_segments": len(self._own),
                "lent": sum(1 for s in self._own.values() if s.lent),
                "mapped": len(self._mapped),
            }


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _close(mapping: mmap.mmap) -> None:
    try:
        mapping.close()
    except BufferError:
        pass  # an array still uses it: the mapping goes when that array does
