"""The ``mvbridge`` command: sync, envs, remove, plan, spawn, ping, keygen, demo.

Exit codes: 0 success; 1 an mvbridge error (its message on stderr says what happened and what
to do; a failed install adds the installer's own output); 2 bad usage.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError, MVBridgeError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # told by the subcommand's own usage, not the top level's
        getattr(args, "command_parser", parser).error("unrecognized arguments: " + " ".join(extras))
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except MVBridgeError as exc:
        print(f"mvbridge: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mvbridge: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mvbridge",
        description="Use conflicting versions of a dependency from one application: each env "
        "runs in its own worker interpreter.",
        epilog="Envs are declared in mvbridge.toml (or [tool.mvbridge] in pyproject.toml), "
        "found from the current folder upwards or named by MVBRIDGE_CONFIG.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"mvbridge {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    sync = sub.add_parser(
        "sync",
        help="build or update envs, write mvbridge.lock and type stubs",
        description="Build every env (or those named) whose spec changed, record the resolved "
        "versions in mvbridge.lock, and write .pyi stubs for the exposed modules.",
    )
    sync.add_argument("envs", nargs="*", metavar="ENV", help="envs to sync (default: all)")
    sync.add_argument(
        "--locked",
        action="store_true",
        help="install exactly the versions in mvbridge.lock; fail if the spec changed since",
    )
    sync.add_argument(
        "--installer", choices=["uv", "pip"], help="force an installer (default: uv if found)"
    )
    sync.add_argument("--no-stubs", action="store_true", help="do not write type stubs")
    sync.set_defaults(run=_sync)

    envs = sub.add_parser(
        "envs",
        help="list envs: python, state, modules, key versions",
        description="List the declared envs: their Python, whether built (or the service's "
        "address), the modules they expose and the versions of their key distributions.",
    )
    envs.set_defaults(run=_envs)

    remove = sub.add_parser(
        "remove",
        help="delete the built folder of an env",
        description="Delete the built folder of an env (.mvbridge/envs/ENV); its config stays, "
        "and the next `mvbridge sync` or use builds it again.",
    )
    remove.add_argument("env", metavar="ENV", help="the env whose built folder goes")
    remove.set_defaults(run=_remove)

    _add_plan_command(sub)
    _add_service_commands(sub)

    demo = sub.add_parser(
        "demo", help="run the two-pandas demo (two envs, two pandas versions, one process)"
    )
    demo.add_argument(
        "--installer", choices=["uv", "pip"], help="force an installer (default: uv if found)"
    )
    demo.set_defaults(run=_demo)
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def _add_plan_command(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser(
        "plan",
        help="split conflicting requirements into the fewest envs that resolve",
        description="Find the fewest groups of the requirements (default: [project].dependencies "
        "of pyproject.toml) that each resolve, with a real resolver, and explain each conflict. "
        "Progress goes to stderr.",
    )
    plan.add_argument("requirements", nargs="*", metavar="REQ", help="requirements to plan")
    plan.add_argument(
        "-r", dest="files", action="append", type=Path, default=[], metavar="FILE",
        help="read requirements from a pip requirements file (repeatable)",
    )  # fmt: skip
    plan.add_argument(
        "--python", metavar="VERSION", help="resolve for this Python (default: the host's)"
    )
    plan.add_argument(
        "--host", nargs="+", action="extend", default=[], metavar="REQ",
        help="the host's own requirements: kept in one group that is not written as an env",
    )  # fmt: skip
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument(
        "--write", action="store_true", help="add the groups as envs to the config in force"
    )
    plan.add_argument(
        "--replace", action="store_true", help="with --write: replace envs of the same name"
    )
    plan.add_argument(
        "--resolver", choices=["uv", "pip"], help="force a resolver (default: uv if found)"
    )
    plan.add_argument("--refresh", action="store_true", help="ask the resolver, not the cache")
    plan.set_defaults(run=_plan)


def _plan(args: argparse.Namespace) -> int:
    from .plan.inputs import absolute, gather
    from .plan.planner import make_plan
    from .plan.report import as_json, as_table
    from .plan.resolvers import choose_resolver, find_target
    from .plan.write import config_file, write_plan

    here = Path.cwd()
    requirements, source = gather(args.requirements, args.files, here)
    target, warning = find_target(args.python)
    if warning:
        print(f"mvbridge: warning: {warning}", file=sys.stderr)
    resolver = choose_resolver(target, args.resolver)
    _progress(f"plan: {len(requirements)} requirement(s) from {source}")
    host = [absolute(r, here) for r in args.host]
    plan = make_plan(
        requirements, target, resolver, host=host, refresh=args.refresh, progress=_progress
    )
    print(as_json(plan) if args.json else as_table(plan))
    if plan.unresolvable:
        if args.write:
            _progress("plan: nothing written: drop or fix what resolves nowhere, then plan again")
        return EXIT_ERROR
    if args.write:
        written = write_plan(plan, config_file(here), replace=args.replace)
        for name in written.replaced:
            print(f"mvbridge: warning: env {name!r} replaced in {written.path}", file=sys.stderr)
        for name in written.others:
            print(
                f"mvbridge: warning: env {name!r} of {written.path} is not part of this plan; "
                "`mvbridge sync` builds it too",
                file=sys.stderr,
            )
        if written.kept:
            _progress(f"plan: already declared as planned: {', '.join(written.kept)}")
        added = ", ".join(written.added) or "none"
        _progress(f"plan: envs added to {written.path}: {added}; run `mvbridge sync` to build them")
    return EXIT_OK


def _add_service_commands(sub: argparse._SubParsersAction) -> None:
    from .service.spawn import DEFAULT_ADDRESS

    spawn = sub.add_parser(
        "spawn",
        help="serve an env's workers on one address, for many hosts",
        description="Build the env if needed and serve it in the foreground on one address "
        "(CurveZMQ on TCP). SIGTERM or SIGINT drains (calls in flight get --grace seconds) "
        "and exits 0; SIGHUP re-reads the allowed client keys.",
    )
    spawn.add_argument("--env", required=True, metavar="NAME", help="the env to serve")
    spawn.add_argument(
        "--address", default=DEFAULT_ADDRESS, metavar="ADDR", help=f"default: {DEFAULT_ADDRESS}"
    )
    spawn.add_argument(
        "--workers", type=int, default=1, metavar="N", help="worker processes (default: 1)"
    )
    spawn.add_argument("--config", type=Path, metavar="PATH", help="mvbridge.toml to read")
    spawn.add_argument(
        "--interpreter", metavar="PATH", help="serve this Python as it is instead of a built env"
    )
    spawn.add_argument(
        "--key", type=Path, metavar="FILE", help="the service's secret key (NAME.key_secret)"
    )
    spawn.add_argument(
        "--allow", type=Path, metavar="DIR", help="folder of allowed clients' public *.key files"
    )
    spawn.add_argument(
        "--insecure", action="store_true", help="no CurveZMQ (refused unless on loopback)"
    )
    spawn.add_argument(
        "--session-timeout",
        type=_positive,
        default=60.0,
        metavar="S",
        help="how long a session outlives its client's disconnection (default: 60)",
    )
    spawn.add_argument(
        "--heartbeat-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="silence after which a client connection counts as lost (default: 10)",
    )
    spawn.add_argument(
        "--max-message-size",
        type=_size,
        default=1 << 30,
        metavar="BYTES",
        help="largest message a client may send, e.g. 1G, 64M (default: 1G)",
    )
    spawn.add_argument(
        "--grace",
        type=_non_negative,
        default=10.0,
        metavar="S",
        help="how long a drain waits for calls in flight (default: 10)",
    )
    spawn.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the least severe events logged (default: info)",
    )
    spawn.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="one line per event as text, or as a JSON object (default: text)",
    )
    spawn.set_defaults(run=_spawn)

    ping = sub.add_parser(
        "ping",
        help="check a service: round trip, env, versions, sessions, objects",
        description="Exit 0 when the service at ADDR answers, 1 when it is down or refuses us; "
        "keys default to MVBRIDGE_SERVER_KEY and MVBRIDGE_CLIENT_KEY.",
    )
    ping.add_argument("address", metavar="ADDR", help="the service, tcp://HOST:PORT")
    ping.add_argument("--server-key", type=Path, metavar="FILE", help="the service's NAME.key")
    ping.add_argument("--client-key", type=Path, metavar="FILE", help="our NAME.key_secret")
    ping.add_argument("--timeout", type=_positive, default=5.0, metavar="S", help="default: 5")
    ping.add_argument("--json", action="store_true", help="print one JSON object")
    ping.set_defaults(run=_ping)

    keygen = sub.add_parser(
        "keygen",
        help="make a CurveZMQ key pair: NAME.key (public), NAME.key_secret (secret, 0600)",
    )
    keygen.add_argument("name", metavar="NAME", help="the pair's name: NAME.key, NAME.key_secret")
    keygen.add_argument(
        "--dir", type=Path, default=Path("."), metavar="DIR", help="where to write (default: .)"
    )
    keygen.add_argument("--force", action="store_true", help="replace an existing pair")
    keygen.set_defaults(run=_keygen)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds")
    return value


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    number, unit = (text[:-1], text[-1].lower()) if text[-1:].lower() in units else (text, "")
    try:
        value = int(float(number) * units.get(unit, 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 1G or 65536") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive size")
    return value


def _spawn(args: argparse.Namespace) -> int:
    from .service.spawn import SpawnOptions, serve

    return serve(
        SpawnOptions(
            env=args.env,
            address=args.address,
            workers=args.workers,
            config=args.config,
            interpreter=args.interpreter,
            key=args.key,
            allow=args.allow,
            insecure=args.insecure,
            session_timeout=args.session_timeout,
            heartbeat_timeout=args.heartbeat_timeout,
            max_message_size=args.max_message_size,
            grace=args.grace,
            log_level=args.log_level,
            log_format=args.log_format,
        )
    )


def _ping(args: argparse.Namespace) -> int:
    import json

    from .bridge.keys import client_keys
    from .service.ping import describe, ping

    server_key = args.server_key or os.environ.get("MVBRIDGE_SERVER_KEY") or None
    client_key = args.client_key or os.environ.get("MVBRIDGE_CLIENT_KEY") or None
    keys = client_keys(server_key, client_key)
    try:
        facts = ping(args.address, keys, args.timeout)
    except MVBridgeError as exc:
        if args.json:
            print(json.dumps({"address": args.address, "up": False, "error": str(exc)}))
        else:
            print(f"mvbridge: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        print(json.dumps({"up": True, **facts}))
    else:
        print(describe(facts))
    return EXIT_OK


def _keygen(args: argparse.Namespace) -> int:
    from .bridge.keys import generate

    public, secret = generate(args.name, args.dir, force=args.force)
    print(f"public key: {public}  (give it to the other side)")
    print(f"secret key: {secret}  (mode 0600; keep it here)")
    return EXIT_OK


def _progress(message: str) -> None:
    from .console import progress

    progress(message)


def _config():
    from .config import load_config

    config = load_config()
    if config is None:
        raise ConfigError(
            f"no mvbridge.toml (or pyproject.toml with [tool.mvbridge]) in {Path.cwd()} or "
            "above; create one with an [envs.NAME] table, or set MVBRIDGE_CONFIG"
        )
    if not config.envs:
        table = (
            "[tool.mvbridge.envs.NAME]" if config.path.name == "pyproject.toml" else "[envs.NAME]"
        )
        _progress(
            f"warning: {config.path} declares no envs; add a {table} table with "
            "requirements = [...], or let `mvbridge plan --write` add them"
        )
    return config


def _chosen(config, names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in config.envs]
    if unknown:
        raise ConfigError(
            f"{config.path}: no env named {', '.join(map(repr, unknown))}; "
            f"declared envs: {', '.join(config.envs) or 'none'}"
        )
    return list(names) or list(config.envs)


def _sync(args: argparse.Namespace) -> int:
    from .bridge.envs import read_record, requirements_hash
    from .bridge.importer import OWN_NAMES, configured_env, env_location
    from .bridge.lockfile import lock_entry, pins_of, read_lock, write_lock
    from .bridge.services import ask_service
    from .bridge.stubs import prune_stubs, stubs_present, write_stubs
    from .console import live_envs

    config = _config()
    names = _chosen(config, args.envs)
    lock = read_lock(config.lock_path) or {}
    entries = {n: e for n, e in lock.items() if n in config.envs}
    started = time.monotonic()
    todo = {}  # name -> pins (None: resolve afresh)
    for name in names:
        spec = config.envs[name]
        if spec.address:
            _check_keys(spec)
            if spec.modules is None:
                _progress(f"env {name!r}: asking the service at {spec.address} what it exposes")
                asked = ask_service(spec, env_location(config, name))
                _progress(f"env {name!r}: the service exposes {', '.join(asked.modules) or '-'}")
            else:
                _progress(f"env {name!r}: a service at {spec.address}; nothing to build")
            continue
        if spec.backend == "ray":
            _progress(f"env {name!r}: placed on Ray; each replica's node builds it at first use")
            continue
        pins = None
        if args.locked:
            entry = lock.get(name)
            if entry is None:
                raise ConfigError(
                    f"{config.lock_path}: no entry for env {name!r}; run `mvbridge sync` first"
                )
            if entry["requirements_hash"] != requirements_hash(spec, config.root):
                raise ConfigError(
                    f"env {name!r}: its requirements changed since {config.lock_path} was "
                    "written; run `mvbridge sync` to update the lock"
                )
            pins = pins_of(entry)
        todo[name] = pins

    def sync_one(name: str):
        """Build one env if needed; write its stubs when it changed or they are missing."""
        env = configured_env(name, config)
        assert env is not None
        env.pins = todo[name]
        env.location = env_location(config, name)
        before = read_record(env.location)
        env.build(progress=_progress, installer=args.installer)
        record = env.record
        assert record is not None
        if not args.no_stubs and (record != before or not stubs_present(record)):
            where = write_stubs(config, {name: record}, _progress)
            if where is not None:
                _progress(f"env {name!r}: type stubs written to {where}")
        return record

    # Envs build side by side: installers wait on the network and the disk as much as the CPU.
    from .bridge import installers  # noqa: F401 - before the threads: it readies sysconfig

    workers = max(1, min(len(todo), os.cpu_count() or 1))
    pool = concurrent.futures.ThreadPoolExecutor(workers)
    futures = {name: pool.submit(sync_one, name) for name in todo}
    try:
        with live_envs():
            records = {name: future.result() for name, future in futures.items()}
    except KeyboardInterrupt:
        # Every env ends built and locked, or as it was: builds under way finish (their
        # installers did not get the signal), the others do not start.
        _progress("interrupted: finishing the builds under way, then locking what was built")
        pool.shutdown(wait=True, cancel_futures=True)
        for name, future in futures.items():
            if not future.cancelled() and future.exception() is None:
                record = future.result()
                entries[name] = lock_entry(
                    record, requirements_hash(config.envs[name], config.root)
                )
        if not args.locked:
            write_lock(config.lock_path, entries)
        raise
    finally:
        pool.shutdown(wait=False)
    for name, record in records.items():
        entries[name] = lock_entry(record, requirements_hash(config.envs[name], config.root))
    problems = _module_problems(config, records, OWN_NAMES)
    for problem in problems:
        print(f"mvbridge: warning: {problem}", file=sys.stderr)
    if not args.locked:
        write_lock(config.lock_path, entries)
    if not args.no_stubs:
        prune_stubs(config, _progress)
    _progress(f"synced {len(records)} env(s) in {time.monotonic() - started:.2f} s")
    return EXIT_ERROR if any("clashes" in p for p in problems) else EXIT_OK


def _check_keys(spec) -> None:
    """The key files of a service env exist and are what they should be (before any use)."""
    from .bridge.keys import client_keys

    client_keys(
        spec.server_key or os.environ.get("MVBRIDGE_SERVER_KEY") or None,
        spec.client_key or os.environ.get("MVBRIDGE_CLIENT_KEY") or None,
    )


def _module_problems(config, records, own_names) -> list[str]:
    from .bridge.importer import recorded_modules

    exposed: dict[str, list[str]] = {}
    for name, spec in config.envs.items():
        record = records.get(name)
        if spec.modules is not None or record is None:
            modules = recorded_modules(config, name) or []
        else:
            modules = record.modules
        for module in modules:
            exposed.setdefault(module, []).append(name)
    problems = []
    for module, envs in sorted(exposed.items()):
        if module in own_names:
            problems.append(
                f"module {module!r} of env {envs[0]!r} clashes with mvbridge's own "
                f"'mvbridge.{module}'; use mvbridge.env({envs[0]!r}).import_module({module!r})"
            )
        if len(envs) > 1:
            problems.append(
                f"module {module!r} is exposed by envs {', '.join(envs)}: `from mvbridge import "
                f"{module}` will fail; set 'modules' in one of them, or import it explicitly"
            )
    return problems


def _envs(args: argparse.Namespace) -> int:
    from .bridge.envs import canonical, read_record, requirements_hash
    from .bridge.importer import env_location
    from .bridge.lockfile import read_lock
    from .bridge.services import read_service_record

    config = _config()
    lock = read_lock(config.lock_path) or {}
    rows = [("ENV", "PYTHON", "STATE", "MODULES", "VERSIONS")]
    for name, spec in config.envs.items():
        if spec.address or spec.backend == "ray":
            service = read_service_record(env_location(config, name))
            modules = (
                spec.modules if spec.modules is not None else (service.modules if service else [])
            )
            rows.append(
                (
                    name,
                    service.python if service else "-",
                    f"service {spec.address}" if spec.address else "on ray",
                    ", ".join(modules) or "-",
                    " ".join(
                        f"{d}=={v}"
                        for d, v in sorted((service.versions if service else {}).items())
                    ),
                )
            )
            continue
        record = read_record(env_location(config, name))
        if record is None:
            rows.append((name, spec.python or "host", "not built", "-", "-"))
            continue
        entry = lock.get(name)
        state = "built"
        if entry is not None and entry["requirements_hash"] != requirements_hash(spec, config.root):
            state = "outdated (run mvbridge sync)"
        key = [
            f"{d}=={record.distributions[d]}"
            for d in sorted(record.distributions, key=canonical)
            if d in record.listed or canonical(d) in {"numpy", "pandas", "pydantic"}
        ]
        rows.append((name, record.python, state, ", ".join(record.modules) or "-", " ".join(key)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    return EXIT_OK


def _remove(args: argparse.Namespace) -> int:
    from .bridge.envs import BUILD_TIMEOUT, remove_env
    from .bridge.importer import env_location
    from .bridge.locks import file_lock

    config = _config()
    _chosen(config, [args.env])
    location = env_location(config, args.env)
    with file_lock(location.with_name(location.name + ".lock"), BUILD_TIMEOUT, "building it"):
        removed = remove_env(location)
    if removed:
        _progress(f"env {args.env!r} removed; `mvbridge sync` builds it again")
    else:
        _progress(f"env {args.env!r} was not built; nothing to remove")
    return EXIT_OK


def demo_source() -> Path:
    """The two-pandas example: in the source tree, or shipped inside the package."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "examples" / "two_pandas", package / "_demo" / "two_pandas"):
        if (candidate / "mvbridge.toml").is_file():
            return candidate
    raise MVBridgeError("the demo files are missing from this installation of mvbridge")


