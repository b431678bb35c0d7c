"""``mvbridge spawn``: build an env if needed and serve it on one address until a signal.

Internal; ``cli.py`` parses the command line into ``SpawnOptions``. SIGTERM and SIGINT drain
(no new sessions or calls; calls in flight get ``--grace`` seconds), then the service exits 0
and frees its port. SIGHUP re-reads the allowed client keys.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import zmq

from ..errors import ConfigError, MVBridgeError, WorkerStartError
from . import logs
from .pool import Pool
from .router import Router, RouterOptions, private_backend

logger = logging.getLogger(logs.LOGGER)

DEFAULT_ADDRESS = "tcp://127.0.0.1:7710"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class SpawnOptions:
    """What ``mvbridge spawn`` was asked to do (see ``docs/reference/cli.md``)."""

    env: str
    address: str = DEFAULT_ADDRESS
    workers: int = 1
    config: Path | None = None
    interpreter: str | None = None
    key: Path | None = None
    allow: Path | None = None
    insecure: bool = False
    session_timeout: float = 60.0
    heartbeat_timeout: float = 10.0
    max_message_size: int = 1 << 30
    grace: float = 10.0
    log_level: str = "info"
    log_format: str = "text"


def check_security(options: SpawnOptions) -> tuple[bytes, bytes] | None:
    """The server's keys, or None for an insecure service; refuse what is unsafe.

    Raises:
        ConfigError: TCP without keys and without --insecure, --insecure on a non-loopback
            address, or only one of --key/--allow.
    """
    from ..bridge.keys import server_keys

    scheme, host = _scheme_host(options.address)
    if (options.key is None) != (options.allow is None):
        raise ConfigError(
            "spawn: --key (the service's NAME.key_secret) and --allow (a folder of the "
            "clients' *.key files) go together"
        )
    if options.key is not None:
        if options.insecure:
            raise ConfigError("spawn: --insecure and --key contradict each other; choose one")
        assert options.allow is not None
        if not options.allow.is_dir():
            raise ConfigError(f"spawn: --allow {options.allow} is not a folder of *.key files")
        return server_keys(options.key)
    if not options.insecure:
        raise ConfigError(
            f"spawn: refusing to serve {options.address} without CurveZMQ: whoever reaches a "
            "worker can run code in it. Make keys with `mvbridge keygen server` and `mvbridge "
            "keygen client`, put client.key in a folder, then pass --key server.key_secret "
            "--allow FOLDER; or pass --insecure on a loopback address, for a try-out"
        )
    if scheme == "tcp" and not _is_loopback(host):
        raise ConfigError(
            f"spawn: --insecure is refused on {options.address}: it is not a loopback "
            "address, so others could reach the port and run code in the worker; use keys "
            "(--key/--allow) there"
        )
    return None


def _scheme_host(address: str) -> tuple[str, str]:
    parts = urlsplit(address)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise ConfigError(f"spawn: --address {address!r} must look like tcp://HOST:PORT")
    return parts.scheme, parts.hostname


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, '*' or a wildcard: not provably loopback


def _env_target(options: SpawnOptions) -> tuple[str, dict[str, Any]]:
    """The interpreter to serve and the facts ``mvbridge ping`` reports; builds if needed."""
    from ..bridge.envs import canonical, ensure_env
    from ..bridge.importer import env_location
    from ..config import load_config

    if options.interpreter is not None:
        return options.interpreter, {"env": options.env, "versions": {}, "modules": []}
    config = load_config(options.config)
    if config is None:
        raise ConfigError(
            f"spawn: no mvbridge.toml (or [tool.mvbridge]) here or above to find env "
            f"{options.env!r} in; pass --config PATH, or --interpreter PATH to serve a Python "
            "as it is"
        )
    spec = config.envs.get(options.env)
    if spec is None:
        raise ConfigError(
            f"spawn: {config.path} declares no env {options.env!r}; declared envs: "
            f"{', '.join(config.envs) or 'none'}"
        )
    if spec.address:
        raise ConfigError(
            f"spawn: env {options.env!r} in {config.path} is itself a service "
            f"({spec.address}); spawn serves envs declared with requirements"
        )
    record = ensure_env(spec, env_location(config, options.env), _build_progress)
    key = {canonical(d) for d in record.listed} | {"numpy", "pandas", "pydantic"}
    versions = {d: v for d, v in record.distributions.items() if canonical(d) in key}
    modules = list(spec.modules) if spec.modules is not None else list(record.modules)
    return record.interpreter, {"env": options.env, "versions": versions, "modules": modules}


def _build_progress(message: str) -> None:
    logger.info(message, extra={"event": "build"})


def serve(options: SpawnOptions) -> int:
    """Run the service in the foreground until a signal; return the exit code.

    Raises:
        MVBridgeError: the service cannot start (with ``--log-format json`` it is logged as a
            ``fatal`` record instead, and the exit code is 1).
    """
    logs.configure(options.log_level, options.log_format)
    try:
        return _serve(options)
    except MVBridgeError as exc:
        if options.log_format != "json":
            raise
        logger.error(str(exc), extra={"event": "fatal"})
        return 1


def _serve(options: SpawnOptions) -> int:
    from ..bridge.runtime import ensure_runtime, interpreter_facts

    keys = check_security(options)
    if options.workers < 1:
        raise ConfigError("spawn: --workers must be 1 or more")
    interpreter, facts = _env_target(options)
    runtime = ensure_runtime(interpreter_facts(interpreter))
    context = zmq.Context()
    context.setsockopt(zmq.LINGER, 0)
    backend, folder = private_backend()
    pool = Pool(options.env, interpreter, runtime, backend, options.workers, folder)
    pool.sink = logs.worker_output_sink(options.log_format)
    router = Router(
        context,
        RouterOptions(
            address=options.address,
            keys=keys,
            session_timeout=options.session_timeout,
            heartbeat_timeout=options.heartbeat_timeout,
            max_message_size=options.max_message_size,
            grace=options.grace,
            facts=facts,
        ),
        pool,
    )
    auth = None
    previous = _install_signals(router)
    try:
        if keys is not None:
            from .auth import ClientAuth

            assert options.allow is not None
            auth = ClientAuth(context, options.allow)
            auth.start()
            router.on_reload = lambda: _reload(auth)
        pool.start()
        if not router.wait_workers(START_TIMEOUT):
            if router.stop_requested.is_set():
                return 0
            tails = "\n".join(w.process.stderr_text(0.5) for w in pool.workers.values())
            raise WorkerStartError(
                f"spawn: the workers of env {options.env!r} did not come up within "
                f"{START_TIMEOUT:.0f} s; their stderr ends with:\n{tails.rstrip()}",
                env=options.env,
                exit_code=None,
                stderr_tail=tails,
            )
        try:
            router.bind()
        except zmq.ZMQError as exc:
            hint = " (is another service using that port?)" if exc.errno == errno.EADDRINUSE else ""
            raise MVBridgeError(
                f"spawn: cannot listen on {options.address}: {os.strerror(exc.errno)}{hint}"
            ) from exc
        python = next(iter(pool.workers.values())).facts.get("python")  # type: ignore[union-attr]
        logger.info(
            "serving env %r (Python %s) on %s with %d worker(s) (pids %s); %s",
            options.env,
            python,
            options.address,
            options.workers,
            ", ".join(map(str, pool.pids())),
            f"CurveZMQ on, {len(auth.certs.get('*', {}))} client key(s) allowed from "
            f"{options.allow}"
            if auth is not None
            else "INSECURE (no CurveZMQ): loopback only",
            extra={"event": "start"},
        )
        if auth is not None and not auth.certs.get("*"):
            logger.warning(
                "no client keys in %s: every client is refused until one is added (then SIGHUP)",
                options.allow,
                extra={"event": "no-keys"},
            )
        router.run()
        return 0
    finally:
        _stop(router, pool, auth, context, folder)
        _restore_signals(previous)
        logger.info("stopped", extra={"event": "stop"})


def _reload(auth: Any) -> None:
    count = auth.reload()
    logger.info(
        "re-read the allowed client keys: %d in %s",
        count,
        auth.allow_dir,
        extra={"event": "keys-reloaded"},
    )


def _stop(router: Router, pool: Pool, auth: Any, context: zmq.Context, folder: Path) -> None:
    from ..core import protocol as P

    router.end_all("the service stopped")
    for worker in list(pool.workers.values()):
        try:
            router.backend.send_multipart(
                [worker.ident, b"", P.pack([P.SHUTDOWN, 0, None])], zmq.NOBLOCK
            )
        except zmq.ZMQError:
            pass
    pool.stop(STOP_TIMEOUT)
    router.close()
    if auth is not None:
        auth.stop()
    context.destroy(linger=0)  # closes whatever a failure left open, so this never hangs
    shutil.rmtree(folder, ignore_errors=True)


def _install_signals(router: Router) -> dict[int, Any]:
    def stop(signum: int, frame: Any) -> None:
        if router.stop_requested.is_set():
            return
        logger.info("received %s: draining", signal.Signals(signum).name, extra={"event": "signal"})
        router.request_stop()

    def reload(signum: int, frame: Any) -> None:
        router.reload_requested.set()

    previous = {}
    for signum, handler in ((signal.SIGTERM, stop), (signal.SIGINT, stop), (signal.SIGHUP, reload)):
        previous[signum] = signal.signal(signum, handler)
    return previous


def _restore_signals(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


if sys.platform == "win32":  # pragma: no cover
    raise ImportError("mvbridge spawn needs a POSIX system (signals, ipc sockets)")
