"""One side of a host-worker session: objects, proxies, version facts, and the channel loop.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Host and worker are symmetric here: each hands out references to its objects, holds proxies of
the other's, and serves the other's requests. A ``Channel`` joins one host thread to one worker
thread; while a side waits for a reply on it, it serves the requests that arrive on it (nested
callbacks), so replies never need routing between threads.
"""

from __future__ import annotations

import collections
import pickle
import threading
import types
import weakref
from typing import Any, Callable

import zmq

from ..errors import MVBridgeError, NestingError, ProtocolError, RemoteError
from . import dists, exceptions, hidden, logs, names, ops, sharedmem
from . import protocol as P
from .codec import Decoder, Encoder, is_code, is_large, lift_large
from .objects import ObjectTable, drain
from .remote import RemoteAttribute, RemoteObject, TypeInfo, proxy_class

_PROXY_TYPES = (RemoteObject,)


class RemoteTraceback(Exception):
    """Carries the other side's formatted traceback as the ``__cause__`` of a rebuilt error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip() + "\n"


class Session:
    """This side's state for one session with one peer (shared by all its channels)."""

    exports_modules = False  # the worker sends its modules as module proxies
    exception_origin = "peer"  # names the other side for the exception classes made for it
    names_may_import = False  # may import a module to resolve a named object the peer sent
    reads_ahead = False  # iterates the peer's iterators in batches (the host, not a worker)

    def __init__(
        self, peer_python: str, find_class: Callable[[str, str], Any] | None = None
    ) -> None:
        self.peer_python = peer_python
        self.same_python = peer_python == dists.PYTHON_VERSION
        self.find_class = find_class
        self.closed = False
        self.table = ObjectTable()
        self.pending_errors: dict[int, BaseException] = {}
        self._proxies: dict[int, Any] = {}  # oid -> weakref to its proxy
        self._proxy_lock = threading.Lock()
        self._releases: collections.deque[tuple[int, int]] = collections.deque()
        self._types_in: dict[int, TypeInfo] = {}
        self._types_out: dict[type, tuple[int, list[Any]]] = {}
        self._type_lock = threading.Lock()
        self._peer_versions: dict[str, str | None] = {}
        self._peer_names: dict[str, bool] = {}
        # Pooled shared memory for large arrays: set when both sides are one machine.
        self.segments: sharedmem.SegmentPool | None = None
        self._pickle_ok: dict[Any, bool] = {}

    # -- requests (subclasses know the current channel) -----------------------------------------
    def channel(self) -> Channel:
        raise NotImplementedError

    def request(self, op: str, target: Any, *operands: Any) -> Any:
        """Send one request on this thread's channel and return the reply's value."""
        return self.channel().request(op, target, list(operands))

    def call_attr(self, target: Any, name: str, args: tuple[Any, ...], kwargs: Any) -> Any:
        """``target.name(*args, **kwargs)`` in the peer (a method of its object)."""
        return self.request(P.OP_CALLATTR, target, name, list(args), kwargs)

    def describe(self, proxy: Any) -> dict[str, Any]:
        return self.request(P.OP_DESCRIBE, proxy)

    # -- releases ---------------------------------------------------------------------------
    def release_later(self, oid: int, count: int) -> None:
        """Queue a release (called from finalisers: appends only, takes no lock)."""
        self._releases.append((oid, count))

    def take_releases(self) -> list[tuple[int, int]] | None:
        """Releases to piggyback on the next message, or None."""
        releases = self._releases
        if not releases:
            return None
        taken = drain(releases)
        with self._proxy_lock:
            proxies = self._proxies
            for oid, _ in taken:
                ref = proxies.get(oid)
                if ref is not None and ref() is None:
                    del proxies[oid]
        return taken

    def header(self, kind: int, rid: int) -> list[Any]:
        """A message header, carrying the releases queued here (objects, and segments)."""
        header = [kind, rid, self.take_releases()]
        if self.segments is not None:
            returns = self.segments.take_returned()
            if returns:
                header.append(returns)
        return header

    def unsent(self, header: list[Any]) -> None:
        """``header``'s message was not sent: its releases wait for the next one."""
        if header[2]:
            self._releases.extend(header[2])
        if len(header) > 3 and self.segments is not None:
            self.segments.returned.extend(header[3])

    def encode(self, encoder: Encoder, kind: int, rid: int, body: Any) -> list[Any]:
        """Frames of one message; releases it would carry are kept if encoding fails."""
        header = self.header(kind, rid)
        try:
            return encoder.encode(header, body)
        except BaseException:
            self.unsent(header)
            raise

    def received(self, releases: Any, returns: Any) -> None:
        """Apply the releases a message from the peer carried."""
        if releases:
            self.table.release(releases)
            if self.pending_errors:  # an iterator dropped before its error was asked for
                for key in [k for k in self.pending_errors if not self.table.holds_id(k)]:
                    del self.pending_errors[key]
        if returns and self.segments is not None:
            self.segments.take_back(returns)

    def has_releases(self) -> bool:
        """Whether the next message carries releases (of objects or of segments)."""
        return bool(self._releases) or (self.segments is not None and bool(self.segments.returned))

    def pending_releases(self) -> int:
        return len(self._releases)

    # -- the codec's questions ----------------------------------------------------------------
    def ref_spec(self, obj: Any) -> Any:
        """How the peer finds ``obj`` if it is a proxy of the peer's object; else None."""
        if not isinstance(obj, _PROXY_TYPES):
            return self.module_spec(obj)
        if obj._mvb_session is not self:
            return None
        oid = obj._mvb_oid
        if oid is not None:
            return oid
        if isinstance(obj, RemoteAttribute):
            base = obj._mvb_base
            base_spec = self.ref_spec(base)
            if base_spec is None:
                base_spec = self.module_spec(base)
            return ["a", base_spec, obj._mvb_name]
        return None

    def module_spec(self, obj: Any) -> Any:
        return None

    def resolve(self, spec: Any) -> Any:
        """The object of this side that the peer's ``spec`` names."""
        if type(spec) is int:
            return self.table.get(spec)
        kind = spec[0]
        if kind == "a":
            return getattr(self.resolve(spec[1]), spec[2])
        if kind == "m":
            return ops.import_module(spec[1])
        raise ProtocolError("unknown reference %r" % (spec,))

    def export(self, obj: Any) -> tuple[int, int, list[Any]]:
        """Hand out ``obj`` by reference: (object id, type key, type description)."""
        oid = self.table.export(obj)
        cls = type(obj)
        entry = self._types_out.get(cls)
        if entry is None:
            description = ops.type_description(cls)  # not under the lock: it reads user code
            with self._type_lock:
                entry = self._types_out.get(cls)
                if entry is None:
                    entry = (len(self._types_out) + 1, description)
                    self._types_out[cls] = entry
        return oid, entry[0], entry[1]

    def make_proxy(self, oid: int, key: int, info: list[Any] | None) -> Any:
        """The proxy for the peer's object ``oid`` (the same proxy while one is alive)."""
        with self._proxy_lock:
            if info is not None:
                self._types_in[key] = TypeInfo(*info[:7])
            ref = self._proxies.get(oid)
            proxy = ref() if ref is not None else None
            if proxy is not None:
                object.__setattr__(proxy, "_mvb_count", proxy._mvb_count + 1)
                return proxy
            type_info = self._types_in[key]
            proxy = proxy_class(type_info)(self, oid, type_info)
            self._proxies[oid] = weakref.ref(proxy)
            return proxy

    def live_proxies(self) -> int:
        with self._proxy_lock:
            return sum(1 for ref in self._proxies.values() if ref() is not None)

    def module_proxy(self, name: str) -> Any:
        raise ProtocolError("module %r arrived as a proxy on the worker side" % name)

    def import_module(self, name: str) -> Any:
        return ops.import_module(name)

    def is_stdlib(self, name: str) -> bool:
        return dists.is_stdlib(name)

    def peer_version(self, top: str) -> str | None:
        """Version of the peer's distribution providing ``top`` (asked once, then cached)."""
        try:
            return self._peer_versions[top]
        except KeyError:
            pass
        answer = self.request(P.OP_VERSIONS, None, [top])
        self._peer_versions.update(answer)
        return answer.get(top)

    def peer_has_name(self, spec: list[Any]) -> bool:
        """Whether the peer has the named object ``spec`` (asked once per name, then cached)."""
        if spec[0] == "obj" and spec[1] == "builtins":
            return True
        key = repr(spec)
        known = self._peer_names.get(key)
        if known is None:
            known = self._peer_names[key] = bool(self.request(P.OP_NAMES, None, [spec])[0])
        return known

    def peer_has_numpy(self) -> bool:
        return self.peer_version("numpy") is not None

    def package_matches(self, module_name: str | None) -> bool:
        """True when ``module_name``'s package is stdlib or the same version on both sides."""
        if not module_name:
            return False
        top = module_name.partition(".")[0]
        if top in ("__main__", "__mp_main__"):
            return False
        # Ours and cloudpickle are the same versions on both sides (checked at the handshake),
        # and pickles name their helpers (e.g. cloudpickle's _make_function).
        if top in ("mvbridge", "cloudpickle") or dists.is_stdlib(top):
            return True
        local = dists.version_of(top)
        return local is not None and local == self.peer_version(top)

    def may_pickle(self, obj: Any) -> bool:
        """True when ``obj`` may cross by value (its defining package matches on both sides)."""
        if isinstance(obj, _PROXY_TYPES):
            return False
        if isinstance(obj, _BOUND) and not _receiver_may_cross(obj):
            return False  # log.append: a copy of log would get the items
        if is_code(obj):
            module = getattr(obj, "__module__", None)
            if module is None:  # a builtin method of some object: its owner is checked in turn
                return True
            key: Any = module
        else:
            key = type(obj)
            module = key.__module__
        known = self._pickle_ok.get(key)
        if known is None:
            # An iterator is a position in something: a copy would not advance the original
            # (iter(partial(take, 3, it), []) would take the same 3 items for ever).
            cursor = isinstance(key, type) and hasattr(key, "__next__")
            known = self._pickle_ok[key] = not cursor and self.package_matches(module)
        return known

    def pickler_class(self, code: bool) -> type:
        """cloudpickle between equal Python versions; plain pickle (no bytecode) otherwise."""
        return hidden.cloudpickle().Pickler if self.same_python else pickle.Pickler

    # -- errors -------------------------------------------------------------------------------
    def rebuild_exception(self, payload: list[Any]) -> BaseException:
        """The exception an ERROR reply describes: its own type when it crossed by value; else
        an instance of the class for its remote class (``core/exceptions.py``); else RemoteError.
        """
        type_name, message, tb, exc = payload[:4]
        line = payload[4] if len(payload) > 4 else []
        args = payload[5] if len(payload) > 5 else None
        if not isinstance(exc, Exception):
            exc = _own_error(type_name, message)
        if not isinstance(exc, Exception):
            exc = exceptions.rebuild(self.exception_origin, line, args, message)
            if isinstance(exc, RemoteError):
                exc.remote_traceback = tb
        if not isinstance(exc, Exception):
            exc = RemoteError(
                "%s: %s (raised in %s; the type cannot be rebuilt here)"
                % (type_name, message, self.peer_description()),
                type_name=type_name,
                remote_traceback=tb,
            )
        if tb:
            exc.__cause__ = RemoteTraceback(tb)
        return exc

    def peer_description(self) -> str:
        return "the peer (Python %s)" % self.peer_python

    def use_shared_memory(self, folder: str | None) -> None:
        """Send large arrays through pooled segments in ``folder`` (None: through frames)."""
        self.segments = sharedmem.SegmentPool(folder) if folder else None

    def close(self) -> None:
        self.closed = True
        self.table.clear()
        if self.segments is not None:
            self.segments.close()


