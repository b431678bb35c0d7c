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
    "ProtocolError",
    "RemoteError",
    "SerializationError",
    "StaleReferenceError",
    "WorkerDiedError",
    "WorkerStartError",
    "__version__",
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
}


def by_value(value: Any) -> Any:
    """Mark ``value`` to cross to the other side by value (pickled), whatever the rules say.

    Raises (when sent):
        SerializationError: the value cannot be pickled, or not rebuilt on the other side.
    """
    from .codec import ByValue

    return ByValue(value)


def by_ref(value: Any) -> Any:
    """Mark ``value`` to cross as a reference: the other side gets a proxy of this object."""
    from .codec import ByRef

    return ByRef(value)


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError("module 'mvbridge' has no attribute %r" % name)
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
