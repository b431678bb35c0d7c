"""Which distribution (and version) provides a top-level package, and what is standard library.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

The codec pickles an object by value only when the package that defines its type has the same
version on both sides; these facts come from installed distributions' metadata, read once.
"""

from __future__ import annotations

import os
import sys
import sysconfig
import threading
from typing import Iterable

_lock = threading.Lock()
_versions: dict[str, str] | None = None
_stdlib_cache: dict[str, bool] = {}

STDLIB = "stdlib"  # the "version" of standard-library modules: equal on every side
PYTHON_VERSION = "%d.%d" % sys.version_info[:2]


def _scan() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            version = dist.version
            tops = dist.read_text("top_level.txt")
            names: Iterable[str]
            names = tops.split() if tops else {_top_of(str(f)) for f in dist.files or ()}
        except Exception:
            continue
        for name in names:
            if name and name.isidentifier():
                found.setdefault(name, version)
    return found


def _top_of(path: str) -> str:
    first = path.replace("\\", "/").split("/", 1)[0]
    if first.endswith(".py"):
        return first[:-3]
    if "." in first or first in ("__pycache__", "..", "bin"):
        return ""
    if first.endswith((".so", ".pyd")):
        return first.split(".", 1)[0]
    return first


def version_of(top: str) -> str | None:
    """Version of the distribution providing top-level package ``top``; ``STDLIB``; or None."""
    if is_stdlib(top):
        return STDLIB
    global _versions
    if _versions is None:
        with _lock:
            if _versions is None:
                _versions = _scan()
    return _versions.get(top)


def versions_of(tops: Iterable[str]) -> dict[str, str | None]:
    """``version_of`` for several names."""
    return {top: version_of(top) for top in tops}


def is_stdlib(module_name: str) -> bool:
    """True when ``module_name`` belongs to the standard library of this interpreter."""
    top = module_name.partition(".")[0]
    known = _stdlib_cache.get(top)
    if known is not None:
        return known
    names = getattr(sys, "stdlib_module_names", None)  # Python 3.10+
    result = top in names or top == "builtins" if names is not None else _stdlib_by_path(top)
    _stdlib_cache[top] = result
    return result


def _stdlib_by_path(top: str) -> bool:
    if top in sys.builtin_module_names or top == "builtins":
        return True
    module = sys.modules.get(top)
    path = getattr(module, "__file__", None)
    if path is None:
        import importlib.util

        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            return False
        path = getattr(spec, "origin", None) if spec is not None else None
    if not path:
        return False
    paths = sysconfig.get_paths()
    stdlib = os.path.realpath(paths["stdlib"])
    platstdlib = os.path.realpath(paths.get("platstdlib", paths["stdlib"]))
    real = os.path.realpath(path)
    if "site-packages" in real or "dist-packages" in real:
        return False
    return real.startswith((stdlib + os.sep, platstdlib + os.sep))
