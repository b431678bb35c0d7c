"""A script that uses a raw pyzmq worker once: spawn it, connect, one call, stop it, exit.

The baseline of the start-up measure, run in a fresh process by the bench's host Python:
``python startup_raw.py``. Prints ``FIRST LAST`` (``time.monotonic()`` when the first result
came back, and after the last call); the bench times the process from outside.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import msgpack
import zmq


def main() -> None:
    folder = tempfile.mkdtemp(prefix="bench-startup-")
    address = f"ipc://{folder}/s"
    here = os.path.dirname(os.path.abspath(__file__))
    worker = subprocess.Popen(
        [sys.executable, os.path.join(here, "zmq_worker.py"), "--address", address],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != b"ready":
        raise SystemExit("the raw worker did not start")
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.connect(address)
    socket.send(msgpack.packb(["noop", None]))
    msgpack.unpackb(socket.recv())
    first = time.monotonic()
    socket.send(msgpack.packb(["stop", None]))
    socket.recv()
    last = time.monotonic()
    worker.wait()
    socket.close(linger=0)
    context.term()
    shutil.rmtree(folder)
    print(first, last, flush=True)


if __name__ == "__main__":
    main()
