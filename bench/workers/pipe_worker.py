"""multiprocessing Pipe worker: pickle protocol 5 with out-of-band buffers, one thread.

Each inherited fd is one end of a ``multiprocessing.Pipe()``; the first serves the main host
thread, the others one host thread each. Framing: ``pipewire``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

import benchfuncs
import common
from pipewire import receive, send


def serve(conns: list[Connection]) -> None:
    """Answer requests on every connection until one says stop."""
    objects: dict[int, Any] = {}
    generators: dict[int, Iterator[Any]] = {}
    while True:
        for conn in wait(conns):
            assert isinstance(conn, Connection)
            try:
                op, args = receive(conn)
            except EOFError:
                return
            if op == "noop":
                result = benchfuncs.noop()
            elif op == "echo_args":
                result = benchfuncs.echo_args(*args)
            elif op == "echo":
                result = benchfuncs.echo(args)
            elif op == "new":
                oid = len(objects) + 1
                objects[oid] = benchfuncs.Counter()
                result = oid
            elif op == "call":
                oid, name, call_args = args
                result = getattr(objects[oid], name)(*call_args)
            elif op == "gen":
                gid = len(generators) + 1
                generators[gid] = benchfuncs.count_up(args)
                result = gid
            elif op == "next":
                gid, batch = args
                result = list(itertools.islice(generators[gid], batch))
                if len(result) < batch:
                    del generators[gid]
            elif op == "stop":
                send(conn, None)
                return
            else:
                result = "unknown op %r" % op
            send(conn, result)


if __name__ == "__main__":
    options = common.parse()
    serve([Connection(int(fd)) for fd in options.fds.split(",")])
