"""Raw pyzmq DEALER/ROUTER with msgpack over ipc: the floor of mvbridge's design.

Two variants: payloads packed inside the msgpack message (copied), and payloads in their own
frames sent and received without a copy (``copy=False``). One socket per host thread.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import zmq

from ..procs import WORKERS_DIR, Worker, ipc_dir
from .base import SMALL_ARGS, Call, NotAvailable, OwnedWorker, System, time_script

TIMEOUT_MS = 30_000  # no reply within this raises zmq.Again (the slowest call takes ~2 s)
BATCH = 1024  # generator items per round trip


def _packb(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpackb(data: Any) -> Any:
    return msgpack.unpackb(data, raw=False)


class RawZmq(OwnedWorker, System):
    key = "zmq"
    label = "raw pyzmq DEALER/ROUTER + msgpack, ipc"
    notes = "payloads inside the msgpack message; one socket per host thread"
    zero_copy = False

    def __init__(self) -> None:
        self.context: zmq.Context | None = None
        self.worker: Worker | None = None
        self.sockets: list[zmq.Socket] = []
        self._lock = threading.Lock()
        self._dir = Path()
        self.address = ""

    # -- lifecycle ------------------------------------------------------------------------------
    curve = False

    def _args(self, address: str, numpy: bool) -> list[str]:
        args = ["--address", address]
        if self.curve:
            args += ["--curve-secret", self._server_secret.decode()]
        if numpy:
            args.append("--numpy")
        if self.zero_copy:
            args.append("--zero-copy")
        return args

    def start(self) -> None:
        self.context = zmq.Context()
        self._dir = ipc_dir()
        self.address = self._address()
        self.worker = Worker("zmq_worker.py", self._args(self.address, numpy=True))
        self.socket = self._socket(self.address)

    def _address(self) -> str:
        return f"ipc://{self._dir}/worker"

    def _socket(self, address: str) -> zmq.Socket:
        assert self.context is not None
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        if self.curve:
            socket.curve_serverkey = self._server_public
            socket.curve_publickey, socket.curve_secretkey = zmq.curve_keypair()
        socket.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
        socket.connect(address)
        with self._lock:
            self.sockets.append(socket)
        return socket

    def stop(self) -> None:
        with self._lock:
            sockets, self.sockets = self.sockets, []
        for socket in sockets:
            socket.close(linger=0)
        if self.context is not None:
            self.context.term()
            self.context = None
        self.stop_worker()

    # -- one request ----------------------------------------------------------------------------
    def _caller(self, socket: zmq.Socket, op: str, args: Any) -> Call:
        if self.zero_copy:
            send_multipart, recv_multipart = socket.send_multipart, socket.recv_multipart

            def call_zero_copy() -> Any:
                send_multipart([_packb([op, args])], copy=False)
                return _unpackb(recv_multipart(copy=False)[0].buffer)

            return call_zero_copy
        send, recv = socket.send, socket.recv

        def call() -> Any:
            send(_packb([op, args]))
            return _unpackb(recv())

        return call

    def _request(self, op: str, args: Any) -> Any:
        return self._caller(self.socket, op, args)()

    # -- measures -------------------------------------------------------------------------------
    def noop(self) -> Call:
        return self._caller(self.socket, "noop", None)

    def small_args(self) -> Call:
        return self._caller(self.socket, "echo_args", SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        if not self.zero_copy:
            return self._caller(self.socket, "echo", payload)
        socket = self.socket
        head = ["echo", None]

        def call() -> Any:
            socket.send_multipart([_packb(head), payload], copy=False)
            return socket.recv_multipart(copy=False)[1].buffer

        return call

    def echo_array(self, array: Any) -> Call:
        import numpy as np

        socket = self.socket
        if self.zero_copy:

            def call_zero_copy() -> Any:
                head = ["array", [array.dtype.str, list(array.shape)]]
                socket.send_multipart([_packb(head), array], copy=False)
                frames = socket.recv_multipart(copy=False)
                dtype, shape = _unpackb(frames[0].buffer)
                return np.frombuffer(frames[1].buffer, dtype=dtype).reshape(shape)

            return call_zero_copy

        def call() -> Any:
            socket.send(_packb(["array", [array.dtype.str, list(array.shape), array.tobytes()]]))
            dtype, shape, data = _unpackb(socket.recv())
            return np.frombuffer(data, dtype=dtype).reshape(shape)

        return call

    def method_call(self) -> Call:
        oid = self._request("new", None)
        return self._caller(self.socket, "call", [oid, "m", [1]])

    def thread_caller(self) -> Call:
        return self._caller(self._socket(self.address), "noop", None)

    def close_thread_caller(self, caller: Call) -> None:
        pass  # its socket is closed by stop()

    def generator(self, n: int) -> Iterator[Any]:
        gid = self._request("gen", n)
        while True:
            items = self._request("next", [gid, BATCH])
            yield from items
            if len(items) < BATCH:
                return

    def next_per_item(self, n: int) -> Call:
        gid = self._request("gen", n)
        fetch = self._caller(self.socket, "next", [gid, 1])
        return lambda: fetch()[0]

    def startup(self) -> tuple[float, float]:
        return time_script([sys.executable, str(WORKERS_DIR / "startup_raw.py")])

    def cold_start(self, numpy: bool) -> float:
        directory = ipc_dir()
        address = f"ipc://{directory}/cold"
        worker = None
        socket = None
        try:
            started = time.perf_counter()
            worker = Worker("zmq_worker.py", self._args(address, numpy))
            socket = self._socket(address)
            self._caller(socket, "noop", None)()
            elapsed = time.perf_counter() - started
            self._caller(socket, "stop", None)()
            return elapsed
        finally:
            if socket is not None:
                with self._lock:
                    self.sockets.remove(socket)
                socket.close(linger=0)
            if worker is not None:
                worker.stop(asked=True)
            shutil.rmtree(directory, ignore_errors=True)


class RawZmqZeroCopy(RawZmq):
    key = "zmq_zc"
    label = "raw pyzmq, zero-copy frames"
    notes = "payloads in their own frames, sent and received with copy=False"
    zero_copy = True


class RawZmqCurve(RawZmq):
    key = "zmq_curve"
    label = "raw pyzmq DEALER/ROUTER + msgpack, TCP + CURVE"
    notes = "the service row's baseline: TCP loopback with CurveZMQ, a socket per host thread"
    curve = True

    def start(self) -> None:
        self._server_public, self._server_secret = zmq.curve_keypair()
        super().start()

    def _address(self) -> str:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"tcp://127.0.0.1:{port}"

    def cold_start(self, numpy: bool) -> float:
        raise NotAvailable("measured over ipc (the local rows)")

    def client_caller(self) -> Call:
        return self._caller(self._socket(self.address), "noop", None)  # a connection each
