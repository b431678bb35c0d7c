"""Exception classes of the other side as real classes here: usable in ``except`` and isinstance.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

An exception class crosses with its *lineage*: ``[module, qualname]`` of itself and of each
exception class it derives from, in MRO order. The receiver uses its own class of that name when
it can import one; otherwise it makes one class per remote class (once per origin, so the class
a program caught with before a worker restarted still catches after it). A made class keeps the
remote name and module, derives from the made classes of its remote bases and from their
builtin exception bases (so ``except ValueError`` still catches a remote
``ParseError(ValueError)``), and from ``mvbridge.RemoteError``. An exception raised remotely
is rebuilt as an instance of the same class, so ``except dep.ParseError`` catches it,
subclasses included.
"""

from __future__ import annotations

import builtins
import threading
from typing import Any

from ..errors import RemoteError
from . import names

_made: dict[tuple[str, str, str], type] = {}  # (origin, module, qualname) -> class
_lock = threading.Lock()


def lineage(cls: type) -> list[list[str]]:
    """``[[module, qualname], ...]`` of ``cls`` and its exception bases, in MRO order."""
    return [
        [str(base.__module__), str(base.__qualname__)]
        for base in cls.__mro__
        if isinstance(base, type) and issubclass(base, BaseException)
    ]


def is_exception_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseException)


def is_made(cls: type) -> bool:
    """True for a class made here for a class of the other side."""
    return "_mvb_lineage" in vars(cls)


def local_class(module: str, qualname: str) -> type | None:
    """This side's own exception class of that name, when it can be imported."""
    if module == "builtins":
        found = getattr(builtins, qualname, None)
        return found if is_exception_class(found) else None
    try:
        target = names.find(module, qualname)
    except LookupError:
        return None
    return target if is_exception_class(target) and not is_made(target) else None


def exception_class(origin: str, line: list[list[str]]) -> type:
    """The class for the remote exception class of lineage ``line`` (its own first)."""
    module, qualname = line[0]
    key = (origin, module, qualname)
    made = _made.get(key)
    if made is not None:
        return made
    own = local_class(module, qualname)
    if own is not None:
        return own
    with _lock:
        made = _made.get(key)
        if made is None:
            made = _made[key] = _make(origin, line)
        return made


def _make(origin: str, line: list[list[str]]) -> type:
    module, qualname = line[0]
    rest = line[1:]
    parent: type | None = None
    builtin_bases: list[type] = []
    for index, (base_module, base_qualname) in enumerate(rest):
        own = local_class(base_module, base_qualname)
        if own is None and parent is None:
            parent = _made_unlocked(origin, rest[index:])
        elif own is not None and own not in (BaseException, Exception):
            builtin_bases.append(own)
    bases: list[type] = []
    if parent is not None:
        bases.append(parent)
    bases.extend(b for b in builtin_bases if not (parent is not None and issubclass(parent, b)))
    if not any(issubclass(b, RemoteError) for b in bases):
        bases.append(RemoteError)
    namespace = {
        "__module__": module,
        "__qualname__": qualname,
        "__init__": _init,
        "__str__": BaseException.__str__,
        "__reduce__": BaseException.__reduce__,
        "_mvb_lineage": line,
        "type_name": "%s.%s" % (module, qualname),
        "__doc__": "%s.%s of the other side (made by mvbridge)" % (module, qualname),
    }
    name = qualname.rpartition(".")[2]
    for candidate in (tuple(bases), (bases[0], RemoteError) if bases[0] is not RemoteError else ()):
        if not candidate:
            continue
        try:
            return type(name, candidate, namespace)
        except TypeError:  # bases that cannot be combined (layout or MRO conflicts)
            continue
    return type(name, (RemoteError,), namespace)


def _made_unlocked(origin: str, line: list[list[str]]) -> type:
    key = (origin, line[0][0], line[0][1])
    made = _made.get(key)
    if made is None:
        made = _made[key] = _make(origin, line)
    return made


def _init(self: BaseException, *args: Any) -> None:
    BaseException.__init__(self, *args)
    self.message = str(self)  # type: ignore[attr-defined]
    self.remote_traceback = ""  # type: ignore[attr-defined]
    self._context = {}  # type: ignore[attr-defined]


def rebuild(origin: str, line: list[list[str]], args: Any, message: str) -> BaseException | None:
    """An instance of the class for ``line`` made from the remote ``args``, or None."""
    if not line:
        return None
    cls = exception_class(origin, line)
    if not issubclass(cls, Exception):
        return None  # a remote KeyboardInterrupt or SystemExit must not act as one here
    try:
        exc = cls(*args) if isinstance(args, (list, tuple)) else cls(message)
    except Exception:
        try:
            exc = cls(message)
        except Exception:
            return None
    return exc
