"""Timing primitives: per-call latencies, bounded loops, and a gang of persistent host threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Call = Callable[[], Any]

THREAD_JOIN_SLACK = 60.0  # a thread measure that overruns by this much has hung


class MeasureError(RuntimeError):
    """A measure failed or hung; the message says how."""


@dataclass(frozen=True)
class Limits:
    """How long each kind of measure may run in one round."""

    slices: int = 5  # per-call measures alternate between systems this many times a round
    latency_calls: int = 3000  # at most this many timed calls per latency measure and round
    latency_seconds: float = 0.5  # ... or until this much time has passed
    bulk_calls: int = 500  # 1 MB echo: the same
    bulk_seconds: float = 0.5
    huge_reps: int = 3  # 100 MB echo: at most this many ...
    huge_seconds: float = 1.5  # ... stopping once this much time has passed
    threads_seconds: float = 0.5
    generator_seconds: float = 2.0  # iterate for at most this long, then extrapolate
    per_item_calls: int = 2000
    array_bytes: int = 100_000_000  # "100 MB" of float64


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_calls(
    call: Call, max_calls: int, max_seconds: float, warmup: int = 20, min_calls: int = 5
) -> list[float]:
    """Seconds taken by each of up to ``max_calls`` calls (at least ``min_calls``).

    Stops early once ``max_seconds`` have passed.
    """
    for _ in range(warmup):
        call()
    clock = time.perf_counter
    durations: list[float] = []
    deadline = clock() + max_seconds
    while len(durations) < max_calls:
        start = clock()
        call()
        end = clock()
        durations.append(end - start)
        if end > deadline and len(durations) >= min_calls:
            break
    return durations


def latency_metrics(durations: list[float]) -> dict[str, float]:
    """p50/p99 in microseconds and sequential calls per second, from per-call seconds."""
    return {
        "p50_us": percentile(durations, 0.5) * 1e6,
        "p99_us": percentile(durations, 0.99) * 1e6,
        "calls_s": len(durations) / sum(durations),
        "samples": len(durations),
    }


def iterate(items: Iterable[Any], n: int, max_seconds: float) -> dict[str, Any]:
    """Time iterating ``items`` (n expected); past ``max_seconds`` stop and extrapolate to n."""
    clock = time.perf_counter
    start = clock()
    deadline = start + max_seconds
    count = 0
    iterator = iter(items)
    try:
        for _ in iterator:
            count += 1
            if count & 255 == 0 and clock() > deadline:
                break
        elapsed = clock() - start
    finally:  # not timed: a system may drain the rest of its stream here
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    if count == 0:
        raise MeasureError("the remote generator yielded nothing")
    total = elapsed * n / count
    return {
        "ms": total * 1e3,
        "items_s": n / total,
        "items": count,
        "extrapolated": count < n,
    }


class ThreadGang:
    """Persistent host threads that run one system's callers at once, for calls/s.

    Each thread makes its own caller per system (its own socket, proxy or client) the first
    time, keeps it for later rounds, and releases it when told.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: list[list[Callable[[dict[str, Call]], Any]]] = [[] for _ in range(size)]
        self._conditions = [threading.Condition() for _ in range(size)]
        self._results: list[Any] = [None] * size
        self._done = [threading.Event() for _ in range(size)]
        self.broken = ""
        self._threads = [
            threading.Thread(target=self._serve, args=(i,), name=f"bench-host-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self, index: int) -> None:
        callers: dict[str, Call] = {}
        condition = self._conditions[index]
        while True:
            with condition:
                while not self._tasks[index]:
                    condition.wait()
                task = self._tasks[index].pop(0)
            if task is None:  # type: ignore[comparison-overlap]
                return
            try:
                self._results[index] = ("ok", task(callers))
            except BaseException as exc:
                self._results[index] = ("error", exc)
            self._done[index].set()

    def _run_all(self, task: Callable[[dict[str, Call]], Any], timeout: float) -> list[Any]:
        if self.broken:
            raise MeasureError(self.broken)
        for index in range(self.size):
            self._done[index].clear()
            with self._conditions[index]:
                self._tasks[index].append(task)
                self._conditions[index].notify()
        deadline = time.monotonic() + timeout
        for index in range(self.size):
            if not self._done[index].wait(max(0.0, deadline - time.monotonic())):
                self.broken = f"a host thread hung in a call (after {timeout:.0f} s)"
                raise MeasureError(self.broken)
        errors = [value for kind, value in self._results if kind == "error"]
        errors.sort(key=lambda exc: isinstance(exc, threading.BrokenBarrierError))
        if errors:
            raise errors[0]  # as the thread raised it (NotAvailable stays n/a)
        return [value for _, value in self._results]

    def calls_per_second(self, key: str, make: Callable[[], Call], seconds: float) -> float:
        """Total calls/s of all threads calling their own ``make()`` caller for ``seconds``."""
        barrier = threading.Barrier(self.size)

        def task(callers: dict[str, Call]) -> tuple[int, float, float]:
            try:
                call = callers.get(key)
                if call is None:
                    call = callers[key] = make()
                for _ in range(20):
                    call()
            except BaseException:
                barrier.abort()  # the other threads stop waiting for this one
                raise
            barrier.wait(THREAD_JOIN_SLACK)
            clock = time.perf_counter
            start = clock()
            stop_at = start + seconds
            count = 0
            while True:
                call()
                count += 1
                if count & 15 == 0 and clock() > stop_at:
                    break
            return count, start, clock()

        results = self._run_all(task, seconds + THREAD_JOIN_SLACK)
        total = sum(count for count, _, _ in results)
        span = max(end for _, _, end in results) - min(start for _, start, _ in results)
        return total / span

    def release(self, key: str, close: Callable[[Call], None]) -> None:
        """Let every thread release its caller for ``key`` (in that thread)."""

        def task(callers: dict[str, Call]) -> None:
            call = callers.pop(key, None)
            if call is not None:
                close(call)

        if not self.broken:
            try:
                self._run_all(task, 10.0)
            except MeasureError:
                pass

    def stop(self) -> None:
        """End the threads (they are daemons, so a hung one cannot block exit)."""
        for index in range(self.size):
            with self._conditions[index]:
                self._tasks[index].append(None)  # type: ignore[arg-type]
                self._conditions[index].notify()
