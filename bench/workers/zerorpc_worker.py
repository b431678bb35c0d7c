"""zerorpc worker: a gevent server on an ipc socket (msgpack over ZeroMQ)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import benchfuncs
import common
import zerorpc


class Bench:
    """The bench functions; zerorpc has no remote objects."""

    def noop(self) -> None:
        return benchfuncs.noop()

    def echo(self, value: Any) -> Any:
        return benchfuncs.echo(value)

    def echo_args(self, *args: Any) -> tuple[Any, ...]:
        return benchfuncs.echo_args(*args)

    @zerorpc.stream
    def count_up(self, n: int) -> Iterator[int]:
        return benchfuncs.count_up(n)


if __name__ == "__main__":
    options = common.parse()
    server = zerorpc.Server(Bench())
    server.bind(options.address)
    common.ready()
    server.run()
