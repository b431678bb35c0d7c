"""Values <-> ZeroMQ frames: msgpack fast path, neutral numpy arrays, pickle, references.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

How a value crosses (see docs/explanation/values-and-references.md):

* plain data (None, bool, int, float, str, bytes, list, dict) is msgpack; tuple, set, frozenset,
  complex and ints beyond 64 bits are msgpack ext types, so each keeps its type (bytearray and
  memoryview arrive as bytes: msgpack packs them natively, before any hook sees them);
* numpy arrays and scalars travel as dtype + shape + raw buffer (large buffers in their own
  frame, zero-copy), which numpy 1.x and 2.x both read; object, masked and subclassed arrays
  in the forms of core/arrays.py;
* other objects are pickled (protocol 5, out-of-band buffers) only when the module that defines
  them is the standard library or the same distribution version on both sides; code (functions,
  classes) travels by value only between equal Python minor versions;
* an instance of a subclass of a builtin value type (str, int, tuple, dict, ...) that may not be
  pickled crosses as the value of its builtin base (core/builtin_values.py);
* everything else becomes a reference: the owner keeps the object, the receiver gets a proxy.

``ByValue``/``ByRef`` wrappers (``mvbridge.by_value``/``by_ref``) override the choice.
The session object (``peer.Session``) supplies references, proxies and version facts.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
from typing import TYPE_CHECKING, Any, Callable

import msgpack

from ..errors import ProtocolError, SerializationError
from . import arrays, builtin_values, exceptions, hidden, names, sharedmem
from .protocol import MORE_FRAMES, REPLY

_SIZE_MASK = MORE_FRAMES - 1

if TYPE_CHECKING:  # pragma: no cover
    from .peer import Session

# Ext type codes.
EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_COMPLEX = 4
EXT_BIGINT = 5
EXT_NDARRAY = 6  # [dtype wire, shape, data bytes | frame index | segment, is_scalar]
EXT_PICKLE = 7  # [pickle bytes | frame index, [out-of-band frame indices]]
EXT_REF = 8  # [object id, type key, type info | nil]: the sender's object, a proxy for the receiver
EXT_YOURS = 9  # the receiver's own object: id | ["a", spec, attribute] | ["m", module name]
EXT_MODULE = 10  # module name: a module of the sender, a proxy for the receiver
EXT_IMPORT = 11  # module name: the receiver imports its own module of that name
EXT_FRAME = 12  # frame index: bytes carried in their own frame
EXT_NAMED = 14  # a named object's spec (core/names.py): the receiver's own object of that name
EXT_EXCCLASS = 13  # lineage [[module, qualname], ...]: an exception class, a real class for the
#                    receiver (its own of that name, else one made for it: core/exceptions.py)
EXT_ARRAY = 15  # any other numpy array: a form of core/arrays.py, its parts encoded as values
EXT_VALUE = 16  # a value: a builtin subclass's instance as its base (core/builtin_values.py)

# Buffers at least this large travel in their own frame, without a copy.
FRAME_THRESHOLD = 64 * 1024

_PLAIN = frozenset([type(None), bool, int, float, str, bytes, list, dict])

NOT_PLAIN = object()  # Decoder.plain_reply: read this message the general way


def _scalar_leads() -> bytes:
    """First bytes of msgpack values that hold no container and no ext value."""
    leads = bytearray(256)
    for first, last in (
        (0x00, 0x7F),  # positive fixint
        (0xA0, 0xBF),  # fixstr
        (0xC0, 0xC0),  # nil
        (0xC2, 0xC6),  # false, true, bin 8/16/32
        (0xCA, 0xD3),  # float 32/64, uint and int 8..64
        (0xD9, 0xDB),  # str 8/16/32
        (0xE0, 0xFF),  # negative fixint
    ):
        leads[first : last + 1] = b"\x01" * (last - first + 1)
    return bytes(leads)


_SCALAR_LEAD = _scalar_leads()
_CODE_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
    type,
)


class ByValue:
    """Wrapper: send ``value`` by value (pickle) whatever the default rules say."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class ByRef:
    """Wrapper: send ``value`` as a reference whatever the default rules say."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _packb(obj: Any, default: Any) -> bytes:
    return default.pack(obj)


class _Packing:
    """One message being encoded: its frames, and the msgpack hook that adds to them."""

    __slots__ = ("encoder", "frames")

    def __init__(self, encoder: Encoder, frames: list[Any]) -> None:
        self.encoder = encoder
        self.frames = frames

    def __call__(self, obj: Any) -> Any:
        return self.encoder._default(obj, self.frames, self)

    def pack(self, obj: Any) -> bytes:
        return self.encoder._pack(obj)


def module_reference(name: str) -> msgpack.ExtType:
    """Module ``name`` of the receiver, as the ext value the encoder would make for its proxy;
    msgpack packs it as it is, so a proxy can keep it and skip the hook on every call."""
    return object_reference(["m", name])


def object_reference(spec: Any) -> msgpack.ExtType:
    """The receiver's own object named by ``spec`` (``Session.ref_spec``), packed as the encoder
    packs a proxy of it."""
    return msgpack.ExtType(EXT_YOURS, msgpack.packb(spec, use_bin_type=True))


def _unpackb(data: Any, ext_hook: Callable[[int, bytes], Any]) -> Any:
    return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False, use_list=True)


def _numpy() -> Any:
    return names.loaded_numpy()


def _is_ndarray(obj: Any) -> bool:
    np = _numpy()
    return np is not None and isinstance(obj, (np.ndarray, np.generic))


class Encoder:
    """Encodes messages for one channel (one thread at a time)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.sent_types: set = set()  # type keys whose info this channel already sent
        self._attempts: list[list[Any]] = []  # pickles being tried: what to undo if they fail
        # msgpack.packb builds a Packer (and its buffer) per call; reusing Packers, one per
        # nesting depth of ext payloads, saves much of a small call's encoding time.
        self._header_packer = msgpack.Packer(use_bin_type=True)
        self._plain_packer = msgpack.Packer(use_bin_type=True, strict_types=True)
        self._packers: list[Any] = []
        self._depth = 0
        # The message being packed (a _Packing), in a cell the Packers' hook reads, not through
        # self: a Packer holding a bound method of its Encoder would make a cycle, which kept
        # every ended channel's Packers and their buffers until the garbage collector's next
        # full run.
        current: list[_Packing | None] = [None]
        self._current = current

        def hook(obj: Any) -> Any:
            return current[0](obj)

        self._hook = hook

    def _pack(self, obj: Any) -> bytes:
        depth = self._depth
        packers = self._packers
        if depth == len(packers):
            packers.append(msgpack.Packer(default=self._hook, use_bin_type=True, strict_types=True))
        packer = packers[depth]
        self._depth = depth + 1
        try:
            return packer.pack(obj)
        except BaseException:
            packer.reset()
            raise
        finally:
            self._depth = depth

    def _begin(self, frames: list[Any]) -> Any:
        current = self._current
        saved = (current[0], self._packers, self._depth)
        if current[0] is not None:
            # A message encoded while another one is (a version query made by the hook): the
            # outer message's Packers hold half-packed data, so this one gets its own.
            self._packers = []
            self._depth = 0
        current[0] = _Packing(self, frames)
        return saved

    def _end(self, saved: Any) -> None:
        self._current[0], self._packers, self._depth = saved

    def encode(self, header: list[Any], body: Any) -> list[Any]:
        """Frames of one message: ``header`` (plain msgpack), ``body`` (any value), buffers."""
        frames: list[Any] = [b""]
        saved = self._begin(frames)
        try:
            packed_header = self._header_packer.pack(header)
            packed_body = self._pack(body)  # adds the buffer frames
            frames[0] = _join(packed_header, packed_body, len(frames) > 1)
        finally:
            self._end(saved)
        return frames

    def plain_frame(self, header: list[Any], body: Any) -> bytes | None:
        """Frame 0 of a message whose body msgpack holds as it is (plain values and ext values
        packed beforehand), made without the hook; None when the body needs the hook.

        The same bytes ``encode`` makes: its Packer, with the same options, calls the hook only
        for what this one refuses.
        """
        plain = self._plain_packer
        try:
            body_bytes = plain.pack(body)
        except Exception:  # a tuple, a big int, an object: the hook's work
            plain.reset()
            return None
        return _join(self._header_packer.pack(header), body_bytes, False)

    def encode_error(self, header: list[Any], exc: BaseException, traceback_text: str) -> list[Any]:
        """Frames of an ERROR message: type name, message, traceback, and the exception itself
        pickled when its type may cross by value (packed apart, so a failure to rebuild it
        still leaves the rest readable)."""
        frames: list[Any] = [b""]
        saved = self._begin(frames)
        try:
            blob = None
            if isinstance(exc, Exception) and self.session.may_pickle(exc):
                try:
                    blob = self._pack(ByValue(exc))
                except Exception:
                    del frames[1:]
            args = None
            if blob is None:  # the receiver rebuilds it from its class's lineage and its args
                try:
                    args = self._pack(list(exc.args))
                except Exception:
                    del frames[1:]
            packed_header = self._header_packer.pack(header)
            packed_body = self._pack(
                [type_name(exc), _safe_str(exc), traceback_text, blob, _lineage(type(exc)), args]
            )
            frames[0] = _join(packed_header, packed_body, len(frames) > 1)
        finally:
            self._end(saved)
        return frames

    # -- the ext hook -------------------------------------------------------------------------
    def _default(self, obj: Any, frames: list[Any], default: Callable[[Any], Any]) -> Any:
        cls = type(obj)
        if cls is tuple:
            return msgpack.ExtType(EXT_TUPLE, _packb(list(obj), default))
        if cls is int:
            return msgpack.ExtType(EXT_BIGINT, str(obj).encode("ascii"))
        if cls is set:
            return msgpack.ExtType(EXT_SET, _packb(list(obj), default))
        if cls is frozenset:
            return msgpack.ExtType(EXT_FROZENSET, _packb(list(obj), default))
        if cls is complex:
            return msgpack.ExtType(EXT_COMPLEX, _packb([obj.real, obj.imag], default))
        if cls is LargeBytes:
            frames.append(obj.data)
            return msgpack.ExtType(EXT_FRAME, _packb(len(frames) - 1, default))
        code, payload = self.encode_object(obj, frames, default)
        return msgpack.ExtType(code, payload)

    def encode_object(
        self, obj: Any, frames: list[Any], default: Callable[[Any], Any], forced: bool = False
    ) -> Any:
        """(ext code, payload) for a value that msgpack cannot hold as it is."""
        session = self.session
        spec = session.ref_spec(obj)
        if spec is not None:
            return EXT_YOURS, _packb(spec, default)
        if isinstance(obj, ByRef):
            return EXT_REF, _packb(self.export(obj.value), default)
        if isinstance(obj, ByValue):
            return EXT_PICKLE, self.pickle(obj.value, frames, default, forced=True)
        if isinstance(obj, types.ModuleType):
            return self.encode_module(obj, default)
        if exceptions.is_exception_class(obj) and not (forced or session.may_pickle(obj)):
            return EXT_EXCCLASS, _packb(_lineage(obj), default)
        if not forced:
            spec = names.name_of(obj)
            if spec is not None and session.peer_has_name(spec):
                return EXT_NAMED, _packb(spec, default)
        if _is_ndarray(obj) and session.peer_has_numpy():
            found = self.encode_array(obj, frames, default)
            if found is not None:
                return found
        if forced or session.may_pickle(obj):
            attempt = self._begin_attempt(frames)
            try:
                payload = self.pickle(obj, frames, default)
            except SerializationError:
                self._undo_attempt(attempt, frames)
                raise
            except Exception:
                # Not picklable after all: what the attempt exported or marked as described
                # must not stay (the peer never sees those references).
                self._undo_attempt(attempt, frames)
            else:
                done = self._attempts.pop()
                if self._attempts:  # an enclosing attempt that fails undoes these too
                    self._attempts[-1][2].extend(done[2])
                return EXT_PICKLE, payload
        else:  # a type the peer cannot rebuild: a builtin's subclass still crosses as its value
            value = builtin_values.base_value(obj)
            if value is not builtin_values.NOT_BUILTIN:
                return EXT_VALUE, _packb(value, default)
        return EXT_REF, _packb(self.export(obj), default)

    def _begin_attempt(self, frames: list[Any]) -> list[Any]:
        attempt: list[Any] = [len(frames), set(self.sent_types), []]  # + exported object ids
        self._attempts.append(attempt)
        return attempt

    def _undo_attempt(self, attempt: list[Any], frames: list[Any]) -> None:
        self._attempts.remove(attempt)
        count, sent_types, exported = attempt
        del frames[count:]
        self.sent_types = sent_types
        if exported:
            self.session.table.release([(oid, 1) for oid in exported])
            for outer in self._attempts:  # an enclosing attempt no longer holds them either
                for oid in exported:
                    if oid in outer[2]:
                        outer[2].remove(oid)

    def encode_module(self, module: types.ModuleType, default: Callable[[Any], Any]) -> Any:
        name = module.__name__
        if self.session.is_stdlib(name):
            return EXT_IMPORT, _packb(name, default)
        if self.session.exports_modules:
            return EXT_MODULE, _packb(name, default)
        return EXT_REF, _packb(self.export(module), default)

    def export(self, obj: Any) -> list[Any]:
        oid, key, info = self.session.export(obj)
        if self._attempts:
            self._attempts[-1][2].append(oid)
        if key in self.sent_types:
            return [oid, key, None]
        self.sent_types.add(key)
        return [oid, key, info]

    def encode_array(
        self, obj: Any, frames: list[Any], default: Callable[[Any], Any]
    ) -> tuple[int, bytes] | None:
        """(ext code, payload) of a numpy array or scalar, or None: pickle it or refer to it."""
        if arrays.is_raw(obj):
            payload = self.encode_raw_array(obj, frames, default)
            if payload is not None:
                return EXT_NDARRAY, payload
            return None
        form = arrays.form_of(obj, self.session.peer_has_name)
        return None if form is None else (EXT_ARRAY, _packb(form, default))

    def encode_raw_array(
        self, arr: Any, frames: list[Any], default: Callable[[Any], Any]
    ) -> bytes | None:
        np = _numpy()
        is_scalar = isinstance(arr, np.generic)
        if is_scalar:
            arr = np.asarray(arr)
        descr = arrays.dtype_wire(arr.dtype)
        if descr is None:
            return None
        if not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        raw = arr.reshape(-1).view(np.uint8)
        data: Any
        segments = self.session.segments
        if segments is not None and raw.nbytes >= sharedmem.THRESHOLD:
            data = segments.lend(raw)  # [path, segment size, length]
        elif raw.nbytes >= FRAME_THRESHOLD:
            frames.append(raw)
            data = len(frames) - 1
        else:
            data = raw.tobytes()
        return _packb([descr, list(arr.shape), data, is_scalar], default)

    def pickle(
        self,
        obj: Any,
        frames: list[Any],
        default: Callable[[Any], Any],
        forced: bool = False,
    ) -> bytes:
        """Pickle ``obj``; parts that may not cross by value become references.

        ``forced`` (by_value, env.call): functions and classes the peer cannot import by name
        travel as code (cloudpickle, equal Python versions only) instead of as references.
        """
        buffers: list[Any] = []
        out = io.BytesIO()
        base = self.session.pickler_class(code=forced)
        pickler = _make_pickler(base)(out, self, obj, frames, default, buffers.append, forced)
        try:
            pickler.dump(obj)
        except SerializationError:
            raise
        except Exception as exc:
            if forced:
                raise SerializationError(
                    "cannot send %s by value: %s: %s; send it by reference instead "
                    "(mvbridge.by_ref)" % (_type_name(obj), type(exc).__name__, exc),
                    type_name=_type_name(obj),
                ) from exc
            raise
        indices = []
        for buf in buffers:
            frames.append(buf.raw())
            indices.append(len(frames) - 1)
        data: Any = out.getbuffer()
        if len(data) >= FRAME_THRESHOLD:
            frames.append(data)
            data = len(frames) - 1
        else:
            data = bytes(data)
        return _packb([data, indices], default)

    def persistent_id(
        self,
        obj: Any,
        root: Any,
        frames: list[Any],
        default: Callable[[Any], Any],
        forced: bool,
    ) -> Any:
        """Inside a pickle: the (ext code, payload) of a part that must not be pickled."""
        if obj is root or type(obj) in _PLAIN or type(obj) is tuple:
            return None
        if forced and is_code(obj):
            return None  # reducer_override decides: by name, or as code
        session = self.session
        spec = session.ref_spec(obj)
        if spec is not None:
            return (EXT_YOURS, _packb(spec, default))
        if isinstance(obj, ByRef):
            return (EXT_REF, _packb(self.export(obj.value), default))
        if _is_ndarray(obj) and session.peer_has_numpy():
            found = self.encode_array(obj, frames, default)
            if found is not None:
                return found
        if _is_ndarray(obj) and not session.may_pickle(obj):
            return (EXT_REF, _packb(self.export(obj), default))
        if isinstance(obj, types.ModuleType):
            return self.encode_module(obj, default)
        if session.may_pickle(obj):
            return None
        if exceptions.is_exception_class(obj):
            return (EXT_EXCCLASS, _packb(_lineage(obj), default))
        spec = names.name_of(obj)
        if spec is not None and session.peer_has_name(spec):
            return (EXT_NAMED, _packb(spec, default))
        value = builtin_values.base_value(obj)
        if value is not builtin_values.NOT_BUILTIN:
            return (EXT_VALUE, _packb(value, default))
        return (EXT_REF, _packb(self.export(obj), default))


