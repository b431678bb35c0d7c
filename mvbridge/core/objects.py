"""The table of objects a side has handed out by reference.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Each export of an object counts once; the peer releases what it received with the same count,
so an object sent again while its release is on the way stays alive (no release/resend race).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Iterable, NamedTuple

from ..errors import StaleReferenceError


class TableStatistics(NamedTuple):
    """Counts of an ``ObjectTable`` (a frozen record; a NamedTuple imports faster than a
    dataclass, which matters to a worker's start-up).

    Attributes:
        live_objects: objects held for the peer now.
        exported: references sent so far (one object sent twice counts twice).
        released: references the peer gave back so far.
    """

    live_objects: int
    exported: int
    released: int


class ObjectTable:
    """Object id -> object, with a count of references the peer holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[int, list[Any]] = {}  # oid -> [object, count]
        self._oid_of: dict[int, int] = {}  # id(object) -> oid, valid while the entry holds it
        self._next_oid = 1
        self._exported = 0
        self._released = 0

    def export(self, obj: Any) -> int:
        """Count one more reference to ``obj`` sent to the peer; return its object id."""
        with self._lock:
            self._exported += 1
            oid = self._oid_of.get(id(obj))
            if oid is not None:
                self._entries[oid][1] += 1
                return oid
            oid = self._next_oid
            self._next_oid += 1
            self._entries[oid] = [obj, 1]
            self._oid_of[id(obj)] = oid
            return oid

    def get(self, oid: int) -> Any:
        """The object with id ``oid``."""
        try:
            return self._entries[oid][0]
        except KeyError:
            raise StaleReferenceError(
                "object %d is no longer held by this side: it was released, or it belonged to "
                "a worker that has since restarted" % oid
            ) from None

    def holds_id(self, object_id: int) -> bool:
        """True while an object whose ``id()`` is ``object_id`` is held for the peer."""
        return object_id in self._oid_of

    def release(self, items: Iterable[tuple[int, int]]) -> None:
        """Drop ``count`` references for each ``(oid, count)``; forget objects left at zero."""
        with self._lock:
            for oid, count in items:
                entry = self._entries.get(oid)
                if entry is None:
                    continue
                self._released += count
                entry[1] -= count
                if entry[1] <= 0:
                    del self._entries[oid]
                    del self._oid_of[id(entry[0])]

    def clear(self) -> None:
        """Forget every object (the peer has gone)."""
        with self._lock:
            self._entries.clear()
            self._oid_of.clear()

    def statistics(self) -> TableStatistics:
        """Current counts."""
        with self._lock:
            return TableStatistics(len(self._entries), self._exported, self._released)


def drain(queue: collections.deque) -> list:
    """Everything in a queue that finalisers append to, taken without a lock."""
    taken = []
    try:
        while True:
            taken.append(queue.popleft())
    except IndexError:  # empty: popleft, unlike a len() check, is atomic with the append
        pass
    return taken
