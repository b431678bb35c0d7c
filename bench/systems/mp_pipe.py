"""multiprocessing Pipe with pickle protocol 5 (out-of-band buffers) to a worker process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any

from ..procs import Worker
from ..workers.pipewire import receive, send
from .base import SMALL_ARGS, Call, System

THREADS = 4  # extra pipes made at start, one per host thread of the 4-thread measure
BATCH = 1024
TIMEOUT = 120.0


class PipeWorker:
    """A pipe worker process and the host ends of its pipes."""

    def __init__(self, pipes: int, numpy: bool) -> None:
        pairs = [Pipe() for _ in range(pipes)]
        self.conns: list[Connection] = [host for host, _ in pairs]
        theirs = [worker for _, worker in pairs]
        fds = ",".join(str(conn.fileno()) for conn in theirs)
        args = ["--fds", fds] + (["--numpy"] if numpy else [])
        try:
            fds_tuple = tuple(conn.fileno() for conn in theirs)
            self.process = Worker("pipe_worker.py", args, pass_fds=fds_tuple, wait_ready=False)
        finally:
            for conn in theirs:
                conn.close()

    def stop(self) -> None:
        try:
            send(self.conns[0], ("stop", None))
        except OSError:
            pass
        for conn in self.conns:
            conn.close()
        self.process.stop(asked=True)


def _request(conn: Connection, op: str, args: Any) -> Any:
    send(conn, (op, args))
    if not conn.poll(TIMEOUT):
        raise TimeoutError(f"the pipe worker did not answer {op!r} within {TIMEOUT:.0f} s")
    return receive(conn)


def _caller(conn: Connection, op: str, args: Any) -> Call:
    return lambda: _request(conn, op, args)


class MpPipe(System):
    key = "mp_pipe"
    label = "multiprocessing Pipe + pickle 5"
    notes = "out-of-band pickle buffers; one pipe per host thread"

    def __init__(self) -> None:
        self.worker: PipeWorker | None = None
        self._spare: list[Connection] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.worker = PipeWorker(1 + THREADS, numpy=True)
        self.conn = self.worker.conns[0]
        self._spare = list(self.worker.conns[1:])

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def noop(self) -> Call:
        return _caller(self.conn, "noop", None)

    def small_args(self) -> Call:
        return _caller(self.conn, "echo_args", SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        return _caller(self.conn, "echo", payload)

    def echo_array(self, array: Any) -> Call:
        return _caller(self.conn, "echo", array)

    def method_call(self) -> Call:
        oid = _request(self.conn, "new", None)
        return _caller(self.conn, "call", [oid, "m", [1]])

    def thread_caller(self) -> Call:
        with self._lock:
            conn = self._spare.pop()
        return _caller(conn, "noop", None)

    def generator(self, n: int) -> Iterator[Any]:
        gid = _request(self.conn, "gen", n)
        while True:
            items = _request(self.conn, "next", [gid, BATCH])
            yield from items
            if len(items) < BATCH:
                return

    def cold_start(self, numpy: bool) -> float:
        started = time.perf_counter()
        worker = PipeWorker(1, numpy)
        try:
            _request(worker.conns[0], "noop", None)
            return time.perf_counter() - started
        finally:
            worker.stop()
