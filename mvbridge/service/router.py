"""The service's one public ROUTER: clients' sessions routed to the pool's workers.

Internal. One thread runs everything here, in a poll loop over three sockets:

* ``public``  the one address clients connect to (TCP; CurveZMQ with ``zmq.auth`` unless
  ``--insecure``). A session's connection (its routing id names the session) carries
  ``[route, frame 0, buffers...]`` (``core/protocol.py``): control messages, reverse channels.
  Each channel a client thread opens comes on a connection of its own, with routing id
  ``b"c" + route + session id`` and the session's key, and carries ``[frame 0, buffers...]``.
* ``backend`` ipc, in a private folder: each worker connects a control DEALER (``b"w<pid>"``)
  and one DEALER per channel (``b"c" + session id + route``), so channel messages are routed by
  identity alone and reach the worker thread that serves them without a hop.
* ``monitor`` of ``public``: connections, and handshakes that failed.

The router decodes control messages and channel *headers* (kind, request id), never bodies: it
counts calls in flight per channel (for draining), answers for a worker when a request cannot
be delivered, and rejects what is malformed or too large before any worker sees it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket as stdlib_socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from .. import __version__
from ..bridge.mux import close_monitored, monitor_of, send_frames
from ..core import protocol as P
from .logs import plain_address
from .pool import Pool, PoolWorker
from .sessions import ServiceSession, short

logger = logging.getLogger("mvbridge.service")

TICK_MS = 100
REAP_WAIT = 0.1  # how long a worker whose channel is gone may take to be reaped
HELLO_HOLD = 5.0  # seconds a HELLO waits for a worker to come up (one died and restarts)
OPEN_HOLD = 2.0  # longest wait for a new channel's READY before its OPEN reply goes anyway
PING_WAIT = 1.0  # longest wait for the workers' statistics before a ping is answered
MAX_SID = 64
_WORKER_DIED = "mvbridge.errors.WorkerDiedError"
_CHANNEL = b"c"  # a channel's own connection: routing id b"c" + route + session id
_UNKNOWN_SESSION = "no longer knows this session (it restarted, or the session expired)"
_CLIENT_MONITORED = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


@dataclass(frozen=True)
class RouterOptions:
    """How the router serves.

    Attributes:
        address: the public endpoint (``tcp://host:port``).
        keys: the service's (public, secret) CurveZMQ keys, or None when insecure.
        session_timeout: how long a session outlives its client's disconnection.
        heartbeat_timeout: how long a client connection may stay silent.
        max_message_size: largest message (all frames) a client may send, in bytes.
        grace: how long a drain waits for calls in flight.
        facts: what ``mvbridge ping`` reports about the env (name, python, versions, modules).
    """

    address: str
    keys: tuple[bytes, bytes] | None
    session_timeout: float
    heartbeat_timeout: float
    max_message_size: int
    grace: float
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Ping:
    sid: bytes
    rid: int
    deadline: float
    waiting: set[bytes]
    stats: list[dict[str, Any]] = field(default_factory=list)


class Router:
    """Routes sessions between the public socket and the pool until stopped."""

    def __init__(self, context: zmq.Context, options: RouterOptions, pool: Pool) -> None:
        self.context = context
        self.options = options
        self.pool = pool
        self.sessions: dict[bytes, ServiceSession] = {}
        self.started = time.monotonic()
        self.draining_since: float | None = None
        self.stop_requested = threading.Event()
        self._drain_logged = False
        self.reload_requested = threading.Event()
        self.on_reload: Any = None
        self._pings: dict[int, _Ping] = {}
        self._ping_ids = 0
        self._held: dict[bytes, tuple[float, list[Any]]] = {}  # channel ident -> OPEN reply
        # HELLOs that came while no worker was up (one is restarting): answered when one is.
        self._waiting_hellos: list[tuple[float, bytes, str | None, int, Any, str]] = []
        self._ready: set[bytes] = set()  # channel idents whose READY came
        self._peers: dict[int, str] = {}  # fd -> peer address, from the monitor
        self._refused: str | None = None
        self.backend = context.socket(zmq.ROUTER)
        self.backend.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.backend.setsockopt(zmq.SNDHWM, 0)
        self.backend.setsockopt(zmq.RCVHWM, 0)
        self.backend.bind(pool.backend)
        self.public: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None

    # -- set-up ---------------------------------------------------------------------------------
    def bind(self) -> None:
        """Open the public address (after the workers are up, so a probe means ready)."""
        public = self.context.socket(zmq.ROUTER)
        try:
            self._bind(public)
        except BaseException:
            close_monitored(public, self.monitor)
            self.monitor = None
            raise
        self.public = public

    def _bind(self, public: zmq.Socket) -> None:
        public.setsockopt(zmq.IPV6, 1)  # tcp://[::1]:PORT too; IPv4 addresses work as before
        public.setsockopt(zmq.ROUTER_MANDATORY, 1)
        public.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client takes its id back
        public.setsockopt(zmq.SNDHWM, 100_000)
        timeout_ms = max(100, int(self.options.heartbeat_timeout * 1000))
        public.setsockopt(zmq.HEARTBEAT_IVL, min(1000, timeout_ms // 2))
        public.setsockopt(zmq.HEARTBEAT_TIMEOUT, timeout_ms)
        # libzmq drops a connection whose single frame is over MAXMSGSIZE before buffering it;
        # at twice the limit, so that messages somewhat over it get a clear error from us.
        public.setsockopt(zmq.MAXMSGSIZE, min(2 * self.options.max_message_size, 2**62))
        if self.options.keys is not None:
            public.curve_server = True
            public.curve_publickey, public.curve_secretkey = self.options.keys
        self.monitor = monitor_of(self.context, public, _CLIENT_MONITORED)
        public.bind(self.options.address)

    def end_all(self, why: str) -> None:
        """End every session (the service stops); their workers are stopped next."""
        for session in list(self.sessions.values()):
            self._end_session(session, why)

    def close(self) -> None:
        if self.public is not None:
            close_monitored(self.public, self.monitor)
        self.backend.close(linger=0)

    @property
    def secure(self) -> bool:
        return self.options.keys is not None

    def request_stop(self) -> None:
        """Start draining now: no new sessions or calls from here on (safe in a signal handler)."""
        if self.draining_since is None:
            self.draining_since = time.monotonic()
        self.stop_requested.set()

    # -- the loop -------------------------------------------------------------------------------
    def wait_workers(self, timeout: float) -> bool:
        """Serve the backend until every worker reported up; False after ``timeout``."""
        give_up = time.monotonic() + timeout
        while not self.pool.all_up():
            if time.monotonic() > give_up or self.stop_requested.is_set():
                return False
            if self.backend.poll(TICK_MS):
                self._from_backend()
            dead = self.pool.reap(time.monotonic())
            for worker, code in dead:
                self._worker_died(worker, code)
            self.pool.restart_due(time.monotonic())
        return True

    def run(self) -> None:
        """Serve until a stop was requested and the drain is over."""
        assert self.public is not None
        assert self.monitor is not None
        poller = zmq.Poller()
        poller.register(self.public, zmq.POLLIN)
        poller.register(self.backend, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        next_tick = 0.0
        while True:
            for socket, _ in poller.poll(TICK_MS):
                try:
                    if socket is self.public:
                        self._from_clients()
                    elif socket is self.backend:
                        self._from_backend()
                    else:
                        self._monitor_events()
                except zmq.ContextTerminated:
                    return
                except Exception:
                    logger.exception("error while routing", extra={"event": "error"})
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + TICK_MS / 1000
                if self._tick(now):
                    return

    def _tick(self, now: float) -> bool:
        """Timers: workers, probes and expiry, pings, held replies, reloads, the drain.
        True when the service should stop now."""
        self._reap(now)
        while self._waiting_hellos and now - self._waiting_hellos[0][0] > HELLO_HOLD:
            _since, sid, _user, rid, _payload, _peer = self._waiting_hellos.pop(0)
            self._reply(sid, P.FAIL, rid, "no worker of this service is up; try again shortly")
        for worker in self.pool.restart_due(now):
            logger.info(
                "worker %d restarting (pid %d)",
                worker.index,
                worker.process.pid,
                extra={"event": "worker-start", "worker": worker.index},
            )
        self._check_clients(now)
        for token, ping in list(self._pings.items()):
            if now >= ping.deadline:
                self._answer_ping(token)
        for ident, (since, _frames) in list(self._held.items()):
            if now - since > OPEN_HOLD:
                self._release_open(ident)
        if self.reload_requested.is_set():
            self.reload_requested.clear()
            if self.on_reload is not None:
                self.on_reload()
        if self.stop_requested.is_set() and not self._drain_logged:
            self._drain_logged = True
            self.draining_since = self.draining_since or now
            logger.info(
                "draining: %d call(s) in flight in %d session(s); waiting up to %g s",
                self._calls_in_flight(),
                len(self.sessions),
                self.options.grace,
                extra={"event": "drain"},
            )
        if self.draining_since is not None:
            in_flight = self._calls_in_flight()
            if in_flight == 0:
                return True
            if now - self.draining_since >= self.options.grace:
                logger.warning(
                    "grace of %g s is over with %d call(s) still in flight; stopping anyway",
                    self.options.grace,
                    in_flight,
                    extra={"event": "drain-timeout"},
                )
                return True
        return False

    def _calls_in_flight(self) -> int:
        return sum(s.calls_in_flight() for s in self.sessions.values())

    # -- from clients ---------------------------------------------------------------------------
    def _from_clients(self) -> None:
        public = self.public
        assert public is not None
        for _ in range(64):
            try:
                frames = public.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._from_client(frames)

    def _from_client(self, frames: list[Any]) -> None:
        ident = frames[0].bytes
        if ident[:1] == _CHANNEL and len(ident) > 1 + P.ROUTE_SIZE:
            self._from_channel_connection(ident, frames)
            return
        sid = ident
        if len(frames) < 3 or len(frames[1]) != P.ROUTE_SIZE or len(sid) > MAX_SID:
            self._malformed(sid, frames, "not [route, message]")
            return
        route = frames[1].bytes
        size = sum(len(f) for f in frames[2:])
        if size > self.options.max_message_size:
            self._oversized(sid, route, frames[2:], size)
            return
        user = self._user(frames[1])
        if route == P.CONTROL_ROUTE:
            self._client_control(sid, user, frames)
            return
        session = self.sessions.get(sid)
        if session is None or session.user != user:
            self._notice(sid, P.NOTICE_SESSION_LOST, _UNKNOWN_SESSION)
            return
        self._to_worker(session, route, frames[2:])

    def _from_channel_connection(self, ident: bytes, frames: list[Any]) -> None:
        """A message on a channel's own connection (routing id ``b"c" + route + session id``)."""
        route, sid = ident[1 : 1 + P.ROUTE_SIZE], ident[1 + P.ROUTE_SIZE :]
        if len(frames) < 2 or len(sid) > MAX_SID or route == P.CONTROL_ROUTE:
            self._malformed(sid, frames, "not a channel message")
            return
        body = frames[1:]
        size = sum(len(f) for f in body)
        if size > self.options.max_message_size:
            self._oversized(sid, route, body, size, ident)
            return
        session = self.sessions.get(sid)
        if session is None:
            self._notice(sid, P.NOTICE_SESSION_LOST, _UNKNOWN_SESSION)
            return
        if session.user != self._user(frames[1]):  # another client's key: not its session
            self._malformed(sid, frames, "a channel of a session that is not its own")
            return
        session.direct.add(route)
        self._to_worker(session, route, body)

    def _to_worker(self, session: ServiceSession, route: bytes, body: list[Any]) -> None:
        if session.seen(time.monotonic()):
            logger.info(
                "session %s: client is back",
                session.name,
                extra=self._extra("client-back", session),
            )
        sid = session.sid
        header = P.peek_header(body[0].buffer)
        if header is None:
            self._malformed(sid, body, "its header is not an mvbridge channel header")
            return
        kind, rid = header
        if kind == P.REQUEST and self.draining_since is not None and not session.busy(route):
            self._to_client(
                sid,
                route,
                P.error_message(
                    rid,
                    _WORKER_DIED,
                    f"the service at {self.options.address} is shutting down and takes no new "
                    "calls; the next call reconnects",
                ),
            )
            return
        ident = b"c" + sid + route
        if not self._send(self.backend, ident, body):
            session.forget_route(route)
            # Most often its worker has just died: say so (NOTICE) before the error, not at
            # the next tick, so the client's next call opens a new session instead of failing.
            # Its sockets close a moment before it can be reaped: wait for that moment.
            session.worker.process.wait_exit(REAP_WAIT)
            self._reap(time.monotonic())
            if kind == P.REQUEST:
                self._to_client(
                    sid,
                    route,
                    P.error_message(rid, _WORKER_DIED, "the worker's end of this channel is gone"),
                )
            return
        session.track(route, False, kind, rid)

    def _user(self, frame: Any) -> str | None:
        if not self.secure:
            return None
        try:
            return frame.get("User-Id")
        except zmq.ZMQError:
            return None

    def _peer(self, frame: Any) -> str:
        try:
            return plain_address(frame.get("Peer-Address"))
        except zmq.ZMQError:
            return "?"

    def _client_control(self, sid: bytes, user: str | None, frames: list[Any]) -> None:
        try:
            kind, rid, payload = P.unpack(frames[2].bytes)
            if type(kind) is not int or type(rid) is not int:
                raise ValueError("kind and request id must be integers")
        except Exception as exc:
            self._malformed(sid, frames, f"not a control message ({exc})")
            self._reply(sid, P.FAIL, 0, f"malformed control message: {exc}")
            return
        if kind == P.PING:
            self._ping(sid, rid)
            return
        if kind == P.HELLO:
            self._hello(sid, user, rid, payload, self._peer(frames[1]))
            return
        session = self.sessions.get(sid)
        if session is None or session.user != user:
            self._reply(sid, P.FAIL, rid, "this service has no such session")
            return
        session.seen(time.monotonic())
        if kind == P.RESUME:
            logger.info("session %s resumed", session.name, extra=self._extra("resume", session))
            self._reply(sid, P.OK, rid, session.facts)
            return
        if kind in (P.BYE, P.SHUTDOWN):  # a client ends its own session, never the service
            self._forward_control(session, P.BYE, 0, None)
            self._end_session(session, "closed by its client")
            self._reply(sid, P.OK, rid, None)
            return
        if kind in (P.OPEN, P.CLOSE, P.STATS, P.INTERRUPT):
            if kind == P.CLOSE and isinstance(payload, int):
                route = P.route(payload & 0xFFFFFFFF)
                session.forget_route(route)
                session.direct.discard(route)
                self._ready.discard(b"c" + sid + route)
            self._forward_control(session, kind, rid, payload)
            return
        self._reply(sid, P.FAIL, rid, f"unknown control message kind {kind!r}")

    def _hello(self, sid: bytes, user: str | None, rid: int, payload: Any, peer: str) -> None:
        if self.draining_since is not None:
            self._reply(sid, P.FAIL, rid, "the service is shutting down; try again later")
            return
        if not isinstance(payload, dict):
            self._reply(sid, P.FAIL, rid, "HELLO carries a map of facts")
            return
        old = self.sessions.get(sid)
        if old is not None:
            if old.user != user:
                self._reply(sid, P.FAIL, rid, "this session id belongs to another client")
                return
            self._forward_control(old, P.BYE, 0, None)
            self._end_session(old, "replaced by a new HELLO")
        worker = self.pool.least_loaded()
        if worker is None:
            self._waiting_hellos.append((time.monotonic(), sid, user, rid, payload, peer))
            return
        # What only makes sense on one machine never crosses: shared memory, an ipc endpoint.
        payload = dict(payload, shared_memory=None, callbacks=None)
        session = ServiceSession(sid=sid, user=user, peer=peer, worker=worker)
        self.sessions[sid] = session
        worker.sessions.add(sid)
        self._forward_control(session, P.HELLO, rid, payload)

    # -- to clients -----------------------------------------------------------------------------
    def _send(self, socket: zmq.Socket, head: bytes, frames: list[Any]) -> bool:
        try:
            send_frames(socket, head, frames)
        except zmq.ZMQError:
            return False
        return True

    def _to_client(self, sid: bytes, route: bytes, frames: list[Any]) -> bool:
        session = self.sessions.get(sid) if route != P.CONTROL_ROUTE else None
        if session is not None and route in session.direct:  # the channel's own connection
            return self._out([_CHANNEL + route + sid], frames)
        return self._out([sid, route], frames)

    def _out(self, head: list[bytes], frames: list[Any]) -> bool:
        assert self.public is not None
        try:
            self.public.send_multipart(head + frames, zmq.NOBLOCK, copy=False)
        except zmq.ZMQError:
            return False
        return True

    def _reply(self, sid: bytes, kind: int, rid: int, payload: Any) -> None:
        self._to_client(sid, P.CONTROL_ROUTE, [P.pack([kind, rid, payload])])

    def _notice(self, sid: bytes, event: str, reason: str) -> bool:
        return self._to_client(
            sid, P.CONTROL_ROUTE, [P.pack([P.NOTICE, 0, {"event": event, "reason": reason}])]
        )

    # -- from workers ---------------------------------------------------------------------------
    def _from_backend(self) -> None:
        backend = self.backend
        for _ in range(64):
            try:
                frames = backend.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            ident = frames[0].bytes
            if ident[:1] == b"c" and len(ident) > 1 + P.ROUTE_SIZE:
                self._from_channel(ident, frames[1:])
            elif ident[:1] == b"w" and len(frames) == 3:
                worker = self.pool.by_ident(ident)
                if worker is not None:
                    self._worker_control(worker, frames[1].bytes, frames[2].bytes)

    def _from_channel(self, ident: bytes, frames: list[Any]) -> None:
        sid, route = ident[1 : -P.ROUTE_SIZE], ident[-P.ROUTE_SIZE :]
        if len(frames) == 1 and len(frames[0]) == 0:  # READY: the route exists now
            self._ready.add(ident)
            self._release_open(ident)
            return
        session = self.sessions.get(sid)
        if session is None:
            return
        header = P.peek_header(frames[0].buffer)
        kind, rid = header if header is not None else (None, 0)
        if self._to_client(sid, route, frames):
            if kind is not None:
                session.track(route, True, kind, rid)
            return
        # The client is not connected: a worker thread that asks it something must not wait.
        if kind == P.REQUEST:
            self._send(
                self.backend,
                ident,
                P.error_message(
                    rid,
                    "mvbridge.errors.MVBridgeError",
                    "the host of this session is not connected; its callbacks cannot be called now",
                ),
            )

    def _worker_control(self, worker: PoolWorker, sid: bytes, frame: bytes) -> None:
        try:
            kind, rid, payload = P.unpack(frame)
        except Exception:
            logger.warning("worker %d sent a malformed control message", worker.index)
            return
        if not sid:
            if kind == P.UP:
                worker.facts = payload
                logger.info(
                    "worker %d up (pid %d, Python %s)",
                    worker.index,
                    worker.process.pid,
                    payload.get("python"),
                    extra={"event": "worker-up", "worker": worker.index},
                )
                waiting, self._waiting_hellos = self._waiting_hellos, []
                for _since, *hello in waiting:
                    self._hello(*hello)
            elif rid in self._pings:
                ping = self._pings[rid]
                ping.waiting.discard(worker.ident)
                if kind == P.OK:
                    ping.stats.append(payload)
                if not ping.waiting:
                    self._answer_ping(rid)
            return
        session = self.sessions.get(sid)
        if session is None:
            return  # a reply for a session that ended meanwhile
        asked = session.open_requests.pop(rid, None)
        if asked == P.HELLO:
            if kind == P.OK:
                payload = dict(payload, max_message_size=self.options.max_message_size)
                frame = P.pack([kind, rid, payload])
                session.facts = payload
                logger.info(
                    "session %s opened from %s (%s)",
                    session.name,
                    session.peer,
                    f"key {session.user}" if session.user else "no key",
                    extra=self._extra("session-open", session),
                )
            else:
                self._end_session(session, f"refused by the worker: {payload}", quiet=True)
        elif asked == P.OPEN and kind == P.OK and isinstance(payload, list) and payload:
            ident = b"c" + sid + P.route(int(payload[0]) & 0xFFFFFFFF)
            if ident not in self._ready:
                self._held[ident] = (time.monotonic(), [frame])
                return
        self._to_client(sid, P.CONTROL_ROUTE, [frame])

    def _release_open(self, ident: bytes) -> None:
        held = self._held.pop(ident, None)
        if held is not None:
            sid = ident[1 : -P.ROUTE_SIZE]
            self._to_client(sid, P.CONTROL_ROUTE, held[1])

    def _forward_control(self, session: ServiceSession, kind: int, rid: int, payload: Any) -> None:
        if rid:
            session.open_requests[rid] = kind
        self._send(
            self.backend,
            session.worker.ident,
            [session.sid, P.pack([kind, rid, payload])],
        )

    # -- sessions: liveness and the end ---------------------------------------------------------
    def _check_clients(self, now: float) -> None:
        timeout = self.options.session_timeout
        probe_after = min(1.0, timeout / 4)
        for session in list(self.sessions.values()):
            if session.gone_since is None and now - session.last_seen < probe_after:
                continue
            if self._notice(session.sid, P.NOTICE_PROBE, ""):
                if session.seen(now):
                    logger.info(
                        "session %s: client is back",
                        session.name,
                        extra=self._extra("client-back", session),
                    )
                continue
            if session.gone_since is None:
                session.gone_since = now
                logger.info(
                    "session %s: client disconnected; the session is kept for %g s",
                    session.name,
                    timeout,
                    extra=self._extra("client-gone", session),
                )
                for route, rid in session.waiting_workers():
                    self._send(
                        self.backend,
                        b"c" + session.sid + route,
                        P.error_message(
                            rid,
                            "mvbridge.errors.MVBridgeError",
                            "the host of this session disconnected during this callback",
                        ),
                    )
                    session.forget_route(route)
            elif now - session.gone_since >= timeout:
                self._forward_control(session, P.BYE, 0, None)
                self._end_session(session, f"expired: its client was gone for {timeout:g} s")

    def _reap(self, now: float) -> None:
        for worker, code in self.pool.reap(now):
            self._worker_died(worker, code)

    def _end_session(self, session: ServiceSession, why: str, quiet: bool = False) -> None:
        self.sessions.pop(session.sid, None)
        session.worker.sessions.discard(session.sid)
        prefix = b"c" + session.sid
        for ident in [i for i in self._ready if i.startswith(prefix)]:
            self._ready.discard(ident)
        for ident in [i for i in self._held if i.startswith(prefix)]:
            del self._held[ident]
        log = logger.debug if quiet else logger.info
        log(
            "session %s ended: %s",
            session.name,
            why,
            extra=self._extra("session-end", session, reason=why),
        )

    def _worker_died(self, worker: PoolWorker, code: int) -> None:
        from ..bridge.supervisor import describe_exit

        how = describe_exit(code)
        lost = [self.sessions[sid] for sid in worker.sessions if sid in self.sessions]
        logger.error(
            "worker %d (pid %d) %s; %d session(s) lost",
            worker.index,
            worker.process.pid,
            how,
            len(lost),
            extra={"event": "worker-died", "worker": worker.index, "exit_code": code},
        )
        for session in lost:
            self._notice(session.sid, P.NOTICE_SESSION_LOST, f"lost the session: its worker {how}")
            self._end_session(session, f"its worker {how}")

    # -- pings ----------------------------------------------------------------------------------
    def _ping(self, sid: bytes, rid: int) -> None:
        self._ping_ids += 1
        token = self._ping_ids
        up = [w for w in self.pool.workers.values() if w.up]
        ping = _Ping(sid, rid, time.monotonic() + PING_WAIT, {w.ident for w in up})
        self._pings[token] = ping
        for worker in up:
            self._send(self.backend, worker.ident, [b"", P.pack([P.SERVER_STATS, token, None])])
        if not up:
            self._answer_ping(token)

    def _answer_ping(self, token: int) -> None:
        ping = self._pings.pop(token, None)
        if ping is None:
            return
        workers = [w for w in self.pool.workers.values() if w.up]
        facts = dict(self.options.facts)
        if workers and not facts.get("python"):
            facts["python"] = workers[0].facts.get("python") if workers[0].facts else None
        facts.update(
            {
                "address": self.options.address,
                "secure": self.secure,
                "mvbridge": __version__,
                "protocol": P.PROTOCOL_VERSION,
                "pid": os.getpid(),
                "pids": self.pool.pids(),
                "workers": self.pool.size,
                "workers_up": len(workers),
                "sessions": len(self.sessions),
                "objects": sum(s.get("objects", 0) for s in ping.stats),
                "threads": threading.active_count() + sum(s.get("threads", 0) for s in ping.stats),
                "fds": _fd_count() + sum(max(0, s.get("fds", 0)) for s in ping.stats),
                "calls_in_flight": self._calls_in_flight(),
                "uptime": round(time.monotonic() - self.started, 3),
                "draining": self.draining_since is not None,
                "worker_stats": sorted(ping.stats, key=lambda s: s.get("pid", 0)),
            }
        )
        self._reply(ping.sid, P.OK, ping.rid, facts)

    # -- refusals -------------------------------------------------------------------------------
    def _malformed(self, sid: bytes, frames: list[Any], why: str) -> None:
        logger.warning(
            "rejected a malformed message (%d frame(s)) from session %s: %s",
            len(frames),
            short(sid),
            why,
            extra={"event": "malformed", "session": short(sid)},
        )

    def _oversized(
        self, sid: bytes, route: bytes, body: list[Any], size: int, ident: bytes | None = None
    ) -> None:
        """Refuse a message over the limit; a request gets an error on the connection it came
        on (``ident``: a channel's own connection, else the session's)."""
        limit = self.options.max_message_size
        logger.warning(
            "rejected a message of %d bytes from session %s: over --max-message-size (%d)",
            size,
            short(sid),
            limit,
            extra={"event": "oversized", "session": short(sid), "size": size},
        )
        header = P.peek_header(body[0].buffer) if route != P.CONTROL_ROUTE else None
        if header is not None and header[0] == P.REQUEST:
            self._out(
                [ident] if ident is not None else [sid, route],
                P.error_message(
                    header[1],
                    "mvbridge.errors.ProtocolError",
                    f"a message of {size} bytes is over the service's limit of {limit} bytes "
                    "(mvbridge spawn --max-message-size)",
                ),
            )

    def _monitor_events(self) -> None:
        assert self.monitor is not None
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind, value = event["event"], int(event["value"])
            if kind == zmq.EVENT_ACCEPTED:
                self._peers[value] = _peer_of(value)
            elif kind in (
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
            ):
                self._refused = "the handshake failed (a client without CurveZMQ, or with a "
                self._refused += "different server key)" if self.secure else "CurveZMQ client)"
            elif kind == zmq.EVENT_DISCONNECTED:
                peer = self._peers.pop(value, "an unknown address")
                if self._refused is not None:
                    logger.warning(
                        "refused a client from %s: %s",
                        peer,
                        self._refused,
                        extra={"event": "client-refused", "peer": peer},
                    )
                    self._refused = None

    def _extra(self, event: str, session: ServiceSession, **more: Any) -> dict[str, Any]:
        return {"event": event, "session": session.name, "peer": session.peer, **more}


def _peer_of(fd: int) -> str:
    """The peer address of a connection the monitor saw accepted (it may be gone already)."""
    with contextlib.suppress(OSError):
        dup = os.dup(fd)
        with stdlib_socket.socket(fileno=dup) as sock:
            host, port = sock.getpeername()[:2]
            return f"{plain_address(host)}:{port}"
    return "an unknown address"


def _fd_count() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def private_backend() -> tuple[str, Path]:
    """An ipc endpoint in a new 0700 folder: only this user's processes reach the workers."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mvb-svc-"))
    return f"ipc://{folder}/backend", folder
