"""Framing for the multiprocessing Pipe system, shared by host and worker.

A message is ``send_bytes(count + pickle)`` followed by ``count`` out-of-band buffers, each
sent with ``send_bytes``: pickle protocol 5 never copies large buffers into the pickle.
"""

from __future__ import annotations

import pickle
import struct
from multiprocessing.connection import Connection
from typing import Any

_COUNT = struct.Struct("<I")


def send(conn: Connection, value: Any) -> None:
    """Send ``value`` pickled (protocol 5), large buffers out of band."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    conn.send_bytes(_COUNT.pack(len(buffers)) + data)
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def receive(conn: Connection) -> Any:
    """Receive one value sent by :func:`send`."""
    head = conn.recv_bytes()
    (count,) = _COUNT.unpack_from(head)
    buffers = [conn.recv_bytes() for _ in range(count)]
    return pickle.loads(memoryview(head)[_COUNT.size :], buffers=buffers)
