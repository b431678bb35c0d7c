"""Pyro5: a Daemon on a unix socket, msgpack serializer, one proxy per host thread."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..procs import Worker, ipc_dir
from .base import Call, OwnedWorker, RemoteFunctions, System, echo_array_as_bytes

SERIALIZER = "msgpack"  # carries bytes as they are (serpent, the default, base64-encodes them)
TIMEOUT = 120.0


class Pyro5System(OwnedWorker, RemoteFunctions, System):
    key = "pyro5"
    label = "Pyro5"
    notes = (
        "msgpack serializer; arrays as (dtype, shape, bytes); a proxy per host thread; "
        "generators stream one item per round trip"
    )

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.proxies: list[Any] = []
        self._dir = Path()

    def cannot_run(self) -> str | None:
        try:
            import Pyro5.api  # noqa: F401
        except ImportError as exc:
            return f"not installed: {exc}"
        return None

    def _proxy(self, uri: str) -> Any:
        import Pyro5.api

        proxy = Pyro5.api.Proxy(uri)
        proxy._pyroSerializer = SERIALIZER
        proxy._pyroTimeout = TIMEOUT
        self.proxies.append(proxy)
        return proxy

    def start(self) -> None:
        import Pyro5.api

        Pyro5.config.SERIALIZER = SERIALIZER  # also for the proxies Pyro5 makes for us
        Pyro5.config.COMMTIMEOUT = TIMEOUT
        self._dir = ipc_dir()
        path = str(self._dir / "worker.sock")
        self.worker = Worker("pyro5_worker.py", ["--address", path, "--numpy"])
        self.uri = self.worker.ready_line
        self.proxy = self._proxy(self.uri)

    def stop(self) -> None:
        for proxy in self.proxies:
            try:
                proxy._pyroClaimOwnership()
                proxy._pyroRelease()
            except Exception:
                pass
        self.proxies = []
        self.stop_worker()

    def remote(self) -> Any:
        return self.proxy

    def echo_array(self, array: Any) -> Call:
        return echo_array_as_bytes(self.proxy.echo, array)

    def method_call(self) -> Call:
        counter = self.proxy.counter()
        self.proxies.append(counter)
        return lambda: counter.m(1)

    def thread_caller(self) -> Call:
        return self._proxy(self.uri).noop

    def generator(self, n: int) -> Iterable[Any]:
        return self.proxy.count_up(n)

    def cold_start(self, numpy: bool) -> float:
        directory = ipc_dir()
        path = str(directory / "cold.sock")
        worker = None
        try:
            started = time.perf_counter()
            worker = Worker("pyro5_worker.py", ["--address", path] + (["--numpy"] if numpy else []))
            import Pyro5.api

            with Pyro5.api.Proxy(worker.ready_line) as proxy:
                proxy._pyroSerializer = SERIALIZER
                proxy.noop()
            return time.perf_counter() - started
        finally:
            if worker is not None:
                worker.stop()
            shutil.rmtree(directory, ignore_errors=True)
