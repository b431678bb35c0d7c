"""``mvbridge ping ADDR``: is a service up, how fast does it answer, what does it hold.

Internal; ``cli.py`` prints the result. A ping opens no session: the service answers PING on
its control route with its facts, which a health probe (systemd, a Kubernetes readiness probe)
reads from the exit code or ``--json``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from ..bridge.keys import ClientKeys
from ..bridge.mux import close_monitored, monitor_of
from ..bridge.service_link import HANDSHAKE_FAILED, REFUSED_KEY
from ..core import protocol as P
from ..errors import MVBridgeError

_REFUSED = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: REFUSED_KEY,
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: HANDSHAKE_FAILED,
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: HANDSHAKE_FAILED,
}


def ping(address: str, keys: ClientKeys | None, timeout: float) -> dict[str, Any]:
    """The service's facts plus ``rtt_ms`` and ``connect_ms``.

    Raises:
        MVBridgeError: no answer within ``timeout`` seconds, or the handshake was refused.
    """
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.IMMEDIATE, 1)
    dealer.setsockopt(zmq.ROUTING_ID, b"p" + os.urandom(15))
    dealer.setsockopt(zmq.IPV6, 1)
    if keys is not None:
        dealer.curve_serverkey = keys.server_public
        dealer.curve_publickey = keys.public
        dealer.curve_secretkey = keys.secret
    monitor = monitor_of(
        context,
        dealer,
        zmq.EVENT_HANDSHAKE_SUCCEEDED
        | zmq.EVENT_HANDSHAKE_FAILED_AUTH
        | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
    )
    started = time.monotonic()
    give_up = started + timeout
    try:
        try:
            dealer.connect(address)
        except zmq.ZMQError as exc:
            raise MVBridgeError(
                f"{address}: not a valid address ({exc}); give tcp://HOST:PORT"
            ) from exc
        _wait_handshake(monitor, address, give_up)
        connect_ms = (time.monotonic() - started) * 1000
        facts = _ask(dealer, address, 1, give_up)
        sent = time.perf_counter()
        facts = _ask(dealer, address, 2, give_up)
        facts["rtt_ms"] = round((time.perf_counter() - sent) * 1000, 3)
        facts["connect_ms"] = round(connect_ms, 3)
        return facts
    finally:
        close_monitored(dealer, monitor)


def _wait_handshake(monitor: zmq.Socket, address: str, give_up: float) -> None:
    while True:
        left = give_up - time.monotonic()
        if left <= 0:
            raise MVBridgeError(f"{address}: down (no connection within the timeout)")
        if not monitor.poll(int(left * 1000) + 1):
            continue
        event = recv_monitor_message(monitor)
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            return
        if event["event"] in _REFUSED:
            raise MVBridgeError(f"{address}: refused: {_REFUSED[event['event']]}")


def _ask(dealer: zmq.Socket, address: str, rid: int, give_up: float) -> dict[str, Any]:
    try:
        dealer.send_multipart([P.CONTROL_ROUTE, P.pack([P.PING, rid, None])], zmq.NOBLOCK)
    except zmq.ZMQError as exc:
        raise MVBridgeError(f"{address}: the connection dropped ({exc})") from exc
    while True:
        left = give_up - time.monotonic()
        if left <= 0 or not dealer.poll(max(1, int(left * 1000))):
            raise MVBridgeError(f"{address}: connected, but no answer within the timeout")
        frames = dealer.recv_multipart()
        if len(frames) != 2 or frames[0] != P.CONTROL_ROUTE:
            continue
        kind, reply_id, payload = P.unpack(frames[1])
        if kind == P.OK and reply_id == rid and isinstance(payload, dict):
            return payload
        if kind == P.FAIL and reply_id == rid:
            raise MVBridgeError(f"{address}: the service refused the ping: {payload}")


def describe(facts: dict[str, Any]) -> str:
    """The text ``mvbridge ping`` prints."""
    versions = " ".join(f"{d}=={v}" for d, v in sorted(facts.get("versions", {}).items()))
    lines = [
        f"{facts.get('address')}: up, round trip {facts.get('rtt_ms')} ms",
        f"  env {facts.get('env')!r}, Python {facts.get('python')}, mvbridge "
        f"{facts.get('mvbridge')} (protocol {facts.get('protocol')}), "
        + ("CurveZMQ on" if facts.get("secure") else "INSECURE"),
        f"  workers {facts.get('workers_up')}/{facts.get('workers')} up (pids "
        f"{', '.join(map(str, facts.get('pids', [])))}), sessions {facts.get('sessions')}, "
        f"objects {facts.get('objects')}, calls in flight {facts.get('calls_in_flight')}, "
        f"uptime {_duration(facts.get('uptime', 0))}"
        + (", DRAINING" if facts.get("draining") else ""),
    ]
    if versions:
        lines.append(f"  versions: {versions}")
    if facts.get("modules"):
        lines.append(f"  modules: {', '.join(facts['modules'])}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return " ".join(f"{n}{unit}" for n, unit in parts if n)
