"""One I/O thread joining an outer socket to this process's channel sockets over inproc.

Internal. Messages on the outer socket start with a route frame (``protocol.route``): the control
connection of a service session (a DEALER), or the ROUTER a local worker's reverse channels
connect to. Its routes are the control stream and the reverse channels, the ones a worker thread
opens to call the host (host threads' own channels connect to the worker, or to the service,
directly). Each route's host end is a DEALER of its own connected to this mux over inproc
(routing id ``b"r" + route``), so everything above sees one socket per channel whatever the
transport. A new reverse route gets a host thread to serve it (``on_reverse``) the first time
it appears.

The I/O thread owns the outer, inner and monitor sockets; other threads only connect new
inproc sockets to it. Sends never block it: a message that cannot go out is dropped, and a
request that could not go out is answered with ``LINK_DOWN`` so its sender stops waiting.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import zmq

from ..core import protocol as P

logger = logging.getLogger(__name__)

LINK_DOWN = b""  # a one-frame message from the mux to a channel: its request could not be sent
_STOP = b"x"  # routing id of the socket that tells the I/O thread to stop
_BATCH = 64  # messages moved per socket per wake-up, so no direction starves the other
_ids = itertools.count(1)


def monitor_of(context: zmq.Context, socket: zmq.Socket, events: int) -> zmq.Socket:
    """A PAIR socket receiving ``socket``'s monitor events.

    Not pyzmq's ``get_monitor_socket``: it names the inproc endpoint after the socket's file
    descriptor, which a new socket reuses while the old endpoint may still be bound.
    """
    endpoint = f"inproc://mvbridge-monitor-{next(_ids)}"
    socket.monitor(endpoint, events)
    pair = context.socket(zmq.PAIR)
    pair.connect(endpoint)
    return pair


def send_frames(socket: zmq.Socket, head: bytes, frames: list[Any]) -> None:
    """Send ``[head, *frames]`` without blocking; received frames go on without a copy.

    Raises:
        zmq.ZMQError: not sent (no peer for ``head`` with ROUTER_MANDATORY, full, not connected).
    """
    socket.send(head, zmq.SNDMORE | zmq.NOBLOCK)
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        socket.send(frame, (zmq.SNDMORE if i < last else 0) | zmq.NOBLOCK, copy=False)


def close_monitored(socket: zmq.Socket, monitor: zmq.Socket | None, *others: Any) -> None:
    """Close ``socket``, its ``monitor`` PAIR and ``others``, stopping the monitor first.

    libzmq's I/O thread sends monitor events with a *blocking* send: an event for a PAIR that is
    already closed (a connection torn down after ``close``) would block that thread, and with it
    every socket of the context.
    """
    if monitor is not None:
        try:
            socket.disable_monitor()
        except zmq.ZMQError:
            pass
    for each in (socket, monitor, *others):
        if each is not None:
            each.close(linger=0)


class Mux:
    """Routes between one outer socket and the inproc sockets of this process's channels.

    Args:
        context: the ZeroMQ context (inproc needs the same one).
        outer: the socket whose messages start with a route frame; the mux owns it from now on.
        on_reverse: called (in the I/O thread) with the route of a new reverse channel; must
            start whatever connects ``connect(route)`` and sends ``protocol.READY`` on it.
        on_control: called with the frames of each message on ``CONTROL_ROUTE``; returns True
            when it consumed the message (a notice), False to deliver it to the control socket.
        monitor: a monitor socket of ``outer``, owned by the mux too; ``on_monitor`` gets events.
        tick: called every ``tick_ms`` from the I/O thread (liveness bookkeeping).
    """

    def __init__(
        self,
        context: zmq.Context,
        outer: zmq.Socket,
        name: str,
        on_reverse: Callable[[bytes], None],
        on_control: Callable[[list[Any]], bool] | None = None,
        monitor: zmq.Socket | None = None,
        on_monitor: Callable[[zmq.Socket], None] | None = None,
        tick: Callable[[], None] | None = None,
        tick_ms: int = 100,
    ) -> None:
        self.context = context
        self.outer = outer
        self.monitor = monitor
        self._on_reverse = on_reverse
        self._on_control = on_control
        self._on_monitor = on_monitor
        self._tick = tick
        self._tick_ms = tick_ms
        self.endpoint = f"inproc://mvbridge-mux-{next(_ids)}"
        self.inner = context.socket(zmq.ROUTER)
        self.inner.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.inner.bind(self.endpoint)
        self._known: set[bytes] = set()  # routes with a host socket (set ops are atomic)
        self._waiting: dict[bytes, list[list[Any]]] = {}  # new reverse routes: messages so far
        self.thread = threading.Thread(target=self._run, name=f"mvbridge-io-{name}", daemon=True)
        self._stopped = False

    def start(self) -> None:
        self.thread.start()

    # -- used by other threads ------------------------------------------------------------------
    def connect(self, route: bytes) -> zmq.Socket:
        """A new DEALER for ``route``, connected to this mux (the caller owns it)."""
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.ROUTING_ID, b"r" + route)
        socket.connect(self.endpoint)
        return socket

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the I/O thread; it closes the sockets it owns."""
        if self._stopped:
            return
        self._stopped = True
        if not self.thread.is_alive():
            self._close_sockets()
            return
        waker = self.context.socket(zmq.DEALER)
        waker.setsockopt(zmq.ROUTING_ID, _STOP)
        try:
            waker.connect(self.endpoint)
            waker.send(b"stop")
            self.thread.join(timeout)
        finally:
            waker.close(linger=0)

    # -- the I/O thread -------------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.outer, zmq.POLLIN)
        poller.register(self.inner, zmq.POLLIN)
        if self.monitor is not None:
            poller.register(self.monitor, zmq.POLLIN)
        try:
            while True:
                for socket, _ in poller.poll(self._tick_ms):
                    if socket is self.outer:
                        self._from_outer()
                    elif socket is self.inner:
                        if not self._from_inner():
                            return
                    elif self._on_monitor is not None:
                        self._on_monitor(socket)
                if self._tick is not None:
                    self._tick()
        except zmq.ContextTerminated:
            pass
        except Exception:
            logger.exception("mvbridge: the I/O thread of a session failed")
        finally:
            self._close_sockets()

    def _close_sockets(self) -> None:
        close_monitored(self.outer, self.monitor, self.inner)

    def _from_outer(self) -> None:
        outer = self.outer
        for _ in range(_BATCH):
            try:
                frames = outer.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            route = frames[0].bytes
            if len(route) != P.ROUTE_SIZE or len(frames) < 2:
                logger.warning("mvbridge: dropped a message without a route")
                continue
            control = route == P.CONTROL_ROUTE
            if control and self._on_control is not None and self._on_control(frames[1:]):
                continue  # a notice, consumed
            if control or route in self._known:
                self._deliver(route, frames[1:])
            elif P.is_reverse(route):
                self._reverse(route, frames[1:])
            # else: the late reply of a channel the host has dropped

    def _reverse(self, route: bytes, frames: list[Any]) -> None:
        waiting = self._waiting.get(route)
        if waiting is None:
            waiting = self._waiting[route] = []
            self._on_reverse(route)
        if not (len(frames) == 1 and len(frames[0]) == 0):  # READY from the worker: no content
            waiting.append(frames)

    def _deliver(self, route: bytes, frames: list[Any]) -> None:
        try:
            send_frames(self.inner, b"r" + route, frames)
        except zmq.ZMQError:  # that channel's socket is gone (EHOSTUNREACH) or full
            self._known.discard(route)
            if P.is_reverse(route):  # its serving thread ended: a new one takes over
                self._reverse(route, frames)

    def _from_inner(self) -> bool:
        inner = self.inner
        for _ in range(_BATCH):
            try:
                frames = inner.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return True
            ident = frames[0].bytes
            if ident == _STOP:
                return False
            route = ident[1:]
            if len(frames) == 2 and len(frames[1]) == 0:  # READY from a reverse channel's thread
                self._known.add(route)
                for waiting in self._waiting.pop(route, ()):
                    self._deliver(route, waiting)
                continue
            self._send_out(route, frames[1:])
        return True

    def _send_out(self, route: bytes, frames: list[Any]) -> None:
        try:
            send_frames(self.outer, route, frames)
        except zmq.ZMQError:
            # Not connected (IMMEDIATE), full, or the peer's socket is gone: the message is lost.
            # A request's sender would wait for a reply that cannot come; tell it now.
            header = P.peek_header(frames[0].buffer) if route != P.CONTROL_ROUTE else None
            if route == P.CONTROL_ROUTE or (header is not None and header[0] == P.REQUEST):
                try:
                    self.inner.send_multipart([b"r" + route, LINK_DOWN], zmq.NOBLOCK)
                except zmq.ZMQError:
                    pass
