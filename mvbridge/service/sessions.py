"""One client session of a service: its worker, its calls in flight, its liveness.

Internal. The router keeps one ``ServiceSession`` per session id (the client's ZeroMQ routing
id). A session is *connected* while the router can reach its client; once the client has been
unreachable for the session timeout, the session ends and its worker drops its objects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import protocol as P

if TYPE_CHECKING:  # pragma: no cover
    from .pool import PoolWorker


def short(sid: bytes) -> str:
    """A session id for logs: its last 6 bytes (random for mvbridge's hosts) tell sessions apart."""
    return sid[-6:].hex()


@dataclass
class ServiceSession:
    """The router's record of one session.

    Attributes:
        sid: the client's routing id, which names the session.
        user: the client's CURVE public key (z85), or None on an insecure service.
        peer: the client's address as ZeroMQ reports it.
        worker: the pool worker holding the session's objects.
        facts: the worker's HELLO reply, repeated to a client that resumes.
        stacks: per route, the requests in flight as ``(from_worker, request id)``, innermost
            last (callbacks nest on a channel).
        last_seen: when the client was last heard from, or reached by a probe.
        gone_since: when the client was first found unreachable, or None while it is there.
        open_requests: request id -> kind of the control requests forwarded to the worker.
        direct: routes of the channels that came on a connection of their own (replies go
            there, not on the session's connection).
    """

    sid: bytes
    user: str | None
    peer: str
    worker: PoolWorker
    facts: dict[str, Any] = field(default_factory=dict)
    stacks: dict[bytes, list[tuple[bool, int]]] = field(default_factory=dict)
    last_seen: float = field(default_factory=time.monotonic)
    gone_since: float | None = None
    open_requests: dict[int, int] = field(default_factory=dict)
    opened_at: float = field(default_factory=time.monotonic)
    direct: set[bytes] = field(default_factory=set)

    @property
    def name(self) -> str:
        return short(self.sid)

    def seen(self, now: float) -> bool:
        """The client was heard from; True if it had been unreachable until now."""
        self.last_seen = now
        was_gone = self.gone_since is not None
        self.gone_since = None
        return was_gone

    def track(self, route: bytes, from_worker: bool, kind: int, rid: int) -> None:
        """Count a channel message passing through: requests push, replies pop."""
        if kind == P.REQUEST:
            self.stacks.setdefault(route, []).append((from_worker, rid))
        elif kind in (P.REPLY, P.ERROR):
            stack = self.stacks.get(route)
            if stack:
                stack.pop()
                if not stack:
                    del self.stacks[route]

    def busy(self, route: bytes) -> bool:
        """True while a call is in flight on ``route``."""
        return bool(self.stacks.get(route))

    def calls_in_flight(self) -> int:
        """Outermost calls in flight (a callback inside a call does not count twice)."""
        return len(self.stacks)

    def waiting_workers(self) -> list[tuple[bytes, int]]:
        """(route, request id) of worker requests (callbacks) that wait for this client now."""
        waiting = []
        for route, stack in self.stacks.items():
            from_worker, rid = stack[-1]
            if from_worker:
                waiting.append((route, rid))
        return waiting

    def forget_route(self, route: bytes) -> None:
        self.stacks.pop(route, None)
