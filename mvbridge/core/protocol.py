"""Message kinds, frame layout and protocol version shared by host and worker.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Two kinds of ZeroMQ connection link a host to a worker:

* the **control** connection (host DEALER -> worker ROUTER), one per host process (a *session*):
  handshake, opening and closing channels, shutdown. Each message is one msgpack frame
  ``[kind, request_id, payload]``; the reply repeats ``request_id``.
* one **channel** per host thread (DEALER <-> DEALER on its own endpoint), served by one worker
  thread. Calls, callbacks and their replies travel here, strictly nested, so a thread that waits
  for a reply serves the requests addressed to it meanwhile.

A channel message is a multipart ZeroMQ message::

    frame 0     bytes 0-3   length H of the header, uint32 little-endian
                bytes 4..   the header: msgpack array [kind, request_id, releases, returns?]
                  kind        int   REQUEST, REPLY or ERROR
                  request_id  int   chosen by the requester, echoed by the reply
                  releases    array [[object_id, count], ...] the sender no longer holds, or nil
                  returns     array paths of the receiver's shared-memory segments the sender
                                    freed (only present when there are some)
                then        the body: a value encoded by ``codec``; ext types refer to later
                            frames by their index in the whole message (1..n)
    frame 1..n  raw buffers (large bytes, numpy array data, pickle-5 out-of-band buffers)

A REQUEST body is ``[op, target, *operands]`` with ``op`` one of ``OPS``; a REPLY body is the
result; an ERROR body is ``[type name, message, traceback text, pickled exception or nil]``
(``codec.Encoder.encode_error``). The header is decoded first, so a body that cannot be decoded
is answered with an ERROR instead of being lost.

msgpack options are explicit on both sides (msgpack 1.0 changed its defaults): ``use_bin_type``,
``raw=False``, ``strict_map_key=False``, ``use_list=True``.
"""

from __future__ import annotations

from typing import Any

import msgpack

PROTOCOL_VERSION = 1

# Control connection kinds.
HELLO = 1  # host -> worker: protocol version, host facts; reply: worker facts. The session is
#            keyed by the host's ZeroMQ routing identity.
OPEN = 2  # host -> worker: open a channel; reply: its endpoint
CLOSE = 3  # host -> worker: a channel is no longer used
BYE = 4  # host -> worker: the session ends; drop its objects and channels
SHUTDOWN = 5  # host -> worker: exit the worker process
PING = 6  # liveness probe; reply: pid
STATS = 7  # object-table statistics of the session
OK = 20  # control reply
FAIL = 21  # control reply with an error message

# Channel kinds.
REQUEST = 10
REPLY = 11
ERROR = 12

# Operations a REQUEST can ask for; target is the object the operation applies to.
OP_CALL = "call"  # target(*args, **kwargs)
OP_CALLATTR = "callattr"  # getattr(target, name)(*args, **kwargs): one round trip per method call
OP_GETATTR = "getattr"
OP_SETATTR = "setattr"
OP_DELATTR = "delattr"
OP_SPECIAL = "special"  # a dunder (len, repr, getitem, add, ...) applied to target
OP_NEXT = "next"  # up to n items of an iterator: [items, exhausted]
OP_DESCRIBE = "describe"  # signature, docstring, name of target
OP_IMPORT = "import"  # import a module; reply: {callables, doc, package}
OP_VERSIONS = "versions"  # versions of the distributions that provide these top-level packages
OP_VALUE = "value"  # target, by value (numpy.asarray for array-likes)
OPS = frozenset(
    [
        OP_CALL,
        OP_CALLATTR,
        OP_GETATTR,
        OP_SETATTR,
        OP_DELATTR,
        OP_SPECIAL,
        OP_NEXT,
        OP_DESCRIBE,
        OP_IMPORT,
        OP_VERSIONS,
        OP_VALUE,
    ]
)

# Type description flags (the owner describes the type of an object it hands out by reference).
FLAG_CALLABLE = 1  # instances are callable
FLAG_CLASS = 2  # instances are classes
FLAG_ROUTINE = 4  # instances are functions or methods

# Exit code of a worker that refused to start (e.g. protocol mismatch); the reason is on stderr.
EXIT_REFUSED = 3


def pack(obj: Any) -> bytes:
    """Pack plain data (control messages) with explicit msgpack options."""
    return msgpack.packb(obj, use_bin_type=True)


def unpack(data: Any) -> Any:
    """Unpack plain data (control messages) with explicit msgpack options."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)


def control_message(kind: int, request_id: int, payload: Any = None) -> list[bytes]:
    """Frames of one control message."""
    return [pack([kind, request_id, payload])]
