"""The operations a side applies to its own objects when the peer asks.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.
"""

from __future__ import annotations

import importlib
import operator
import sys
import types
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ProtocolError
from . import dists, names
from . import protocol as P
from .codec import ByRef
from .protocol import FLAG_CALLABLE, FLAG_CLASS, FLAG_ROUTINE

if TYPE_CHECKING:  # pragma: no cover
    from .peer import Session


def _method(name: str) -> Callable[..., Any]:
    """Calls ``type(obj).<name>`` alone, as the operator machinery does for one operand.

    ``NotImplemented`` goes back to the caller, whose interpreter then tries the other operand,
    once. Running the whole operator here instead (``operator.lt``) would try the other operand
    here too: for a proxy of an object of another env, that asks the host, which asks that env,
    which asks back, without end.
    """

    def apply(obj: Any, *args: Any) -> Any:
        method = getattr(type(obj), name, None)
        if method is None:
            return NotImplemented
        return method(obj, *args)

    apply.__name__ = name
    return apply


def _enter(obj: Any) -> Any:
    return type(obj).__enter__(obj)


def _exit(obj: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
    return type(obj).__exit__(obj, exc_type, exc, tb)


SPECIAL: dict[str, Callable[..., Any]] = {
    "__len__": len,
    "__bool__": bool,
    "__hash__": hash,
    "__repr__": repr,
    "__str__": str,
    "__bytes__": bytes,
    "__format__": format,
    "__dir__": lambda obj: sorted(dir(obj)),
    # An iterator stays where it is (it may be lazy or endless); the peer fetches in batches.
    "__iter__": lambda obj: ByRef(iter(obj)),
    "__reversed__": lambda obj: ByRef(reversed(obj)),
    "__next__": next,
    "__getitem__": operator.getitem,
    "__setitem__": operator.setitem,
    "__delitem__": operator.delitem,
    "__contains__": operator.contains,
    "__enter__": _enter,
    "__exit__": _exit,
    "__neg__": operator.neg,
    "__pos__": operator.pos,
    "__abs__": abs,
    "__invert__": operator.invert,
    "__int__": int,
    "__float__": float,
    "__complex__": complex,
    "__index__": operator.index,
    "__round__": round,
    "__trunc__": lambda obj: obj.__trunc__(),
    "__floor__": lambda obj: obj.__floor__(),
    "__ceil__": lambda obj: obj.__ceil__(),
}
# Comparisons, binary operators and the descriptor protocol (a remote property or function
# as an attribute of a class of the peer's): one operand's method only (see _method).
for _name in ("lt", "le", "eq", "ne", "gt", "ge", "divmod", "rdivmod", "get", "set", "delete"):
    SPECIAL["__%s__" % _name] = _method("__%s__" % _name)
# Binary operators: each has its reflected (``__radd__``) and in-place (``__iadd__``) twin.
BINARY_OPERATORS = (
    "add",
    "sub",
    "mul",
    "matmul",
    "truediv",
    "floordiv",
    "mod",
    "pow",
    "lshift",
    "rshift",
    "and",
    "xor",
    "or",
)
for _op in BINARY_OPERATORS:
    for _name in ("__%s__", "__r%s__", "__i%s__"):
        SPECIAL[_name % _op] = _method(_name % _op)


def apply(session: Session, op: str, target: Any, operands: list[Any]) -> Any:
    """Run one requested operation and return its result."""
    if op == P.OP_CALLATTR:
        name, args, kwargs = operands
        return getattr(target, name)(*args, **kwargs)
    if op == P.OP_CALL:
        args, kwargs = operands
        return target(*args, **kwargs)
    if op == P.OP_GETATTR:
        return getattr(target, operands[0])
    if op == P.OP_SPECIAL:
        name, args = operands
        fn = SPECIAL.get(name)
        if fn is None:
            raise ProtocolError("unknown special method %r requested" % name)
        return fn(target, *args)
    if op == P.OP_NEXT:
        return next_batch(session, target, operands[0])
    if op == P.OP_SETATTR:
        setattr(target, operands[0], operands[1])
        return None
    if op == P.OP_DELATTR:
        delattr(target, operands[0])
        return None
    if op == P.OP_DESCRIBE:
        return describe(target)
    if op == P.OP_IMPORT:
        return module_listing(importlib.import_module(operands[0]))
    if op == P.OP_VERSIONS:
        return dists.versions_of(operands[0])
    if op == P.OP_NAMES:
        return [names.can_resolve(spec, session.names_may_import) for spec in operands[0]]
    if op == P.OP_VALUE:
        import numpy

        return numpy.asarray(target)
    raise ProtocolError("unknown operation %r requested" % op)


def next_batch(session: Session, iterator: Any, count: int) -> list[Any]:
    """Up to ``count`` items of ``iterator`` and whether it is exhausted.

    An exception after some items is kept and raised by the next request, so no item is lost.
    """
    pending = session.pending_errors.pop(id(iterator), None)
    if pending is not None:
        raise pending
    items: list[Any] = []
    append = items.append
    try:
        for _ in range(count):
            item = next(iterator)
            append(item)
            if not _flat(item):
                # An object may share state with the iterator (itertools.groupby's groups read
                # its position): the next item waits until the peer has this one.
                break
    except StopIteration:
        return [items, True]
    except Exception as exc:
        if not items:
            raise
        session.pending_errors[id(iterator)] = exc
    return [items, False]


_SCALARS = frozenset([type(None), bool, int, float, complex, str, bytes])


def _flat(item: Any, depth: int = 8, budget: list[int] | None = None) -> bool:
    """True for plain data: scalars, and tuples, lists and dicts of them nested a few levels
    (at most 1,000 parts looked at); anything else may share state with its iterator."""
    cls = type(item)
    if cls in _SCALARS:
        return True
    if depth == 0 or cls not in _CONTAINERS:
        numpy = names.loaded_numpy()  # a plain array is data too (rows of a matrix)
        return (
            numpy is not None
            and (cls is numpy.ndarray or isinstance(item, numpy.generic))
            and not item.dtype.hasobject
        )
    if budget is None:
        budget = [1000]
    budget[0] -= len(item)
    if budget[0] < 0:
        return False
    if cls is dict:
        return all(type(k) in _SCALARS and _flat(v, depth - 1, budget) for k, v in item.items())
    return all(_flat(part, depth - 1, budget) for part in item)


_CONTAINERS = frozenset([tuple, list, dict])


# ABCs whose checks a proxy cannot pass by its methods alone (they need registration or
# subclassing): a proxy class is registered with those its remote type belongs to.
_ABCS = (
    "collections.abc.Sequence",
    "collections.abc.MutableSequence",
    "collections.abc.Mapping",
    "collections.abc.MutableMapping",
    "collections.abc.Set",
    "collections.abc.MutableSet",
    "collections.abc.MappingView",
    "collections.abc.KeysView",
    "collections.abc.ItemsView",
    "collections.abc.ValuesView",
    "collections.abc.Generator",
    "numbers.Number",
    "numbers.Complex",
    "numbers.Real",
    "numbers.Rational",
    "numbers.Integral",
)
# A base a proxy class takes on itself, so that C code that type-checks accepts the proxy
# (``datetime(..., tzinfo=proxy)``); it is sent in the list of ABCs.
TZINFO = "datetime.tzinfo"
# What ``object`` itself has: a type that does not override these compares and hashes by
# identity, which its proxy does locally (one proxy per remote object).
_OBJECT_DEFAULTS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__")


def type_description(cls: type) -> list[Any]:
    """What the peer needs to make proxies of ``cls``'s instances, once per session:
    ``[name, callable attribute names, flags, special methods, ABCs, module, qualname]``."""
    methods = []
    for name in dir(cls):
        if name.startswith("__") and name.endswith("__"):
            continue
        # As stored, not getattr(cls, name): that runs descriptors, and one may be a proxy
        # whose __get__ asks the peer, which asks back for this very description.
        attr = _static_attribute(cls, name)
        if isinstance(attr, (classmethod, staticmethod)) or (
            callable(attr) and not isinstance(attr, type)
        ):
            methods.append(name)
    flags = 0
    if any("__call__" in vars(base) for base in cls.__mro__):
        flags |= FLAG_CALLABLE
    if issubclass(cls, type):
        flags |= FLAG_CLASS | FLAG_CALLABLE
    if issubclass(cls, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        flags |= FLAG_ROUTINE
    module = cls.__module__ if isinstance(cls.__module__, str) else "?"
    return [
        "%s.%s" % (module, cls.__qualname__),
        methods,
        flags,
        shape_of(cls),
        _abcs_of(cls),
        module,
        cls.__qualname__,
    ]


def _static_attribute(cls: type, name: str) -> Any:
    for base in cls.__mro__:
        found = vars(base).get(name, _MISSING)
        if found is not _MISSING:
            return found
    return None


_MISSING = object()


def shape_of(cls: type) -> list[str]:
    """The special methods instances of ``cls`` have (of those a proxy can carry)."""
    from .remote import SHAPE_NAMES

    found = []
    for name in SHAPE_NAMES:
        # As Python looks special methods up: in the type's MRO, not on the class object (whose
        # metaclass has a __call__ of its own).
        owner = next((base for base in cls.__mro__ if name in vars(base)), None)
        if owner is None or vars(owner)[name] is None:  # e.g. __hash__ = None: unhashable
            continue
        if owner is object and name in _OBJECT_DEFAULTS:
            continue
        found.append(name)
    if "__array__" not in found and any(
        probe in vars(base)
        for base in cls.__mro__
        for probe in ("__array_interface__", "__array_struct__")
    ):
        found.append("__array__")  # an array-like: np.asarray(proxy) fetches it by value
    return sorted(found)


def _abcs_of(cls: type) -> list[str]:
    import collections.abc
    import numbers

    found = []
    for name in _ABCS:
        module_name, _, abc_name = name.rpartition(".")
        abc = getattr(numbers if module_name == "numbers" else collections.abc, abc_name)
        try:
            if issubclass(cls, abc):
                found.append(name)
        except TypeError:
            continue
    datetime = sys.modules.get("datetime")  # no tzinfo subclass exists before it is imported
    if datetime is not None and issubclass(cls, datetime.tzinfo):
        found.append(TZINFO)
    return found


def module_listing(module: types.ModuleType) -> dict[str, Any]:
    """What a module proxy needs up front: its docstring and its callable attributes."""
    callables = []
    exception_classes = []
    for name, value in list(vars(module).items()):
        if name.startswith("__") or not callable(value) or isinstance(value, types.ModuleType):
            continue
        if isinstance(value, type) and issubclass(value, BaseException):
            exception_classes.append(name)  # fetched as classes, for `except module.Name`
        else:
            callables.append(name)
    doc = module.__doc__ if isinstance(module.__doc__, str) else None
    return {
        "callables": callables,
        "exceptions": exception_classes,
        "doc": doc,
        "package": hasattr(module, "__path__"),
    }


def describe(obj: Any) -> dict[str, Any]:
    """Name, docstring and signature of ``obj`` for the peer's ``help()`` and ``inspect``."""
    import inspect  # here, not at the top: inspect is a noticeable part of a worker's start-up

    result: dict[str, Any] = {
        "name": getattr(obj, "__name__", None),
        "qualname": getattr(obj, "__qualname__", None),
        "module": getattr(obj, "__module__", None),
        "doc": inspect.getdoc(obj),
        "signature": None,
    }
    for key in ("name", "qualname", "module"):
        if not isinstance(result[key], str):
            result[key] = None
    if callable(obj):
        result["signature"] = _signature(obj)
    return result


def _signature(obj: Any) -> list[Any] | None:
    import inspect

    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = []
    for param in sig.parameters.values():
        has_default = param.default is not inspect.Parameter.empty
        params.append(
            [
                param.name,
                int(param.kind),
                has_default,
                repr(param.default) if has_default else None,
                _annotation(param.annotation),
            ]
        )
    return [params, _annotation(sig.return_annotation)]


def _annotation(annotation: Any) -> str | None:
    import inspect

    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return None
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and annotation.__module__ == "builtins":
        return annotation.__qualname__
    return repr(annotation)


KEY_COMPLETIONS_LIMIT = 1000


def key_completions(obj: Any) -> list[str]:
    """What IPython offers after ``obj["``: the object's own hook's answer, else its string keys
    (a mapping, a pandas DataFrame's columns), at most ``KEY_COMPLETIONS_LIMIT`` of them."""
    hook = getattr(obj, "_ipython_key_completions_", None)
    keys = hook() if callable(hook) else obj.keys()
    found = []
    for key in keys:
        if isinstance(key, str):
            found.append(key)
            if len(found) >= KEY_COMPLETIONS_LIMIT:
                break
    return found


def captured_display(obj: Any) -> list[Any]:
    """Run ``obj._ipython_display_()`` with IPython's display functions recording what it shows
    instead of publishing it; return ``[[data, metadata], ...]`` for the peer to publish."""
    import importlib

    from IPython.core.formatters import DisplayFormatter

    outputs: list[Any] = []
    formatter = DisplayFormatter()

    def publish_display_data(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> None:
        outputs.append([data, metadata or {}])

    def display(*objs: Any, **kwargs: Any) -> None:
        metadata = kwargs.get("metadata") or {}
        for value in objs:
            if kwargs.get("raw"):
                outputs.append([value, metadata])
            else:
                data, meta = formatter.format(
                    value, include=kwargs.get("include"), exclude=kwargs.get("exclude")
                )
                if data:
                    outputs.append([data, dict(meta, **metadata)])

    patches = {"display": display, "publish_display_data": publish_display_data}
    saved = []
    for module_name in (
        "IPython.display",
        "IPython.core.display",
        "IPython.core.display_functions",
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr, replacement in patches.items():
            if hasattr(module, attr):
                saved.append((module, attr, getattr(module, attr)))
                setattr(module, attr, replacement)
    try:
        obj._ipython_display_()
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)
    return outputs


def run_source(
    name: str,
    source: str,
    imports: list[list[str]],
    values: dict[str, Any],
    args: list[Any],
    kwargs: dict[str, Any],
) -> Any:
    """Rebuild a host function from its source (hosts on another Python) and call it."""
    import builtins

    namespace: dict[str, Any] = {"__name__": "__mvbridge_source__", "__builtins__": builtins}
    for alias, module in imports:
        namespace[alias] = importlib.import_module(module)
    namespace.update(values)
    exec(compile(source, "<mvbridge: %s>" % name, "exec"), namespace)
    return namespace[name](*args, **kwargs)


def import_module(name: str) -> types.ModuleType:
    """Import a module by name (the module named in a request)."""
    module = sys.modules.get(name)
    return module if module is not None else importlib.import_module(name)
