"""The host's connection to one worker: handshake, one channel per thread, liveness, deadlines.

Internal. Only this module (and ``workers/server.py``) opens sockets; ZeroMQ and process
failures become mvbridge errors here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import zmq

from ..core import dists, hidden, sharedmem
from ..core import protocol as P
from ..core.peer import Channel, Session, receive_message
from ..errors import (
    CallTimeoutError,
    MVBridgeError,
    ProtocolError,
    StaleReferenceError,
    WorkerDiedError,
    WorkerStartError,
)
from .proxy import RemoteModule
from .supervisor import WorkerProcess, describe_exit

logger = logging.getLogger(__name__)

POLL_MS = 100  # how often a waiting thread checks that the worker still lives
CONTROL_TIMEOUT = 10.0

_context_lock = threading.Lock()
_context: zmq.Context | None = None
_deadlines = threading.local()


def context() -> zmq.Context:
    """The process-wide ZeroMQ context (LINGER 0: closing never waits for the peer)."""
    global _context
    with _context_lock:
        if _context is None or _context.closed:
            _context = zmq.Context()
            _context.setsockopt(zmq.LINGER, 0)
        return _context


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Calls made by this thread inside the block raise ``CallTimeoutError`` after ``seconds``.

    The worker may still be running the call; the channel that waited is dropped, so its late
    reply can never be mistaken for another call's.
    """
    previous = getattr(_deadlines, "value", None)
    _deadlines.value = time.monotonic() + seconds
    if previous is not None:
        _deadlines.value = min(previous, _deadlines.value)
    try:
        yield
    finally:
        _deadlines.value = previous


class WorkerModuleName:
    """Names a module of the worker (e.g. mvbridge's own ``ops``) as a request target."""

    def __init__(self, name: str) -> None:
        self.name = name


class HostChannel(Channel):
    """A channel used by one host thread."""

    reraise_base_exceptions = True

    def __init__(self, session: HostSession, socket: zmq.Socket, cid: int) -> None:
        super().__init__(session, socket)
        self.cid = cid
        self.thread = weakref.ref(threading.current_thread())
        self.broken = False
        self.deadline: float | None = None

    def request(self, op: str, target: Any, operands: list[Any]) -> Any:
        if self.depth == 0:
            session = self.session
            assert isinstance(session, HostSession)
            chosen = getattr(_deadlines, "value", None)
            if session.call_timeout is not None:
                own = time.monotonic() + session.call_timeout
                chosen = own if chosen is None else min(chosen, own)
            self.deadline = chosen
        return super().request(op, target, operands)

    def send(self, frames: list[Any]) -> None:
        try:
            self.socket.send_multipart(frames, copy=len(frames) == 1)
        except zmq.ZMQError as exc:
            self.broken = True
            raise WorkerDiedError(
                f"could not send to the worker of env {self.session.env_name!r}: {exc}",  # type: ignore[attr-defined]
                env=self.session.env_name,  # type: ignore[attr-defined]
            ) from exc

    def receive(self) -> list[Any]:
        socket = self.socket
        session = self.session
        assert isinstance(session, HostSession)
        while True:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.broken = True
                    raise CallTimeoutError(
                        f"a call to env {session.env_name!r} passed its deadline; the worker "
                        "may still be running it (its reply will be discarded)"
                    )
                socket.setsockopt(zmq.RCVTIMEO, max(1, min(POLL_MS, int(left * 1000) + 1)))
            try:
                # A blocking receive with RCVTIMEO (set when the channel opened): one call on
                # the fast path; every POLL_MS without a message, look at the worker's health.
                return receive_message(socket)
            except zmq.Again:
                pass
            except zmq.ZMQError as exc:
                self.broken = True
                if session.death is not None:
                    raise WorkerDiedError(session.death, env=session.env_name) from exc
                raise session.died_error(f"its connection failed ({exc})") from exc
            try:
                session.check_alive()
            except WorkerDiedError:
                self.broken = True
                self.socket.close(linger=0)
                raise


