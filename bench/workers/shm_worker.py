"""Shared-memory worker: arrays cross through two pre-made segments, by value.

The host copies the array into the "in" segment and sends (dtype, shape) over a Pipe; this
worker copies it out into an array of its own (by-value semantics: writable, not shared), runs
``echo`` and copies the result into the "out" segment. Four copies of the payload per round
trip, no serialisation: the bulk-data limit of any by-value transport between processes.
"""

from __future__ import annotations

from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory

import benchfuncs
import common
import numpy as np


def attach(name: str) -> SharedMemory:
    """Open the host's segment without letting this process's tracker unlink it at exit."""
    segment = SharedMemory(name=name)
    # Python < 3.13 registers attached segments too; the host owns and unlinks them.
    resource_tracker.unregister(segment._name, "shared_memory")  # type: ignore[attr-defined]
    return segment


def serve(conn: Connection, inbound: SharedMemory, outbound: SharedMemory) -> None:
    """Echo arrays until the host sends ``None``."""
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        dtype, shape = message
        view = np.ndarray(shape, dtype=dtype, buffer=inbound.buf)
        array = benchfuncs.echo(view.copy())  # our own writable array
        del view
        target = np.ndarray(array.shape, dtype=array.dtype, buffer=outbound.buf)
        target[...] = array
        del target
        conn.send((array.dtype.str, array.shape))


if __name__ == "__main__":
    options = common.parse()
    names = options.shm.split(",")
    inbound, outbound = attach(names[0]), attach(names[1])
    try:
        serve(Connection(int(options.fds)), inbound, outbound)
    finally:
        inbound.close()
        outbound.close()
