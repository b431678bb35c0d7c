"""Host half of ``backend = "ray"``: an env's replica actors, and a session straight to one.

Internal. Ray places, names and restarts the actors (``service/ray_actor.py``), one per
replica, named ``ENV-KEY-I`` in the ``mvbridge`` namespace, where KEY hashes what the env is
built from (so hosts that declare the same env share its actors, and a changed env gets new
ones). Each actor serves its worker as a ``mvbridge spawn`` service on its node; this module
asks it once for the address and the server's public key (handing over only this host's
public key) and then talks to the worker directly through the service client
(``ServiceLink``: TCP, CurveZMQ, heartbeats, reconnects). Ray never carries a call.

Ray is imported here only, and only when a ray env is first used: ``import mvbridge`` never
imports it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import EnvSpec, RayPlacement
from ..errors import MVBridgeError, WorkerStartError
from .installers import BUILD_TIMEOUT
from .keys import ClientKeys
from .service_link import ServiceLink

if TYPE_CHECKING:  # pragma: no cover
    from .client import HostSession

NAMESPACE = "mvbridge"
MAX_CONCURRENCY = 8  # hosts asking one actor at once (its methods are short)
ASK_TIMEOUT = BUILD_TIMEOUT + 120.0  # the first answer waits for the env's build on its node
_connect_lock = threading.Lock()
_users: collections.Counter[str] = collections.Counter()  # Replicas of this process per actor


def actor_names(spec: EnvSpec, pins: dict[str, str] | None) -> list[str]:
    """The names of ``spec``'s replica actors: keyed by what the env is built from."""
    assert spec.ray is not None
    key = hashlib.sha256(
        json.dumps([spec.name, list(spec.requirements), spec.python, pins], sort_keys=True).encode()
    ).hexdigest()[:12]
    return [f"{spec.name}-{key}-{i}" for i in range(spec.ray.replicas)]


def connect_ray(placement: RayPlacement) -> None:
    """Use this process's Ray connection, or connect to ``placement.address``."""
    import ray

    with _connect_lock:
        if not ray.is_initialized():
            ray.init(address=placement.address, ignore_reinit_error=True)


class Replicas:
    """The replica actors of one env, and the one this host's sessions stick to.

    Args:
        spec: the env (``spec.ray`` set).
        pins: versions from the host's lock file, or None.
        ask_timeout: how long an actor may take to answer (its first answer waits for the
            env's build on its node).
    """

    def __init__(
        self, spec: EnvSpec, pins: dict[str, str] | None, ask_timeout: float = ASK_TIMEOUT
    ) -> None:
        import zmq

        assert spec.ray is not None
        self.spec = spec
        self.placement = spec.ray
        self.pins = pins
        self.ask_timeout = ask_timeout
        self.names = actor_names(spec, pins)
        self.index: int | None = None  # the replica of this host's sessions, once chosen
        self._handles: list[Any] | None = None
        public, secret = zmq.curve_keypair()  # this host's own: the secret stays here
        self._public = public
        self._secret = secret

    def handles(self) -> list[Any]:
        """The actors, created where missing (Ray spreads them over the nodes)."""
        if self._handles is None:
            import ray

            from ..service.ray_actor import EnvReplica

            connect_ray(self.placement)
            options: dict[str, Any] = {
                "namespace": NAMESPACE,
                "get_if_exists": True,
                "max_restarts": -1,  # a worker that died, or a lost node: Ray brings it back
                # Our methods may run twice; a call made while the actor restarts then waits
                # for it rather than failing with ActorUnavailableError.
                "max_task_retries": -1,
                "max_concurrency": MAX_CONCURRENCY,
                "scheduling_strategy": "SPREAD",
            }
            if self.placement.detached:
                options["lifetime"] = "detached"
            if self.placement.num_cpus is not None:
                options["num_cpus"] = self.placement.num_cpus
            if self.placement.resources:
                options["resources"] = dict(self.placement.resources)
            actor = ray.remote(EnvReplica)
            self._handles = [
                actor.options(name=name, **options).remote(self.spec, self.pins, name)
                for name in self.names
            ]
            with _connect_lock:
                _users.update(self.names)
        return self._handles

    def choose(self) -> int:
        """The replica for this host: the one it had, else the one that handed out fewest
        sessions (ties at random), so that new hosts spread."""
        if self.index is not None:
            return self.index
        handles = self.handles()
        loads = self.ask([h.load.remote() for h in handles], "say how busy it is")
        fewest = min(loads)
        self.index = random.choice([i for i, n in enumerate(loads) if n == fewest])
        return self.index

    def endpoint(self) -> tuple[Any, str, dict[str, Any]]:
        """(actor, its name, its worker's endpoint) for this host's replica."""
        index = self.choose()
        handle = self.handles()[index]
        answer = self.ask([handle.endpoint.remote(self._public.decode("ascii"))], "answer")[0]
        return handle, self.names[index], answer

    def client_keys(self, server_public: str) -> ClientKeys:
        return ClientKeys(server_public.encode("ascii"), self._public, self._secret)

    def ask(self, refs: list[Any], what: str, timeout: float | None = None) -> list[Any]:
        """``ray.get(refs)`` with Ray's errors turned into ours.

        Raises:
            WorkerStartError: an actor could not start (its env did not build, say), or did
                not answer within the timeout.
        """
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        timeout = self.ask_timeout if timeout is None else timeout
        try:
            return list(ray.get(refs, timeout=timeout))
        except (GetTimeoutError, ray.exceptions.ActorUnavailableError) as exc:
            raise WorkerStartError(
                f"env {self.spec.name!r}: its Ray actors ({', '.join(self.names)}) did not "
                f"{what} within {timeout:g} s; does the cluster have the resources they ask "
                f"for ({self._asks()})? `ray status` shows pending actors",
                env=self.spec.name,
                exit_code=None,
                stderr_tail="",
            ) from exc
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, MVBridgeError):
                self.release()  # the failed actors go: the next use tries again, afresh
                raise cause from None
            raise self._failed(exc) from exc
        except RayActorError as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: BaseException) -> WorkerStartError:
        return WorkerStartError(
            f"env {self.spec.name!r}: its Ray actor could not start its worker: {exc}",
            env=self.spec.name,
            exit_code=None,
            stderr_tail=str(exc)[-2000:],
        )

    def _asks(self) -> str:
        asks = [] if self.placement.num_cpus is None else [f"num_cpus={self.placement.num_cpus}"]
        asks += [f"{k}={v:g}" for k, v in self.placement.resources]
        return ", ".join(asks) or "one CPU each, Ray's default"

    def release(self) -> None:
        """End the actors, unless they are detached (other hosts may use them) or another env
        of this process still does."""
        handles, self._handles = self._handles, None
        if handles is None:
            return
        with _connect_lock:
            _users.subtract(self.names)
            if any(_users[name] > 0 for name in self.names):
                return
        import ray

        if self.placement.detached or not ray.is_initialized():
            return  # detached: for other hosts; Ray down: it ended them with our connection
        for handle in handles:
            try:
                ray.get(handle.stop.remote(), timeout=10)
            except Exception:
                pass  # gone already, or stuck: ray.kill below ends it either way
            ray.kill(handle, no_restart=True)


