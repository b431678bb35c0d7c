"""zerorpc: msgpack over ZeroMQ with gevent; a client per host thread; no remote objects."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..procs import Worker, ipc_dir
from .base import Call, NotAvailable, OwnedWorker, RemoteFunctions, System, echo_array_as_bytes

TIMEOUT = 120


class Zerorpc(OwnedWorker, RemoteFunctions, System):
    key = "zerorpc"
    label = "zerorpc"
    notes = "defaults (heartbeat 5 s); arrays as (dtype, shape, bytes); a client per host thread"

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.clients: list[Any] = []
        self._thread_clients: dict[int, Any] = {}
        self._dir = Path()
        self._lock = threading.Lock()

    def cannot_run(self) -> str | None:
        try:
            import gevent  # noqa: F401
            import zerorpc  # noqa: F401
        except Exception as exc:  # gevent may fail to load on a new Python, not only ImportError
            return f"cannot import zerorpc/gevent: {type(exc).__name__}: {exc}"
        return None

    def _client(self, address: str) -> Any:
        import zerorpc

        client = zerorpc.Client(timeout=TIMEOUT)
        client.connect(address)
        with self._lock:
            self.clients.append(client)
        return client

    def start(self) -> None:
        self._dir = ipc_dir()
        self.address = f"ipc://{self._dir}/worker"
        self.worker = Worker("zerorpc_worker.py", ["--address", self.address, "--numpy"])
        self.client = self._client(self.address)

    def stop(self) -> None:
        with self._lock:
            clients, self.clients = self.clients, []
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        self.stop_worker()

    def remote(self) -> Any:
        return self.client

    def echo_array(self, array: Any) -> Call:
        return echo_array_as_bytes(self.client.echo, array)

    def method_call(self) -> Call:
        raise NotAvailable("no remote objects: zerorpc calls exposed methods of one object")

    def thread_caller(self) -> Call:
        client = self._client(self.address)  # gevent gives each thread its own hub
        self._thread_clients[threading.get_ident()] = client
        return client.noop

    def close_thread_caller(self, caller: Call) -> None:
        client = self._thread_clients.pop(threading.get_ident(), None)
        if client is not None:
            with self._lock:
                if client in self.clients:
                    self.clients.remove(client)
            client.close()

    def generator(self, n: int) -> Iterator[Any]:
        stream = self.client.count_up(n)
        try:
            for item in stream:  # noqa: UP028  ("yield from" would close the stream on close())
                yield item
        finally:
            # An abandoned zerorpc stream left the next call on this client hanging until
            # "LostRemote after 10s heartbeat": drain it (outside the timing) instead.
            for _ in stream:
                pass

    def cold_start(self, numpy: bool) -> float:
        directory = ipc_dir()
        address = f"ipc://{directory}/cold"
        worker = None
        client = None
        try:
            started = time.perf_counter()
            args = ["--address", address] + (["--numpy"] if numpy else [])
            worker = Worker("zerorpc_worker.py", args)
            client = self._client(address)
            client.noop()
            return time.perf_counter() - started
        finally:
            if client is not None:
                with self._lock:
                    self.clients.remove(client)
                client.close()
            if worker is not None:
                worker.stop()
            shutil.rmtree(directory, ignore_errors=True)
