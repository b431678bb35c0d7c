"""Shared start-up for the benchmark's worker scripts: argv, numpy, readiness, parent watchdog."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Common worker options: ``--address``, ``--numpy``, ``--parent-pid`` and extras."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default="")
    parser.add_argument("--numpy", action="store_true", help="import numpy before serving")
    parser.add_argument("--zero-copy", action="store_true")
    parser.add_argument("--fds", default="", help="comma-separated inherited pipe fds")
    parser.add_argument("--shm", default="", help="comma-separated shared memory names")
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    parser.add_argument("--curve-secret", default="", help="serve CurveZMQ with this z85 key")
    args = parser.parse_args(argv)
    if args.numpy:
        import numpy  # noqa: F401
    watch_parent(args.parent_pid)
    return args


def watch_parent(parent_pid: int) -> None:
    """Exit this worker when the benchmark process that started it is gone (no orphans)."""

    def run() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def ready(text: str = "ready") -> None:
    """Tell the host this worker accepts calls (the host waits for this line)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class RemoteState:
    """Objects and generators a worker hands out by id (the raw baselines' own tiny RPC)."""

    def __init__(self, make_object: Any, make_generator: Any) -> None:
        self._make_object = make_object
        self._make_generator = make_generator
        self.objects: dict[int, Any] = {}
        self.generators: dict[int, Iterator[Any]] = {}

    def new(self) -> int:
        oid = len(self.objects) + 1
        self.objects[oid] = self._make_object()
        return oid

    def call(self, oid: int, name: str, args: list[Any]) -> Any:
        return getattr(self.objects[oid], name)(*args)

    def gen(self, n: int) -> int:
        gid = len(self.generators) + 1
        self.generators[gid] = self._make_generator(n)
        return gid

    def next(self, gid: int, batch: int) -> list[Any]:
        """Up to ``batch`` items; an exhausted generator is forgotten."""
        items = list(itertools.islice(self.generators[gid], batch))
        if len(items) < batch:
            del self.generators[gid]
        return items
