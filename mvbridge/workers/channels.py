"""A worker's sessions and channels: a thread per host-opened channel, pooled reverse channels.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A worker thread that serves a host call talks to the host on that call's channel, so callbacks
nest. Any other thread (one a library started, a pool's, a ``threading.Timer``) that calls a host
object borrows a *reverse* channel for the duration of that call: a channel the worker opens
towards the host, served there by a host thread of its own. Reverse channels are pooled per
session and closed with it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

import zmq

from ..core import logs
from ..core import protocol as P
from ..core.peer import Channel, Session, receive_message
from ..errors import MVBridgeError
from .interrupts import CallInterrupts

POLL_MS = 100  # how often a waiting or idle channel looks at its stop flags


class Wiring:
    """Where this worker's channel sockets go: bound locally, or connected to a service.

    Args:
        context: the worker's ZeroMQ context.
        channel_prefix: local worker: channel *n* binds ``<prefix>-<n>``.
        service: service worker: the ipc endpoint of the service's router.
    """

    def __init__(
        self, context: zmq.Context, channel_prefix: str | None, service: str | None
    ) -> None:
        self.context = context
        self.channel_prefix = channel_prefix
        self.service = service

    def host_channel(self, session: WorkerSession, cid: int) -> tuple[zmq.Socket, str | None]:
        """A socket for a channel the host opened, and the endpoint the host connects to."""
        if self.service is not None:
            return self._connected(session, cid), None
        socket = self.context.socket(zmq.DEALER)
        endpoint = "%s-%d" % (self.channel_prefix, cid)
        try:
            socket.bind(endpoint)
        except BaseException:
            socket.close(linger=0)
            raise
        return socket, endpoint

    def reverse_channel(self, session: WorkerSession, cid: int) -> zmq.Socket:
        """A socket for a channel a worker thread opens towards the host."""
        if self.service is not None:
            return self._connected(session, cid)
        if not session.callbacks:
            raise MVBridgeError("the host gave no endpoint for callbacks from worker threads")
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.ROUTING_ID, P.route(cid))
        socket.connect(session.callbacks)
        socket.send(P.READY)
        return socket

    def _connected(self, session: WorkerSession, cid: int) -> zmq.Socket:
        # The service routes by this id: which session, which channel.
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.ROUTING_ID, b"c" + session.sid + P.route(cid))
        socket.connect(self.service)
        socket.send(P.READY)
        return socket


class _Stopped(MVBridgeError):
    """The host closed a channel (or ended the session) while its thread waited for a reply."""


class WorkerSession(Session):
    """The worker's side of one host session."""

    exports_modules = True
    exception_origin = "host"  # one made class per host class name, whichever session sent it
    names_may_import = True  # the env is there to be imported from

    def __init__(
        self,
        sid: bytes,
        peer_python: str,
        find_class: Any,
        wiring: Wiring,
        next_cid: Callable[[], int],
        callbacks: str | None,
    ) -> None:
        super().__init__(peer_python, find_class)
        self.sid = sid
        self.wiring = wiring
        self.callbacks = callbacks
        self._next_cid = next_cid
        self.channels: dict[int, WorkerChannel] = {}
        self._local = threading.local()
        self._reverse_lock = threading.Lock()
        self._reverse_free: list[ReverseChannel] = []
        self._reverse_count = 0

    def channel(self) -> Channel:
        channel = getattr(self._local, "channel", None)
        if channel is None:
            raise MVBridgeError("this worker thread holds no channel of this session")
        return channel

    def request(self, op: str, target: Any, *operands: Any) -> Any:
        channel = getattr(self._local, "channel", None)
        if channel is not None:  # serving a host call, or inside a callback: nest
            return channel.request(op, target, list(operands))
        channel = self._borrow()
        self._local.channel = channel
        try:
            return channel.request(op, target, list(operands))
        finally:
            self._local.channel = None
            self._give_back(channel)

    def bind_thread(self, channel: Channel) -> None:
        self._local.channel = channel

    def gone_error(self) -> MVBridgeError:
        return MVBridgeError(
            "the host of this session (Python %s) is gone: its objects (callbacks) can no "
            "longer be called" % self.peer_python
        )

    # -- reverse channels ------------------------------------------------------------------------
    def _borrow(self) -> ReverseChannel:
        with self._reverse_lock:
            if self.closed:
                raise self.gone_error()
            if self._reverse_free:
                return self._reverse_free.pop()
            self._reverse_count += 1
        cid = self._next_cid() | P.REVERSE_BIT
        return ReverseChannel(self, self.wiring.reverse_channel(self, cid), cid)

    def _give_back(self, channel: ReverseChannel) -> None:
        with self._reverse_lock:
            if not self.closed and not channel.broken:
                self._reverse_free.append(channel)
                return
            self._reverse_count -= 1
        channel.socket.close(linger=0)

    def reverse_channels(self) -> int:
        """Reverse channels open now (idle or in use)."""
        return self._reverse_count

    def close(self) -> None:
        with self._reverse_lock:
            super().close()
            idle, self._reverse_free = self._reverse_free, []
            self._reverse_count -= len(idle)
        for reverse in idle:  # one in use is closed by its borrower, who sees the session closed
            reverse.socket.close(linger=0)
        # Dropped, not only stopped: a channel refers to its session, and the cycle would keep
        # both (and what they hold) until the garbage collector's next full run.
        channels, self.channels = self.channels, {}
        for channel in channels.values():
            channel.stopped.set()
            # A call still running there has no one to answer (BYE, expiry): stop it too.
            channel.interrupts.interrupt_running()

    def peer_description(self) -> str:
        return "the host (Python %s)" % self.peer_python


