"""A KeyboardInterrupt that stops a host call reaches the worker thread running that call.

Internal. Without this, Ctrl-C returned control at once but left the remote call running, so
the next call from that thread queued behind it (30 s after an interrupted ``sleep(30)``).
``forward`` asks the worker (control ``INTERRUPT``) to raise KeyboardInterrupt in the thread
serving the call and waits up to ``INTERRUPT_GRACE`` for the call to end. Code stuck in C sees
the interrupt only when the C call returns: then the channel is dropped, as after a deadline,
and the thread's next call runs on a fresh worker thread (thread-local state of the worker is
not carried over) while the stuck one finishes on its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core import protocol as P
from ..core.peer import receive_message
from ..errors import MVBridgeError

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostChannel, HostSession

INTERRUPT_GRACE = 1.0  # seconds an interrupted call may take to end before its channel goes
CONTROL_TIMEOUT = 2.0  # for the INTERRUPT request itself
POLL_MS = 50


def forward(channel: HostChannel, rid: int) -> None:
    """Interrupt request ``rid`` of ``channel`` in the worker; keep the channel only if the
    call ended within ``INTERRUPT_GRACE`` (a second KeyboardInterrupt drops it at once)."""
    session: HostSession = channel.session  # type: ignore[assignment]
    settled = False
    try:
        try:
            # False: no call of that id runs there (any more); its reply may be on its way.
            session.control(P.INTERRUPT, [channel.cid, rid], CONTROL_TIMEOUT)
        except MVBridgeError:
            return
        settled = _wait_call_end(channel, rid, INTERRUPT_GRACE)
    finally:
        if not settled:
            channel.broken = True
            session.drop_channel(channel)


def _wait_call_end(channel: HostChannel, rid: int, grace: float) -> bool:
    """True once request ``rid``'s reply or error arrives; False after ``grace`` seconds or if
    the worker went away. Callbacks the interrupted call still makes are refused."""
    socket = channel.socket
    give_up = time.monotonic() + grace
    while True:
        left = give_up - time.monotonic()
        if left <= 0:
            return False
        if not socket.poll(min(POLL_MS, int(left * 1000) + 1)):
            try:
                channel.check_alive()
            except MVBridgeError:
                return False
            continue
        frames = receive_message(socket)
        if len(frames) == 1 and not frames[0]:
            return False  # LINK_DOWN: the connection to a service dropped
        try:
            kind, mid = channel.examine(rid, frames)
        except Exception:
            return True  # the call's error: KeyboardInterrupt, or whatever it raised
        if kind == P.REPLY:
            return True
        if kind == P.REQUEST:
            channel.send_error(
                mid, MVBridgeError("the host interrupted the call that made this callback")
            )
