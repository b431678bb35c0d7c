"""CurveZMQ client authentication for a service: pyzmq's ``zmq.auth``, logging each refusal.

Internal. The allowed clients are the ``*.key`` public keys in one folder (``--allow``), re-read
on SIGHUP. A refused client never gets a session, nor a byte to the decoder: the CurveZMQ
handshake fails before any message reaches the router.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

from .logs import plain_address

logger = logging.getLogger("mvbridge.service")


class ClientAuth(ThreadAuthenticator):
    """Accepts the CurveZMQ clients whose public keys are in ``allow_dir``."""

    def __init__(self, context: zmq.Context, allow_dir: Path) -> None:
        # pyzmq's own messages (every ZAP request at debug level) go to a logger of their own.
        super().__init__(context, log=logging.getLogger("mvbridge.service.zap"))
        self.allow_dir = allow_dir
        self._request: tuple[str, str] = ("?", "?")

    def start(self) -> None:
        super().start()
        self.reload()

    def reload(self) -> int:
        """Re-read the allowed keys; return how many there are."""
        self.configure_curve(domain="*", location=str(self.allow_dir))
        return len(self.certs.get("*", {}))

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # ZAP frames: version, request id, domain, address, routing id, mechanism, credentials
        address = plain_address(msg[3].decode("utf-8", "replace")) if len(msg) > 3 else "?"
        key = "-"
        if len(msg) > 6 and msg[5] == b"CURVE" and len(msg[6]) == 32:
            key = z85.encode(msg[6]).decode("ascii")
        self._request = (address, key)
        await super().handle_zap_message(msg)

    def _send_zap_reply(
        self, request_id: bytes, status_code: bytes, status_text: bytes, user_id: Any = "anonymous"
    ) -> None:
        if status_code != b"200":
            address, key = self._request
            logger.warning(
                "refused a client from %s: %s (its public key %s is not in %s)",
                address,
                status_text.decode("utf-8", "replace"),
                key,
                self.allow_dir,
                extra={"event": "client-refused", "peer": address, "key": key},
            )
        super()._send_zap_reply(request_id, status_code, status_text, user_id)
