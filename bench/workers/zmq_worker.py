"""Raw pyzmq worker: one ROUTER socket over ipc, msgpack messages, one thread.

The floor of mvbridge's design. With ``--zero-copy``, bulk payloads travel in their own frames
(received and sent without a copy); without it they are packed inside the msgpack message.
Request: ``[identity, msgpack([op, args]), *payload frames]``; reply: ``[identity, msgpack(result),
*payload frames]``.
"""

from __future__ import annotations

from typing import Any

import benchfuncs
import common
import msgpack
import zmq


def serve(address: str, zero_copy: bool, curve_secret: str = "") -> None:
    """Answer requests until told to stop (over CurveZMQ when given a secret key)."""
    context = zmq.Context()
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve_secret:
        socket.curve_server = True
        socket.curve_secretkey = curve_secret.encode()
        socket.curve_publickey = zmq.curve_public(curve_secret.encode())
    socket.bind(address)
    common.ready()
    state = common.RemoteState(benchfuncs.Counter, benchfuncs.count_up)
    packb = msgpack.Packer(use_bin_type=True).pack
    while True:
        frames = socket.recv_multipart(copy=not zero_copy)
        identity, head, payload = frames[0], frames[1], frames[2:]
        op, args = msgpack.unpackb(head if not zero_copy else head.buffer, raw=False)
        out: list[Any] = []
        if op == "noop":
            result = benchfuncs.noop()
        elif op == "echo_args":
            result = benchfuncs.echo_args(*args)
        elif op == "echo":  # bulk bytes: inside the message, or in its own frame
            if zero_copy:
                out = [benchfuncs.echo(payload[0].buffer)]
                result = None
            else:
                result = benchfuncs.echo(args)
        elif op == "array":
            import numpy as np

            dtype, shape = args[0], args[1]
            data = payload[0].buffer if zero_copy else args[2]
            array = benchfuncs.echo(np.frombuffer(data, dtype=dtype).reshape(shape))
            if zero_copy:
                out = [array]
                result = [array.dtype.str, list(array.shape)]
            else:
                result = [array.dtype.str, list(array.shape), array.tobytes()]
        elif op == "new":
            result = state.new()
        elif op == "call":
            result = state.call(*args)
        elif op == "gen":
            result = state.gen(args)
        elif op == "next":
            result = state.next(*args)
        elif op == "stop":
            socket.send_multipart([identity, packb(None)])
            break
        else:
            result = "unknown op %r" % op
        socket.send_multipart([identity, packb(result), *out], copy=not zero_copy)
    socket.close(linger=0)
    context.term()


if __name__ == "__main__":
    options = common.parse()
    serve(options.address, options.zero_copy, options.curve_secret)
