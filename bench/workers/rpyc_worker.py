"""RPyC worker: a ThreadedServer on a unix socket serving ``BenchService``.

RPyC passes lists, dicts and other mutable objects by reference and compresses frames over
3 kB with zlib by default; both are kept as a user would get them. Arrays cross as pickled
bytes (RPyC would otherwise pass them by reference).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import benchfuncs
import common
import rpyc
from rpyc.utils.server import ThreadedServer

CONFIG = {"allow_public_attrs": True, "sync_request_timeout": 300}  # a 100 MB echo takes ~60 s


class BenchService(rpyc.Service):
    """The bench functions, exposed."""

    def exposed_noop(self) -> None:
        return benchfuncs.noop()

    def exposed_echo(self, value: Any) -> Any:
        return benchfuncs.echo(value)

    def exposed_echo_args(self, *args: Any) -> tuple[Any, ...]:
        return benchfuncs.echo_args(*args)

    def exposed_echo_pickled(self, data: bytes) -> bytes:
        return pickle.dumps(benchfuncs.echo(pickle.loads(data)), protocol=5)

    def exposed_counter(self) -> benchfuncs.Counter:
        return benchfuncs.Counter()

    def exposed_count_up(self, n: int) -> Iterator[int]:
        return benchfuncs.count_up(n)


if __name__ == "__main__":
    options = common.parse()
    server = ThreadedServer(BenchService, socket_path=options.address, protocol_config=CONFIG)
    server._listen()  # bind now, so "ready" means connectable
    common.ready()
    server.start()
