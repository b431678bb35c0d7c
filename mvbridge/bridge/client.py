"""The host's session with one worker: handshake, one channel per thread, callbacks, deadlines.

Internal. The session does not know how it reaches its worker: a *link* does
(``local_link.LocalLink`` for a worker process of ours, ``service_link.ServiceLink`` for a
``mvbridge spawn`` service). Both hand out one DEALER per channel, so the channel code here is
the same for both. Only this module and the links (and ``workers/``) open sockets; ZeroMQ and
process failures become mvbridge errors here.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgpack
import zmq

from ..core import dists, hidden
from ..core import protocol as P
from ..core.codec import NOT_PLAIN, Decoder, is_large, object_reference
from ..core.memory import release_freed_memory
from ..core.peer import FAILED, Channel, Session, receive_message
from ..errors import (
    CallTimeoutError,
    MVBridgeError,
    ProtocolError,
    StaleReferenceError,
    WorkerDiedError,
    WorkerStartError,
)
from . import interrupts
from .proxy import RemoteModule, SessionEnded

if TYPE_CHECKING:  # pragma: no cover
    from .links import Link
    from .supervisor import WorkerProcess

logger = logging.getLogger(__name__)

POLL_MS = 100  # how often a waiting thread checks that its worker is still there
CONTROL_TIMEOUT = 10.0

_context_lock = threading.Lock()
_context: zmq.Context | None = None
_deadlines = threading.local()
# The same deadline for awaited calls: many tasks share the loop's thread, each has its context.
_task_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "mvbridge_deadline", default=None
)


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

    The call is interrupted in the worker (code blocked in C there sees it when the C call
    returns); the channel that waited is dropped, so its late reply can never be mistaken for
    another call's. Calls awaited inside the block (by this task, or tasks it starts there) get
    the same deadline.
    """
    previous = getattr(_deadlines, "value", None)
    _deadlines.value = time.monotonic() + seconds
    if previous is not None:
        _deadlines.value = min(previous, _deadlines.value)
    token = _task_deadline.set(_deadlines.value)
    try:
        yield
    finally:
        _deadlines.value = previous
        _task_deadline.reset(token)


class WorkerModuleName:
    """Names a module of the worker (e.g. mvbridge's own ``ops``) as a request target."""

    def __init__(self, name: str) -> None:
        self.name = name


