"""Named objects: what crosses as its qualified name and arrives as the receiver's own object.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A module-level class, function, builtin, method descriptor (``str.lower``), numpy ufunc
(``np.log1p``), numpy dtype, or enum member travels as its name when the receiving side has an
object of that name, whatever the versions on each side: ``dtype=np.float32`` from a numpy 2 host
gives a numpy 1 worker its own ``np.float32``. The sender asks the receiver once per name and
session whether it has it; where it does not, the object falls back to a reference.

A spec is ``["obj", module, qualname]``, ``["dtype", wire]`` (``arrays.dtype_wire``) or
``["enum", module, qualname, member name]``.
"""

from __future__ import annotations

import enum
import importlib
import sys
from typing import Any

_UNNAMED_MODULES = frozenset(["__main__", "__mp_main__", "__mvbridge_source__"])


def loaded_numpy() -> Any:
    """numpy if this process has imported it (None otherwise), once its import has finished.

    While one thread imports numpy, ``sys.modules`` already holds the half-made module: a
    channel thread that used it then failed with "partially initialized module 'numpy' has no
    attribute 'dtype'". The import statement waits for the other thread instead.
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None and getattr(getattr(numpy, "__spec__", None), "_initializing", False):
        import numpy
    return numpy


def name_of(obj: Any) -> list[Any] | None:
    """The spec under which ``obj`` can be found again by name, or None."""
    if isinstance(obj, enum.Enum):
        cls = type(obj)
        if _findable(cls.__module__, cls.__qualname__, cls):
            return ["enum", cls.__module__, cls.__qualname__, obj.name]
        return None
    numpy = loaded_numpy()
    if numpy is not None and isinstance(obj, numpy.dtype):
        from . import arrays

        wire = arrays.dtype_wire(obj)
        return None if wire is None else ["dtype", wire]
    module, qualname = _qualified(obj)
    if module is None or qualname is None or not _findable(module, qualname, obj):
        return None
    return ["obj", module, qualname]


def _qualified(obj: Any) -> tuple[str | None, str | None]:
    if not (isinstance(obj, type) or callable(obj)):
        return None, None
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    module = getattr(obj, "__module__", None)
    if module is None:  # a method descriptor such as str.lower: its class's module
        owner = getattr(obj, "__objclass__", None)
        module = getattr(owner, "__module__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None, None
    return module, qualname


def _findable(module: str, qualname: str, obj: Any) -> bool:
    """True when ``module.qualname`` names ``obj`` here (so it names it for the peer too)."""
    if module in _UNNAMED_MODULES or "<" in qualname:  # lambdas, locals, source-shipped code
        return False
    try:
        return _lookup(sys.modules.get(module), qualname) is obj
    except Exception:
        return False


def _lookup(target: Any, qualname: str) -> Any:
    if target is None:
        raise LookupError("module not imported")
    for part in qualname.split("."):
        _refuse_remote(target)
        target = getattr(target, part)
    return target


def _refuse_remote(target: Any) -> None:
    # A proxy (a module of the peer put in sys.modules by an import hook, say) is not this
    # side's object, and a name looked up on it asks the peer, whose reply may name the same
    # object again: the decoder would recurse until the stack overflows.
    if getattr(type(target), "_mvb_remote", False) is True:
        raise LookupError("%r stands for an object of the other side" % type(target).__name__)


def find(module: str, qualname: str) -> Any:
    """This side's own object ``module.qualname``, importing its module if need be.

    Raises:
        LookupError: there is no such object here (proxies of the peer's do not count).
    """
    try:
        found = _lookup(_import(module), qualname)
    except Exception as exc:
        raise LookupError("%s.%s: %s" % (module, qualname, exc)) from None
    _refuse_remote(found)
    return found


def resolve(spec: list[Any]) -> Any:
    """This side's object for ``spec``.

    Raises:
        LookupError: there is no such object here.
    """
    kind = spec[0]
    if kind == "dtype":
        from . import arrays

        return arrays.dtype_from_wire(spec[1])
    owner = find(spec[1], spec[2])
    if kind == "enum":
        return owner[spec[3]]
    return owner


def _import(module: str) -> Any:
    """The module of that name, or the object its dotted path names from its package.

    numpy 2's ``recarray`` lives in ``numpy.rec``, which numpy 1 has as an attribute only.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package, _, rest = module.partition(".")
        if not rest:
            raise
        return _lookup(importlib.import_module(package), rest)


def can_resolve(spec: list[Any], may_import: bool) -> bool:
    """True when this side has the object ``spec`` names.

    ``may_import`` allows importing its module (a worker's env is there to be imported); else
    only modules already imported and the standard library count (a host does not import a
    proxied dependency just because a name of it went by).
    """
    module = "numpy" if spec[0] == "dtype" else spec[1]
    if not may_import and module not in sys.modules:
        from . import dists

        if not dists.is_stdlib(module):
            return False
    try:
        resolve(spec)
    except Exception:
        return False
    return True
