"""Build, cache and describe environments: one virtualenv per env, rebuilt when its spec changes.

Internal. A build happens in a folder beside the final one and is renamed into place only when
complete, under a file lock that dies with its holder; so an interrupted or failed build is
never used, and two processes never build one env at once. Requirements are installed with uv
when it is available and pip otherwise; both keep their download caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import EnvSpec, is_local_requirement
from ..errors import EnvBuildError, WorkerStartError
from . import wheels
from .downloads import DownloadReporter
from .installers import BUILD_TIMEOUT, Installer, choose_installer, run_command
from .locks import file_lock, replace_dir
from .runtime import InterpreterFacts, cache_dir, interpreter_facts

FORMAT = 1  # bump when the layout of a built env changes
RECORD_NAME = "mvbridge-env.json"
Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    """Progress of long steps (builds), one line on stderr."""
    print(f"mvbridge: {message}", file=sys.stderr, flush=True)


_DISCOVER = r"""
import json, sys
from importlib import metadata
out = []
for dist in metadata.distributions():
    try:
        name = dist.metadata["Name"]
        tops = dist.read_text("top_level.txt")
        if tops:
            modules = tops.split()
        else:
            modules = []
            for f in dist.files or ():
                first = str(f).replace("\\", "/").split("/", 1)[0]
                if first.endswith(".py"):
                    first = first[:-3]
                elif "." in first or first in ("__pycache__", "..", "bin"):
                    continue
                modules.append(first)
        direct = dist.read_text("direct_url.json")
        out.append({
            "name": name, "version": dist.version,
            "modules": sorted({m for m in modules if m.isidentifier() and not m.startswith("_")}),
            "url": json.loads(direct).get("url") if direct else None,
        })
    except Exception:
        continue
