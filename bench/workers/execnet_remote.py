"""Code that execnet sends to its gateway: a request loop on one channel, or a pushed stream.

execnet ships this module's source; it runs as ``__channelexec__`` in the remote interpreter.
The first message is ``[workers_dir, import_numpy, mode, arg]``; ``mode`` is ``"serve"`` (answer
``[op, args]`` requests until ``None``) or ``"stream"`` (send ``count_up(arg)`` item by item).
execnet carries plain data only: arrays cross as ``(dtype, shape, bytes)``.
"""

from __future__ import annotations

from typing import Any


def serve(channel: Any, benchfuncs: Any) -> None:
    """Answer ``[op, args]`` requests until ``None`` arrives."""
    while True:
        message = channel.receive()
        if message is None:
            return
        op, args = message
        if op == "noop":
            result = benchfuncs.noop()
        elif op == "echo_args":
            result = benchfuncs.echo_args(*args)
        elif op == "echo":
            result = benchfuncs.echo(args)
        elif op == "array":
            import numpy as np

            dtype, shape, data = args
            array = benchfuncs.echo(np.frombuffer(data, dtype=dtype).reshape(shape))
            result = (array.dtype.str, array.shape, array.tobytes())
        else:
            result = "unknown op %r" % op
        channel.send(result)


def main(channel: Any) -> None:
    """Set up from the first message, then serve or stream."""
    import sys

    workers_dir, import_numpy, mode, arg = channel.receive()
    sys.path.insert(0, workers_dir)
    if import_numpy:
        import numpy  # noqa: F401
    import benchfuncs

    if mode == "stream":
        for item in benchfuncs.count_up(arg):
            channel.send(item)
    else:
        serve(channel, benchfuncs)


if __name__ == "__channelexec__":
    main(channel)  # type: ignore[name-defined]  # noqa: F821  (execnet's global)
