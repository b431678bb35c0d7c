"""Start a worker from mvbridge's private runtime, then hide that runtime from user code.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.
The host copies this file to the root of a runtime directory laid out as ``code/`` (mvbridge's
worker modules) and ``site/`` (msgpack, pyzmq, cloudpickle) and runs it as a script. Once our
modules are loaded, the runtime leaves ``sys.path`` and its three packages leave
``sys.modules``: user code then imports the env's own versions, if the env has them.
cloudpickle is imported later, on first use, by ``mvbridge.core.hidden`` (most calls never need it).

So worker code must avoid pyzmq paths that import zmq lazily: attribute-style socket options
(``socket.rcvmore``; use ``getsockopt``). pyzmq's exceptions import zmq when they are made
(``ZMQError``'s ``strerror``, ``Again``'s ``EAGAIN``): ``_bind_error_imports`` binds those here,
so a timed-out receive raises ``zmq.Again`` rather than ``ModuleNotFoundError`` (or loads the
env's own pyzmq). The zero-copy garbage collector is imported once below, while it still can be.
"""

from __future__ import annotations

import errno as errno_module
import os
import sys
from typing import Any


def _boot() -> None:
    root = os.path.dirname(os.path.abspath(__file__))
    ours = [os.path.join(root, "code"), os.path.join(root, "site")]
    sys.path[:] = ours + [p for p in sys.path if os.path.abspath(p or ".") != root]
    import msgpack  # noqa: F401
    import zmq

    # pyzmq imports its garbage collector on the first zero-copy frame; do it while it can.
    zmq.Frame(bytearray(1 << 17), copy=False)
    _bind_error_imports(zmq)

    from mvbridge.core import hidden
    from mvbridge.workers import server

    hidden.RUNTIME_SITE = ours[1]  # cloudpickle is imported from there on first use
    for name in list(sys.modules):
        if name.partition(".")[0] in ("msgpack", "zmq"):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p not in ours]
    server.finish(server.run(sys.argv[1:]))


def _bind_error_imports(zmq: Any) -> None:
    """Make our pyzmq's exceptions without the imports they make when raised."""
    error = zmq.error
    strerror, zmq_errno = zmq.backend.strerror, zmq.backend.zmq_errno
    base = error.ZMQError

    def zmq_error_init(self: Any, errno: Any = None, msg: Any = None) -> None:
        # pyzmq's own ZMQError.__init__, its imports bound
        if errno is None:
            errno = zmq_errno()
        if isinstance(errno, int):
            self.errno = errno
            self.strerror = strerror(errno) if msg is None else msg
        else:
            self.strerror = str(errno) if msg is None else msg

    def fixed(code: int) -> Any:
        def init(self: Any, errno: Any = "ignored", msg: Any = "ignored") -> None:
            zmq_error_init(self, code)

        return init

    base.__init__ = zmq_error_init
    error.Again.__init__ = fixed(zmq.EAGAIN)
    error.ContextTerminated.__init__ = fixed(zmq.ETERM)
    error.InterruptedSystemCall.__init__ = fixed(errno_module.EINTR)


_boot()