print(json.dumps({"python": "%d.%d.%d" % sys.version_info[:3], "dists": out}))
"""


@dataclass(frozen=True)
class EnvRecord:
    """What a built env holds; saved as ``mvbridge-env.json`` inside it.

    Attributes:
        name: the env's name.
        spec_hash: hash of the spec it was built from; a different hash means rebuild.
        python: the env's full Python version.
        interpreter: the env's own ``python``.
        distributions: every installed distribution and its version.
        listed: the distributions the requirements named (local paths included).
        local: those of ``listed`` installed from a local path.
        modules: the import names the env exposes.
        installer: "uv" or "pip".
        build_seconds: how long the build took.
    """

    name: str
    spec_hash: str
    python: str
    interpreter: str
    distributions: dict[str, str]
    listed: list[str]
    local: list[str]
    modules: list[str]
    installer: str
    build_seconds: float


# -- interpreters ---------------------------------------------------------------------------------
def find_interpreter(python: str | None) -> str:
    """An interpreter for ``python``: None (the host's), a version like "3.9", or a path.

    Raises:
        EnvBuildError: nothing suitable is found, or what was found does not run.
    """
    if python is None:
        return getattr(sys, "_base_executable", None) or sys.executable
    if os.sep in python or python.startswith("."):
        path = Path(python).expanduser()
        if not path.exists():
            raise EnvBuildError(f"the interpreter {python} does not exist", env=None)
        return str(path)
    if not re.fullmatch(r"\d+\.\d+", python):
        raise EnvBuildError(
            f'python = {python!r} is neither a version like "3.9" nor an interpreter path',
            env=None,
        )
    for candidate in _candidates(python):
        try:
            facts = interpreter_facts(candidate)
        except WorkerStartError:
            continue  # e.g. a pyenv shim for a version that is not installed
        if facts.minor == python:
            return candidate
    raise EnvBuildError(
        f"no working Python {python} found (looked on PATH for python{python} and under "
        f'$PYENV_ROOT/versions); install it, or give python = "/path/to/python{python}"',
        env=None,
    )


def _candidates(minor: str) -> Iterable[str]:
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        yield sys.executable
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(root) / "versions"
    if versions.is_dir():
        found = [
            entry
            for entry in versions.iterdir()
            if re.fullmatch(re.escape(minor) + r"\.\d+", entry.name)
        ]
        for entry in sorted(found, key=lambda e: int(e.name.rsplit(".", 1)[1]), reverse=True):
            yield str(entry / "bin" / f"python{minor}")
    on_path = shutil.which(f"python{minor}")
    if on_path:
        yield on_path


# -- specs and records ----------------------------------------------------------------------------
def spec_hash(spec: EnvSpec, facts: InterpreterFacts) -> str:
    """A digest of everything that shapes the env: requirements (local folders by content),
    the interpreter (its real path: ``python`` and ``python3.11`` are one), exposed modules.

    Lock pins are not part of it: an env built from the lock satisfies the same spec."""
    digest = hashlib.sha256()
    real = os.path.realpath(facts.path)
    digest.update(json.dumps([FORMAT, real, list(facts.version)]).encode())
    for requirement in spec.requirements:
        digest.update(requirement.encode())
        if is_local_requirement(requirement):
            digest.update(tree_digest(Path(requirement)).encode())
    digest.update(json.dumps(spec.modules).encode())
    return digest.hexdigest()[:20]


def requirements_hash(spec: EnvSpec, root: Path) -> str:
    """A digest of the declared requirements alone (what ``mvbridge.lock`` was made from);
    local paths count relative to ``root``, so a lock stays valid where the project moves."""
    requirements = [
        os.path.relpath(r, root) if is_local_requirement(r) else r for r in spec.requirements
    ]
    return hashlib.sha256(json.dumps([requirements, spec.python]).encode()).hexdigest()[:20]


def _satisfies(record: EnvRecord, pins: dict[str, str] | None) -> bool:
    """True when ``record`` holds every pinned version (no pins: anything goes)."""
    if not pins:
        return True
    have = {canonical(n): v for n, v in record.distributions.items()}
    return all(have.get(canonical(n)) == v for n, v in pins.items())


def tree_digest(path: Path) -> str:
    """A digest of a local requirement's files (a folder's build and VCS leftovers skipped)."""
    digest = hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
        return digest.hexdigest()
    for file in sorted(path.rglob("*")):
        parts = set(file.relative_to(path).parts)
        if parts & {".git", "__pycache__", "build", "dist", ".mvbridge"} or any(
            p.endswith(".egg-info") for p in parts
        ):
            continue
        if file.is_file():
            digest.update(str(file.relative_to(path)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def read_record(location: Path) -> EnvRecord | None:
    """The record of a complete env at ``location``, or None."""
    try:
        data = json.loads((location / RECORD_NAME).read_text())
        return EnvRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def env_python(location: Path) -> Path:
    return location / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


# -- building -------------------------------------------------------------------------------------
def ensure_env(
    spec: EnvSpec,
    location: Path,
    progress: Progress | None = None,
    pins: dict[str, str] | None = None,
    installer: str | None = None,
) -> EnvRecord:
    """The env at ``location`` built from ``spec`` (and lock ``pins``), building it if needed.

    Raises:
        EnvBuildError: the interpreter, the installer or the requirements failed; the message
            carries the installer's own explanation.
    """
    say = progress or (lambda message: None)
    try:
        checked = spec.python == "auto"  # auto chose a Python that has every wheel
        if checked:
            facts = _auto_facts(spec, location, pins, say)
        else:
            facts = interpreter_facts(find_interpreter(spec.python))
    except WorkerStartError as exc:
        raise EnvBuildError(f"env {spec.name!r}: {exc}", env=spec.name) from exc
    except EnvBuildError as exc:
        if getattr(exc, "env", None) is not None:
            raise
        raise EnvBuildError(f"env {spec.name!r}: {exc}", env=spec.name) from exc
    wanted = spec_hash(spec, facts)
    record = read_record(location)
    if record is not None and record.spec_hash == wanted and _satisfies(record, pins):
        return record
    lock = location.with_name(location.name + ".lock")
    with file_lock(lock, BUILD_TIMEOUT, f"building env {spec.name!r}"):
        record = read_record(location)  # another process may have built it meanwhile
        if record is not None and record.spec_hash == wanted and _satisfies(record, pins):
            return record
        requirements = _pinned(spec, pins)
        missing = None if checked else wheels.missing_wheels(facts.path, requirements)
        if missing and not spec.allow_build:
            raise wheels.no_wheel_error(spec.name, facts.minor, missing, requirements)
        if missing:
            say(
                f"env {spec.name!r}: {', '.join(missing)} has no wheel for CPython "
                f"{facts.minor}; building it from source, this can take many minutes"
            )
        installer_ = choose_installer(installer)
        return _build(spec, location, facts, wanted, say, pins, installer_, bool(missing))


def _auto_facts(
    spec: EnvSpec, location: Path, pins: dict[str, str] | None, say: Progress
) -> InterpreterFacts:
    """The interpreter of ``python = "auto"``: the one the built env has, while it still fits
    the spec (no resolver question on every start), else the newest Python with wheels."""
    record = read_record(location)
    if record is not None and _satisfies(record, pins):
        try:
            facts = interpreter_facts(find_interpreter(".".join(record.python.split(".")[:2])))
        except (EnvBuildError, WorkerStartError):
            facts = None
        if facts is not None and spec_hash(spec, facts) == record.spec_hash:
            return facts
    requirements = _pinned(spec, pins)
    return interpreter_facts(
        wheels.auto_interpreter(spec.name, requirements, spec.allow_build, say)
    )


def _build(
    spec: EnvSpec,
    location: Path,
    facts: InterpreterFacts,
    wanted: str,
    say: Progress,
    pins: dict[str, str] | None,
    installer: Installer,
    compiles: bool = False,
) -> EnvRecord:
    location.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{location.name}.build-", dir=location.parent))
    started = time.monotonic()
    try:
        say(f"env {spec.name!r}: creating a Python {facts.minor} virtualenv with {installer.name}")
        shutil.rmtree(staging)  # the creators want to make the folder themselves
        run_command(spec.name, installer.create(facts.path, staging))
        requirements = _pinned(spec, pins)
        say(f"env {spec.name!r}: installing {', '.join(spec.requirements)}")
        ticking = _ticker(spec.name, say) if compiles else None
        run_command(
            spec.name,
            installer.install(env_python(staging), requirements),
            ticking,
            DownloadReporter(spec.name, say),
        )
        found = _discover(spec.name, env_python(staging))
        listed, local = _listed(spec, found["dists"])
        modules = (
            list(spec.modules)
            if spec.modules is not None
            else sorted({m for d in found["dists"] if d["name"] in listed for m in d["modules"]})
        )
        _warm_bytecode(env_python(staging), modules)
        record = EnvRecord(
            name=spec.name,
            spec_hash=wanted,
            python=found["python"],
            interpreter=str(env_python(location)),
            distributions={d["name"]: d["version"] for d in found["dists"]},
            listed=sorted(listed),
            local=sorted(local),
            modules=modules,
            installer=installer.name,
            build_seconds=round(time.monotonic() - started, 2),
        )
        (staging / RECORD_NAME).write_text(json.dumps(asdict(record), indent=2))
        replace_dir(staging, location)
        exposed = ", ".join(modules) or "none"
        say(f"env {spec.name!r}: ready in {record.build_seconds:.1f} s (modules: {exposed})")
        return record
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ticker(env_name: str, say: Progress) -> Callable[[float], None]:
    def tick(elapsed: float) -> None:
        say(f"env {env_name!r}: still building, {elapsed / 60:.0f} min {elapsed % 60:02.0f} s")

    return tick


def _pinned(spec: EnvSpec, pins: dict[str, str] | None) -> list[str]:
    """The requirements to install: the spec's, plus ``name==version`` for every locked
    distribution (``pins`` holds no local distributions: their paths stay in the
    requirements)."""
    pinned = (f"{name}=={version}" for name, version in sorted((pins or {}).items()))
    return [*spec.requirements, *pinned]


WARM_TIMEOUT = 300.0
_WARM = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException:
        pass
"""


