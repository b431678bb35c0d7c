"""``mvbridge.toml`` / ``[tool.mvbridge]`` -> frozen dataclasses, with errors that say where.

The config is found from the current directory upwards (``mvbridge.toml`` first, then a
``pyproject.toml`` that has a ``[tool.mvbridge]`` table), or named by ``MVBRIDGE_CONFIG``.

```toml
[envs.dep_a]
requirements = ["./src/dep_a", "pandas==2.2.0"]
python = "3.11"              # optional: a version ("3.9"), an interpreter path, or "auto"
allow_build = false          # optional: may compile a requirement that has no wheel
modules = ["dep_a"]          # optional: import names to expose (default: discovered)
address = "tcp://host:5555"  # optional: a running `mvbridge spawn` service, instead of
                             # requirements; then also (paths relative to this file):
server_key = "keys/server.key"         # the service's public key
client_key = "keys/app.key_secret"     # this client's secret key
connect_timeout = 10         # seconds a (re)connection may take
heartbeat_timeout = 10       # seconds of silence before calls in flight fail
call_timeout = 30            # optional: default deadline of each call, in seconds
async_pool = 16              # optional: awaited calls of one event loop that run at once
backend = "ray"              # optional: place the workers on a Ray cluster (default "local");
                             # then also (needs `pip install "mvbridge[ray]"`):
ray_address = "auto"         # the cluster (default: the host's ray.init, else Ray's discovery)
replicas = 2                 # workers spread over the cluster; a host session uses one
num_cpus = 1                 # CPUs each replica's actor reserves
resources = {gpu_node = 1}   # custom Ray resources each replica's actor reserves
detached = false             # actors outlive this host, shared by every host that names them
```
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "mvbridge.toml"
ENV_KEYS = {
    "requirements",
    "python",
    "modules",
    "address",
    "server_key",
    "client_key",
    "connect_timeout",
    "heartbeat_timeout",
    "call_timeout",
    "allow_build",
    "async_pool",
    "backend",
    "ray_address",
    "replicas",
    "num_cpus",
    "resources",
    "detached",
}
RAY_KEYS = {"ray_address", "replicas", "num_cpus", "resources", "detached"}
SERVICE_KEYS = {"server_key", "client_key", "connect_timeout", "heartbeat_timeout"}
BACKENDS = ("local", "ray")
RAY_EXTRA = 'pip install "mvbridge[ray]"'

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


@dataclass(frozen=True)
class EnvSpec:
    """One env as declared.

    Attributes:
        name: the env's name (the key under ``[envs]``).
        requirements: pip requirement strings; local paths made absolute.
        python: a version such as ``"3.9"``, an interpreter path, ``"auto"`` (the newest
            installed Python on which every requirement has a wheel), or None for the host's.
        modules: import names to expose, or None to use the discovered ones.
        address: a running service's address, or None for a local worker.
        server_key: the service's public key file, absolute (services only).
        client_key: this client's secret key file, absolute (services only).
        connect_timeout: seconds a (re)connection to a service may take.
        heartbeat_timeout: seconds a service connection may stay silent.
        call_timeout: default per-call deadline in seconds, or None.
        allow_build: may compile a requirement that has no wheel for the env's Python.
        async_pool: how many awaited calls of one event loop run at once.
        backend: ``"local"`` (a worker on this machine) or ``"ray"`` (workers placed on a Ray
            cluster; see ``ray``).
        ray: where and how a ``"ray"`` env's workers are placed, else None.
    """

    name: str
    requirements: tuple[str, ...] = ()
    python: str | None = None
    modules: tuple[str, ...] | None = None
    address: str | None = None
    server_key: str | None = None
    client_key: str | None = None
    connect_timeout: float = 10.0
    heartbeat_timeout: float = 10.0
    call_timeout: float | None = None
    allow_build: bool = False
    async_pool: int = 16
    backend: str = "local"
    ray: RayPlacement | None = None


@dataclass(frozen=True)
class RayPlacement:
    """Where a ``backend = "ray"`` env's workers run.

    Attributes:
        address: the cluster to connect to when this process has not called ``ray.init``
            (None: Ray's own discovery, ``RAY_ADDRESS`` or a local cluster).
        replicas: how many workers (one Ray actor each) to spread over the cluster.
        num_cpus: CPUs each replica's actor reserves (None: Ray's default for actors).
        resources: custom Ray resources each replica's actor reserves.
        detached: the actors outlive the host that made them, for other hosts to share.
    """

    address: str | None = None
    replicas: int = 1
    num_cpus: float | None = None
    resources: tuple[tuple[str, float], ...] = ()
    detached: bool = False


def ray_placement(
    at: str,
    address: Any = None,
    replicas: Any = 1,
    num_cpus: Any = None,
    resources: Any = None,
    detached: Any = False,
) -> RayPlacement:
    """A checked ``RayPlacement``; ``at`` names the env for messages.

    Raises:
        ConfigError: a value is of the wrong kind, or Ray is not installed.
    """
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise ConfigError(f"{at}: 'ray_address' must be a Ray address such as \"auto\"")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"{at}: 'replicas' must be a whole number >= 1")
    if num_cpus is not None and (
        isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or num_cpus < 0
    ):
        raise ConfigError(f"{at}: 'num_cpus' must be a number >= 0")
    resources = resources or {}
    if not isinstance(resources, dict) or not all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
        for k, v in resources.items()
    ):
        raise ConfigError(
            f"{at}: 'resources' must be a table of Ray resource names and amounts > 0, "
            "e.g. {gpu_node = 1}"
        )
    if not isinstance(detached, bool):
        raise ConfigError(f"{at}: 'detached' must be true or false")
    _require_ray(at)
    return RayPlacement(
        address=address.strip() if address else None,
        replicas=replicas,
        num_cpus=None if num_cpus is None else float(num_cpus),
        resources=tuple(sorted((k, float(v)) for k, v in resources.items())),
        detached=detached,
    )


def _require_ray(at: str) -> None:
    import importlib.util

    # find_spec, not import: `import ray` takes seconds, and a config is read on every import.
    if importlib.util.find_spec("ray") is None:
        raise ConfigError(
            f'{at}: backend = "ray" needs Ray, which is not installed in this Python '
            f"({sys.executable}); install it with: {RAY_EXTRA}"
        )


@dataclass(frozen=True)
class Config:
    """A parsed config file.

    Attributes:
        path: the file it came from.
        root: the folder holding it; envs live in ``root/.mvbridge``.
        envs: the declared envs by name.
    """

    path: Path
    root: Path
    envs: dict[str, EnvSpec] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return self.root / ".mvbridge"

    @property
    def lock_path(self) -> Path:
        return self.root / "mvbridge.lock"


def find_config(start: Path | None = None) -> Path | None:
    """The config file in force: ``MVBRIDGE_CONFIG``, else the nearest one upwards."""
    configured = os.environ.get("MVBRIDGE_CONFIG")
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"MVBRIDGE_CONFIG names {path}, which is not a file")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _toml() -> Any:
    # Imported on first use: a script that names its env's interpreter reads no config.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def _has_tool_table(pyproject: Path) -> bool:
    tomllib = _toml()
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return "mvbridge" in data.get("tool", {})


def load_config(path: Path | None = None) -> Config | None:
    """Parse the config in force (or ``path``); None when there is none.

    Raises:
        ConfigError: the file is not valid TOML or breaks a rule (file, env and key named).
    """
    path = path or find_config()
    if path is None:
        return None
    tomllib = _toml()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    where = str(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("mvbridge", {})
        where += " [tool.mvbridge]"
    unknown = set(data) - {"envs"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; the only table is [envs]")
    envs_table = data.get("envs", {})
    if not isinstance(envs_table, dict):
        raise ConfigError(f"{where}: 'envs' must be a table of envs, e.g. [envs.dep_a]")
    root = path.parent.resolve()
    envs = {name: _env_spec(where, root, name, table) for name, table in envs_table.items()}
    return Config(path=path.resolve(), root=root, envs=envs)


def _env_spec(where: str, root: Path, name: str, table: Any) -> EnvSpec:
    at = f"{where}: env {name!r}"
    if not _NAME.match(name):
        raise ConfigError(
            f"{at}: names use letters, digits, '_', '-' and '.', and start with a letter or '_'"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{at}: must be a table ([envs.{name}]) with a 'requirements' list")
    unknown = set(table) - ENV_KEYS
    if unknown:
        raise ConfigError(f"{at}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(ENV_KEYS)}")
    requirements = table.get("requirements", [])
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        raise ConfigError(
            f"{at}: 'requirements' must be a list of strings, e.g. [\"pandas==2.2.0\"]"
        )
    if bool(requirements) == ("address" in table):
        raise ConfigError(
            f"{at}: give either 'requirements' (a list of pip requirements, for an env mvbridge "
            "builds) or 'address' (a running service), not both or neither"
        )
    python = _python(at, root, table.get("python"))
    modules = table.get("modules")
    if modules is not None:
        if not isinstance(modules, list) or not all(
            isinstance(m, str) and _IDENTIFIER.match(m) for m in modules
        ):
            raise ConfigError(
                f"{at}: 'modules' must be a list of top-level import names, e.g. [\"dep_a\"] "
                "(submodules come with them: import mvbridge.dep_a.sub)"
            )
        modules = tuple(modules)
    address = table.get("address")
    if address is not None and (
        not isinstance(address, str)
        or not re.match(r"^tcp://[^:/]+(:\d+)$|^tcp://\[[^\]]+\]:\d+$", address)
    ):
        raise ConfigError(f"{at}: 'address' must look like \"tcp://host:port\"")
    misplaced = sorted(SERVICE_KEYS & set(table)) if address is None else []
    if misplaced:
        raise ConfigError(f"{at}: {misplaced} apply only to an env with an 'address'")
    timeout = _seconds(at, table, "call_timeout", None)
    allow_build = table.get("allow_build", False)
    if not isinstance(allow_build, bool):
        raise ConfigError(f"{at}: 'allow_build' must be true or false")
    keys = {k: _path(at, root, table.get(k), k) for k in ("server_key", "client_key")}
    backend, ray = _backend(at, table)
    return EnvSpec(
        name=name,
        requirements=tuple(resolve_requirement(r, root) for r in requirements),
        python=python,
        modules=modules,
        address=address,
        server_key=keys["server_key"],
        client_key=keys["client_key"],
        connect_timeout=_seconds(at, table, "connect_timeout", 10.0),
        heartbeat_timeout=_seconds(at, table, "heartbeat_timeout", 10.0),
        call_timeout=timeout,
        allow_build=allow_build,
        async_pool=_count(at, table, "async_pool", 16),
        backend=backend,
        ray=ray,
    )


def _backend(at: str, table: dict[str, Any]) -> tuple[str, RayPlacement | None]:
    backend = table.get("backend", "local")
    if backend not in BACKENDS:
        raise ConfigError(f"{at}: 'backend' must be one of {', '.join(map(repr, BACKENDS))}")
    if backend != "ray":
        misplaced = sorted(RAY_KEYS & set(table))
        if misplaced:
            raise ConfigError(f'{at}: {misplaced} apply only with backend = "ray"')
        return backend, None
    if "address" in table:
        raise ConfigError(
            f"{at}: backend = \"ray\" builds the env from its 'requirements' on the cluster's "
            "nodes; an 'address' names a service that is already running: choose one"
        )
    return backend, ray_placement(
        at,
        table.get("ray_address"),
        table.get("replicas", 1),
        table.get("num_cpus"),
        table.get("resources"),
        table.get("detached", False),
    )


def _count(at: str, table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{at}: {key!r} must be a whole number >= 1")
    return value


def _seconds(at: str, table: dict[str, Any], key: str, default: Any) -> Any:
    value = table.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{at}: {key!r} must be a positive number of seconds")
    return float(value)


def _path(at: str, root: Path, value: Any, key: str) -> str | None:
    """A key file's path, made absolute relative to the config's folder."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{at}: {key!r} must be the path of a key file")
    return str((root / Path(value.strip()).expanduser()).resolve())