def _demo(args: argparse.Namespace) -> int:
    from .bridge.runtime import cache_dir

    source = demo_source()
    target = cache_dir() / "demo" / "two_pandas"
    _copy_tree(source, target)
    _progress(f"running the demo in {target} (envs are built on first run)")
    environ = dict(os.environ, MVBRIDGE_CONFIG=str(target / "mvbridge.toml"))
    if args.installer:
        environ["MVBRIDGE_INSTALLER"] = args.installer
    # Build first, here: a failed build is then one concise error, not the app's traceback.
    built = subprocess.run(
        [sys.executable, "-m", "mvbridge", "sync", "--no-stubs"], cwd=target, env=environ
    )
    if built.returncode != 0:
        return EXIT_ERROR
    done = subprocess.run([sys.executable, str(target / "app.py")], cwd=target, env=environ)
    return EXIT_OK if done.returncode == 0 else EXIT_ERROR


def _copy_tree(source: Path, target: Path) -> None:
    """Copy the demo's files, keeping its built envs (.mvbridge) and lock between runs, and
    any file the user edited in the copy since mvbridge last wrote it."""
    target.mkdir(parents=True, exist_ok=True)
    shipped_file = target / ".mvbridge-demo-shipped.json"
    try:
        shipped = json.loads(shipped_file.read_text())
    except (OSError, ValueError):
        shipped = {}
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if {"__pycache__", ".mvbridge"} & set(relative.parts) or path.name == "mvbridge.lock":
            continue
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        content = path.read_bytes()
        key = relative.as_posix()
        if destination.exists():
            current = destination.read_bytes()
            if current == content:
                shipped[key] = _digest(content)
                continue
            if key in shipped and _digest(current) != shipped[key]:
                _progress(f"keeping your edited {destination}")
                continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(content)
        shipped[key] = _digest(content)
    shipped_file.write_text(json.dumps(shipped, indent=1, sort_keys=True))


def _digest(content: bytes) -> str:
    import hashlib

    return hashlib.sha256(content).hexdigest()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
