"""``from mvbridge import dep_a`` and ``import mvbridge.dep_a.sub``: modules of configured envs.

Internal. A meta path finder, last on ``sys.meta_path``, answers ``mvbridge.<name>`` for any
name that is not one of mvbridge's own submodules: it finds the one env of mvbridge.toml that
exposes ``<name>`` (building envs that are missing, with progress on stderr) and returns that
env's module proxy. The host never imports the proxied module itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from ..config import Config, load_config
from ..errors import MVBridgeError
from .env import Env, _registry, _registry_lock
from .envs import read_record
from .proxy import RemoteModule
from .services import ask_service, read_service_record


def _own_names() -> frozenset[str]:
    """mvbridge's own submodules and public names: an env module of one of these names cannot
    be imported as ``mvbridge.<name>`` (``mvbridge sync`` reports the clash)."""
    import mvbridge

    package = Path(mvbridge.__file__).parent
    names = {
        p.stem for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    names.update(mvbridge.__all__)
    names.add("demo")  # `mvbridge demo`; kept free so the docs never mean two things by it
    return frozenset(n for n in names if not n.startswith("_"))


OWN_NAMES = _own_names()

_lock = threading.RLock()


def current_config() -> Config | None:
    """mvbridge.toml (or [tool.mvbridge]) in force (read anew: it is small)."""
    return load_config()


def env_location(config: Config, name: str) -> Path:
    return config.state_dir / "envs" / name


def configured_env(name: str, config: Config | None = None) -> Env | None:
    """The Env for ``name`` declared in the config, made once per process."""
    config = config or current_config()
    if config is None or name not in config.envs:
        return None
    with _registry_lock:
        existing = _registry.get(name)
    if existing is not None and existing.location == env_location(config, name):
        return existing
    return Env.from_spec(config.envs[name], env_location(config, name))


def recorded_modules(config: Config, name: str) -> list[str] | None:
    """The modules env ``name`` exposes: declared, recorded at its build (or by asking its
    service), or None when not known yet."""
    spec = config.envs[name]
    if spec.modules is not None:
        return list(spec.modules)
    location = env_location(config, name)
    if spec.address or spec.backend == "ray":
        service = read_service_record(location)
        return service.modules if service is not None else None
    record = read_record(location)
    return record.modules if record is not None else None


def exposing(module: str, config: Config, build: bool = True) -> list[str]:
    """Names of the envs that expose top-level module ``module`` (building unbuilt ones, and
    asking services that have not said yet)."""
    found = []
    unknown = []
    for name in config.envs:
        modules = recorded_modules(config, name)
        if modules is None:
            unknown.append(name)
        elif module in modules:
            found.append(name)
    if build and unknown and not found:
        for name in unknown:
            spec = config.envs[name]
            if spec.address:
                ask_service(spec, env_location(config, name))
                continue
            env = configured_env(name, config)
            assert env is not None
            if spec.backend == "ray":
                env.start()  # its worker says what it exposes (recorded by the env)
                continue
            env.build()
        return exposing(module, config, build=False)
    return found


def import_exposed(fullname: str) -> RemoteModule:
    """The proxy for ``fullname`` (``dep_a`` or ``dep_a.sub``) from the env exposing it.

    Raises:
        ModuleNotFoundError: no env exposes it, or there is no config file.
        ImportError: two or more envs expose it.
    """
    top = fullname.partition(".")[0]
    config = current_config()
    if config is None:
        # No name= on purpose: CPython's from-import hides a ModuleNotFoundError whose name is
        # the one asked for, and with it this explanation.
        raise ModuleNotFoundError(
            f"no module named 'mvbridge.{fullname}': there is no mvbridge.toml (or "
            "[tool.mvbridge] in pyproject.toml) here or above, so no env exposes modules; "
            "declare envs there, or use mvbridge.Env(...).import_module(...)"
        )
    with _lock:
        names = exposing(top, config)
    if not names:
        listing = "; ".join(
            f"{n}: {', '.join(_modules_of(config, n)) or '(not built)'}" for n in config.envs
        )
        raise ModuleNotFoundError(
            f"no env in {config.path} exposes a module named {top!r} (envs and their modules: "
            f"{listing or 'none'}); add it to an env's 'modules', or use "
            f"mvbridge.env(NAME).import_module({fullname!r})"
        )
    if len(names) > 1:
        raise ImportError(
            f"module {top!r} is exposed by several envs ({', '.join(sorted(names))}) in "
            f"{config.path}; choose one explicitly: "
            + " or ".join(
                f"mvbridge.env({n!r}).import_module({fullname!r})" for n in sorted(names)
            ),
            name=f"mvbridge.{fullname}",
        )
    env = configured_env(names[0], config)
    assert env is not None
    return env.import_module(fullname)


def _modules_of(config: Config, name: str) -> list[str]:
    return recorded_modules(config, name) or []


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        try:
            return import_exposed(spec.name.partition(".")[2])
        except MVBridgeError as exc:
            raise ImportError(f"cannot import {spec.name}: {exc}", name=spec.name) from exc

    def exec_module(self, module: ModuleType) -> None:
        pass  # the worker already ran it


class Finder(importlib.abc.MetaPathFinder):
    """Finds ``mvbridge.<env module>[.sub...]``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith("mvbridge."):
            return None
        first = fullname.split(".")[1]
        if first in OWN_NAMES or first.startswith("_"):
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)