class HostSession(Session):
    """The host's side of the session with one worker process (one generation of it)."""

    def __init__(
        self,
        env_name: str,
        process: WorkerProcess | None,
        control_endpoint: str,
        call_timeout: float | None,
        module_proxy: Any,
        start_timeout: float,
    ) -> None:
        self.env_name = env_name
        self.process = process
        self.call_timeout = call_timeout
        self._module_proxy = module_proxy
        self._local = threading.local()
        self._channels: list[HostChannel] = []
        self._channels_lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._control_id = 0
        self.death: str | None = None
        self.shut_down = False  # stopped on purpose (env.shutdown), not died
        self.control_socket = context().socket(zmq.DEALER)
        # The worker binds after we connect; ZeroMQ retries a failed connect only after
        # RECONNECT_IVL (100 ms by default), which was most of a cold start.
        self.control_socket.setsockopt(zmq.RECONNECT_IVL, 2)
        self.control_socket.connect(control_endpoint)
        self.facts = self._hello(start_timeout)
        super().__init__(self.facts["python_minor"])
        self.use_shared_memory(self.facts.get("shared_memory"))

    # -- handshake and control ----------------------------------------------------------------
    def _hello(self, timeout: float) -> dict[str, Any]:
        payload = {
            "protocol": P.PROTOCOL_VERSION,
            "python_minor": dists.PYTHON_VERSION,
            "cloudpickle": hidden.cloudpickle_version(),
            "pid": os.getpid(),
            # A local worker shares this machine's memory: large arrays go through it.
            "shared_memory": sharedmem.default_dir() if self.process is not None else None,
        }
        try:
            return self.control(P.HELLO, payload, timeout, starting=True)
        except BaseException:
            self.control_socket.close(linger=0)
            raise

    def control(
        self,
        kind: int,
        payload: Any = None,
        timeout: float = CONTROL_TIMEOUT,
        starting: bool = False,
    ) -> Any:
        """One control request and its reply."""
        with self._control_lock:
            self._control_id += 1
            rid = self._control_id
            socket = self.control_socket
            socket.send_multipart(P.control_message(kind, rid, payload))
            give_up = time.monotonic() + timeout
            while True:
                if socket.poll(POLL_MS):
                    reply_kind, reply_id, reply = P.unpack(socket.recv())
                    if reply_id != rid and reply_id != 0:
                        continue
                    if reply_kind == P.OK:
                        return reply
                    message = f"the worker of env {self.env_name!r} refused: {reply}"
                    if starting:
                        raise WorkerStartError(
                            message, env=self.env_name, exit_code=None, stderr_tail=""
                        )
                    raise ProtocolError(message, env=self.env_name)
                if self.process is not None and self.process.exit_code() is not None:
                    if starting:
                        raise self._start_error()
                    self.check_alive()
                if time.monotonic() > give_up:
                    if starting:
                        raise WorkerStartError(
                            f"the worker of env {self.env_name!r} (pid {self._pid()}) did not "
                            f"answer the handshake within {timeout:.0f} s",
                            env=self.env_name,
                            exit_code=None,
                            stderr_tail=self.process.stderr_text(0.1) if self.process else "",
                        )
                    raise WorkerDiedError(
                        f"the worker of env {self.env_name!r} did not answer a control "
                        f"request within {timeout:.0f} s",
                        env=self.env_name,
                        pid=self._pid(),
                    )

    def _pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _start_error(self) -> WorkerStartError:
        assert self.process is not None
        code = self.process.exit_code()
        tail = self.process.stderr_text()
        return WorkerStartError(
            f"the worker of env {self.env_name!r} ({self.process.python}) "
            f"{describe_exit(code)} before it was ready; its stderr ends with:\n{tail.rstrip()}",
            env=self.env_name,
            exit_code=code,
            stderr_tail=tail,
        )

    # -- channels -------------------------------------------------------------------------------
    def channel(self) -> Channel:
        channel = getattr(self._local, "channel", None)
        if channel is not None and not channel.broken:
            return channel
        if self.closed:
            raise self.stale_error()
        if channel is not None:
            self._drop_channel(channel)
        cid, endpoint = self.control(P.OPEN)
        socket = context().socket(zmq.DEALER)
        socket.setsockopt(zmq.RCVTIMEO, POLL_MS)
        socket.connect(endpoint)
        channel = HostChannel(self, socket, cid)
        self._local.channel = channel
        with self._channels_lock:
            self._sweep_dead_threads()
            self._channels.append(channel)
        return channel

    def _sweep_dead_threads(self) -> None:
        for channel in list(self._channels):
            thread = channel.thread()
            if thread is None or not thread.is_alive():
                self._channels.remove(channel)
                self._close_channel(channel)

    def _drop_channel(self, channel: HostChannel) -> None:
        with self._channels_lock:
            if channel in self._channels:
                self._channels.remove(channel)
        self._close_channel(channel)

    def _close_channel(self, channel: HostChannel) -> None:
        channel.socket.close(linger=0)
        if not self.closed:
            try:
                self.control(P.CLOSE, channel.cid)
            except MVBridgeError:
                pass

    def calls_in_flight(self) -> int:
        with self._channels_lock:
            return sum(1 for channel in self._channels if channel.depth)

    # -- liveness -------------------------------------------------------------------------------
    def check_alive(self) -> None:
        """Raise ``WorkerDiedError`` if the worker has exited or this session was shut down."""
        if self.death is not None:
            raise WorkerDiedError(self.death, env=self.env_name, pid=self._pid())
        if self.process is not None:
            code = self.process.exit_code()
            if code is not None:
                raise self.died_error(describe_exit(code), code)

    def usable(self) -> bool:
        """True while this session is open and its worker process runs."""
        if self.closed:
            return False
        if self.process is not None and self.process.exit_code() is not None:
            self.died_error(describe_exit(self.process.exit_code()), self.process.exit_code())
            return False
        return True

    def died_error(self, how: str, code: int | None = None) -> WorkerDiedError:
        in_flight = self.calls_in_flight()
        python = self.facts.get("python", "?")
        self.death = (
            f"the worker of env {self.env_name!r} (pid {self._pid()}, Python {python}) {how} "
            f"with {in_flight} call{'s' if in_flight != 1 else ''} in flight; the next call "
            "starts a new worker"
        )
        self.closed = True
        return WorkerDiedError(
            self.death,
            env=self.env_name,
            pid=self._pid(),
            exit_code=code,
            calls_in_flight=in_flight,
        )

    def stale_error(self) -> StaleReferenceError:
        return StaleReferenceError(
            f"this proxy belongs to a worker of env {self.env_name!r} that has gone "
            f"({self.death or 'it was shut down'}); get the object again from the new worker"
        )

    def request(self, op: str, target: Any, *operands: Any) -> Any:
        if self.closed:
            raise self.stale_error()
        return self.channel().request(op, target, list(operands))

    # -- the codec's questions -------------------------------------------------------------------
    def module_spec(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is RemoteModule and obj._mvb_env.current_session() is self:
            return ["m", obj.__name__]
        if cls is WorkerModuleName:
            return ["m", obj.name]
        return None

    def module_proxy(self, name: str) -> Any:
        return self._module_proxy(name)

    def peer_description(self) -> str:
        return f"env {self.env_name!r} (Python {self.facts.get('python', '?')})"

    # -- shutdown ------------------------------------------------------------------------------
    def shutdown(self) -> int | None:
        """Stop the worker (SHUTDOWN, then terminate, then kill) and close every socket we can.

        Threads still waiting on a call notice within ``POLL_MS`` and raise ``WorkerDiedError``.
        """
        if self.death is None:
            self.death = f"env {self.env_name!r} was shut down"
            self.shut_down = True
        already_closed = self.closed
        self.closed = True
        code = None
        if self.process is not None:
            if not already_closed and self.process.exit_code() is None:
                with contextlib.suppress(zmq.ZMQError):
                    self.control_socket.send_multipart(
                        P.control_message(P.SHUTDOWN, 0), flags=zmq.NOBLOCK
                    )
            code = self.process.stop()
        with self._channels_lock:
            for channel in list(self._channels):
                if not channel.depth:  # a busy channel is closed by its own thread
                    channel.socket.close(linger=0)
                    self._channels.remove(channel)
        self.control_socket.close(linger=0)
        self.close()  # the object table and shared-memory segments, as any session ends
        return code

    def statistics(self) -> dict[str, Any]:
        return self.control(P.STATS)