class WorkerChannel(Channel):
    """A channel the host opened, served by its own worker thread until the host closes it."""

    def __init__(self, session: WorkerSession, socket: zmq.Socket, cid: int) -> None:
        super().__init__(session, socket)
        # A blocking receive that gives up every POLL_MS to look at the stop flag: on raw
        # pyzmq, polling first cost the receiving thread 4-8 us more a message (bench/floors.py).
        socket.setsockopt(zmq.RCVTIMEO, POLL_MS)
        self._can_send = [(socket, _POLLOUT)]
        self.cid = cid
        self.stopped = threading.Event()
        self.serving = False  # running a request (not waiting for one)
        self.interrupts = CallInterrupts()
        self.thread = threading.Thread(
            target=self.run, name="mvbridge-channel-%d" % cid, daemon=True
        )

    def run(self) -> None:
        assert isinstance(self.session, WorkerSession)
        self.session.bind_thread(self)
        try:
            while not self.stopped.is_set():
                frames = self.receive()
                if frames is not None:
                    self.serving = True
                    try:
                        self.serve_one(frames)
                    except (_Stopped, zmq.ZMQError):
                        raise
                    except KeyboardInterrupt:  # a host's interrupt that landed after the call
                        logs.logger(__name__).debug(
                            "mvbridge worker: an interrupt came after its call ended"
                        )
                    except Exception:  # a bug of ours must not silence the channel for good
                        logs.logger(__name__).exception("mvbridge worker: a channel message failed")
                    finally:
                        self.serving = False
        except (_Stopped, zmq.ZMQError):
            pass
        finally:
            self.socket.close(linger=0)

    def run_request(self, rid: int, frames: list[Any]) -> Any:
        # The host may interrupt the outermost request (INTERRUPT); nested ones end with it.
        outermost = self.interrupts.begin(rid)
        try:
            return super().run_request(rid, frames)
        finally:
            if outermost:
                self.interrupts.end()

    def receive(self) -> Any:
        socket = self.socket
        while True:
            try:
                return receive_message(socket)
            except zmq.Again:
                if self.stopped.is_set():
                    if self.depth:
                        raise _Stopped(
                            "the host closed this channel while a callback was running"
                        ) from None
                    return None

    def send(self, frames: list[Any]) -> None:
        if self.stopped.is_set():
            # The host closed this channel (it gave up on the call) or ended the session:
            # nobody reads a late reply, such as that of a call stopped when its session ended.
            return
        socket = self.socket
        if len(frames) == 1:
            try:
                socket.send(frames[0], _NOBLOCK)  # send_multipart's sugar costs more
                return
            except zmq.Again:
                pass
        # A host that gave up on a call (its deadline passed) closes its end: the late reply
        # would block this thread for good. Wait until it can go, or the channel is closed.
        can_send = self._can_send
        while not _poll(can_send, POLL_MS):
            if self.stopped.is_set():
                return
        socket.send_multipart(frames, copy=len(frames) == 1)


# Plain ints: pyzmq's flag enums cost a Python call at each use.
_NOBLOCK = int(zmq.NOBLOCK)
_POLLOUT = int(zmq.POLLOUT)
_poll = zmq.zmq_poll


class ReverseChannel(Channel):
    """A channel a worker thread opened to call the host; lent to one thread at a time."""

    def __init__(self, session: WorkerSession, socket: zmq.Socket, cid: int) -> None:
        super().__init__(session, socket)
        socket.setsockopt(zmq.RCVTIMEO, POLL_MS)
        self.cid = cid
        self.broken = False

    def receive(self) -> Any:
        socket = self.socket
        session = self.session
        assert isinstance(session, WorkerSession)
        while True:
            try:
                return receive_message(socket)
            except zmq.Again:
                if session.closed:
                    self.broken = True
                    raise session.gone_error() from None