class LargeBytes:
    """Marker for bytes that travel in their own frame (set by the channel for big payloads)."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


_pickler_cache: dict = {}


def _make_pickler(base: type) -> type:
    cls = _pickler_cache.get(base)
    if cls is None:

        class _Pickler(base):  # type: ignore[valid-type, misc]
            def __init__(
                self,
                file: Any,
                encoder: Encoder,
                root: Any,
                frames: list[Any],
                default: Callable[[Any], Any],
                buffer_callback: Callable[[Any], Any],
                forced: bool,
            ) -> None:
                base.__init__(self, file, protocol=5, buffer_callback=buffer_callback)
                self._mvb = (encoder, root, frames, default, forced)

            def persistent_id(self, obj: Any) -> Any:
                return self._mvb[0].persistent_id(obj, *self._mvb[1:])

            def reducer_override(self, obj: Any) -> Any:
                if self._mvb[4] and is_code(obj):
                    session = self._mvb[0].session
                    if not session.package_matches(getattr(obj, "__module__", None)):
                        by_value = _code_by_value(self, obj)
                        if by_value is not None:
                            return by_value
                parent = getattr(base, "reducer_override", None)
                return parent(self, obj) if parent is not None else NotImplemented

        cls = _pickler_cache[base] = _Pickler
    return cls


def _code_by_value(pickler: Any, obj: Any) -> Any:
    """cloudpickle's by-value reduction of a function or class, or None (plain pickle)."""
    if not isinstance(obj, (types.FunctionType, type)):
        return None
    if isinstance(obj, types.FunctionType):
        reduce = getattr(pickler, "_dynamic_function_reduce", None)
        return reduce(obj) if reduce is not None else None
    reduce_class = getattr(hidden.cloudpickle().cloudpickle, "_dynamic_class_reduce", None)
    return reduce_class(obj) if reduce_class is not None else None


