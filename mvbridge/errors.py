"""The exception hierarchy of mvbridge.

Runs inside env interpreters too: Python 3.8+, stdlib only.

```
MVBridgeError
├── ConfigError           file, key, what is wrong
├── EnvBuildError         .env, .command, .returncode, .output_tail
├── WorkerStartError      .env, .exit_code, .stderr_tail
├── WorkerDiedError       .env, .pid, .exit_code, .calls_in_flight
├── StaleReferenceError   a proxy outlived the worker that held its object
├── CallTimeoutError      also a builtin TimeoutError
├── NestingError          .limit: calls between processes nested without end
├── ProtocolError         malformed message, oversized frame, protocol version mismatch
├── SerializationError    names the type; suggests by_ref() / by_value()
└── RemoteError           .type_name, .remote_traceback (the type could not be rebuilt)
```

Every class pickles with its attributes, because errors cross processes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CallTimeoutError",
    "ConfigError",
    "EnvBuildError",
    "MVBridgeError",
    "NestingError",
    "ProtocolError",
    "RemoteError",
    "SerializationError",
    "StaleReferenceError",
    "WorkerDiedError",
    "WorkerStartError",
]


class MVBridgeError(Exception):
    """Raised for every failure that mvbridge itself detects; the root of the tree."""

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in context.items():
            setattr(self, key, value)
        self._context = context

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self._context))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type, message: str, context: dict) -> MVBridgeError:
    return cls(message, **context)


class ConfigError(MVBridgeError):
    """Raised for an invalid mvbridge.toml / [tool.mvbridge] (file, env, key) or env declaration."""


class EnvBuildError(MVBridgeError):
    """Raised when an env could not be created or its requirements not installed."""

    env: str | None
    command: str | None
    returncode: int | None
    output_tail: str


class WorkerStartError(MVBridgeError):
    """Raised when a worker did not come up; carries the tail of its stderr."""

    env: str | None
    exit_code: int | None
    stderr_tail: str


class WorkerDiedError(MVBridgeError):
    """Raised when the worker exited or became unreachable during a call."""

    env: str | None
    pid: int | None
    exit_code: int | None
    calls_in_flight: int


class StaleReferenceError(MVBridgeError):
    """Raised when a proxy is used after the worker that held its object has gone."""


class CallTimeoutError(MVBridgeError, TimeoutError):
    """Raised when a call passed its deadline (the call is interrupted in the worker)."""


class NestingError(MVBridgeError):
    """Raised when calls that cross between processes and back nest deeper than
    ``MAX_NESTING`` on one thread: a chain that looks like it never ends.

    Attributes:
        limit: the nesting depth at which the chain was stopped.
    """

    limit: int = 0


class ProtocolError(MVBridgeError):
    """Raised for a malformed message, an oversized frame or an incompatible protocol version."""


class SerializationError(MVBridgeError):
    """Raised when a value can cross neither by value nor by reference."""

    type_name: str = ""


class RemoteError(MVBridgeError):
    """Raised for a remote exception whose type cannot be rebuilt in this process.

    Attributes:
        type_name: the qualified name of the remote exception type.
        remote_traceback: the formatted traceback from the other side.
    """

    type_name: str = ""
    remote_traceback: str = ""