def _python(at: str, root: Path, python: Any) -> str | None:
    """The ``python`` key: None, "auto", a version "X.Y" (3.8 or newer), or a path made
    absolute."""
    if python is None:
        return None
    if not isinstance(python, str) or not python.strip():
        raise ConfigError(
            f"{at}: 'python' must be a version such as \"3.9\" or an interpreter path"
        )
    python = python.strip()
    if python == "auto":
        return python
    match = _VERSION.match(python)
    if match:
        if (int(match.group(1)), int(match.group(2))) < (3, 8):
            raise ConfigError(
                f"{at}: python = {python!r}: mvbridge workers need Python 3.8 or newer"
            )
        return python
    if "/" in python or "\\" in python or python.startswith(("~", ".")):
        return str((root / Path(python).expanduser()).resolve())
    raise ConfigError(
        f'{at}: python = {python!r} is neither a version like "3.9" (major.minor only) nor an '
        "interpreter path"
    )


def is_local_requirement(requirement: str) -> bool:
    """True for a requirement that names a folder or file: ``./src/dep_a``, ``/abs/path``."""
    text = requirement.strip()
    return text.startswith((".", "/", "~")) or (len(text) > 2 and text[1] == ":")


def resolve_requirement(requirement: str, root: Path) -> str:
    """A local path made absolute (relative to the config's folder); anything else as it is."""
    if is_local_requirement(requirement):
        return str((root / Path(requirement.strip()).expanduser()).resolve())
    return requirement.strip()
