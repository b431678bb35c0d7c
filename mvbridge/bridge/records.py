"""Replay a worker's log records and warnings in this process; pass its other output through.

Internal. A worker writes each ``logging`` record and warning as one line on its stderr,
``protocol.RECORD_PREFIX`` + JSON (``mvbridge/workers/records.py``). ``RecordReader`` sits
between the worker's stderr pipe and wherever its output goes: it hands every other byte on
unchanged and turns records into

* ``logging`` records of the logger ``mvbridge.worker.<env>`` (the worker's root logger) or
  ``mvbridge.worker.<env>.<worker logger name>``, with the worker's level, message, time,
  file, line, thread and traceback text, and ``env``, ``worker`` (its pid) and
  ``worker_logger`` as extra attributes; a record below the host logger's level is dropped;
* ``warnings.warn_explicit`` calls with the worker's category where the host has that class
  (a builtin one, or one of a module the host has imported), else ``UserWarning`` with the
  category's name in the message, so the host's warning filters decide.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

from ..core import protocol as P

logger = logging.getLogger(__name__)

WORKER_LOGGER = "mvbridge.worker"
_PREFIX = P.RECORD_PREFIX


class RecordReader:
    """Splits a worker's stderr text into output (handed to ``write``) and records (replayed)."""

    def __init__(
        self,
        env_name: str,
        pid: int,
        write: Callable[[str], None] | None = None,
        log_warnings: bool = False,
    ) -> None:
        """Read the stderr of worker ``pid`` of env ``env_name``.

        Args:
            write: takes the worker's output (the forwarder sets it when it starts).
            log_warnings: replay warnings as WARNING records of ``mvbridge.worker.<env>``, not
                through ``warnings`` (a service: no caller is there to see them).
        """
        self.env_name = env_name
        self.pid = pid
        self.write: Callable[[str], None] = write or _discard
        self.log_warnings = log_warnings
        self._pending = ""
        self._registry: dict[Any, Any] = {}  # warn_explicit's once-per-location memory

    def feed(self, text: str) -> None:
        """Take the next piece of the worker's stderr."""
        text = self._pending + text
        self._pending = ""
        while text:
            start = text.find(_PREFIX)
            if start < 0:
                keep = _partial_prefix(text)  # a record may start at the end of this piece
                out, self._pending = text[: len(text) - keep], text[len(text) - keep :]
                if out:
                    self.write(out)
                return
            if start:
                self.write(text[:start])
            end = text.find("\n", start)
            if end < 0:
                self._pending = text[start:]  # the rest of the record is still on its way
                return
            self._replay(text[start + len(_PREFIX) : end])
            text = text[end + 1 :]

    def close(self) -> None:
        """The worker's stderr ended: what is left is output."""
        if self._pending:
            self.write(self._pending)
            self._pending = ""

    def _replay(self, line: str) -> None:
        try:
            entry = json.loads(line)
        except ValueError:
            self.write(line + "\n")
            return
        try:
            if entry.get("kind") == "log":
                self._log(entry)
            elif entry.get("kind") == "warning":
                self._warn(entry)
        except Exception:
            logger.exception("could not replay a record of env %r's worker", self.env_name)

    def _log(self, entry: dict[str, Any]) -> None:
        name = entry.get("name") or "root"
        target = logging.getLogger(
            f"{WORKER_LOGGER}.{self.env_name}"
            if name == "root"
            else f"{WORKER_LOGGER}.{self.env_name}.{name}"
        )
        level = int(entry.get("level", logging.WARNING))
        if not target.isEnabledFor(level):
            return
        record = target.makeRecord(
            target.name,
            level,
            str(entry.get("pathname", "?")),
            int(entry.get("lineno", 0)),
            str(entry.get("message", "")),
            None,
            None,
            func=entry.get("func"),
            extra={"env": self.env_name, "worker": self.pid, "worker_logger": name},
            sinfo=entry.get("stack_info"),
        )
        created = entry.get("created")
        if isinstance(created, (int, float)):
            record.created = created
            record.msecs = (created - int(created)) * 1000
        record.process = self.pid
        record.threadName = entry.get("thread") or record.threadName
        record.exc_text = entry.get("exc_text")
        target.handle(record)

    def _warn(self, entry: dict[str, Any]) -> None:
        module_name = str(entry.get("module", "builtins"))
        qualname = str(entry.get("category", "UserWarning"))
        message = str(entry.get("message", ""))
        category = host_category(module_name, qualname)
        if self.log_warnings:
            self._log(
                {
                    "name": "root",
                    "level": logging.WARNING,
                    "message": f"{module_name}.{qualname}: {message}",
                    "pathname": entry.get("filename", "?"),
                    "lineno": entry.get("lineno", 0),
                }
            )
            return
        if category is None:
            category_name = qualname if module_name == "builtins" else f"{module_name}.{qualname}"
            category = UserWarning
            message = f"{category_name}: {message}"
        try:
            warnings.warn_explicit(
                message,
                category,
                str(entry.get("filename", "?")),
                int(entry.get("lineno", 0)),
                registry=self._registry,
            )
        except Exception as exc:
            # A filter made it an error, but no caller is there to raise it to: this thread
            # only reads the worker's output. Say so in the log instead.
            logging.getLogger(f"{WORKER_LOGGER}.{self.env_name}").warning(
                "a warning of env %r's worker became an error by this process's warning "
                "filters: %s: %s",
                self.env_name,
                type(exc).__name__,
                exc,
            )


def host_category(module_name: str, qualname: str) -> type[Warning] | None:
    """The host's warning class ``qualname`` of ``module_name``, if the host has that module
    loaded (a module is never imported for this: it would run the host's version's code)."""
    module = sys.modules.get(module_name)
    if module is None:
        return None
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, type) and issubclass(found, Warning):
        return found
    return None


def _discard(text: str) -> None:
    pass


def _partial_prefix(text: str) -> int:
    """How many characters at the end of ``text`` could be the start of a record prefix."""
    for size in range(min(len(_PREFIX) - 1, len(text)), 0, -1):
        if _PREFIX.startswith(text[-size:]):
            return size
    return 0
