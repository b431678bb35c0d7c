"""Raise KeyboardInterrupt in the worker thread that serves an interrupted host call.

Internal. Runs inside env interpreters: Python 3.8+, stdlib only.

The host sends ``INTERRUPT [channel id, request id]`` when a KeyboardInterrupt (Ctrl-C, a
notebook's interrupt) stops a call it was waiting for. CPython can raise an exception in another
thread only asynchronously (``PyThreadState_SetAsyncExc``): it takes effect at that thread's next
bytecode, so code stuck in C (``time.sleep``, a blocking read, a long numpy kernel) sees it only
when the C call returns. The host therefore waits a moment for the call to end and otherwise
moves the thread's next calls to a fresh channel (``bridge/client.py``).
"""

from __future__ import annotations

import threading


class CallInterrupts:
    """Which request a channel's thread is running, and the interrupts aimed at it.

    The lock makes "is it still running that request" and "raise in it" one step, so an
    interrupt never lands in a later call or in the channel's own receive loop; whatever was
    set and had not fired yet is withdrawn when the request ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ident: int | None = None
        self._rid: int | None = None
        self._armed = False

    def begin(self, rid: int) -> bool:
        """The current thread starts request ``rid``; False if it already runs an outer one."""
        with self._lock:
            if self._rid is not None:
                return False
            self._ident = threading.get_ident()
            self._rid = rid
            return True

    def end(self) -> None:
        """The outermost request ended: withdraw an interrupt that has not fired."""
        with self._lock:
            if self._armed and self._ident is not None:
                _set_async_exc(self._ident, None)
            self._rid = None
            self._armed = False

    def interrupt_running(self) -> bool:
        """Raise KeyboardInterrupt in the thread running a request, whichever it is (its
        session ended: nobody waits for the result); False if none runs."""
        with self._lock:
            rid = self._rid
        return rid is not None and self.interrupt(rid)

    def interrupt(self, rid: int) -> bool:
        """Raise KeyboardInterrupt in the thread running ``rid``; False if none is."""
        with self._lock:
            if self._rid != rid or self._ident is None or self._armed:
                return False
            self._armed = _set_async_exc(self._ident, KeyboardInterrupt)
            return self._armed


def _set_async_exc(ident: int, exc: type | None) -> bool:
    import ctypes  # here, not at import: 1.7 ms of every worker's start-up

    exc_object = ctypes.py_object(exc) if exc is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc_object)
    return changed == 1
