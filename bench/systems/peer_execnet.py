"""execnet: a popen gateway running the venv's Python; requests over channels, no remote objects."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from ..procs import WORKERS_DIR
from ..workers import execnet_remote
from .base import SMALL_ARGS, Call, NotAvailable, System

TIMEOUT = 120.0


class Execnet(System):
    key = "execnet"
    label = "execnet"
    notes = (
        "popen gateway; arrays as (dtype, shape, bytes); a channel per host thread; "
        "generators pushed item by item on their own channel"
    )

    def __init__(self) -> None:
        self.gateways: list[Any] = []
        self.channels: list[Any] = []
        self._lock = threading.Lock()

    def cannot_run(self) -> str | None:
        try:
            import execnet  # noqa: F401
        except ImportError as exc:
            return f"not installed: {exc}"
        return None

    def _gateway(self) -> Any:
        import sys

        import execnet

        gateway = execnet.makegateway(f"popen//python={sys.executable}")
        with self._lock:
            self.gateways.append(gateway)
        return gateway

    def _channel(self, gateway: Any, numpy: bool, mode: str = "serve", arg: Any = None) -> Any:
        channel = gateway.remote_exec(execnet_remote)
        channel.send([str(WORKERS_DIR), numpy, mode, arg])
        with self._lock:
            self.channels.append(channel)
        return channel

    def start(self) -> None:
        self.gateway = self._gateway()
        self.channel = self._channel(self.gateway, numpy=True)

    def stop(self) -> None:
        with self._lock:
            channels, self.channels = self.channels, []
            gateways, self.gateways = self.gateways, []
        for channel in channels:
            try:
                if not channel.isclosed():
                    channel.send(None)
                channel.close()
            except Exception:
                pass
        for gateway in gateways:
            try:
                gateway.exit()
                gateway.join(timeout=3.0)
            except Exception:
                pass

    def _caller(self, channel: Any, op: str, args: Any) -> Call:
        send, receive = channel.send, channel.receive

        def call() -> Any:
            send((op, args))
            return receive(TIMEOUT)

        return call

    def noop(self) -> Call:
        return self._caller(self.channel, "noop", None)

    def small_args(self) -> Call:
        return self._caller(self.channel, "echo_args", SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        return self._caller(self.channel, "echo", payload)

    def echo_array(self, array: Any) -> Call:
        import numpy as np

        channel = self.channel

        def call() -> Any:
            channel.send(("array", (array.dtype.str, array.shape, array.tobytes())))
            dtype, shape, data = channel.receive(TIMEOUT)
            return np.frombuffer(data, dtype=dtype).reshape(shape)

        return call

    def method_call(self) -> Call:
        raise NotAvailable("no remote objects: execnet channels carry plain data only")

    def thread_caller(self) -> Call:
        return self._caller(self._channel(self.gateway, numpy=False), "noop", None)

    def generator(self, n: int) -> Iterator[Any]:
        channel = self._channel(self.gateway, numpy=False, mode="stream", arg=n)
        try:
            for _ in range(n):
                yield channel.receive(TIMEOUT)
        finally:
            channel.close()

    def cold_start(self, numpy: bool) -> float:
        started = time.perf_counter()
        gateway = self._gateway()
        try:
            channel = self._channel(gateway, numpy)
            self._caller(channel, "noop", None)()
            return time.perf_counter() - started
        finally:
            with self._lock:
                self.gateways.remove(gateway)
                self.channels = [c for c in self.channels if c.gateway is not gateway]
            gateway.exit()
            gateway.join(timeout=3.0)
