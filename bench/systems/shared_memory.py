"""Shared memory: the bulk-data limit of a by-value array transport between two processes."""

from __future__ import annotations

from multiprocessing import Pipe
from multiprocessing.shared_memory import SharedMemory
from typing import Any

from ..procs import Worker
from .base import Call, NotAvailable, System

ONLY_ARRAYS = "measures bulk data only; its control messages go over a Pipe (see that row)"
TIMEOUT = 120.0


class SharedMem(System):
    key = "shm"
    label = "multiprocessing.shared_memory"
    notes = (
        "array copied into a pre-made segment, out into the worker's own array, back the same "
        "way: 4 copies, by value"
    )

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.segments: list[SharedMemory] = []
        self.size = 0

    def start(self) -> None:
        pass  # segments are sized by the first array

    def _start_for(self, nbytes: int) -> None:
        self.stop()
        self.size = nbytes
        self.segments = [SharedMemory(create=True, size=nbytes) for _ in range(2)]
        self.conn, theirs = Pipe()
        names = ",".join(segment.name for segment in self.segments)
        args = ["--fds", str(theirs.fileno()), "--shm", names, "--numpy"]
        try:
            self.worker = Worker("shm_worker.py", args, (theirs.fileno(),), wait_ready=False)
        finally:
            theirs.close()

    def stop(self) -> None:
        if self.worker is not None:
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.conn.close()
            self.worker.stop(asked=True)
            self.worker = None
        for segment in self.segments:
            segment.close()
            segment.unlink()
        self.segments = []

    def echo_array(self, array: Any) -> Call:
        import numpy as np

        if self.worker is None or self.size != array.nbytes:
            self._start_for(array.nbytes)
        inbound, outbound = self.segments
        conn = self.conn

        def call() -> Any:
            view = np.ndarray(array.shape, dtype=array.dtype, buffer=inbound.buf)
            view[...] = array
            del view
            conn.send((array.dtype.str, array.shape))
            if not conn.poll(TIMEOUT):
                raise TimeoutError(f"the shared-memory worker did not answer in {TIMEOUT:.0f} s")
            dtype, shape = conn.recv()
            result = np.ndarray(shape, dtype=dtype, buffer=outbound.buf)
            try:
                return result.copy()  # the host's own array
            finally:
                del result

        return call

    def noop(self) -> Call:
        raise NotAvailable(ONLY_ARRAYS)

    def small_args(self) -> Call:
        raise NotAvailable(ONLY_ARRAYS)

    def echo_bytes(self, payload: bytes) -> Call:
        raise NotAvailable(ONLY_ARRAYS)

    def method_call(self) -> Call:
        raise NotAvailable(ONLY_ARRAYS)

    def thread_caller(self) -> Call:
        raise NotAvailable(ONLY_ARRAYS)

    def generator(self, n: int) -> Any:
        raise NotAvailable(ONLY_ARRAYS)

    def cold_start(self, numpy: bool) -> float:
        raise NotAvailable(ONLY_ARRAYS)