class Decoder:
    """Decodes messages of one channel."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def header(frames: list[Any]) -> list[Any]:
        """``[kind, id, releases, returned segments or None]`` of a message.

        Raises:
            ProtocolError: the message is not one of ours (the caller drops it and goes on).
        """
        try:
            header = msgpack.unpackb(_split(frames[0])[0], raw=False, use_list=True)
            kind, rid, releases = header[:3]
            returns = header[3] if len(header) > 3 else None
        except Exception as exc:
            raise ProtocolError(
                "malformed message header (%s: %s)" % (type(exc).__name__, exc)
            ) from None
        if type(kind) is not int or type(rid) is not int:
            raise ProtocolError("malformed message header %r" % ([kind, rid],))
        if (releases is not None and not isinstance(releases, list)) or (
            returns is not None and not isinstance(returns, list)
        ):
            raise ProtocolError("malformed releases in a message header")
        return [kind, rid, releases, returns]

    @staticmethod
    def plain_reply(frame: Any, rid: int) -> Any:
        """The value of ``frame`` when it is the REPLY to ``rid`` that carries a scalar and no
        releases (read without the ext hook: a scalar holds no ext value); else ``NOT_PLAIN``,
        and the caller reads the message the general way."""
        try:
            view = memoryview(frame)
            size = int.from_bytes(view[:4], "little")  # bit 31 set: not a single frame
            body = view[4 + size :]
            if not body or not _SCALAR_LEAD[body[0]]:
                return NOT_PLAIN
            header = msgpack.unpackb(view[4 : 4 + size], raw=False, use_list=True)
            if header[0] != REPLY or header[1] != rid or header[2] or len(header) > 3:
                return NOT_PLAIN
            return msgpack.unpackb(body, raw=False)
        except Exception:  # malformed: the general reading says what is wrong
            return NOT_PLAIN

    def body(self, frames: list[Any]) -> Any:
        """The body of a message, its values rebuilt."""

        def ext_hook(code: int, data: bytes) -> Any:
            return self._ext(code, data, frames, ext_hook)

        try:
            return _unpackb(_split(frames[0])[1], ext_hook)
        except _MALFORMED as exc:
            raise _malformed("body", exc) from None

    def error(self, frames: list[Any]) -> list[Any]:
        """``[type name, message, traceback, exception or None, lineage, args or None]`` of an
        ERROR message (a router's own ERROR has only the first four)."""

        def ext_hook(code: int, data: bytes) -> Any:
            return self._ext(code, data, frames, ext_hook)

        try:
            fields = msgpack.unpackb(_split(frames[0])[1], raw=False, use_list=True)
            type_name_, message, tb, blob = fields[:4]
        except _MALFORMED as exc:
            raise _malformed("error", exc) from None
        line = fields[4] if len(fields) > 4 else []
        packed_args = fields[5] if len(fields) > 5 else None
        exc = args = None
        if blob is not None:
            try:
                exc = _unpackb(blob, ext_hook)
            except Exception:
                exc = None
        if exc is None and packed_args is not None:
            try:
                args = _unpackb(packed_args, ext_hook)
            except Exception:
                args = None
        return [type_name_, message, tb, exc, line, args]

    def _ext(self, code: int, data: bytes, frames: list[Any], ext_hook: Any) -> Any:
        if code == EXT_TUPLE:
            return tuple(_unpackb(data, ext_hook))
        if code == EXT_BIGINT:
            return int(data.decode("ascii"))
        if code == EXT_SET:
            return set(_unpackb(data, ext_hook))
        if code == EXT_FROZENSET:
            return frozenset(_unpackb(data, ext_hook))
        if code == EXT_COMPLEX:
            real, imag = _unpackb(data, ext_hook)
            return complex(real, imag)
        if code == EXT_FRAME:
            return _frame_bytes(frames[_unpackb(data, ext_hook)])
        if code == EXT_NDARRAY:
            return self.decode_ndarray(_unpackb(data, ext_hook), frames)
        if code == EXT_ARRAY:
            form = _unpackb(data, ext_hook)
            try:
                return arrays.from_form(form)
            except Exception as exc:
                numpy_version = getattr(_numpy(), "__version__", "-")
                raise _not_rebuilt(
                    "a numpy array (%s form)" % form[0], "numpy " + numpy_version, exc
                ) from None
        if code == EXT_VALUE:
            return _unpackb(data, ext_hook)
        if code == EXT_PICKLE:
            return self.unpickle(_unpackb(data, ext_hook), frames, ext_hook)
        if code == EXT_REF:
            oid, key, info = _unpackb(data, ext_hook)
            return self.session.make_proxy(oid, key, info)
        if code == EXT_YOURS:
            spec = _unpackb(data, ext_hook)
            return self.session.resolve(spec)
        if code == EXT_MODULE:
            return self.session.module_proxy(_module_name(_unpackb(data, ext_hook)))
        if code == EXT_IMPORT:
            return self.session.import_module(_module_name(_unpackb(data, ext_hook)))
        if code == EXT_NAMED:
            spec = _unpackb(data, ext_hook)
            try:
                return names.resolve(spec)
            except LookupError as exc:
                raise SerializationError(
                    "a named object arrived that this side cannot find: %s" % exc
                ) from None
        if code == EXT_EXCCLASS:
            line = _unpackb(data, ext_hook)
            return exceptions.exception_class(self.session.exception_origin, line)
        raise SerializationError("unknown ext type %d in a message" % code)

    def decode_ndarray(self, payload: list[Any], frames: list[Any]) -> Any:
        np = _numpy()
        if np is None:
            try:
                import numpy as np
            except ImportError as exc:
                raise SerializationError(
                    "a numpy array arrived but numpy is not installed in this interpreter "
                    "(%s); install numpy here or return a plain value" % sys.executable
                ) from exc
        descr, shape, data, is_scalar = payload
        try:
            dtype = arrays.dtype_from_wire(descr)
        except TypeError as exc:
            raise SerializationError(
                "a numpy array arrived whose dtype numpy %s here cannot make: %s"
                % (np.__version__, exc)
            ) from None
        if isinstance(data, int):
            arr = np.frombuffer(_buffer(frames[data]), dtype=dtype)
        elif isinstance(data, list):  # a lent shared-memory segment: ours until the array goes
            segments = self.session.segments
            if segments is None:
                raise SerializationError(
                    "an array arrived in shared memory on a session without it"
                )
            arr = np.frombuffer(segments.borrow(*data), dtype=dtype)
        else:
            arr = np.frombuffer(data, dtype=dtype).copy()  # small: a writable copy of its own
        arr = arr.reshape(shape)
        return arr[()] if is_scalar else arr

    def unpickle(self, payload: list[Any], frames: list[Any], ext_hook: Any) -> Any:
        data, indices = payload
        if isinstance(data, int):
            data = _buffer(frames[data])
        buffers = [_buffer(frames[i]) for i in indices]
        unpickler = _Unpickler(io.BytesIO(data), buffers, ext_hook, self.session.find_class)
        try:
            return unpickler.load()
        except SerializationError:
            raise
        except Exception as exc:
            python = "Python %d.%d" % sys.version_info[:2]
            raise _not_rebuilt("a pickled value", python, exc) from exc


# What decoding bytes that are not a message of ours raises (msgpack's errors are ValueErrors;
# a bad frame index, shape or type key the others). Errors of user code (imports, unpickling)
# keep their own types.
_MALFORMED = (ValueError, TypeError, IndexError, KeyError)


def _module_name(name: Any) -> str:
    if type(name) is not str:
        raise ProtocolError("a module reference names %r, not a module" % (name,))
    return name


def _malformed(part: str, exc: Exception) -> ProtocolError:
    return ProtocolError("malformed message %s (%s: %s)" % (part, type(exc).__name__, exc))


def _not_rebuilt(what: str, where: str, exc: Exception) -> SerializationError:
    return SerializationError(
        "%s could not be rebuilt in %s (%s): %s: %s; the other side can send it by reference "
        "instead (mvbridge.by_ref)" % (what, sys.executable, where, type(exc).__name__, exc)
    )


class _Unpickler(pickle.Unpickler):
    def __init__(
        self,
        file: Any,
        buffers: list[Any],
        ext_hook: Callable[[int, bytes], Any],
        find_class: Callable[[str, str], Any] | None,
    ) -> None:
        super().__init__(file, buffers=buffers)
        self._ext_hook = ext_hook
        self._find_class = find_class

    def persistent_load(self, pid: Any) -> Any:
        code, payload = pid
        return self._ext_hook(code, payload)

    def find_class(self, module: str, name: str) -> Any:
        if self._find_class is not None:
            found = self._find_class(module, name)
            if found is not None:
                return found
        return super().find_class(module, name)


def is_large(value: Any) -> bool:
    """True for ``bytes`` large enough to travel in a frame of their own."""
    return type(value) is bytes and len(value) >= FRAME_THRESHOLD


def lift_large(value: Any) -> Any:
    """``value``, marked to travel in its own frame when it is large ``bytes``."""
    return LargeBytes(value) if is_large(value) else value


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<unprintable %s>" % type(exc).__name__


def _join(header: bytes, body: bytes, more: bool) -> bytes:
    """Frame 0: the header's length (4 bytes, little-endian; bit 31 set when buffer frames
    follow), the header, the body."""
    size = len(header) | MORE_FRAMES if more else len(header)
    return b"".join((size.to_bytes(4, "little"), header, body))


def _split(frame: Any) -> tuple[Any, Any]:
    """Header and body views of frame 0 (no copies).

    Raises:
        ValueError: the frame is too short for its own header length.
    """
    view = memoryview(frame)
    size = int.from_bytes(view[:4], "little") & _SIZE_MASK
    if len(view) < 4 + size:
        raise ValueError("frame of %d bytes, header of %d" % (len(view), size))
    return view[4 : 4 + size], view[4 + size :]


def _buffer(frame: Any) -> Any:
    return frame if type(frame) is bytes else frame.buffer


def _frame_bytes(frame: Any) -> bytes:
    # Not hasattr(frame, "bytes"): that property makes a copy just to answer.
    return frame if type(frame) is bytes else frame.bytes


def _lineage(cls: type) -> list[list[str]]:
    # A class made for the peer's class goes back as the peer's own lineage: its real class.
    made = vars(cls).get("_mvb_lineage")
    return list(made) if made is not None else exceptions.lineage(cls)


def _type_name(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def type_name(obj: Any) -> str:
    """``module.QualName`` of ``obj``'s type (of ``obj`` itself for a class)."""
    return _type_name(obj)


def is_code(obj: Any) -> bool:
    """True for functions, methods and classes: objects whose pickle may carry bytecode."""
    return isinstance(obj, _CODE_TYPES)
