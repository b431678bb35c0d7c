"""Proxies for objects that live on the other side of a session.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only (the worker
holds proxies of host objects, e.g. callbacks).

A proxy forwards attribute access, calls and operators to the owner with one request each.
``obj.method(x)`` is one round trip: a method name known from the type's description gives a
lazy ``RemoteAttribute`` that sends "call attribute" instead of "get attribute" then "call".
Finalisers only queue the release; the session sends it with a later message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

from ..errors import SerializationError
from . import protocol as P
from .ops import SPECIAL, TZINFO

if TYPE_CHECKING:  # pragma: no cover
    import inspect

    from .peer import Session


# Probes by numpy, IPython and copy that must not become a remote lookup.
_LOCAL_MISSING = frozenset(
    [
        "__array_interface__",
        "__array_struct__",
        "__array_priority__",
        "__array_function__",
        "__array_ufunc__",
        "__dlpack__",
        "_ipython_canary_method_should_not_exist_",
        "_ipython_display_",
        "__getstate__",
        "__setstate__",
        "__copy__",
        "__deepcopy__",
        "__length_hint__",
        "__wrapped__",
        # Code introspection (inspect, pydoc): code objects mean nothing in another interpreter.
        "__code__",
        "__globals__",
        "__closure__",
        "__defaults__",
        "__kwdefaults__",
        "__func__",
    ]
)


def display_probe(name: str) -> bool:
    """True for the names IPython asks of every value it shows or completes (``_repr_html_``,
    ``_repr_mimebundle_``, ``_ipython_display_``, ``_ipython_key_completions_`` ...): a proxy
    answers them from its type's description (the type's callables), never by a round trip."""
    return name.endswith("_") and name.startswith(("_repr_", "_ipython_"))


def _remote_doc(self: RemoteObject) -> str | None:
    return self._mvb_describe().get("doc")


_REMOTE_DOC = property(_remote_doc)


class TypeInfo:
    """What a proxy knows locally about its remote object's type (sent once per session).

    Attributes:
        name: the type's qualified name, ``module.QualName``.
        methods: names of its callable attributes (``obj.m(x)`` is then one round trip).
        flags: ``protocol.FLAG_*``.
        specials: the special methods the type has (``ops.shape_of``); its proxies have exactly
            those, so ``hasattr``, ``callable``, ``iter`` and the ``collections.abc`` checks
            answer as they would locally.
        abcs: ``collections.abc`` and ``numbers`` ABCs the type is registered with or subclasses,
            by name: its proxy class is registered with the same ones here.
    """

    __slots__ = (
        "abcs",
        "flags",
        "methods",
        "module",
        "name",
        "proxy_class",
        "qualname",
        "specials",
    )

    def __init__(
        self,
        name: str,
        methods: list[str],
        flags: int,
        specials: list[str] | None = None,
        abcs: list[str] | None = None,
        module: str | None = None,
        qualname: str | None = None,
    ) -> None:
        self.name = name
        self.module = module or name.rpartition(".")[0]
        self.qualname = qualname or name.rpartition(".")[2]
        self.methods: frozenset[str] = frozenset(methods)
        self.flags = flags
        self.specials: frozenset[str] = frozenset(specials or ())
        self.abcs = list(abcs or ())
        self.proxy_class: type | None = None


class RemoteObject:
    # The base of every proxy of an object held by the other side: ``isinstance(x,
    # mvbridge.RemoteObject)`` tells a proxy. Each remote type gets a subclass of its own
    # (``proxy_class``) that adds the special methods that type has, and nothing else.
    # (Its ``__doc__`` is the remote object's docstring, so the class keeps none.)
    __doc__ = _REMOTE_DOC  # type: ignore[assignment]

    __slots__ = (
        "__weakref__",
        "_mvb_batches",
        "_mvb_count",
        "_mvb_oid",
        "_mvb_session",
        "_mvb_type",
    )
    _mvb_remote = True  # names.find: not this side's object (a class attribute, no round trip)

    _mvb_session: Session
    _mvb_oid: int | None
    _mvb_type: TypeInfo

    def __init__(self, session: Session, oid: int | None, info: TypeInfo) -> None:
        object.__setattr__(self, "_mvb_session", session)
        object.__setattr__(self, "_mvb_oid", oid)
        object.__setattr__(self, "_mvb_count", 1)
        object.__setattr__(self, "_mvb_type", info)
        object.__setattr__(self, "_mvb_batches", None)

    def _mvb_request(self, op: str, *operands: Any) -> Any:
        return self._mvb_session.request(op, self, *operands)

    def _mvb_special(self, name: str, *operands: Any) -> Any:
        return self._mvb_session.request(P.OP_SPECIAL, self, name, list(operands))

    # -- attributes -------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        # Special methods live on the proxy's class when the remote type has them; asked for
        # by name (hasattr), a missing one is missing here too, without a round trip.
        if name in _LOCAL_MISSING or name in SHAPE_NAMES or name.startswith("_mvb_"):
            raise AttributeError(name)
        if name in self._mvb_type.methods:
            return RemoteAttribute(self._mvb_session, self, name)
        if display_probe(name):
            raise AttributeError(name)
        return self._mvb_request(P.OP_GETATTR, name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._mvb_request(P.OP_SETATTR, name, value)

    def __delattr__(self, name: str) -> None:
        self._mvb_request(P.OP_DELATTR, name)

    def __dir__(self) -> list[str]:
        return list(self._mvb_special("__dir__"))

    def _mvb_describe(self) -> dict[str, Any]:
        return self._mvb_session.describe(self)

    # -- representation ---------------------------------------------------------------------
    def __repr__(self) -> str:
        if self._mvb_session.closed:
            return "<stale mvbridge proxy of %s>" % self._mvb_type.name
        return self._mvb_special("__repr__")

    def __str__(self) -> str:
        return self._mvb_special("__str__")

    def __format__(self, spec: str) -> str:
        return self._mvb_special("__format__", spec)

    # -- lifetime ---------------------------------------------------------------------------
    def __del__(self) -> None:
        try:
            if self._mvb_oid is not None:
                self._mvb_session.release_later(self._mvb_oid, self._mvb_count)
        except Exception:
            pass

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise SerializationError(
            "an mvbridge proxy of %s cannot be pickled: it only stands for an object in another "
            "process; fetch a copy with mvbridge.by_value on the other side" % self._mvb_type.name
        )


class RemoteCallable(RemoteObject):
    # A proxy for a remote callable: functions, classes, bound methods.
    # (Its ``__doc__`` is the remote object's docstring, so the class keeps none.)
    __doc__ = _REMOTE_DOC  # type: ignore[assignment]

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._mvb_session.request(P.OP_CALL, self, list(args), kwargs)

    @property
    def __signature__(self) -> inspect.Signature | None:
        return signature_from_description(self._mvb_describe().get("signature"))

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return self._mvb_describe().get("name") or self._mvb_type.name


class RemoteAttribute(RemoteCallable):
    # ``owner.name`` of a remote object, not looked up until used; calling it costs one request.
    # It stands for a method (the names of the owner type's callables), so it has only what
    # a method has: a call, and ``__get__`` for inspect/pydoc.
    # (Its ``__doc__`` is the remote object's docstring, so the class keeps none.)
    __doc__ = _REMOTE_DOC  # type: ignore[assignment]

    __slots__ = ("_mvb_base", "_mvb_name")

    def __init__(self, session: Session, base: Any, name: str) -> None:
        RemoteObject.__init__(self, session, None, _ATTRIBUTE_TYPE)
        object.__setattr__(self, "_mvb_base", base)
        object.__setattr__(self, "_mvb_name", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._mvb_session.call_attr(self._mvb_base, self._mvb_name, args, kwargs)

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self  # inspect and pydoc then treat it as a routine

    # A module's callables include its classes: ``isinstance(x, module.Class)``.
    def __instancecheck__(self, instance: Any) -> bool:
        return _instancecheck(self, instance)

    def __subclasscheck__(self, subclass: Any) -> bool:
        return _subclasscheck(self, subclass)

    def __getattr__(self, name: str) -> Any:
        # A method has no display hooks of its own (IPython asks each shown value for them).
        if (
            name in _LOCAL_MISSING
            or name in SHAPE_NAMES
            or name.startswith("_mvb_")
            or display_probe(name)
        ):
            raise AttributeError(name)
        return self._mvb_request(P.OP_GETATTR, name)

    def __repr__(self) -> str:
        if self._mvb_session.closed:
            return "<stale mvbridge proxy of attribute %r>" % self._mvb_name
        return self._mvb_special("__repr__")


_ATTRIBUTE_TYPE = TypeInfo("attribute", [], P.FLAG_CALLABLE)


# -- special methods, added to a proxy class when its remote type has them -------------------------
def _forward(name: str) -> Any:
    def method(self: RemoteObject, *operands: Any) -> Any:
        return self._mvb_special(name, *operands)

    method.__name__ = name
    return method


def _array(self: RemoteObject, dtype: Any = None, copy: Any = None) -> Any:
    import numpy

    value = self._mvb_request(P.OP_VALUE, "array")
    if not isinstance(value, numpy.ndarray):
        raise SerializationError(
            "%s could not be turned into a numpy array by value" % self._mvb_type.name
        )
    return value if dtype is None else value.astype(dtype, copy=False)


def _iter(self: RemoteObject) -> Iterator[Any]:
    remote = self._mvb_special("__iter__")
    if not isinstance(remote, RemoteObject):
        return iter(remote)
    if not remote._mvb_session.reads_ahead:
        return remote  # item by item: the owner may go on reading it (take(3, it), then it)
    return BatchIterator(remote, read_ahead(remote))


def read_ahead(remote: RemoteObject) -> ReadAhead:
    """The read-ahead of a remote iterator, shared by every reader of it (sync or awaited):
    items fetched ahead stay with the iterator, so iter(it) again (islice(it, 3) twice, a for
    loop after next()) loses none of them."""
    state = remote._mvb_batches
    if state is None:
        state = ReadAhead()
        object.__setattr__(remote, "_mvb_batches", state)
    elif not state.buffer:
        state.done = False  # ask again: an iterator may go on (seekable, a file)
    return state


def _next(self: RemoteObject) -> Any:
    state = self._mvb_batches
    if state is not None and state.buffer:
        return state.buffer.pop()  # items fetched ahead come first
    return self._mvb_special("__next__")


def _reversed(self: RemoteObject) -> Iterator[Any]:
    return BatchIterator(self._mvb_special("__reversed__"))


def _exit(self: RemoteObject, exc_type: Any, exc: Any, tb: Any) -> Any:
    return self._mvb_special("__exit__", exc_type, exc, None)  # a traceback cannot cross


def _instancecheck(self: RemoteObject, instance: Any) -> bool:
    # ``isinstance(x, proxy of a class)``: the owner answers, as its class would there. Without
    # this, Python falls back to walking ``x.__class__.__bases__`` and answers False.
    return self._mvb_session.request(P.OP_CALL, isinstance, [instance, self], {})


def _subclasscheck(self: RemoteObject, subclass: Any) -> bool:
    return self._mvb_session.request(P.OP_CALL, issubclass, [subclass, self], {})


def _ipython_display(self: RemoteObject) -> None:
    # The object's own hook would display in the owner's process, where no notebook is: it
    # runs there with IPython's display functions recording, and what it showed is shown here.
    from IPython.display import publish_display_data

    from .ops import captured_display

    outputs = self._mvb_session.request(P.OP_CALL, captured_display, [self], {})
    for data, metadata in outputs:
        publish_display_data(data, metadata or None)


def _key_completions(self: RemoteObject) -> list[str]:
    from .ops import key_completions

    return self._mvb_session.request(P.OP_CALL, key_completions, [self], {})


def _value_hash(self: RemoteObject) -> int:
    raise TypeError(
        "unhashable proxy: %s objects hash by value in %s, whose str and bytes hashes are not "
        "this interpreter's, so its hash would disagree with equal values here and break dicts "
        "and sets; send it by value (mvbridge.by_value) where both sides can rebuild it, or key "
        "by a value of your own" % (self._mvb_type.name, self._mvb_session.peer_description())
    )


_IMPLEMENTED = {
    "__array__": _array,
    "__iter__": _iter,
    "__next__": _next,
    "__reversed__": _reversed,
    "__exit__": _exit,
    "__call__": RemoteCallable.__call__,
}
# Every special method a proxy can carry: forwarded as it is (operators, comparisons,
# containers, conversions) or implemented above.
SHAPE_NAMES = frozenset(set(SPECIAL) - {"__repr__", "__str__", "__format__", "__dir__"}) | set(
    _IMPLEMENTED
)


def proxy_class(info: TypeInfo) -> type:
    """The proxy class of one remote type: its name, its special methods and its ABCs."""
    cls = info.proxy_class
    if cls is not None:
        return cls
    callable_ = bool(info.flags & P.FLAG_CALLABLE) or "__call__" in info.specials
    base: type = RemoteCallable if callable_ else RemoteObject
    namespace: dict[str, Any] = {"__slots__": (), "__doc__": _REMOTE_DOC}
    for name in info.specials:
        if name == "__call__" and base is RemoteCallable:
            continue
        namespace[name] = _IMPLEMENTED.get(name) or _forward(name)
    if "_ipython_display_" in info.methods:
        namespace["_ipython_display_"] = _ipython_display
    if (
        "_ipython_key_completions_" not in info.methods
        and "__getitem__" in info.specials
        and "keys" in info.methods
    ):
        # IPython completes ``obj["`` from this hook, or from keys() of types it knows by name
        # (dict, a pandas DataFrame), which a proxy is not.
        namespace["_ipython_key_completions_"] = _key_completions
    if info.flags & P.FLAG_CLASS:  # a class: isinstance and issubclass accept it
        namespace["__instancecheck__"] = _instancecheck
        namespace["__subclasscheck__"] = _subclasscheck
    if "__eq__" in info.specials:
        if "__hash__" not in info.specials:
            namespace["__hash__"] = None  # as Python makes it for a class that defines only __eq__
        elif not info.flags & (P.FLAG_CLASS | P.FLAG_ROUTINE):
            namespace["__hash__"] = _value_hash  # equal to values here, hashed like none of them
    elif "__hash__" in info.specials:
        del namespace["__hash__"]  # equality by identity (an Enum): hash the one proxy locally
    bases: tuple[type, ...] = (base,)
    if TZINFO in info.abcs:
        # datetime accepts only real tzinfo instances; tzinfo has no state, so a proxy can be
        # one. Its methods are the remote object's (tzinfo's own would shadow __getattr__).
        import datetime

        bases = (base, datetime.tzinfo)
        for name in _TZINFO_METHODS:
            namespace[name] = _forward_method(name)
    # Reads like the remote type (type(proxy).__name__, its repr); RemoteObject tells a proxy.
    namespace["__module__"] = info.module or "mvbridge.remote"
    namespace["__qualname__"] = info.qualname
    cls = type(info.qualname.rpartition(".")[2] or "RemoteObject", bases, namespace)
    _register_abcs(cls, info.abcs)
    info.proxy_class = cls
    return cls


_TZINFO_METHODS = ("utcoffset", "dst", "tzname", "fromutc")


def _forward_method(name: str) -> Any:
    def method(self: RemoteObject, *args: Any) -> Any:
        return self._mvb_session.request(P.OP_CALLATTR, self, name, list(args), {})

    method.__name__ = name
    return method


def _register_abcs(cls: type, names: list[str]) -> None:
    for name in names:
        module_name, _, abc_name = name.rpartition(".")
        if module_name == "numbers":
            import numbers as module
        elif module_name == "collections.abc":
            import collections.abc as module  # type: ignore[no-redef]
        else:
            continue
        abc = getattr(module, abc_name, None)
        if abc is not None:
            abc.register(cls)


class ReadAhead:
    """Items of one remote iterator fetched ahead of its reader, and the next batch's size.

    Kept on the iterator's proxy (``_mvb_batches``), so every reader of it shares them; it does
    not point back at the proxy, so the proxy still goes (and the worker's object with it) as
    soon as the last reader drops it.
    """

    __slots__ = ("batch", "buffer", "done")

    def __init__(self) -> None:
        self.buffer: list[Any] = []  # reversed: the next item is last
        self.batch = 1
        self.done = False

    def fill(self, items: list[Any], done: bool) -> None:
        """Take in an OP_NEXT reply; the next batch is four times larger (up to 1024)."""
        self.done = done or not items
        self.batch = min(self.batch * 4, 1024)
        items.reverse()
        self.buffer = items


class BatchIterator:
    """Iterates a remote iterator, fetching items in growing batches (1, 4, 16 ... 1024)."""

    __slots__ = ("_remote", "_state")

    def __init__(self, remote: Any, state: ReadAhead | None = None) -> None:
        self._remote = remote
        self._state = state if state is not None else ReadAhead()

    def __iter__(self) -> BatchIterator:
        return self

    def __next__(self) -> Any:
        state = self._state
        if not state.buffer:
            if state.done:
                raise StopIteration
            remote = self._remote
            state.fill(*remote._mvb_session.request(P.OP_NEXT, remote, state.batch))
            if not state.buffer:
                raise StopIteration
        return state.buffer.pop()


class _Repr:
    """A default value shown by its remote repr (in signatures)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def signature_from_description(desc: Any) -> inspect.Signature | None:
    """Rebuild an ``inspect.Signature`` from ``ops.describe``'s parameter list."""
    import inspect

    if desc is None:
        return None
    params, return_annotation = desc
    empty = inspect.Parameter.empty
    parameters = [
        inspect.Parameter(
            name,
            inspect._ParameterKind(kind),
            default=_Repr(default) if has_default else empty,
            annotation=_Repr(annotation) if annotation is not None else empty,
        )
        for name, kind, has_default, default, annotation in params
    ]
    ret = _Repr(return_annotation) if return_annotation is not None else empty
    return inspect.Signature(parameters, return_annotation=ret)
