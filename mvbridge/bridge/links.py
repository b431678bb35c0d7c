"""How a host session reaches its worker: the interface both transports implement.

Internal. ``local_link.LocalLink`` runs a worker process of ours over ipc; ``service_link.
ServiceLink`` connects to a ``mvbridge spawn`` service over one TCP connection. A session
(``client.HostSession``) uses only what is here, so everything above the socket is shared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import zmq

from ..errors import WorkerStartError

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostSession
    from .supervisor import WorkerProcess


class Link:
    """One session's way to its worker. Subclasses fill in the transport."""

    process: WorkerProcess | None = None  # a local worker process, if there is one
    pid: int | None = None  # the worker's pid, when known
    epoch = 0  # counts connection drops: a call sent in an older epoch may have lost its reply
    fast = True  # nothing to check before a request (connected, nothing to resume)
    control_socket: zmq.Socket
    address = ""

    # -- start --------------------------------------------------------------------------------
    def hello_extras(self) -> dict[str, Any]:
        """Fields this transport adds to HELLO (shared memory, callback endpoint)."""
        return {}

    def wait_connected(self, timeout: float) -> None:
        """Return once a HELLO can be sent (a service connection is up)."""

    def check_starting(self) -> None:
        """Raise ``WorkerStartError`` if the worker can no longer answer the handshake."""

    def start_timeout_error(self, timeout: float) -> WorkerStartError:
        return WorkerStartError(
            f"{self.describe()} did not answer the handshake within {timeout:.0f} s",
            exit_code=None,
            stderr_tail="",
        )

    def attach(self, session: HostSession) -> None:
        """The session is up: route what arrives for it (reverse channels, notices)."""

    # -- channels -----------------------------------------------------------------------------
    def channel_socket(self, cid: int, endpoint: str | None) -> zmq.Socket:
        """A connected DEALER for the channel the worker opened as ``cid`` at ``endpoint``."""
        raise NotImplementedError

    def start_callbacks(self) -> None:
        """Get ready for reverse channels (the worker was given a host object)."""

    def reverse_socket(self, route: bytes) -> zmq.Socket:
        """A connected DEALER for serving reverse channel ``route``."""
        raise NotImplementedError

    # -- liveness -----------------------------------------------------------------------------
    def lost(self) -> tuple[str, int | None] | None:
        """(how, exit code) if the worker or the session has gone for good, else None."""
        return None

    def dropped(self, epoch: int) -> str | None:
        """Why a call sent in connection epoch ``epoch`` lost its reply, else None."""
        return None

    def ready(self, session: HostSession) -> bool:
        """Make the session usable again after a drop (reconnect, resume); False if it is gone."""
        return True

    # -- words --------------------------------------------------------------------------------
    def describe(self) -> str:
        """'the worker of env X' or 'the service of env X at ADDR', for messages."""
        raise NotImplementedError

    def who(self, python: str) -> str:
        """The worker, named for an error message: 'the worker of env X (pid N, Python V)'."""
        return f"{self.describe()} (pid {self.pid}, Python {python})"

    def next_steps(self) -> str:
        """What the next call does after a failure, for messages."""
        raise NotImplementedError

    # -- the end ------------------------------------------------------------------------------
    def end(self, said_goodbye: bool) -> int | None:
        """End the session on the worker's side; a local worker's exit code."""
        return None

    def close(self) -> None:
        """Close every socket and thread of the link (idempotent)."""
