"""RPyC 6: a ThreadedServer on a unix socket, one shared connection (as its docs show)."""

from __future__ import annotations

import pickle
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..procs import Worker, ipc_dir
from .base import Call, OwnedWorker, RemoteFunctions, System

CONFIG = {"allow_public_attrs": True, "sync_request_timeout": 300}  # a 100 MB echo takes ~60 s


class Rpyc(OwnedWorker, RemoteFunctions, System):
    key = "rpyc"
    label = "RPyC"
    notes = (
        "defaults kept: zlib on frames over 3 kB, dicts/lists passed by reference; arrays as "
        "pickled bytes; obj.m(x) is a getattr then a call"
    )

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.conn: Any = None
        self._dir = Path()
        self._lock = threading.Lock()

    def cannot_run(self) -> str | None:
        try:
            import rpyc  # noqa: F401
        except ImportError as exc:
            return f"not installed: {exc}"
        return None

    def _connect(self, path: str) -> Any:
        import rpyc

        return rpyc.utils.factory.unix_connect(path, config=CONFIG)

    def start(self) -> None:
        self._dir = ipc_dir()
        path = str(self._dir / "worker.sock")
        self.worker = Worker("rpyc_worker.py", ["--address", path, "--numpy"])
        self.conn = self._connect(path)
        self.root = self.conn.root

    def stop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
        self.stop_worker()

    def remote(self) -> Any:
        return self.root

    def echo_array(self, array: Any) -> Call:
        echo_pickled = self.root.echo_pickled
        return lambda: pickle.loads(echo_pickled(pickle.dumps(array, protocol=5)))

    def method_call(self) -> Call:
        counter = self.root.counter()
        return lambda: counter.m(1)

    def thread_caller(self) -> Call:
        return self.root.noop  # the connection is shared by the threads

    def generator(self, n: int) -> Iterable[Any]:
        return self.root.count_up(n)

    def cold_start(self, numpy: bool) -> float:
        directory = ipc_dir()
        path = str(directory / "cold.sock")
        worker = None
        conn = None
        try:
            started = time.perf_counter()
            worker = Worker("rpyc_worker.py", ["--address", path] + (["--numpy"] if numpy else []))
            conn = self._connect(path)
            conn.root.noop()
            return time.perf_counter() - started
        finally:
            if conn is not None:
                conn.close()
            if worker is not None:
                worker.stop()
            shutil.rmtree(directory, ignore_errors=True)
