"""The raw pyzmq worker of ``bench/floors.py``: ``floor_worker.py MODE FOLDER``.

Serves msgpack no-ops on one DEALER until killed. MODE says how its thread waits for a request
(``block``, ``poll``, ``zpoll``, ``timeo``), or serves over TCP + CURVE (``curve``), or relays
TCP + CURVE to a ``block`` worker of its own over ipc, in a Python loop (``relay``) or in
libzmq's own ``zmq_proxy`` with the GIL released (``cproxy``: a data path without Python). Prints
``ADDRESS SERVER_PUBLIC_KEY`` and then the pid serving the calls. ``floors.py`` starts each in
a process group of its own and kills the group (a relay's worker too).
"""

from __future__ import annotations

import os
import socket as socket_module
import subprocess
import sys

import msgpack
import zmq

POLL_MS = 100


def _free_tcp() -> str:
    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def _curve_socket(context: zmq.Context) -> tuple[zmq.Socket, str, str]:
    public, secret = zmq.curve_keypair()
    sock = context.socket(zmq.DEALER)
    sock.curve_server = True
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    address = _free_tcp()
    sock.bind(address)
    return sock, address, public.decode()


def serve(mode: str, folder: str) -> None:
    context = zmq.Context()
    reply = msgpack.packb(None)
    if mode in ("curve", "relay", "cproxy"):
        sock, address, public = _curve_socket(context)
    else:
        sock = context.socket(zmq.DEALER)
        address, public = f"ipc://{folder}/{mode}", "-"
        sock.bind(address)
    if mode in ("relay", "cproxy"):
        child = subprocess.Popen(
            [sys.executable, __file__, "block", folder], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        backend_address = child.stdout.readline().split()[0]
        child.stdout.readline()
        backend = context.socket(zmq.DEALER)
        backend.connect(backend_address)
        print(address, public, flush=True)
        print(os.getpid(), flush=True)
        if mode == "cproxy":
            zmq.proxy(sock, backend)  # both directions in C until the process is killed
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(backend, zmq.POLLIN)
        while True:  # what a router does on the data path: receive, look, forward
            for ready, _ in poller.poll():
                other = backend if ready is sock else sock
                other.send_multipart(ready.recv_multipart(copy=False), copy=False)
    print(address, public, flush=True)
    print(os.getpid(), flush=True)
    items = [(sock, zmq.POLLIN)]
    if mode == "timeo":
        sock.setsockopt(zmq.RCVTIMEO, POLL_MS)
    while True:
        if mode == "poll":
            while not sock.poll(POLL_MS):
                pass
        elif mode == "zpoll":
            while not zmq.zmq_poll(items, POLL_MS):
                pass
        try:
            msgpack.unpackb(sock.recv())
        except zmq.Again:
            continue
        sock.send(reply)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