def _warm_bytecode(python: Path, modules: list[str]) -> None:
    """Import the exposed modules once with bytecode writes allowed, where workers will not
    write it themselves.

    Workers inherit PYTHONDONTWRITEBYTECODE (set in most container images), and uv installs no
    bytecode: each worker start would compile pandas from source (over a second). This writes
    bytecode for what importing the modules loads, not for every file of every package (uv's
    --compile-bytecode takes several times as long). A module that fails to import is left to
    fail, with its real error, when it is used.
    """
    if not modules or not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    try:
        subprocess.run(
            [str(python), "-c", _WARM, *modules],
            env=environ,
            capture_output=True,
            timeout=WARM_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        pass  # a slower first start, not a broken env


def _discover(env_name: str, python: Path) -> dict:
    return json.loads(
        run_command(env_name, [str(python), "-c", _DISCOVER]).strip().splitlines()[-1]
    )


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _listed(spec: EnvSpec, dists: list[dict]) -> tuple[set[str], set[str]]:
    """Installed distributions that the spec's requirements name, and those of them local."""
    by_canonical = {canonical(d["name"]): d["name"] for d in dists}
    by_url = {d["url"]: d["name"] for d in dists if d.get("url")}
    listed = set()
    local = set()
    for requirement in spec.requirements:
        if is_local_requirement(requirement):
            url = Path(requirement).resolve().as_uri()
            if url in by_url:
                listed.add(by_url[url])
                local.add(by_url[url])
            continue
        match = _REQUIREMENT_NAME.match(requirement)
        if match and canonical(match.group(1)) in by_canonical:
            listed.add(by_canonical[canonical(match.group(1))])
    return listed, local


def adhoc_location(spec: EnvSpec) -> Path:
    """Where an ad hoc env (``mvbridge.Env(name, requirements=...)``) lives: the user cache."""
    key = hashlib.sha256(json.dumps([spec.name, list(spec.requirements), spec.python]).encode())
    return cache_dir() / "envs" / f"{spec.name}-{key.hexdigest()[:12]}"


def remove_env(location: Path) -> bool:
    """Delete an env folder; True if there was one."""
    if not location.exists():
        return False
    shutil.rmtree(location)
    return True
