"""The functions every benchmarked worker serves; also copied into mvbridge's worker env.

Deliberately imports nothing: the "plain worker" cold start must not pay for numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def noop() -> None:
    """Do nothing: the cost of a call is all transport."""


def echo(value: Any) -> Any:
    """Return ``value`` as it came (bytes, arrays)."""
    return value


def echo_args(*args: Any) -> tuple[Any, ...]:
    """Return the arguments as they came: ``f(1, "abc", {"k": [1, 2, 3]})``."""
    return args


class Counter:
    """A remote object with one method, for ``obj.m(x)``."""

    def __init__(self) -> None:
        self.total = 0

    def m(self, x: int) -> int:
        """Add ``x`` and return the running total."""
        self.total += x
        return self.total


def burn(n: int) -> int:
    """CPU-bound work: ``n`` steps of a pure-Python loop (holds the GIL throughout)."""
    total = 0
    for i in range(n):
        total += i & 7
    return total


def count_up(n: int) -> Iterator[int]:
    """A generator of ``n`` small ints."""
    yield from range(n)
