"""One worker of a ``backend = "ray"`` env, run by a Ray actor on the node Ray placed it on.

Internal; runs in the cluster's Python (which has mvbridge and Ray), never in an env. The actor
builds the env on its node with mvbridge's own builder (``bridge/envs.py``: uv, cached in the
node's user cache under the key of an ad hoc env, with the node's installer settings such as
``UV_OFFLINE``, ``UV_FIND_LINKS``, ``PIP_NO_INDEX``), makes a CurveZMQ key pair for its worker,
and runs ``mvbridge spawn`` of that env on a free TCP port of the node (``watched.py``). Hosts
hand it their public key and get the address and the server's public key back: secret keys
never leave the machine that made them, and calls never go through Ray.

Lifetimes are tied both ways: the service watches a pipe whose write end only the actor holds
(so it drains and exits when the actor goes, SIGKILL included), and the actor's process exits
when the service dies (so Ray's ``max_restarts`` brings both back, on another node if this one
was lost). Constructing the actor does all the work, so a restart is a rebuild.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..config import EnvSpec
from ..errors import ConfigError, MVBridgeError, WorkerStartError

logger = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # the service's own start, after the env is built
RELOAD_TIMEOUT = 10.0  # the service re-reading its allowed keys after SIGHUP
PORT_ATTEMPTS = 3  # a free port can be taken between our probe and the service's bind
GRACE = 2.0  # calls in flight when the actor goes
# The service warns that it allows no client yet: true for an instant, until the first host
# hands over its key.
_QUIET = {"no-keys"}


class EnvReplica:
    """A Ray actor class (``ray.remote`` is applied by the host): one worker of one env.

    Args:
        spec: the env as the host declared it.
        pins: exact versions from the host's ``mvbridge.lock``, or None to resolve afresh.
        label: the replica's actor name, for messages.
    """

    def __init__(self, spec: EnvSpec, pins: dict[str, str] | None, label: str) -> None:
        self.label = label
        self.spec = spec
        # A build or start that fails is kept and raised by every method: a constructor that
        # raised would reach the host only as Ray's text, and the host ends this actor then.
        self.failure: MVBridgeError | None = None
        self.clients = 0
        self._lock = threading.Lock()
        self._events: collections.Counter[str] = collections.Counter()
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._changed = threading.Condition()
        self._stopping = False
        self._folder = Path(tempfile.mkdtemp(prefix="mvbridge-ray-"))  # 0700
        try:
            self._serve(pins)
        except MVBridgeError as exc:
            self.failure = exc
            shutil.rmtree(self._folder, ignore_errors=True)

    def _serve(self, pins: dict[str, str] | None) -> None:
        from ..bridge.envs import adhoc_location, ensure_env

        self.record = ensure_env(self.spec, adhoc_location(self.spec), _progress, pins)
        self.host = _node_ip()
        self._allow = self._folder / "allowed"
        self._allow.mkdir()
        self.server_public = _server_keys(self._folder)
        self._process, self._watch_fd, self.address = self._start()
        threading.Thread(target=self._exit_with_service, daemon=True).start()

    # -- methods hosts call through Ray -------------------------------------------------------
    def endpoint(self, client_public: str) -> dict[str, Any]:
        """Allow ``client_public`` (a z85 CurveZMQ public key) and say how to reach the worker.

        Returns:
            ``address``, ``server_public`` (z85), ``node_id``, ``service_pid``, ``actor_pid``,
            and the env's ``modules``, ``python`` and ``versions``.

        Raises:
            EnvBuildError: the env did not build on this node.
            ConfigError: ``client_public`` is not a CurveZMQ public key.
            WorkerStartError: the service did not start, or did not take the key within
                ``RELOAD_TIMEOUT``.
        """
        self._check()
        with self._lock:
            self._allow_key(client_public)
            self.clients += 1
        return {**self.identity(), "modules": list(self.record.modules), **self._facts()}

    def identity(self) -> dict[str, Any]:
        """The worker's address and public key: a new pair means a new worker."""
        import ray

        self._check()
        return {
            "address": self.address,
            "server_public": self.server_public,
            "node_id": ray.get_runtime_context().get_node_id(),
            "service_pid": self._process.pid,
            "actor_pid": os.getpid(),
        }

    def load(self) -> int:
        """How many sessions this replica has handed out (hosts spread over the least used)."""
        self._check()
        return self.clients

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        """Stop the service; the actor itself is ended by whoever called this (``ray.kill``)."""
        if self.failure is not None:
            return
        self._stopping = True
        os.close(self._watch_fd)  # the service drains and exits
        try:
            self._process.wait(GRACE + 5)
        except subprocess.TimeoutExpired:
            self._process.kill()
        shutil.rmtree(self._folder, ignore_errors=True)

    # -- the service ---------------------------------------------------------------------------
    def _start(self) -> tuple[subprocess.Popen[str], int, str]:
        from ..bridge.runtime import ensure_runtime, interpreter_facts

        ensure_runtime(interpreter_facts(self.record.interpreter))
        for _ in range(PORT_ATTEMPTS):
            host = f"[{self.host}]" if ":" in self.host else self.host
            address = f"tcp://{host}:{_free_port(self.host)}"
            read, write = os.pipe()
            command = [
                sys.executable,
                "-m",
                "mvbridge.service.watched",
                str(read),
                "--env",
                self.spec.name,
                "--interpreter",
                self.record.interpreter,
                "--address",
                address,
                "--key",
                str(self._folder / "server.key_secret"),
                "--allow",
                str(self._allow),
                "--grace",
                str(GRACE),
                "--log-format",
                "json",
            ]
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                pass_fds=(read,),
                # Its own process group: the service drains when the pipe closes, rather than
                # dying mid-call with whatever Ray does to the actor's group.
                start_new_session=True,
            )
            os.close(read)
            threading.Thread(target=self._read_log, args=(process,), daemon=True).start()
            if self._wait_event("start", START_TIMEOUT, process):
                logger.info("%s: env %r served at %s", self.label, self.spec.name, address)
                return process, write, address
            os.close(write)
            process.wait(5)
            if not any("another service using that port" in line for line in self._tail):
                break
        raise WorkerStartError(
            f"{self.label}: the service of env {self.spec.name!r} did not start on node "
            f"{self.host}; its log ends with:\n" + "\n".join(self._tail),
            env=self.spec.name,
            exit_code=process.returncode,
            stderr_tail="\n".join(self._tail),
        )

    def _read_log(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            line = line.rstrip("\n")
            try:
                entry = json.loads(line)
                event = str(entry.get("event", ""))
                text = str(entry.get("message", line))
            except ValueError:
                event, text = "", line
            with self._changed:
                self._tail.append(text)
                self._events[event] += 1
                self._changed.notify_all()
            if event not in _QUIET:
                print(f"mvbridge[{self.label}] {text}", file=sys.stderr, flush=True)
        with self._changed:
            self._changed.notify_all()

    def _wait_event(self, event: str, timeout: float, process: subprocess.Popen[str]) -> bool:
        """Wait until the service logs ``event`` once more than now; False if it exited."""
        give_up = time.monotonic() + timeout
        with self._changed:
            before = self._events[event]
            while self._events[event] == before:
                if process.poll() is not None or time.monotonic() > give_up:
                    return False
                self._changed.wait(0.2)
        return True

    def _allow_key(self, client_public: str) -> None:
        from zmq.utils import z85

        try:
            valid = len(z85.decode(client_public.encode("ascii"))) == 32
        except (ValueError, UnicodeError, AttributeError):
            valid = False
        if not valid:
            raise ConfigError(f"{self.label}: {client_public!r} is not a CurveZMQ public key")
        path = self._allow / f"{hashlib.sha256(client_public.encode()).hexdigest()[:16]}.key"
        if path.exists():
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f'metadata\ncurve\n    public-key = "{client_public}"\n')
        os.replace(tmp, path)
        self._process.send_signal(signal.SIGHUP)
        if not self._wait_event("keys-reloaded", RELOAD_TIMEOUT, self._process):
            raise WorkerStartError(
                f"{self.label}: the service of env {self.spec.name!r} did not take a new "
                f"client key within {RELOAD_TIMEOUT:g} s",
                env=self.spec.name,
                exit_code=self._process.poll(),
                stderr_tail="\n".join(self._tail),
            )

    def _facts(self) -> dict[str, Any]:
        from ..bridge.envs import canonical

        listed = {canonical(d) for d in self.record.listed}
        return {
            "python": self.record.python,
            "versions": {
                d: v for d, v in self.record.distributions.items() if canonical(d) in listed
            },
        }

    def _exit_with_service(self) -> None:
        code = self._process.wait()
        if self._stopping:
            return
        print(
            f"mvbridge[{self.label}]: the service of env {self.spec.name!r} exited with code "
            f"{code}; ending this actor so that Ray restarts both",
            file=sys.stderr,
            flush=True,
        )
        os._exit(1)  # a crash to Ray: an actor that exits on purpose is not restarted


def _progress(message: str) -> None:
    print(f"mvbridge: {message}", file=sys.stderr, flush=True)


def _node_ip() -> str:
    import ray

    return str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]  # Ray: untyped


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _server_keys(folder: Path) -> str:
    """Make the worker's key pair in ``folder``; return its public key (z85)."""
    import zmq.auth

    from ..bridge.keys import generate

    public, _ = generate("server", folder)
    return zmq.auth.load_certificate(public)[0].decode("ascii")
