"""cloudpickle, loaded on first use; inside a worker, from the private runtime and kept hidden.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

Importing cloudpickle is a third of a worker's start-up, and most calls never pickle code; so it
is loaded when first needed. In a worker started from a runtime (``boot.py`` sets
``RUNTIME_SITE``), our copy is imported from there and then taken out of ``sys.modules`` again,
so that user code keeps seeing the env's own cloudpickle (or none). Our copy stays reachable
here, and through ``find_class`` for pickles that name its helpers.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType
from typing import Any

RUNTIME_SITE: str | None = None  # set by workers/boot.py
_lock = threading.Lock()
_modules: dict[str, ModuleType] = {}  # our cloudpickle and its submodules, by name


def _is_ours(name: str) -> bool:
    return name == "cloudpickle" or name.startswith("cloudpickle.")


def cloudpickle() -> Any:
    """Our cloudpickle module (imported on first use)."""
    module = _modules.get("cloudpickle")
    if module is not None:
        return module
    with _lock:
        if "cloudpickle" not in _modules:
            _modules.update(_import_hidden() if RUNTIME_SITE else _import_plainly())
    return _modules["cloudpickle"]


def _import_plainly() -> dict[str, ModuleType]:
    importlib.import_module("cloudpickle.cloudpickle")
    return {n: m for n, m in sys.modules.items() if _is_ours(n)}


def _import_hidden() -> dict[str, ModuleType]:
    assert RUNTIME_SITE is not None
    users = {n: sys.modules.pop(n) for n in list(sys.modules) if _is_ours(n)}
    sys.path.insert(0, RUNTIME_SITE)
    try:
        importlib.import_module("cloudpickle.cloudpickle")
        return {n: sys.modules.pop(n) for n in list(sys.modules) if _is_ours(n)}
    finally:
        sys.path.remove(RUNTIME_SITE)
        sys.modules.update(users)


def find_class(module: str, name: str) -> Any:
    """For unpickling: a helper of our cloudpickle that a pickle names, else None."""
    if not _is_ours(module) or not RUNTIME_SITE:
        return None
    cloudpickle()
    found = _modules.get(module)
    return getattr(found, name) if found is not None else None


def cloudpickle_version() -> str:
    """The version of our cloudpickle, without importing it where that can be avoided.

    From its dist-info folder's name, as installers write it (``cloudpickle-3.1.1.dist-info``),
    in the runtime's site folder in a worker, beside the importable package in a host: the
    host's handshake and runtime key ask for it, and importing cloudpickle costs more than a
    worker's start-up.
    """
    if "cloudpickle" not in _modules:
        site = RUNTIME_SITE or _site_of_cloudpickle()
        prefix, suffix = "cloudpickle-", ".dist-info"
        try:
            names = os.listdir(site) if site else []
        except OSError:
            names = []
        found = [
            n[len(prefix) : -len(suffix)]
            for n in names
            if n.startswith(prefix) and n.endswith(suffix)
        ]
        if len(found) == 1:
            return found[0]
    return cloudpickle().__version__


def _site_of_cloudpickle() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("cloudpickle")  # finds it without importing it
    if spec is None or not spec.origin:
        return None
    return os.path.dirname(os.path.dirname(spec.origin))
