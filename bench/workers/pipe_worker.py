"""multiprocessing Pipe worker: pickle protocol 5 with out-of-band buffers, one thread.

Each inherited fd is one end of a ``multiprocessing.Pipe()``; the first serves the main host
thread, the others one host thread each. Framing: ``pipewire``.
"""

from __future__ import annotations

from multiprocessing.connection import Connection, wait

import benchfuncs
import common
from pipewire import receive, send


def serve(conns: list[Connection]) -> None:
    """Answer requests on every connection until one says stop."""
    state = common.RemoteState(benchfuncs.Counter, benchfuncs.count_up)
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
                result = state.new()
            elif op == "call":
                result = state.call(*args)
            elif op == "gen":
                result = state.gen(args)
            elif op == "next":
                result = state.next(*args)
            elif op == "stop":
                send(conn, None)
                return
            else:
                result = "unknown op %r" % op
            send(conn, result)


if __name__ == "__main__":
    options = common.parse()
    serve([Connection(int(fd)) for fd in options.fds.split(",")])