_BOUND = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)
_IMMUTABLE = frozenset([str, bytes, int, float, complex, bool, frozenset, type(None)])


def _receiver_may_cross(method: Any) -> bool:
    """True when a bound method may be pickled with its ``__self__``: a module, a class, an
    immutable value or a named object (``np.add.reduce``). A method of any other object is a
    way to reach that very object (``log.append``), so it crosses by reference."""
    receiver = getattr(method, "__self__", None)
    if isinstance(receiver, (types.ModuleType, type)) or type(receiver) in _IMMUTABLE:
        return True
    return names.name_of(receiver) is not None


def _own_error(type_name: str, message: str) -> BaseException | None:
    """One of our own errors that a router answered with by name (``protocol.error_message``)."""
    module, _, name = type_name.rpartition(".")
    if module != "mvbridge.errors":
        return None
    from .. import errors

    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.MVBridgeError):
        return cls(message)
    return None


# Requests of peers this thread is serving, one inside the other. Calls that cross between
# processes and back nest (host -> env a -> host -> env b -> ...); a chain that never ends would
# otherwise end in RecursionError somewhere, or in a process that can no longer even reply.
MAX_NESTING = 40
_serving = threading.local()


def _too_deep(session: Session) -> NestingError:
    return NestingError(
        "calls between this process and %s are nested %d deep on one thread, so mvbridge "
        "stopped the chain here: it looks like one that never ends, such as two objects of "
        "different envs whose __eq__ (or another operator) each ask the other. Give such "
        "objects a comparison that does not ask the other object back, or compare plain "
        "values taken from them" % (session.peer_description(), MAX_NESTING),
        limit=MAX_NESTING,
    )


