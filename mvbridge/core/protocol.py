"""Message kinds, frame layout and protocol version shared by host, worker and service.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A **session** joins one host process to one worker process. It has a *control* stream and one
*channel* per thread pair; the full wire spec is ``docs/reference/protocol.md``.

* **Control** messages are one msgpack frame ``[kind, request_id, payload]``; the reply repeats
  ``request_id``. A service also sends unsolicited NOTICEs (request id 0).
* A **channel** is a strictly nested request/reply conversation between one host thread and one
  worker thread, so a side that waits for a reply serves the requests addressed to it meanwhile.
  Host-opened channels start with a host thread (its calls); *reverse* channels start with a
  worker thread that is not serving a host call (a library's own thread calling a host
  callback). Channel ids are chosen by the worker; reverse ids have ``REVERSE_BIT`` set.

Transports (the layers above them are the same for all):

* **local worker**: control is a DEALER (host) to ROUTER (worker) on ``ipc://<dir>/ctl``; each
  host-opened channel is a DEALER pair on its own ``ipc://<dir>/ch-<id>``; reverse channels are
  worker DEALERs (routing id = route) connected to the host's ROUTER on ``ipc://<dir>/cb``.
* **service** (``mvbridge spawn``): one DEALER per session connects to the service's one ROUTER
  (TCP, CurveZMQ). Every message starts with a **route** frame: 4 bytes, big-endian channel id,
  ``CONTROL_ROUTE`` for control. Behind it, workers connect to the service over ipc.

A channel message (after any route frame) is a multipart ZeroMQ message::

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

A message of one empty frame (``READY``) is the first thing a channel socket that *connects*
sends: it tells the router that the route exists. It carries nothing else.

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

PROTOCOL_VERSION = 11

# Frame 0 of a channel message starts with its header's length (uint32, little-endian); bit 31
# says buffer frames follow, so a receiver asks the socket for more only when there are some.
MORE_FRAMES = 0x80000000
_SIZE_MASK = MORE_FRAMES - 1

# A line of a worker's stderr that starts with this is a log record or a warning for the host
# (JSON: ``workers/records.py``), not output to print. NUL never starts a line a user prints.
RECORD_PREFIX = "\x00mvbridge-record "

# Control connection kinds.
HELLO = 1  # host -> worker: protocol version, host facts; reply: worker facts. Starts a session.
OPEN = 2  # host -> worker: open a channel; reply: [channel id, endpoint or nil]
CLOSE = 3  # host -> worker: a channel is no longer used
BYE = 4  # host -> worker: the session ends; drop its objects and channels
SHUTDOWN = 5  # host -> local worker: exit the worker process (a service ends the session only)
PING = 6  # liveness and facts; no session needed. Reply: pid (worker) or service facts
STATS = 7  # object-table statistics of the session
RESUME = 8  # host -> service: go on with the session of this connection's routing id
SERVER_STATS = 9  # service -> its worker (session key b""): counts over every session
UP = 10  # worker -> service, unsolicited, once at start (session key b""): the worker's facts
INTERRUPT = 11  # host -> worker: [channel id, request id]: raise KeyboardInterrupt in that call
OK = 20  # control reply
FAIL = 21  # control reply with an error message
NOTICE = 22  # service -> host, unsolicited (request id 0): {"event": ..., "reason": ...}

# NOTICE events.
NOTICE_SESSION_LOST = "session-lost"  # the session is gone (its worker died, or it expired)
NOTICE_PROBE = "probe"  # "are you there": the service checks that a session's client is connected

# Channel kinds.
REQUEST = 10
REPLY = 11
ERROR = 12

# Routes and channel ids.
ROUTE_SIZE = 4
CONTROL_ROUTE = b"\x00\x00\x00\x00"
REVERSE_BIT = 1 << 31  # set in the ids of channels a worker thread opens (reverse channels)
READY = b""  # the only frame of the first message on a channel socket that connects

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
OP_NAMES = "names"  # [spec, ...]: which of these named objects this side has (core/names.py)
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
        OP_NAMES,
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


def route(channel_id: int) -> bytes:
    """The route frame of a channel id (4 bytes, big-endian)."""
    return channel_id.to_bytes(ROUTE_SIZE, "big")


def channel_id(route_frame: Any) -> int:
    """The channel id of a route frame."""
    return int.from_bytes(route_frame, "big")


def is_reverse(route_frame: Any) -> bool:
    """True for the route of a reverse channel (opened by a worker thread)."""
    return len(route_frame) == ROUTE_SIZE and route_frame[0] >= 0x80


def peek_header(frame: Any) -> list[Any] | None:
    """``[kind, request_id]`` of a channel message's frame 0, or None if it is not one of ours.

    Routers use this to count calls in flight and to answer a refused request, without
    decoding the body.
    """
    try:
        view = memoryview(frame)
        size = int.from_bytes(view[:4], "little") & _SIZE_MASK
        if len(view) < 4 + size:
            return None
        header = msgpack.unpackb(view[4 : 4 + size], raw=False, use_list=True)
        kind, rid = header[0], header[1]
    except Exception:
        return None
    if type(kind) is not int or type(rid) is not int:
        return None
    return [kind, rid]


def error_message(rid: int, type_name: str, message: str) -> list[bytes]:
    """A channel ERROR message made without a codec (by a router answering for a worker).

    ``type_name`` should name one of ``mvbridge.errors``' classes, which the receiver rebuilds.
    """
    header = msgpack.packb([ERROR, rid, None], use_bin_type=True)
    body = msgpack.packb([type_name, message, "", None], use_bin_type=True)
    return [len(header).to_bytes(4, "little") + header + body]
