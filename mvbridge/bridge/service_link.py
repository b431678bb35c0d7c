"""A session with a ``mvbridge spawn`` service: one DEALER over TCP, CurveZMQ unless insecure.

Internal. The session's control stream and its reverse channels share one connection through a
``mux.Mux``; each channel a host thread opens has a connection of its own to the same address
(routing id ``b"c" + route + session id``), so a call crosses no thread of ours on this side
(the mux's hop was most of a service call's cost on the host). Liveness is ZeroMQ's own heartbeat
(answered by libzmq's I/O threads, so a call holding the GIL on either side does not fail it)
read through a monitor socket on the control connection: a drop fails the calls in flight at
once; ZeroMQ reconnects by itself, and the next call resumes the session (``RESUME``), or learns
that the service no longer knows it.

The control DEALER's routing id is a random token that names the session to the service, also
across reconnects; the service binds it to the client's CURVE key, and accepts a channel's
connection only with that key.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..core import protocol as P
from ..errors import MVBridgeError, ProtocolError, WorkerStartError
from .keys import ClientKeys
from .links import Link
from .mux import Mux, close_monitored, monitor_of

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostSession

HEARTBEAT_IVL_MS = 1000
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 1000
REFUSED_KEY = (
    "the service refused this client's key: its public key is not in the folder the service "
    "was started with (--allow); copy it there, and send the service SIGHUP to re-read it"
)
HANDSHAKE_FAILED = (
    "the handshake failed: client and service disagree on security (a CurveZMQ service needs "
    "server_key and client_key; an --insecure one needs neither), or server_key is not this "
    "service's public key"
)
_MONITORED = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_DISCONNECTED
)


class ServiceLink(Link):
    """Connects to the service at ``address`` for env ``env_name``.

    Args:
        keys: the server's public key and this client's key pair, or None (an insecure
            service on loopback).
        connect_timeout: how long a (re)connection may take before a call fails.
        heartbeat_timeout: how long the connection may stay silent before it counts as lost.
    """

    def __init__(
        self,
        env_name: str,
        address: str,
        keys: ClientKeys | None,
        connect_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        from .client import context

        self.env_name = env_name
        self.address = address
        self.connect_timeout = connect_timeout
        self._context = context()
        self._session: HostSession | None = None
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._lost: str | None = None
        self._needs_resume = False
        self._closed = False
        self.fast = False
        self._keys = keys
        self._heartbeat_ms = max(100, int(heartbeat_timeout * 1000))
        self._sid = b"s" + os.urandom(15)
        dealer = self._dealer(self._sid)
        monitor = monitor_of(self._context, dealer, _MONITORED)
        try:
            dealer.connect(address)
        except zmq.ZMQError as exc:
            close_monitored(dealer, monitor)
            raise WorkerStartError(
                f"env {env_name!r}: cannot connect to {address!r}: {exc}",
                env=env_name,
                exit_code=None,
                stderr_tail="",
            ) from exc
        self._mux = Mux(
            self._context,
            dealer,
            env_name,
            on_reverse=self._on_reverse,
            on_control=self._on_control,
            monitor=monitor,
            on_monitor=self._on_monitor,
        )
        self.control_socket = self._mux.connect(P.CONTROL_ROUTE)
        self._mux.start()

    def _dealer(self, routing_id: bytes) -> zmq.Socket:
        """A DEALER for the service's address, with this link's keys and liveness settings."""
        dealer = self._context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.ROUTING_ID, routing_id)
        dealer.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:PORT too
        keys = self._keys
        if keys is not None:
            dealer.curve_serverkey = keys.server_public
            dealer.curve_publickey = keys.public
            dealer.curve_secretkey = keys.secret
        timeout_ms = self._heartbeat_ms
        dealer.setsockopt(zmq.HEARTBEAT_IVL, min(HEARTBEAT_IVL_MS, timeout_ms // 2))
        dealer.setsockopt(zmq.HEARTBEAT_TIMEOUT, timeout_ms)
        dealer.setsockopt(zmq.HEARTBEAT_TTL, min(timeout_ms, 6_553_500))
        # No queueing for a connection that is not there: a call made while it is down must
        # fail now, not run later, after its caller was told it failed.
        dealer.setsockopt(zmq.IMMEDIATE, 1)
        dealer.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
        dealer.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)
        return dealer

    # -- events, in the mux's I/O thread --------------------------------------------------------
    def _on_monitor(self, socket: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(socket, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = event["event"]
            if kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._refusal = None
                self._connected.set()
            elif kind == zmq.EVENT_DISCONNECTED:
                if self._connected.is_set():
                    self.epoch += 1
                    self.fast = False
                    self._needs_resume = self._session is not None
                    self._connected.clear()
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self._refusal = REFUSED_KEY
            elif kind in (
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
            ):
                self._refusal = HANDSHAKE_FAILED

    def _on_control(self, frames: list[Any]) -> bool:
        try:
            kind, _, payload = P.unpack(frames[0].bytes)
        except Exception:
            return True  # not a control message of ours: drop it
        if kind != P.NOTICE:
            return False
        if isinstance(payload, dict) and payload.get("event") == P.NOTICE_SESSION_LOST:
            self._lost = str(payload.get("reason") or "ended the session")
            self.fast = False
        return True

    def _on_reverse(self, route: bytes) -> None:
        session = self._session
        if session is not None:
            session.serve_reverse(route)

    # -- start ----------------------------------------------------------------------------------
    def wait_connected(self, timeout: float) -> None:
        give_up = time.monotonic() + timeout
        while not self._connected.wait(0.05):
            self.check_starting()
            if self._closed:
                raise MVBridgeError(f"env {self.env_name!r}: the connection was closed")
            if time.monotonic() > give_up:
                raise WorkerStartError(
                    f"no connection to {self.describe()} within {timeout:g} s: is `mvbridge "
                    "spawn` running there, and can this machine reach that address?",
                    env=self.env_name,
                    exit_code=None,
                    stderr_tail="",
                )

    def check_starting(self) -> None:
        if self._refusal is not None:
            raise WorkerStartError(
                f"{self.describe()} refused the connection: {self._refusal}",
                env=self.env_name,
                exit_code=None,
                stderr_tail="",
            )

    def start_timeout_error(self, timeout: float) -> WorkerStartError:
        return WorkerStartError(
            f"{self.describe()} did not answer the handshake within {timeout:g} s",
            env=self.env_name,
            exit_code=None,
            stderr_tail="",
        )

    def attach(self, session: HostSession) -> None:
        self._session = session
        self.pid = session.facts.get("pid")
        self.fast = self._connected.is_set() and self._lost is None

    # -- channels -------------------------------------------------------------------------------
    def channel_socket(self, cid: int, endpoint: str | None) -> zmq.Socket:
        socket = self._dealer(b"c" + P.route(cid) + self._sid)
        # A send waits this long for the connection, then fails (IMMEDIATE: nothing queues).
        socket.setsockopt(zmq.SNDTIMEO, max(1, int(self.connect_timeout * 1000)))
        try:
            socket.connect(self.address)
            # Connected and through the handshake before the first request goes, so that an
            # awaited call's non-blocking send finds it ready.
            if not socket.poll(int(self.connect_timeout * 1000), zmq.POLLOUT):
                raise WorkerStartError(
                    f"a new channel to {self.describe()} did not connect within "
                    f"{self.connect_timeout:g} s",
                    env=self.env_name,
                    exit_code=None,
                    stderr_tail="",
                )
        except BaseException:
            socket.close(linger=0)
            raise
        return socket

    def reverse_socket(self, route: bytes) -> zmq.Socket:
        return self._mux.connect(route)

    # -- liveness -------------------------------------------------------------------------------
    def lost(self) -> tuple[str, int | None] | None:
        return None if self._lost is None else (self._lost, None)

    def dropped(self, epoch: int) -> str | None:
        if epoch != self.epoch:
            return "the connection dropped while the call was in flight (its reply is lost)"
        return None

    def ready(self, session: HostSession) -> bool:
        while True:
            if self._lost is not None:
                session.died_error(self._lost)
                return False
            self.wait_connected(self.connect_timeout)
            if not self._needs_resume:
                break
            self._needs_resume = False
            try:
                session.control(P.RESUME, None, self.connect_timeout)
            except ProtocolError:
                session.died_error(
                    "no longer knows this session (the service restarted, or the session "
                    "expired while the connection was down)"
                )
                return False
        self.fast = self._connected.is_set() and not self._needs_resume and self._lost is None
        return True

    # -- words ----------------------------------------------------------------------------------
    def describe(self) -> str:
        return f"the service of env {self.env_name!r} at {self.address}"

    def who(self, python: str) -> str:
        return f"{self.describe()} (its worker: pid {self.pid}, Python {python})"

    def next_steps(self) -> str:
        return "the next call reconnects"

    # -- the end --------------------------------------------------------------------------------
    def end(self, said_goodbye: bool) -> int | None:
        session = self._session
        if session is not None and not said_goodbye and self._connected.is_set():
            try:  # frees our objects on the service now rather than after its session timeout
                session.control(P.BYE, None, 1.0)
            except MVBridgeError:
                pass
        return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.control_socket.close(linger=0)
        self._mux.stop()
