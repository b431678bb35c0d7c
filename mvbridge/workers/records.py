"""Send the worker's ``logging`` records and warnings to the host, as lines on stderr.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Each record is one line ``protocol.RECORD_PREFIX`` + JSON, written with a single ``os.write``
so that it is not interleaved with the user's own output; the host's stderr forwarder turns
it into a ``logging`` record or a ``warnings.warn_explicit`` call and prints everything else as
it is. A handler on the worker's root logger forwards what passes the worker's logger levels
(root: WARNING, as Python's default, unless worker code lowers it). Every warning is forwarded
(the worker shows them all): the host's own filters decide what is shown, ignored or raised.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import Any

from ..core import protocol as P

_STDERR_FD = 2


def _emit(entry: dict[str, Any]) -> None:
    line = P.RECORD_PREFIX + json.dumps(entry, default=str) + "\n"
    data = line.encode("utf-8", "replace")
    try:
        sys.stderr.flush()  # the user's text written before this record comes first
    except Exception:
        pass
    while data:
        try:
            written = os.write(_STDERR_FD, data)
        except OSError:
            return  # the host is gone; nothing to tell
        data = data[written:]


class ForwardHandler(logging.Handler):
    """Writes each record it handles to the host as one line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = {
                "kind": "log",
                "name": record.name,
                "level": record.levelno,
                "message": record.getMessage(),
                "created": record.created,
                "pathname": record.pathname,
                "lineno": record.lineno,
                "func": record.funcName,
                "thread": record.threadName,
            }
            if record.exc_info:
                entry["exc_text"] = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                entry["exc_text"] = record.exc_text
            if record.stack_info:
                entry["stack_info"] = record.stack_info
            _emit(entry)
        except Exception:
            self.handleError(record)


def _show_warning(
    message: Any,
    category: type,
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    _emit(
        {
            "kind": "warning",
            "module": category.__module__,
            "category": category.__qualname__,
            "message": str(message),
            "filename": filename,
            "lineno": lineno,
        }
    )


_HANDLER = ForwardHandler()


def install() -> None:
    """Forward this process's log records and warnings to the host from now on."""
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)
    # Worker code that configures logging itself (basicConfig without force=True does nothing
    # once the root has a handler) gets its configuration: ours steps aside for it.
    original = logging.basicConfig

    def basic_config(**kwargs: Any) -> None:
        if root.handlers == [_HANDLER]:
            root.removeHandler(_HANDLER)
        original(**kwargs)

    basic_config.__doc__ = original.__doc__
    logging.basicConfig = basic_config  # type: ignore[assignment]
    warnings.showwarning = _show_warning
    if not sys.warnoptions:  # -W or PYTHONWARNINGS in the env: the user's choice stands
        warnings.simplefilter("always")