class RayLink(ServiceLink):
    """A ``ServiceLink`` to a Ray-placed worker that notices when Ray replaced it.

    When the connection drops, the actor is asked who its worker is now: a new key pair means
    a new worker (the actor was restarted, perhaps on another node), so this session is over
    and the env's next session asks the actor for the new address.
    """

    def __init__(
        self,
        env_name: str,
        replicas: Replicas,
        connect_timeout: float,
        heartbeat_timeout: float,
    ) -> None:
        self.actor, self.actor_name, self.endpoint = replicas.endpoint()
        self.replicas = replicas
        super().__init__(
            env_name,
            self.endpoint["address"],
            replicas.client_keys(self.endpoint["server_public"]),
            connect_timeout,
            heartbeat_timeout,
        )

    def ready(self, session: HostSession) -> bool:
        if self._lost is None and not self._connected.is_set():
            replaced = self._replaced()
            if replaced is not None:
                session.died_error(replaced)
                return False
        return super().ready(session)

    def _replaced(self) -> str | None:
        """How the worker was replaced, or None while it is the same one (or no one knows)."""
        try:  # a restart that takes longer (a rebuild elsewhere) is waited for by the next
            # session's endpoint(), which allows for a build
            now = self.replicas.ask(
                [self.actor.identity.remote()], "answer", max(3 * self.connect_timeout, 30.0)
            )[0]
        except WorkerStartError as exc:
            return f"lost its Ray actor {self.actor_name} ({exc})"
        if now["server_public"] == self.endpoint["server_public"]:
            return None
        return (
            f"was replaced by Ray (actor {self.actor_name} restarted; its new worker is at "
            f"{now['address']} on node {now['node_id'][:12]})"
        )

    def describe(self) -> str:
        return (
            f"the worker of env {self.env_name!r} placed by Ray ({self.actor_name}, {self.address})"
        )

    def next_steps(self) -> str:
        return "the next call asks its Ray actor where the worker is now"


def record_service(env_name: str, location: Path, endpoint: dict[str, Any]) -> None:
    """Keep what the worker exposes beside a declared env (``services.ServiceRecord``), so that
    ``from mvbridge import X`` finds its modules without asking Ray again."""
    from .services import ServiceRecord, write_service_record

    record = ServiceRecord(
        address=endpoint["address"],
        env=env_name,
        python=str(endpoint.get("python", "")),
        modules=sorted(endpoint.get("modules", [])),
        versions=dict(endpoint.get("versions", {})),
    )
    write_service_record(location, record)
