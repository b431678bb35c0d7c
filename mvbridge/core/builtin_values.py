"""Instances of subclasses of builtin value types, as the value of their nearest builtin base.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A library's ``quoted_name(str)``, ``IntEnum`` member or named tuple that the receiver cannot
rebuild as its own type crosses as the plain ``str``, ``int`` or ``tuple`` it is, not as a
proxy: a proxy would compare equal to ``"id"`` yet hash differently (string hashes differ
between interpreters), and break every dict it is a key of. Attributes the base cannot carry
stay behind. The copies read the builtin's own storage, never the subclass's overrides of
``__iter__``, ``__str__`` or ``keys``.
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


def base_value(obj: Any) -> Any:
    """``obj`` as an instance of its nearest builtin value base, or ``NOT_BUILTIN``."""
    for base in type(obj).__mro__[1:]:
        copy = _COPIES.get(base)
        if copy is not None:
            return copy(obj)
    return NOT_BUILTIN
