"""mvbridge: use conflicting versions of a dependency from one application.

Each conflicting dependency runs in its own worker interpreter inside its own environment; this
process uses it through proxies that forward every call over ZeroMQ.

This file is also imported inside workers (Python 3.8+): it stays light and loads the host half
lazily (PEP 562).
"""

from __future__ import annotations

from typing import Any

from .errors import (
    CallTimeoutError,
    ConfigError,
    EnvBuildError,
    MVBridgeError,
    NestingError,
    ProtocolError,
    RemoteError,
    SerializationError,
    StaleReferenceError,
    WorkerDiedError,
    WorkerStartError,
)

__version__ = "0.1.0"

__all__ = [
    "CallTimeoutError",
    "ConfigError",
    "Env",
    "EnvBuildError",
    "EnvInfo",
    "EnvState",
    "EnvStatistics",
    "MVBridgeError",
    "NestingError",
    "ProtocolError",
    "RemoteError",
    "RemoteObject",
    "SerializationError",
    "StaleReferenceError",
    "WorkerDiedError",
    "WorkerStartError",
    "__version__",
    "aio",
    "by_ref",
    "by_value",
    "deadline",
    "env",
    "shutdown",
]

_LAZY = {
    "Env": "mvbridge.bridge.env",
    "EnvInfo": "mvbridge.bridge.env",
    "EnvState": "mvbridge.bridge.env",
    "EnvStatistics": "mvbridge.bridge.env",
    "env": "mvbridge.bridge.env",
    "shutdown": "mvbridge.bridge.env",
    "deadline": "mvbridge.bridge.client",
    "RemoteObject": "mvbridge.core.remote",
    "aio": "mvbridge.bridge.aio",
}


def by_value(value: Any) -> Any:
    """Mark ``value`` to cross to the other side by value (pickled), whatever the rules say.

    Raises (when sent):
        SerializationError: the value cannot be pickled, or not rebuilt on the other side.
    """
    from .core.codec import ByValue

    return ByValue(value)


def by_ref(value: Any) -> Any:
    """Mark ``value`` to cross as a reference: the other side gets a proxy of this object."""
    from .core.codec import ByRef

    return ByRef(value)


def __getattr__(name: str) -> Any:
    import importlib

    module_name = _LAZY.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
        globals()[name] = value
        return value
    if name.startswith("_"):
        raise AttributeError("module 'mvbridge' has no attribute %r" % name)
    # ``from mvbridge import dep_a``: a module exposed by an env of mvbridge.toml. A name no
    # env exposes is an AttributeError here (hasattr/getattr with a default keep working); the
    # import statement then asks the finder again and reports ModuleNotFoundError with details.
    try:
        return importlib.import_module("mvbridge." + name)
    except ModuleNotFoundError as exc:
        raise AttributeError(str(exc)) from None


class _EnvModuleFinder:
    """Finds ``mvbridge.<module of an env>``; last on sys.meta_path, loads the host half lazily."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith("mvbridge.") or fullname.split(".")[1].startswith("_"):
            return None
        try:
            from .bridge.importer import Finder
        except ImportError:  # inside a worker: the host half is not there
            return None
        return Finder().find_spec(fullname, path, target)


def _install_finder() -> None:
    import os
    import sys

    # A worker's runtime has no host half: there, importing it to look for env modules would
    # ask this finder again, without end (RecursionError instead of ImportError).
    if not os.path.isdir(os.path.join(os.path.dirname(__file__), "bridge")):
        return
    if not any(type(f).__name__ == "_EnvModuleFinder" for f in sys.meta_path):
        sys.meta_path.append(_EnvModuleFinder())


_install_finder()


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