class Channel:
    """One strictly nested request/reply conversation over one ZeroMQ socket."""

    reraise_base_exceptions = False  # the host re-raises KeyboardInterrupt after replying

    def __init__(self, session: Session, socket: zmq.Socket) -> None:
        self.session = session
        self.socket = socket
        self.encoder = Encoder(session)
        self.decoder = Decoder(session)
        self.depth = 0  # requests of this side waiting for a reply
        self._next_id = 1

    def request(self, op: str, target: Any, operands: list[Any]) -> Any:
        rid = self.send_request(op, target, operands)
        self.depth += 1
        try:
            return self.wait_reply(rid)
        finally:
            self.depth -= 1

    def send_request(self, op: str, target: Any, operands: list[Any]) -> int:
        """Send one request; return its id, for ``wait_reply``."""
        rid = self._next_id
        self._next_id = rid + 1
        if op == P.OP_CALL or op == P.OP_CALLATTR:
            args = operands[-2]
            for i, arg in enumerate(args):
                args[i] = lift_large(arg)
        body = [op, target]
        body.extend(operands)
        self.send(self.session.encode(self.encoder, P.REQUEST, rid, body))
        return rid

    def wait_reply(self, rid: int) -> Any:
        while True:
            frames = self.receive()
            kind, value = self.examine(rid, frames)
            if kind == P.REPLY:
                return value
            if kind == P.REQUEST:
                self.serve(value, frames)

    def examine(self, rid: int, frames: list[Any]) -> tuple[int | None, Any]:
        """What a message means to a side waiting for reply ``rid``: ``(REPLY, value)``,
        ``(REQUEST, its id)`` to serve, or ``(None, None)`` to go on waiting.

        Raises:
            Exception: the error the peer's ERROR reply describes.
        """
        decoder = self.decoder
        try:
            kind, mid, releases, returns = decoder.header(frames)
        except ProtocolError as exc:
            # Not ours: the reply may still come.
            logs.logger(__name__).warning("dropped a message: %s", exc)
            return None, None
        if releases or returns:
            self.session.received(releases, returns)
        if kind == P.REQUEST:
            return kind, mid
        if mid != rid:
            return None, None  # the late reply of a request this side stopped waiting for
        if kind == P.REPLY:
            return kind, decoder.body(frames)
        if kind == P.ERROR:
            raise self.session.rebuild_exception(decoder.error(frames))
        raise ProtocolError("unexpected message kind %r on a channel" % kind)

    def serve_one(self, frames: list[Any]) -> None:
        """Handle a message that arrived while this side was not waiting for a reply."""
        try:
            kind, mid, releases, returns = self.decoder.header(frames)
        except ProtocolError as exc:
            logs.logger(__name__).warning("dropped a message: %s", exc)
            return
        if releases or returns:
            self.session.received(releases, returns)
        if kind == P.REQUEST:
            self.serve(mid, frames)

    def serve(self, rid: int, frames: list[Any]) -> None:
        """Run one request of the peer and send its reply."""
        result = self.run_request(rid, frames)
        if result is not FAILED:
            self.send_reply(rid, result)

    def run_request(self, rid: int, frames: list[Any]) -> Any:
        """Run one request of the peer; if it fails, send its error and return ``FAILED``."""
        session = self.session
        level = getattr(_serving, "level", 0)
        _serving.level = level + 1
        try:
            if level >= MAX_NESTING:
                raise _too_deep(session)
            body = self.decoder.body(frames)
            return ops.apply(session, body[0], body[1], body[2:])
        except BaseException as exc:
            self.send_error(rid, exc)
            if self.reraise_base_exceptions and not isinstance(exc, Exception):
                raise
            return FAILED
        finally:
            _serving.level = level

    def send_reply(self, rid: int, result: Any) -> None:
        """Send the reply to the peer's request ``rid`` (or the error of encoding it)."""
        session = self.session
        try:
            if not session.has_releases() and not is_large(result):
                # Most replies are plain values: packed without the codec's hooks.
                frame = self.encoder.plain_frame([P.REPLY, rid, None], result)
                if frame is not None:
                    self.send([frame])
                    return
            self.send(session.encode(self.encoder, P.REPLY, rid, lift_large(result)))
        except MVBridgeError as exc:  # cannot be encoded, or too large to send: say so
            self.send_error(rid, exc)
        except Exception as exc:
            self.send_error(rid, exc)

    def send_error(self, rid: int, exc: BaseException) -> None:
        import traceback  # here, not at import: with logging, 5 ms of a worker's start-up

        text = _trimmed("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        header = self.session.header(P.ERROR, rid)
        try:
            frames = self.encoder.encode_error(header, exc, text)
        except Exception:
            frames = self.encoder.encode_error(header, MVBridgeError(str(exc)), text)
        self.send(frames)

    # -- transport: subclasses add liveness, deadlines and stop flags -----------------------------
    def send(self, frames: list[Any]) -> None:
        # Zero-copy pays only for the buffer frames (1..n); small messages copy faster.
        self.socket.send_multipart(frames, copy=len(frames) == 1)

    def receive(self) -> list[Any]:
        return receive_message(self.socket)


FAILED = object()  # run_request's answer when the request failed (its error is sent)

_TRACEBACK_ENDS = 150  # lines kept at each end of a long traceback text


def _trimmed(text: str) -> str:
    """``text`` without the middle of a traceback that deep callback chains made thousands of
    lines long: its first lines hold the innermost error, its last the outermost call."""
    lines = text.splitlines(True)
    if len(lines) <= 3 * _TRACEBACK_ENDS:
        return text
    left_out = len(lines) - 2 * _TRACEBACK_ENDS
    marker = "  [... %d lines of nested calls left out ...]\n" % left_out
    return "".join(lines[:_TRACEBACK_ENDS]) + marker + "".join(lines[-_TRACEBACK_ENDS:])


def receive_message(socket: zmq.Socket, flags: int = 0) -> list[Any]:
    """One multipart message: frame 0 (header and body) copied, which is cheaper than wrapping
    it; buffer frames (1..n) kept as zero-copy ``zmq.Frame`` objects.

    Frame 0 says whether buffer frames follow (``protocol.MORE_FRAMES``): asking the socket
    (``getsockopt(RCVMORE)``) costs more than the rest of a small message's reading.
    """
    first = socket.recv(flags)
    frames: list[Any] = [first]
    if len(first) > 3 and first[3] & _MORE_FRAMES_BIT:
        # getsockopt, not the ``socket.rcvmore`` attribute: pyzmq's attribute options import
        # zmq lazily, and in a worker our zmq is no longer in sys.modules (see workers/boot.py).
        while socket.getsockopt(_RCVMORE):
            frames.append(socket.recv(copy=False))
    return frames


_RCVMORE = zmq.RCVMORE
_MORE_FRAMES_BIT = P.MORE_FRAMES >> 24  # in frame 0's fourth byte (little-endian length)
