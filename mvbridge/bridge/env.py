"""``mvbridge.Env``: one environment, its worker, its module proxies.

Internal module; ``Env``, ``env()`` and ``shutdown()`` are public through ``mvbridge``.
"""

from __future__ import annotations

import enum
import logging
import os
import shutil
import threading
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..config import EnvSpec, ray_placement, resolve_requirement
from ..core import protocol as P
from ..errors import ConfigError, SerializationError, WorkerDiedError
from .runtime import ensure_runtime, interpreter_facts

# Imported where used: a script's first call through a local worker pays only for what it uses
# (asyncio, the env builder and the service client cost more than the rest of the host half),
# and pays for pyzmq and the codec while its worker boots (``_spawn``).
if TYPE_CHECKING:  # pragma: no cover
    from .client import HostSession
    from .envs import EnvRecord
    from .links import Link
    from .proxy import RemoteModule
    from .ray_link import Replicas

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _Names:
    """The newest Env of each name, for ``mvbridge.env(name)`` (under ``_registry_lock``).

    An env is held from its creation; once shut down, only weakly, for as long as someone else
    holds it (a module proxy, the application), so that an application that makes its Envs
    under ever new names (one per request) does not keep them all. Its next start holds it
    again.
    """

    def __init__(self) -> None:
        self._held: dict[str, Env] = {}
        self._weak: weakref.WeakValueDictionary[str, Env] = weakref.WeakValueDictionary()

    def add(self, env: Env) -> None:
        self._weak.pop(env.name, None)
        self._held[env.name] = env

    def get(self, name: str) -> Env | None:
        return self._held.get(name) or self._weak.get(name)

    def release(self, env: Env) -> None:
        if self._held.get(env.name) is env:
            del self._held[env.name]
            self._weak[env.name] = env

    def hold(self, env: Env) -> None:
        if self._weak.get(env.name) is env:
            del self._weak[env.name]
            self._held[env.name] = env

    def names(self) -> set[str]:
        return set(self._held) | set(self._weak)

    def envs(self) -> list[Env]:
        return [*self._held.values(), *self._weak.values()]


_registry_lock = threading.Lock()
_registry = _Names()
_running: set[Env] = set()  # envs with a session (a worker or a service), for shutdown
_exiting = False
DEFAULT_ASYNC_POOL = 16  # awaited calls of one event loop that run at once, per env


class EnvState(enum.Enum):
    """Where an env's worker stands."""

    STOPPED = "stopped"  # no worker yet, or shut down; the next use starts one
    RUNNING = "running"  # a worker answered the handshake and has not gone
    DIED = "died"  # the worker exited unexpectedly; the next use starts a new one


@dataclass(frozen=True)
class EnvInfo:
    """Facts about an env's running worker.

    Attributes:
        name: the env's name.
        python: the worker's full Python version, e.g. ``"3.9.18"``.
        executable: the worker's interpreter.
        pid: the worker's process id.
        protocol: the protocol version both sides speak.
        runtime: versions of msgpack, pyzmq, libzmq and cloudpickle in the worker's runtime.
        address: the control endpoint.
    """

    name: str
    python: str
    executable: str
    pid: int
    protocol: int
    runtime: dict[str, str] = field(default_factory=dict)
    address: str = ""


@dataclass(frozen=True)
class EnvStatistics:
    """Counts that show whether references are released.

    Attributes:
        worker_objects: objects the worker holds for this host (its table's size).
        host_objects: host objects the worker holds proxies of (our table's size).
        host_proxies: live proxies here of worker objects.
        pending_releases: releases queued here, not yet sent.
        restarts: how many times a worker of this env has been started after the first.
    """

    worker_objects: int
    host_objects: int
    host_proxies: int
    pending_releases: int
    restarts: int


