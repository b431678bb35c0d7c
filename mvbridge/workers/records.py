"""Send the worker's ``logging`` records and warnings to the host, as lines on stderr.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Each record is one line ``protocol.RECORD_PREFIX`` + JSON, written with a single ``os.write``
so that it is not interleaved with the user's own output; the host's stderr forwarder turns
it into a ``logging`` record or a ``warnings.warn_explicit`` call and prints everything else as
it is. A handler on the worker's root logger forwards what passes the worker's logger levels
(root: WARNING, as Python's default, unless worker code lowers it). Every warning is forwarded
(the worker shows them all): the host's own filters decide what is shown, ignored or raised.

``logging`` is not imported for this: the handler goes on the root logger once something imports
it (at once if it already has), which saves a worker that never logs 4-7 ms of its start-up.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any, Callable

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


def install() -> None:
    """Forward this process's log records and warnings to the host from now on."""
    warnings.showwarning = _show_warning
    if not sys.warnoptions:  # -W or PYTHONWARNINGS in the env: the user's choice stands
        warnings.simplefilter("always")
    if "logging" in sys.modules:
        _forward_logging()
    else:
        sys.meta_path.insert(0, _WhenImported("logging", _forward_logging))


def _forward_logging() -> None:
    """Put the forwarding handler on the root logger (``logging`` is imported by now)."""
    import logging

    global _handler
    if _handler is None:
        _handler = _forward_handler(logging)
    handler = _handler
    root = logging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    # Worker code that configures logging itself (basicConfig without force=True does nothing
    # once the root has a handler) gets its configuration: ours steps aside for it.
    original = logging.basicConfig

    def basic_config(**kwargs: Any) -> None:
        if root.handlers == [handler]:
            root.removeHandler(handler)
        original(**kwargs)

    basic_config.__doc__ = original.__doc__
    logging.basicConfig = basic_config  # type: ignore[assignment]


_handler: Any = None


def _forward_handler(logging: Any) -> Any:
    """A ``logging.Handler`` that writes each record it handles to the host as one line."""

    class ForwardHandler(logging.Handler):  # type: ignore[name-defined,misc]
        def emit(self, record: Any) -> None:
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

    return ForwardHandler()


class _WhenImported:
    """A ``sys.meta_path`` entry that calls ``then`` right after module ``name`` is first
    imported, whoever imports it, and then leaves ``sys.meta_path``."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        import importlib.util

        spec = importlib.util.find_spec(fullname)  # the finders after us, as without us
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenLoader(spec.loader, self.then)
        return spec


class _ThenLoader:
    """Loads as ``loader`` does, then calls ``then``."""

    def __init__(self, loader: Any, then: Callable[[], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            self.then()
        except Exception:  # forwarding is a courtesy: never fail the user's import over it
            pass

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self.loader, name)
