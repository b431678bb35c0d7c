"""A session with a worker process of ours, over ipc sockets in a private folder.

Internal. ``supervisor.start_local`` starts the worker and makes the folder (``mkdtemp``, mode
0700, so only this user connects). Each host
thread's channel is a direct socket pair (no thread in between, which the local figures of
``bench/`` depend on); reverse channels arrive on one ROUTER served by a ``mux.Mux``, started
only once the worker has been given a host object. The worker's liveness is its process.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from ..core import protocol as P
from ..core import sharedmem
from ..errors import WorkerStartError
from .links import Link
from .mux import Mux
from .supervisor import WorkerProcess, describe_exit

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostSession


class LocalLink(Link):
    """Links to a worker started by ``supervisor.start_local`` in ``ipc_dir``."""

    def __init__(
        self, env_name: str, interpreter: str, process: WorkerProcess, ipc_dir: Path
    ) -> None:
        from .client import context

        self.env_name = env_name
        self.interpreter = interpreter
        self.ipc_dir = ipc_dir
        self.address = f"ipc://{self.ipc_dir}/ctl"
        self._callbacks = f"ipc://{self.ipc_dir}/cb"
        self._context = context()
        self._mux: Mux | None = None
        self._mux_lock = threading.Lock()
        self._session: HostSession | None = None
        self._closed = False
        self.process = process
        self.pid = self.process.pid
        self.control_socket = self._context.socket(zmq.DEALER)
        # The worker binds after we connect; ZeroMQ retries a failed connect only after
        # RECONNECT_IVL (100 ms by default), which was most of a cold start.
        self.control_socket.setsockopt(zmq.RECONNECT_IVL, 2)
        self.control_socket.connect(self.address)

    def hello_extras(self) -> dict[str, Any]:
        # The worker shares this machine's memory (large arrays go through it) and reaches our
        # callback ROUTER in the same private folder.
        return {"shared_memory": sharedmem.default_dir(), "callbacks": self._callbacks}

    def check_starting(self) -> None:
        process = self.process
        assert process is not None
        code = process.exit_code()
        if code is None:
            return
        tail = process.stderr_text()
        raise WorkerStartError(
            f"the worker of env {self.env_name!r} ({self.interpreter}) {describe_exit(code)} "
            f"before it was ready; its stderr ends with:\n{tail.rstrip()}",
            env=self.env_name,
            exit_code=code,
            stderr_tail=tail,
        )

    def start_timeout_error(self, timeout: float) -> WorkerStartError:
        assert self.process is not None
        return WorkerStartError(
            f"the worker of env {self.env_name!r} (pid {self.pid}) did not answer the "
            f"handshake within {timeout:.0f} s",
            env=self.env_name,
            exit_code=None,
            stderr_tail=self.process.stderr_text(0.1),
        )

    def attach(self, session: HostSession) -> None:
        self._session = session

    def channel_socket(self, cid: int, endpoint: str | None) -> zmq.Socket:
        socket = self._context.socket(zmq.DEALER)
        socket.connect(endpoint)
        return socket

    def start_callbacks(self) -> None:
        with self._mux_lock:
            if self._mux is not None or self._closed:
                return
            router = self._context.socket(zmq.ROUTER)
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.bind(self._callbacks)
            assert self._session is not None
            self._mux = Mux(
                self._context, router, self.env_name, on_reverse=self._session.serve_reverse
            )
            self._mux.start()

    def reverse_socket(self, route: bytes) -> zmq.Socket:
        assert self._mux is not None
        return self._mux.connect(route)

    def lost(self) -> tuple[str, int | None] | None:
        assert self.process is not None
        if self.process.running():
            return None
        code = self.process.exit_code()
        return None if code is None else (describe_exit(code), code)

    def describe(self) -> str:
        return f"the worker of env {self.env_name!r}"

    def next_steps(self) -> str:
        return "the next call starts a new worker"

    def end(self, said_goodbye: bool) -> int | None:
        process = self.process
        assert process is not None
        if not said_goodbye and process.exit_code() is None:
            with contextlib.suppress(zmq.ZMQError):
                self.control_socket.send_multipart(
                    P.control_message(P.SHUTDOWN, 0), flags=zmq.NOBLOCK
                )
        return process.stop()

    def close(self) -> None:
        with self._mux_lock:
            if self._closed:
                return
            self._closed = True
            mux, self._mux = self._mux, None
        self.control_socket.close(linger=0)
        if mux is not None:
            mux.stop()
        assert self.process is not None
        self.process.stop()
        shutil.rmtree(self.ipc_dir, ignore_errors=True)
