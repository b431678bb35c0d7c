"""The interface every benchmarked system implements, and how it says it cannot do a measure."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

Call = Callable[[], Any]

SMALL_ARGS: tuple[Any, ...] = (1, "abc", {"k": [1, 2, 3]})


STARTUP_TIMEOUT = 60.0


def time_script(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a start-up script (``workers/startup_*.py``) in a fresh process: seconds from its
    spawn to the first result it reports, and from its last call to its exit."""
    import subprocess
    import time

    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=STARTUP_TIMEOUT, env=env)
    ended = time.monotonic()
    if done.returncode != 0:
        raise RuntimeError(f"{command[1]} failed: {done.stderr.strip()[-500:]}")
    first, last = map(float, done.stdout.split())
    return first - started, ended - last


class NotAvailable(Exception):
    """Raised by a measure the system cannot do; the message says why (shown as n/a)."""


class System:
    """One way of calling code in another process, driven by the benchmark.

    A measure method returns a zero-argument callable that performs one operation (the harness
    times it), or raises :class:`NotAvailable`. ``start()`` brings up the long-running worker
    used by every measure but the cold starts; ``stop()`` ends it and must be safe to call twice.
    """

    key: ClassVar[str] = ""
    label: ClassVar[str] = ""
    notes: ClassVar[str] = ""
    # Ratios of this system are taken against this one rather than the measure's baseline
    # (a service over TCP + CURVE against raw pyzmq over the same transport).
    baseline: ClassVar[str] = ""

    def cannot_run(self) -> str | None:
        """Why this system cannot run here (e.g. not installed), or None."""
        return None

    def start(self) -> None:
        """Start the long-running worker."""

    def stop(self) -> None:
        """Stop every process and socket this system started."""

    def noop(self) -> Call:
        """One no-op call."""
        raise NotAvailable("not implemented")

    def small_args(self) -> Call:
        """One call of ``f(1, "abc", {"k": [1, 2, 3]})`` that returns its arguments."""
        raise NotAvailable("not implemented")

    def echo_bytes(self, payload: bytes) -> Call:
        """One call that sends ``payload`` and gets it back."""
        raise NotAvailable("not implemented")

    def echo_array(self, array: Any) -> Call:
        """One call that sends a numpy array and gets an equal array back."""
        raise NotAvailable("not implemented")

    def method_call(self) -> Call:
        """One ``obj.m(x)`` on an object that lives in the worker."""
        raise NotAvailable("not implemented")

    def thread_caller(self) -> Call:
        """A no-op caller for the calling host thread (called once in each thread)."""
        raise NotAvailable("not implemented")

    def close_thread_caller(self, caller: Call) -> None:
        """Release what :meth:`thread_caller` made (called in the same thread)."""

    def client_caller(self) -> Call:
        """A no-op caller that is a client of its own (its own connection and session)."""
        raise NotAvailable("measured for services only")

    def close_client_caller(self, caller: Call) -> None:
        """Release what :meth:`client_caller` made (called in the same thread)."""

    def generator(self, n: int) -> Iterable[Any]:
        """An iterable over a generator of ``n`` items that runs in the worker."""
        raise NotAvailable("not implemented")

    def next_per_item(self, n: int) -> Call:
        """A call that fetches the next item of a remote generator with one round trip."""
        raise NotAvailable("measured only as the reference for mvbridge's batching target")

    def cold_start(self, numpy: bool) -> float:
        """Seconds from spawning a fresh worker to its first call returned (worker then stopped).

        Args:
            numpy: the worker imports numpy before it answers.
        """
        raise NotAvailable("not implemented")

    def startup(self) -> tuple[float, float]:
        """A fresh script that makes one remote call: seconds from its process start to the
        first result, and from its last call to its process exit."""
        raise NotAvailable("measured for mvbridge and its raw pyzmq baseline")

    def import_time(self) -> float:
        """Seconds to import the host library in a fresh interpreter."""
        raise NotAvailable("measured for mvbridge only")

    def demo_sync(self) -> Any:
        """The ``mvbridge sync`` timer of the demo (``mvbridge_sync.DemoSync``)."""
        raise NotAvailable("measured for mvbridge only")


class RemoteFunctions:
    """The small calls of a peer whose worker exposes ``noop``, ``echo`` and ``echo_args`` on one
    remote object (a Pyro5 proxy, a zerorpc client, RPyC's root): ``remote()`` returns it."""

    def remote(self) -> Any:
        raise NotImplementedError

    def noop(self) -> Call:
        return self.remote().noop

    def small_args(self) -> Call:
        echo_args = self.remote().echo_args
        return lambda: echo_args(*SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        echo = self.remote().echo
        return lambda: echo(payload)


def echo_array_as_bytes(echo: Callable[[Any], Any], array: Any) -> Call:
    """An array echo for peers without numpy support: ``[dtype, shape, bytes]`` both ways."""
    import numpy as np

    def call() -> Any:
        dtype, shape, data = echo([array.dtype.str, list(array.shape), array.tobytes()])
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    return call


class OwnedWorker:
    """A system that runs one worker process with a private folder (its sockets)."""

    worker: Any = None
    _dir: Path = Path()

    def stop_worker(self) -> None:
        """Stop the worker and remove its folder; safe to call twice."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self._dir != Path():
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = Path()
