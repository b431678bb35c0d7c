"""Instances of subclasses of builtin value types, as the value of their nearest builtin base.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A library's ``quoted_name(str)``, ``IntEnum`` member or named tuple that the receiver cannot
rebuild as its own type crosses as the plain ``str``, ``int`` or ``tuple`` it is, not as a
proxy: a proxy would compare equal to ``"id"`` yet hash differently (string hashes differ
between interpreters), and break every dict it is a key of. Attributes the base cannot carry
stay behind. The copies read the builtin's own storage, never the subclass's overrides of
``__iter__``, ``__str__`` or ``keys``; so a list, dict or set subclass that overrides how its
items are read (``SortedDict``) is not its storage's value, and stays a reference.
"""

from __future__ import annotations

from typing import Any, Callable

NOT_BUILTIN = object()  # base_value's answer for an object that subclasses no builtin value type

_COPIES: dict[type, Callable[[Any], Any]] = {
    str: str.__str__,  # an exact str for a subclass instance
    bytes: lambda value: b"".join([value]),
    int: int.__int__,
    float: float.__float__,
    complex: lambda value: complex(complex.real.__get__(value), complex.imag.__get__(value)),
    tuple: lambda value: tuple.__getitem__(value, slice(None)),
    list: list.copy,
    dict: lambda value: dict(dict.items(value)),
    set: lambda value: set(set.__iter__(value)),
    frozenset: lambda value: frozenset(frozenset.__iter__(value)),
}


# A list, dict or set subclass is its base's value only if it reads its items as the base does;
# one that overrides how (SortedDict's sorted __iter__, a __missing__) stays a reference.
_CONTAINERS = (list, dict, set)
_NOT_READING = frozenset(
    [
        "__init__",
        "__new__",
        "__repr__",
        "__str__",
        "__format__",
        "__reduce__",
        "__reduce_ex__",
        "__getstate__",
        "__setstate__",
        "__init_subclass__",
        "__subclasshook__",
        "__class_getitem__",
        "__doc__",
        "__sizeof__",
    ]
)
_HOOKS = frozenset(["__missing__"])  # called by dict's own lookup, though dict lacks it
_IS_VALUE: dict[type, Any] = {}  # type -> its builtin base, or None: not a value of one


def base_value(obj: Any) -> Any:
    """``obj`` as an instance of its nearest builtin value base, or ``NOT_BUILTIN``."""
    cls = type(obj)
    try:
        base = _IS_VALUE[cls]
    except KeyError:
        base = _IS_VALUE[cls] = _value_base(cls)
    return NOT_BUILTIN if base is None else _COPIES[base](obj)


def _value_base(cls: type) -> type | None:
    mro = cls.__mro__
    for index, base in enumerate(mro[1:], 1):
        if base not in _COPIES:
            continue
        if base in _CONTAINERS:
            reading = (set(dir(base)) | _HOOKS) - _NOT_READING
            if any(reading.intersection(vars(klass)) for klass in mro[:index]):
                return None
        return base
    return None
