"""Pyro5 worker: a Daemon on a unix socket; remote objects are registered and auto-proxied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import benchfuncs
import common
import Pyro5.api

Pyro5.api.expose(benchfuncs.Counter)


@Pyro5.api.expose
class Bench:
    """The bench functions, exposed."""

    def noop(self) -> None:
        return benchfuncs.noop()

    def echo(self, value: Any) -> Any:
        return benchfuncs.echo(value)

    def echo_args(self, *args: Any) -> tuple[Any, ...]:
        return benchfuncs.echo_args(*args)

    def counter(self) -> benchfuncs.Counter:
        counter = benchfuncs.Counter()
        self._pyroDaemon.register(counter)  # type: ignore[attr-defined]
        return counter

    def count_up(self, n: int) -> Iterator[int]:
        return benchfuncs.count_up(n)


if __name__ == "__main__":
    options = common.parse()
    daemon = Pyro5.api.Daemon(unixsocket=options.address)
    uri = daemon.register(Bench(), "bench")
    common.ready(str(uri))
    daemon.requestLoop()