class HostChannel(Channel):
    """A channel used by one host thread (its calls, or a reverse channel it serves)."""

    reraise_base_exceptions = True

    def __init__(self, session: HostSession, socket: zmq.Socket, cid: int) -> None:
        super().__init__(session, socket)
        self.cid = cid
        self.thread = weakref.ref(threading.current_thread())
        self.broken = False
        self.closed = False
        self.deadline: float | None = None
        self.epoch = 0  # the link's connection epoch when the outermost request was sent
        self.outermost = 0  # the id of the outermost request (the one a deadline stops)

    def request(self, op: str, target: Any, operands: list[Any]) -> Any:
        if self.depth == 0:
            session = self.session
            assert isinstance(session, HostSession)
            chosen = getattr(_deadlines, "value", None)
            if session.call_timeout is not None:
                own = time.monotonic() + session.call_timeout
                chosen = own if chosen is None else min(chosen, own)
            self.deadline = chosen
            self.epoch = session.link.epoch
            rid = self.outermost = self._next_id
            try:
                return super().request(op, target, operands)
            except KeyboardInterrupt:
                if self._next_id != rid:  # it may have gone out
                    self.interrupted(rid)
                raise
            finally:
                if session.closed:
                    self.closed_under_call()
        return super().request(op, target, operands)

    def interrupted(self, rid: int) -> None:
        """A KeyboardInterrupt stopped outermost request ``rid``, which may have gone out: the
        worker may be running it, so interrupt it there too (or drop this channel)."""
        if not self.broken:
            interrupts.forward(self, rid)

    def closed_under_call(self) -> None:
        """The session ended (shutdown, death) while this channel's call was in flight: its
        shutdown left the socket to this thread, which closes it now (no later sweep will)."""
        self.broken = True
        self.close_socket()

    def call_attr(self, target: Any, name: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        """``target.name(*args, **kwargs)``, ``target`` a packed reference to the worker's object.

        An outermost call whose values msgpack holds as they are goes out and comes back
        without the codec's hooks (most of a small call's cost here was the layers around the
        socket); any other call is an ordinary ``request``.
        """
        session = self.session
        assert isinstance(session, HostSession)
        operands = [name, list(args), kwargs]
        if (
            self.depth
            or session.call_timeout is not None
            or getattr(_deadlines, "value", None) is not None
            or session.has_releases()
            or any(is_large(arg) for arg in args)
        ):
            return self.request(P.OP_CALLATTR, target, operands)
        rid = self._next_id
        frame = self.encoder.plain_frame([P.REQUEST, rid, None], [P.OP_CALLATTR, target, *operands])
        if frame is None:
            return self.request(P.OP_CALLATTR, target, operands)
        self._next_id = rid + 1
        self.deadline = None
        self.epoch = session.link.epoch
        self.depth = 1
        try:
            # Sent inside the try: an interrupt that lands just after the send, before this
            # thread waits (a loaded machine, the worker already running it), is forwarded too.
            self.send([frame])
            frames = self.receive()
            if len(frames) == 1:
                value = Decoder.plain_reply(frames[0], rid)
                if value is not NOT_PLAIN:
                    return value
            kind, value = self.examine(rid, frames)
            if kind == P.REPLY:
                return value
            if kind == P.REQUEST:
                self.serve(value, frames)
            return self.wait_reply(rid)
        except KeyboardInterrupt:
            self.interrupted(rid)
            raise
        finally:
            self.depth = 0
            if session.closed:
                self.closed_under_call()

    def serve(self, rid: int, frames: list[Any]) -> None:
        result = self.run_request(rid, frames)
        if result is FAILED:
            return
        import inspect

        if inspect.isawaitable(result):  # a coroutine callback, called from a worker thread
            session = self.session
            assert isinstance(session, HostSession)
            try:
                result = session.await_callback(result)
            except BaseException as exc:
                self.send_error(rid, exc)
                if not isinstance(exc, Exception):
                    raise
                return
        self.send_reply(rid, result)

    def send(self, frames: list[Any]) -> None:
        session = self.session
        assert isinstance(session, HostSession)
        if session.max_message_size is not None:
            session.check_size(frames)
        try:
            if len(frames) == 1:
                self.socket.send(frames[0])  # send_multipart's sugar costs more than the send
            else:
                self.socket.send_multipart(frames, copy=False)
        except zmq.ZMQError as exc:
            self.broken = True
            session = self.session
            assert isinstance(session, HostSession)
            raise WorkerDiedError(
                f"could not send to the worker of env {session.env_name!r}: {exc}",
                env=session.env_name,
            ) from exc

    def close_socket(self) -> None:
        """Close this channel's socket (on whichever thread drops the channel)."""
        self.socket.close(linger=0)

    def time_left(self) -> float | None:
        """Seconds to this call's deadline (None: none); past it, drop the channel and raise."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.broken = True
            session = self.session
            assert isinstance(session, HostSession)
            self.passed_deadline()
            raise CallTimeoutError(
                f"a call to env {session.env_name!r} passed its deadline; it was interrupted "
                "in the worker (code blocked in C there runs until its C call returns)"
            )
        return left

    def passed_deadline(self) -> None:
        session = self.session
        assert isinstance(session, HostSession)
        # The call is interrupted in the worker (a Python loop stops; code in C when it
        # returns), and the channel goes: its worker thread ends after the call.
        session.drop_channel(self, interrupt=self.outermost)

    def check_frames(self, frames: list[Any]) -> list[Any]:
        """``frames``, unless they are the link's word that our request could not be sent."""
        if len(frames) == 1 and not frames[0]:
            self.broken = True
            session = self.session
            assert isinstance(session, HostSession)
            raise session.unreachable("the request could not be sent")
        return frames

    def check_alive(self) -> None:
        """Raise ``WorkerDiedError`` (and mark this channel broken) if the worker has gone."""
        session = self.session
        assert isinstance(session, HostSession)
        try:
            session.check_alive(self)
        except WorkerDiedError:
            self.broken = True
            raise

    def receive(self) -> list[Any]:
        socket = self.socket
        session = self.session
        assert isinstance(session, HostSession)
        while True:
            left = self.time_left()
            if left is not None:
                socket.setsockopt(zmq.RCVTIMEO, max(1, min(POLL_MS, int(left * 1000) + 1)))
            try:
                # A blocking receive with RCVTIMEO (set when the channel opened): one call on
                # the fast path; every POLL_MS without a message, look at the worker's health.
                frames = receive_message(socket)
            except zmq.Again:
                frames = None
            except zmq.ZMQError as exc:
                self.broken = True
                raise session.unreachable(f"its connection failed ({exc})") from exc
            if frames is not None:
                return self.check_frames(frames)
            self.check_alive()


class HostSession(Session):
    """The host's side of one session with one worker (one generation of it).

    It reads the worker's iterators in batches; the worker reads the host's item by item, as
    the host often goes on with an iterator it passed (``take(3, it)``, then ``next(it)``).

    Args:
        env_name: for messages.
        link: how this session reaches its worker; the session closes it at the end.
        call_timeout: default deadline of each outermost call (None: none).
        async_pool: most channels awaited calls of one event loop use at once.
        module_proxy: ``name -> RemoteModule`` of the env, for modules the worker sends.
        start_timeout: how long the handshake may take.
    """

    reads_ahead = True

    def __init__(
        self,
        env_name: str,
        link: Link,
        call_timeout: float | None,
        module_proxy: Any,
        start_timeout: float,
        async_pool: int = 16,
    ) -> None:
        self.env_name = env_name
        self.async_pool = async_pool
        self.async_pools: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self.exception_origin = f"env:{env_name}"  # stable across restarts of the env
        self.link = link
        self.call_timeout = call_timeout
        self._module_proxy = module_proxy
        self._local = threading.local()
        self._channels: list[HostChannel] = []
        self._channels_lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._control_id = 0
        self._callbacks_ready = False
        self._reverse_threads: list[threading.Thread] = []
        self.death: str | None = None
        self.shut_down = False  # stopped on purpose (env.shutdown), not died
        self.closed = False
        self.facts: dict[str, Any] = {}
        self.facts = self._hello(start_timeout)
        super().__init__(self.facts["python_minor"])
        self.max_message_size: int | None = self.facts.get("max_message_size")
        self.use_shared_memory(self.facts.get("shared_memory"))
        link.attach(self)

    @property
    def process(self) -> WorkerProcess | None:
        """The local worker process, or None for a service."""
        return self.link.process

    # -- handshake and control ----------------------------------------------------------------
    def _hello(self, timeout: float) -> dict[str, Any]:
        payload = {
            "protocol": P.PROTOCOL_VERSION,
            "python_minor": dists.PYTHON_VERSION,
            "cloudpickle": hidden.cloudpickle_version(),
            "pid": os.getpid(),
            **self.link.hello_extras(),
        }
        try:
            self.link.wait_connected(timeout)
            return self.control(P.HELLO, payload, timeout, starting=True)
        except BaseException:
            self.link.close()
            raise

    def control(
        self,
        kind: int,
        payload: Any = None,
        timeout: float = CONTROL_TIMEOUT,
        starting: bool = False,
    ) -> Any:
        """One control request and its reply."""
        link = self.link
        with self._control_lock:
            self._control_id += 1
            rid = self._control_id
            socket = link.control_socket
            socket.send_multipart(P.control_message(kind, rid, payload))
            give_up = time.monotonic() + timeout
            while True:
                if socket.poll(POLL_MS):
                    frame = socket.recv()
                    if not frame:  # LINK_DOWN: the request could not go out
                        raise self.unreachable("a control request could not be sent", starting)
                    reply_kind, reply_id, reply = P.unpack(frame)
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
                if starting:
                    link.check_starting()
                else:
                    self.check_alive()
                if time.monotonic() > give_up:
                    if starting:
                        raise link.start_timeout_error(timeout)
                    raise WorkerDiedError(
                        f"{link.describe()} did not answer a control request within "
                        f"{timeout:.0f} s",
                        env=self.env_name,
                        pid=link.pid,
                    )

    def control_nowait(self, kind: int, payload: Any = None) -> None:
        """Send a control request whose reply nobody waits for (``control`` skips it later)."""
        with self._control_lock:
            self._control_id += 1
            try:
                self.link.control_socket.send_multipart(
                    P.control_message(kind, self._control_id, payload), flags=zmq.NOBLOCK
                )
            except zmq.ZMQError:
                pass  # the worker or its connection is gone: nothing is left to close there

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
        socket = self.link.channel_socket(cid, endpoint)
        socket.setsockopt(zmq.RCVTIMEO, POLL_MS)
        channel = HostChannel(self, socket, cid)
        self._local.channel = channel
        with self._channels_lock:
            self._sweep_dead_threads()
            self._channels.append(channel)
        return channel

    def check_size(self, frames: list[Any]) -> None:
        """Refuse a message the service would reject, before sending any of it."""
        assert self.max_message_size is not None
        size = sum(len(f) if type(f) is bytes else memoryview(f).nbytes for f in frames)
        if size > self.max_message_size:
            raise ProtocolError(
                f"a message of {size} bytes is over the service's limit of "
                f"{self.max_message_size} bytes ({self.link.describe()}, mvbridge spawn "
                "--max-message-size); send less at a time",
                env=self.env_name,
            )

    def bind_thread(self, channel: HostChannel) -> None:
        """Requests this thread makes go on ``channel`` (a reverse channel it serves)."""
        self._local.channel = channel

    def _sweep_dead_threads(self) -> None:
        for channel in list(self._channels):
            thread = channel.thread()
            if thread is None or not thread.is_alive():
                self._channels.remove(channel)
                self._close_channel(channel)

    def drop_channel(self, channel: HostChannel, interrupt: int | None = None) -> None:
        """Close ``channel`` here and at the worker (once), after interrupting its request
        ``interrupt`` there when one was given (a call nobody waits for any more: a deadline
        passed, an awaited call was cancelled); its thread's next call opens another."""
        with self._channels_lock:
            if channel in self._channels:
                self._channels.remove(channel)
        self._close_channel(channel, interrupt)

    _drop_channel = drop_channel

    def _close_channel(self, channel: HostChannel, interrupt: int | None = None) -> None:
        if channel.closed:
            return
        channel.closed = True
        channel.close_socket()
        if not self.closed:
            # Not waiting for the replies: a worker whose call holds the GIL in C answers only
            # when the call ends, and a deadline that passed must not wait for that. The
            # worker reads them in order, so the call is interrupted before its channel goes.
            if interrupt is not None:
                self.control_nowait(P.INTERRUPT, [channel.cid, interrupt])
            self.control_nowait(P.CLOSE, channel.cid)

    def calls_in_flight(self) -> int:
        with self._channels_lock:
            return sum(1 for channel in self._channels if channel.depth)

    # -- callbacks from worker threads (reverse channels) ----------------------------------------
    def export(self, obj: Any) -> tuple[int, int, list[Any]]:
        if not self._callbacks_ready:  # the worker can call back only what it was given
            self._callbacks_ready = True
            self.link.start_callbacks()
        return super().export(obj)

    def serve_reverse(self, route: bytes) -> None:
        """Start a host thread that serves the reverse channel ``route`` (called by the link)."""
        thread = threading.Thread(
            target=self._serve_reverse,
            args=(route,),
            name=f"mvbridge-callbacks-{P.channel_id(route) & ~P.REVERSE_BIT}",
            daemon=True,
        )
        self._reverse_threads.append(thread)
        thread.start()

    def _serve_reverse(self, route: bytes) -> None:
        socket = self.link.reverse_socket(route)
        # Nested calls wait on this socket too: the timeout lets them check the worker's health.
        socket.setsockopt(zmq.RCVTIMEO, POLL_MS)
        channel = HostChannel(self, socket, P.channel_id(route))
        self._local.channel = channel
        try:
            socket.send(P.READY)
            while not self.closed:
                if not socket.poll(POLL_MS):
                    continue
                frames = receive_message(socket)
                if len(frames) == 1 and not frames[0]:
                    continue  # LINK_DOWN for a reply of ours: the worker side will notice
                try:
                    channel.serve_one(frames)
                except SystemExit:
                    pass  # went back to the worker; it ends a thread, not this channel
                except Exception:
                    logger.exception("mvbridge: serving a callback of env %r failed", self.env_name)
        except zmq.ZMQError:
            pass  # the session is closing
        finally:
            socket.close(linger=0)

    def await_callback(self, awaitable: Any) -> Any:
        """The result of a coroutine callback served outside an awaited call's channel (a
        worker library's own thread called it): on the event loop whose awaits use this
        session, else on a loop of its own."""
        import asyncio

        async def result() -> Any:
            return await awaitable

        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop in list(self.async_pools):
            if loop is not here and loop.is_running():
                return asyncio.run_coroutine_threadsafe(result(), loop).result()
        if here is not None:
            raise MVBridgeError(
                f"a coroutine callback of env {self.env_name!r} was called during a blocking "
                "call made on the event loop's own thread, which cannot run it; await the "
                "call instead: await mvbridge.aio(proxy).method(...)"
            )
        return asyncio.run(result())

    def reverse_threads(self) -> int:
        """Host threads serving reverse channels now."""
        self._reverse_threads = [t for t in self._reverse_threads if t.is_alive()]
        return len(self._reverse_threads)

    # -- liveness -------------------------------------------------------------------------------
    def check_alive(self, channel: HostChannel | None = None) -> None:
        """Raise ``WorkerDiedError`` if the worker has gone, or if the connection dropped while
        ``channel``'s call was in flight (its reply may be lost)."""
        if self.death is not None:
            raise WorkerDiedError(self.death, env=self.env_name, pid=self.link.pid)
        lost = self.link.lost()
        if lost is not None:
            raise self.died_error(*lost)
        if channel is not None:
            how = self.link.dropped(channel.epoch)
            if how is not None:
                raise self.dropped_error(how)

    def usable(self) -> bool:
        """True while this session is open and its worker can be reached (reconnecting to and
        resuming a service session if need be).

        Raises:
            WorkerStartError: a service could not be reached within its connect timeout.
        """
        return self.alive_nowait() and self.link.ready(self)

    def alive_nowait(self) -> bool:
        """``usable`` without reconnecting: False once the worker or session is gone."""
        if self.closed:
            return False
        lost = self.link.lost()
        if lost is not None:
            self.died_error(*lost)
            return False
        return True

    def unreachable(self, how: str, starting: bool = False) -> MVBridgeError:
        """The error for a request that could not reach the worker (``how`` says why)."""
        if starting:
            return WorkerStartError(
                f"{self.link.describe()} could not be reached: {how}",
                env=self.env_name,
                exit_code=None,
                stderr_tail="",
            )
        lost = self.link.lost()
        if lost is not None:
            return self.died_error(*lost)
        return self.dropped_error(how)

    def dropped_error(self, how: str) -> WorkerDiedError:
        """A call failed because the connection dropped; the session itself may go on."""
        in_flight = self.calls_in_flight()
        return WorkerDiedError(
            f"{self.link.describe()}: {how}, with {in_flight} call"
            f"{'s' if in_flight != 1 else ''} in flight; {self.link.next_steps()}",
            env=self.env_name,
            pid=self.link.pid,
            calls_in_flight=in_flight,
        )

    def died_error(self, how: str, code: int | None = None) -> WorkerDiedError:
        """Mark the session dead for good and return the error that says so."""
        in_flight = self.calls_in_flight()
        python = self.facts.get("python", "?")
        self.death = (
            f"{self.link.who(python)} {how} with {in_flight} call"
            f"{'s' if in_flight != 1 else ''} in flight; {self.link.next_steps()}"
        )
        self.closed = True
        return WorkerDiedError(
            self.death,
            env=self.env_name,
            pid=self.link.pid,
            exit_code=code,
            calls_in_flight=in_flight,
        )

    def stale_error(self) -> StaleReferenceError:
        return SessionEnded(
            f"this proxy belongs to a worker of env {self.env_name!r} that has gone "
            f"({self.death or 'it was shut down'}); get the object again from the new worker",
            session=self,
        )

    def request(self, op: str, target: Any, *operands: Any) -> Any:
        if (self.closed or not self.link.fast) and not self.usable():
            raise self.stale_error()
        return self.channel().request(op, target, list(operands))

    def call_attr(self, target: Any, name: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        if (self.closed or not self.link.fast) and not self.usable():
            raise self.stale_error()
        if type(target) is not msgpack.ExtType:
            spec = self.ref_spec(target)
            if spec is None:  # not this worker's object: the codec says how it goes, or why not
                return self.channel().request(P.OP_CALLATTR, target, [name, list(args), kwargs])
            target = object_reference(spec)
        return self.channel().call_attr(target, name, args, kwargs)

    async def arequest(self, op: str, target: Any, *operands: Any) -> Any:
        """``request`` for a coroutine: on a free channel of this event loop's pool (opened off
        the loop, at most ``async_pool`` of them); waits for one while all are busy."""
        from .aio_channel import pool_for

        return await pool_for(self).request(op, target, list(operands))

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
        """End the session: stop a local worker (SHUTDOWN, terminate, kill) or say BYE to a
        service, and close every socket we can. Threads still waiting on a call notice within
        ``POLL_MS`` and raise ``WorkerDiedError``.
        """
        if self.death is None:
            self.death = f"env {self.env_name!r} was shut down"
            self.shut_down = True
        already_closed = self.closed
        self.closed = True
        code = self.link.end(said_goodbye=already_closed)
        with self._channels_lock:
            for channel in list(self._channels):
                if not channel.depth:  # a busy channel is closed by its own thread
                    channel.close_socket()
                    self._channels.remove(channel)
        self.link.close()
        self.close()  # the object table and shared-memory segments, as any session ends
        # An Env keeps its ended session (its proxies raise StaleReferenceError by it), but
        # not the channels threads used: each holds its codec's buffers (over 800 KB a
        # session in all), and a busy one is still held by the thread waiting in it.
        self._local = threading.local()
        release_freed_memory()
        return code

    def statistics(self) -> dict[str, Any]:
        return self.control(P.STATS)