class Env:
    """An environment whose modules run in their own worker interpreter.

    Args:
        name: the env's name, used in messages and by ``mvbridge.env(name)``.
        interpreter: an existing Python (3.8+) to run the worker with, used as it is.
        requirements: pip requirements of an env that mvbridge builds (in the user cache for an
            ad hoc env, under ``.mvbridge/`` for one declared in mvbridge.toml).
        python: the Python of a built env: a version such as ``"3.9"``, an interpreter path,
            or ``"auto"``: the newest installed Python on which every requirement has a wheel
            (default: the host's).
        address: a running ``mvbridge spawn`` service, ``"tcp://host:port"``.
        server_key: the service's public key file (``NAME.key``); default
            ``MVBRIDGE_SERVER_KEY``. Without it (and ``client_key``) the connection is plain,
            which only an ``--insecure`` service on loopback accepts.
        client_key: this client's secret key file (``NAME.key_secret``); default
            ``MVBRIDGE_CLIENT_KEY``.
        call_timeout: default deadline in seconds for each call into this env (None: no deadline).
        async_pool: how many calls awaited from one event loop run at once (each on a worker
            thread of its own); more awaits wait for a free one.
        start_timeout: how long a local worker may take to answer its handshake.
        allow_build: may compile a requirement that has no wheel for the env's Python
            (otherwise the build stops first and says which Python has wheels).
        connect_timeout: how long connecting (or reconnecting) to a service may take before a
            call fails.
        heartbeat_timeout: how long a service connection may stay silent before the calls in
            flight fail with ``WorkerDiedError``.
        backend: ``"local"`` (default), or ``"ray"``: the worker runs on a Ray cluster, in an
            env built from ``requirements`` on the node Ray chose (needs
            ``pip install "mvbridge[ray]"``).
        ray_address: the cluster to connect to if this process has not called ``ray.init``
            (default: Ray's own discovery).
        replicas: how many workers to spread over the cluster; a session uses one of them.
        num_cpus: CPUs each replica's Ray actor reserves (default: Ray's).
        resources: custom Ray resources each replica's actor reserves.
        detached: the actors outlive this process, shared by every host naming the same env.

    Raises:
        ConfigError: not exactly one of ``interpreter``, ``requirements`` and ``address`` was
            given, keys were given for an env that is not a service, Ray options for an env
            that is not on Ray, or ``backend="ray"`` without Ray installed.
    """

    def __init__(
        self,
        name: str,
        *,
        interpreter: str | Path | None = None,
        requirements: list[str] | None = None,
        python: str | None = None,
        address: str | None = None,
        server_key: str | Path | None = None,
        client_key: str | Path | None = None,
        call_timeout: float | None = None,
        async_pool: int = DEFAULT_ASYNC_POOL,
        start_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        heartbeat_timeout: float = 10.0,
        allow_build: bool = False,
        backend: str = "local",
        ray_address: str | None = None,
        replicas: int = 1,
        num_cpus: float | None = None,
        resources: dict[str, float] | None = None,
        detached: bool = False,
    ) -> None:
        given = [
            k
            for k, v in (
                ("interpreter", interpreter),
                ("requirements", requirements),
                ("address", address),
            )
            if v
        ]
        if len(given) != 1:
            raise ConfigError(
                f"env {name!r}: give exactly one of interpreter=PATH (an existing Python), "
                f"requirements=[...] (an env mvbridge builds) or address=URL; got {given or 'none'}"
            )
        if python is not None and requirements is None:
            raise ConfigError(
                f"env {name!r}: python= applies only to an env built from requirements"
            )
        if isinstance(async_pool, bool) or not isinstance(async_pool, int) or async_pool < 1:
            raise ConfigError(f"env {name!r}: async_pool must be a whole number >= 1")
        if (server_key or client_key) and not address:
            raise ConfigError(f"env {name!r}: server_key/client_key apply only with address=")
        ray = _ray_placement(
            name, backend, requirements, ray_address, replicas, num_cpus, resources, detached
        )
        self.name = name
        self.interpreter = str(interpreter) if interpreter is not None else None
        self.spec = EnvSpec(
            name=name,
            requirements=tuple(resolve_requirement(r, Path.cwd()) for r in requirements or ()),
            python=python,
            address=address,
            call_timeout=call_timeout,
            allow_build=allow_build,
            async_pool=async_pool,
            backend=backend,
            ray=ray,
        )
        self.location: Path | None = None
        if requirements:
            from .envs import adhoc_location

            self.location = adhoc_location(self.spec)
        self.pins: dict[str, str] | None = None
        self.record: EnvRecord | None = None
        self.address = address
        self.server_key = server_key
        self.client_key = client_key
        self.call_timeout = call_timeout
        self.async_pool = async_pool
        self.start_timeout = start_timeout
        self.connect_timeout = connect_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self._lock = threading.RLock()
        self._session: HostSession | None = None
        self._modules: dict[str, RemoteModule] = {}
        self._starts = 0
        self._replicas: Replicas | None = None
        self._records_service = False  # a declared ray env: record what its worker exposes
        with _registry_lock:
            _registry.add(self)

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def state(self) -> EnvState:
        session = self._session
        if session is None or session.shut_down:
            return EnvState.STOPPED
        return EnvState.RUNNING if session.alive_nowait() else EnvState.DIED

    @classmethod
    def from_spec(cls, spec: EnvSpec, location: Path, pins: dict[str, str] | None = None) -> Env:
        """The env declared by ``spec`` (mvbridge.toml), built at ``location``."""
        if spec.address:
            env = cls(
                spec.name,
                address=spec.address,
                server_key=spec.server_key,
                client_key=spec.client_key,
                call_timeout=spec.call_timeout,
                async_pool=spec.async_pool,
                connect_timeout=spec.connect_timeout,
                heartbeat_timeout=spec.heartbeat_timeout,
            )
        else:
            env = cls(
                spec.name,
                requirements=list(spec.requirements),
                python=spec.python,
                call_timeout=spec.call_timeout,
                async_pool=spec.async_pool,
                **_ray_kwargs(spec),
            )
            env._records_service = spec.backend == "ray"
        env.spec = spec
        env.location = location
        env.pins = pins
        return env

    def build(
        self, progress: Callable[[str], None] | None = None, installer: str | None = None
    ) -> None:
        """Build the env if its spec changed (or it is missing), and prepare the worker runtime.

        Raises:
            EnvBuildError: the env could not be created or its requirements not installed.
        """
        if self.address is not None or self.spec.backend == "ray":
            return  # a service: its host built it; on Ray: each replica's node builds it
        with self._lock:
            ensure_runtime(interpreter_facts(self._worker_interpreter(progress, installer)))

    def _worker_interpreter(
        self, progress: Callable[[str], None] | None = None, installer: str | None = None
    ) -> str:
        if self.interpreter is not None:
            return self.interpreter
        assert self.location is not None
        from .envs import ensure_env, stderr_progress

        self.record = ensure_env(
            self.spec, self.location, progress or stderr_progress, self.pins, installer
        )
        return self.record.interpreter

    def start(self) -> None:
        """Start the worker now rather than on first use."""
        self.session()

    def session(self) -> HostSession:
        """The live session with this env's worker, starting a worker if none is running."""
        session = self._session
        if session is not None and session.usable():
            return session
        with self._lock:
            session = self._session
            if session is not None and session.usable():
                return session
            if _exiting:  # the exit hook shut the worker down: as for a call in flight then
                raise WorkerDiedError(
                    f"env {self.name!r}: its worker was shut down because the interpreter "
                    "exits; no new one starts now",
                    env=self.name,
                    pid=None,
                    exit_code=None,
                    calls_in_flight=0,
                )
            if session is not None:
                logger.info("env %r: starting a new worker (%s)", self.name, session.death)
                self._cleanup(session)
            self._session = self._spawn()
            self._starts += 1
            with _registry_lock:
                _running.add(self)
                _registry.hold(self)
            return self._session

    async def asession(self) -> HostSession:
        """``session()`` for a coroutine: starting a worker (or reconnecting) runs off the loop."""
        session = self._session
        if session is not None and session.link.fast and session.alive_nowait():
            return session
        from .aio_channel import off_loop

        return await off_loop(self.session)

    def current_session(self) -> HostSession | None:
        return self._session

    def _spawn(self) -> HostSession:
        if self.address is not None:
            return self._connect(self.address)
        if self.spec.backend == "ray":
            return self._connect_ray()
        interpreter = self._worker_interpreter()
        runtime = ensure_runtime(interpreter_facts(interpreter))
        from .supervisor import start_local

        process, ipc_dir = start_local(self.name, interpreter, runtime)
        try:
            from .client import HostSession
            from .local_link import LocalLink

            link = LocalLink(self.name, interpreter, process, ipc_dir)
        except BaseException:
            process.stop()
            shutil.rmtree(ipc_dir, ignore_errors=True)
            raise
        return HostSession(
            self.name,
            link,
            self.call_timeout,
            self._module_proxy,
            self.start_timeout,
            async_pool=self.async_pool,
        )

    def _connect(self, address: str) -> HostSession:
        from .keys import client_keys
        from .service_link import ServiceLink

        server_key = self.server_key or os.environ.get("MVBRIDGE_SERVER_KEY") or None
        client_key = self.client_key or os.environ.get("MVBRIDGE_CLIENT_KEY") or None
        link = ServiceLink(
            self.name,
            address,
            client_keys(server_key, client_key),
            self.connect_timeout,
            self.heartbeat_timeout,
        )
        return self._remote_session(link)

    def _remote_session(self, link: Link) -> HostSession:
        """A session over ``link`` to a worker on another machine (a service, a Ray replica)."""
        from .client import HostSession

        return HostSession(
            self.name,
            link,
            self.call_timeout,
            self._module_proxy,
            self.connect_timeout,
            async_pool=self.async_pool,
        )

    def _connect_ray(self) -> HostSession:
        from .ray_link import RayLink, Replicas

        if self._replicas is None:
            self._replicas = Replicas(self.spec, self.pins)
        link = RayLink(self.name, self._replicas, self.connect_timeout, self.heartbeat_timeout)
        session = self._remote_session(link)  # closes the link if the handshake fails
        if self._records_service and self.location is not None:
            from .ray_link import record_service

            record_service(self.name, self.location, link.endpoint)
        return session

    def _cleanup(self, session: HostSession) -> None:
        session.shutdown()

    def shutdown(self) -> None:
        """Stop the worker, if one runs; calls waiting on it raise ``WorkerDiedError``.

        On Ray, the env's actors end too, unless they are detached (shared with other hosts).
        """
        with self._lock:
            session = self._session
            if session is not None:
                self._cleanup(session)
            replicas, self._replicas = self._replicas, None
            if replicas is not None:
                replicas.release()
            with _registry_lock:
                _running.discard(self)
                _registry.release(self)

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    async def __aenter__(self) -> Env:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        from .aio_channel import off_loop

        await off_loop(self.shutdown)

    def __repr__(self) -> str:
        where = self.interpreter or self.address or self.location
        if self.spec.ray is not None:
            where = f"ray, {self.spec.ray.replicas} replica(s)"
        return f"<mvbridge.Env {self.name!r} {self.state.value} ({where})>"

    # -- use -------------------------------------------------------------------------------------
    def request(self, op: str, target: Any, *operands: Any) -> Any:
        if self._session is None:  # the worker boots while the host imports what calls need
            self.session()
        from .proxy import follow_env

        return follow_env(self, lambda session: session.request(op, target, *operands))

    def import_module(self, name: str) -> RemoteModule:
        """Import module ``name`` in the worker and return its proxy.

        Raises:
            ModuleNotFoundError: the env has no such module (the worker's own error).
        """
        listing = self.request(P.OP_IMPORT, None, name)
        module = self._modules.get(name)
        if module is None:
            from .proxy import RemoteModule

            module = self._modules[name] = RemoteModule(self, name, listing)
        else:
            module._mvb_listed(listing)
        return module

    def _module_proxy(self, name: str) -> RemoteModule:
        module = self._modules.get(name)
        return module if module is not None else self.import_module(name)

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` in this env's worker and return the result.

        ``fn`` travels by value: with cloudpickle when both sides run the same Python minor
        version, else as source code (a plain top-level function without closures).

        Raises:
            SerializationError: ``fn`` cannot be shipped to this worker.
            WorkerDiedError: the worker exited before replying.
        """
        session = self.session()
        return session.request(*_call_request(session, fn, args, kwargs))

    async def acall(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``call`` for a coroutine: ``await env.acall(fn, *args, **kwargs)`` runs ``fn`` in this
        env's worker without blocking the event loop, and returns its result.

        Raises:
            SerializationError: ``fn`` cannot be shipped to this worker.
            WorkerDiedError: the worker exited before replying.
        """
        session = await self.asession()
        return await session.arequest(*_call_request(session, fn, args, kwargs))

    @property
    def info(self) -> EnvInfo:
        """Facts about the running worker (starts it if needed)."""
        facts = self.session().facts
        return EnvInfo(
            name=self.name,
            python=facts["python"],
            executable=facts["executable"],
            pid=facts["pid"],
            protocol=facts["protocol"],
            runtime=dict(facts["runtime"]),
            address=self.session().link.address,
        )

    def statistics(self) -> EnvStatistics:
        """Reference counts on both sides, after sending the releases queued here."""
        session = self.session()
        if session.pending_releases():
            session.request(P.OP_VERSIONS, None, [])  # carries the queued releases
        worker = session.statistics()
        return EnvStatistics(
            worker_objects=worker["live_objects"],
            host_objects=session.table.statistics().live_objects,
            host_proxies=session.live_proxies(),
            pending_releases=session.pending_releases(),
            restarts=max(0, self._starts - 1),
        )


def _ray_placement(
    name: str,
    backend: str,
    requirements: list[str] | None,
    address: str | None,
    replicas: int,
    num_cpus: float | None,
    resources: dict[str, float] | None,
    detached: bool,
) -> Any:
    """The checked Ray placement of ``Env(..., backend="ray")``, else None."""
    at = f"env {name!r}"
    if backend == "local":
        given = (address is not None, replicas != 1, num_cpus is not None, bool(resources))
        if any(given) or detached:
            raise ConfigError(
                f"{at}: ray_address, replicas, num_cpus, resources and detached apply only with "
                'backend="ray"'
            )
        return None
    if backend != "ray":
        raise ConfigError(f'{at}: backend must be "local" or "ray", not {backend!r}')
    if not requirements:
        raise ConfigError(
            f'{at}: backend="ray" builds the env on the cluster\'s nodes from requirements=[...]'
        )
    return ray_placement(at, address, replicas, num_cpus, resources, detached)


def _ray_kwargs(spec: EnvSpec) -> dict[str, Any]:
    if spec.ray is None:
        return {}
    placement = spec.ray
    return {
        "backend": "ray",
        "ray_address": placement.address,
        "replicas": placement.replicas,
        "num_cpus": placement.num_cpus,
        "resources": dict(placement.resources),
        "detached": placement.detached,
    }


def _call_request(
    session: HostSession, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """The request that runs ``fn(*args, **kwargs)`` in ``session``'s worker: ``fn`` pickled
    (cloudpickle ships code between equal Pythons; otherwise fn is importable there), or as
    source code."""
    from ..core.codec import ByValue
    from .client import WorkerModuleName

    module = getattr(fn, "__module__", None)
    if module is None:  # a builtin method: its owner's module (datetime.date.fromisoformat)
        owner = getattr(fn, "__self__", None)
        module = (owner if isinstance(owner, type) else type(owner)).__module__
    module = module or "__main__"
    if session.same_python or session.package_matches(module):
        return P.OP_CALL, ByValue(fn), list(args), kwargs
    name, source, imports, values = _function_source(fn, session.peer_python)
    return (
        P.OP_CALLATTR,
        WorkerModuleName("mvbridge.core.ops"),
        "run_source",
        [name, source, imports, values, list(args), kwargs],
        {},
    )


def _function_source(fn: Any, peer_python: str) -> tuple[str, str, list[Any], dict[str, Any]]:
    """Source, imports and global values to rebuild ``fn`` under another Python version."""
    why = None
    if not isinstance(fn, types.FunctionType):
        why = "it is not a plain function"
    elif fn.__name__ == "<lambda>":
        why = "it is a lambda"
    elif fn.__closure__:
        why = "it is a closure"
    source = ""
    if why is None:
        import inspect
        import textwrap

        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError):
            why = "its source code is not available"
    if why is None and source.lstrip().startswith("@"):
        why = "it is decorated"
    imports: list[Any] = []
    values: dict[str, Any] = {}
    if why is None:
        for name in _global_names(fn.__code__):
            if name not in fn.__globals__:
                continue
            value = fn.__globals__[name]
            if isinstance(value, types.ModuleType):
                imports.append([name, value.__name__])
            elif type(value) in (int, float, str, bytes, bool, type(None), tuple, list, dict):
                values[name] = value
            else:
                why = f"it uses the global {name!r} ({type(value).__name__}), which is not data"
                break
    if why is not None:
        raise SerializationError(
            f"cannot run {getattr(fn, '__qualname__', fn)!r} in a worker on Python {peer_python}: "
            f"code travels by value only between equal Python versions, and source shipping "
            f"failed because {why}. Define the function in a module the env can import, or "
            "use a worker on the host's Python version",
            type_name=f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}",
        )
    return fn.__name__, source, imports, values


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def env(name: str) -> Env:
    """The env called ``name``: declared in mvbridge.toml, or created earlier in this process.

    Raises:
        ConfigError: no env of that name exists (the message lists the known ones).
    """
    with _registry_lock:
        found = _registry.get(name)
    if found is not None:
        return found
    from .importer import configured_env

    declared = configured_env(name)
    if declared is not None:
        return declared
    from .importer import current_config

    config = current_config()
    with _registry_lock:
        known = sorted(_registry.names() | set(config.envs if config else ()))
    where = f"declared in {config.path} or " if config else ""
    raise ConfigError(
        f"no env named {name!r} {where}created in this process; known envs: "
        f"{', '.join(known) or 'none'}"
    )


def shutdown() -> None:
    """Stop every local worker this process started, and end its sessions with services."""
    with _registry_lock:
        envs = list(_running)
    for each in envs:
        try:
            each.shutdown()
        except Exception:
            logger.exception("env %r did not shut down cleanly", each.name)


def _at_exit() -> None:
    global _exiting
    _exiting = True
    shutdown()


def _register_exit_hook() -> None:
    # threading._register_atexit runs before the interpreter joins non-daemon threads, so a user
    # thread blocked in a call gets WorkerDiedError instead of hanging the exit.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_at_exit)
    else:  # pragma: no cover - Python < 3.9 hosts are not supported anyway
        import atexit

        atexit.register(_at_exit)


_register_exit_hook()
