"""The service's log: one line per event on stderr, as text or as JSON for log collectors.

Internal. Records carry an ``event`` name (``session-open``, ``client-refused``,
``worker-died`` ...) and context (``session``, ``peer``, ``worker``) as ``extra`` fields; the
JSON format puts them in the object, the text format in the message. The workers' own output
passes through as it is in text mode, and as ``worker-output`` records in JSON mode. The
workers' log records (loggers ``mvbridge.worker.<env>...``, see ``bridge/records.py``) go to
the same log at their own level, naming their logger; their warnings as WARNING records of
``mvbridge.worker.<env>`` (no caller is there for the warnings machinery to warn).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER = "mvbridge.service"
WORKER_LOGGER = "mvbridge.worker"  # bridge/records.py replays worker records under it
_CONTEXT = (
    "event",
    "session",
    "peer",
    "worker",
    "key",
    "reason",
    "exit_code",
    "size",
    "stream",
    "worker_logger",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, pid, and the event's context."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.name != LOGGER:
            entry["logger"] = record.name
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:  # a worker's record: its traceback as text
            entry["traceback"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s mvbridge[%(process)d] %(levelname)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        if record.name != LOGGER:  # a worker's record (or a warning): say whose
            head, _, message = text.partition(f" {record.levelname} ")
            text = f"{head} {record.levelname} [{record.name}] {message}"
        return text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z"


def plain_address(address: str) -> str:
    """An IPv4 client as ``127.0.0.1``, not as the IPv4-mapped ``::ffff:127.0.0.1`` that a
    dual-stack (IPv6) socket reports."""
    if address.startswith("::ffff:") and "." in address:
        return address[len("::ffff:") :]
    return address


def configure(level: str, fmt: str) -> logging.Logger:
    """Send the service's records to stderr at ``level`` in ``fmt`` ("text" or "json")."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    logging.getLogger(LOGGER + ".zap").setLevel(logging.WARNING)
    # The workers' records and warnings: in the service's log too, filtered by its level.
    workers = logging.getLogger(WORKER_LOGGER)
    workers.handlers[:] = [handler]
    workers.setLevel(level.upper())
    workers.propagate = False
    return logger


def worker_output_sink(fmt: str) -> Any:
    """How workers' stdout/stderr reach the service's: as they are, or as JSON records."""
    if fmt != "json":
        return None
    logger = logging.getLogger(LOGGER)

    def sink(stream: str, text: str, pid: int) -> None:
        for line in text.splitlines():
            logger.info(line, extra={"event": "worker-output", "stream": stream, "worker": pid})

    return sink
