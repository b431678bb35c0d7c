"""Interpreter facts and the private worker runtime kept per interpreter version.

Internal. A runtime directory holds mvbridge's worker modules (``code/``), msgpack, pyzmq and
cloudpickle for one Python version and platform (``site/``), and ``boot.py``. Nothing is
installed into the env itself; the worker puts the runtime on its path at start and hides it
from user code afterwards. Runtimes are built aside and renamed into place under a file lock.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from ..core import hidden
from ..errors import WorkerStartError

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# What a worker runs, relative to the package: the shared half (core/) and the worker half
# (workers/), plus the two top-level modules they import. The one list: pyproject's
# per-file-target-version (py38) and the runtime copy follow it; tests check both.
WORKER_HALF = ("__init__.py", "errors.py", "core/*.py", "workers/*.py")


def worker_modules() -> list[str]:
    """The worker half's files, relative to the package folder, in a stable order."""
    found: set[str] = set()
    for pattern in WORKER_HALF:
        found.update(p.relative_to(PACKAGE_DIR).as_posix() for p in PACKAGE_DIR.glob(pattern))
    return sorted(found)


FACTS_TIMEOUT = 30.0
INSTALL_TIMEOUT = 300.0
_FACTS_SCRIPT = r"""
import json, os, platform, sys, sysconfig
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION")
except (AttributeError, ValueError, OSError):
    libc = None
print(json.dumps({
    "version": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "platform": sysconfig.get_platform(),
    "machine": platform.machine(),
    "libc": libc,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
}))
"""


@dataclass(frozen=True)
class InterpreterFacts:
    """What mvbridge needs to know about an interpreter before starting a worker with it."""

    path: str
    version: tuple[int, int, int]
    implementation: str
    platform: str
    machine: str
    libc: str | None
    prefix: str

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@cache
def interpreter_facts(python: str) -> InterpreterFacts:
    """Run ``python`` once to learn its version and platform (remembered on disk).

    Raises:
        WorkerStartError: the interpreter does not exist, does not run, or is too old.
    """
    key = _facts_key(python)
    known = _read_facts_cache().get(key) if key else None
    if known is not None:
        return InterpreterFacts(**{**known, "version": tuple(known["version"])})
    facts = _probe(python)
    if key:
        _write_facts_cache(key, facts)
    return facts


def _facts_key(python: str) -> str | None:
    """Identifies an interpreter as it is now: its path, its real file, that file's stat."""
    try:
        real = os.path.realpath(python)
        stat = os.stat(real)
    except OSError:
        return None
    return f"{os.path.abspath(python)}|{real}|{stat.st_mtime_ns}|{stat.st_size}"


def _facts_cache_path() -> Path:
    return cache_dir() / "interpreters.json"


def _read_facts_cache() -> dict[str, dict]:
    try:
        return json.loads(_facts_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_facts_cache(key: str, facts: InterpreterFacts) -> None:
    entries = _read_facts_cache()
    entries[key] = asdict(facts)
    _write_json(_facts_cache_path(), entries)


def _write_json(path: Path, data: object) -> None:
    """Replace ``path`` with ``data`` as JSON: readers never see half a file, and a lost update
    (two writers at once) only costs the work the entry saved; a write that fails is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass


def _probe(python: str) -> InterpreterFacts:
    try:
        done = subprocess.run(
            [python, "-c", _FACTS_SCRIPT],
            capture_output=True,
            text=True,
            timeout=FACTS_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WorkerStartError(
            f"cannot run the interpreter {python}: {exc}", exit_code=None, stderr_tail=""
        ) from exc
    if done.returncode != 0:
        raise WorkerStartError(
            f"the interpreter {python} does not run (exit code {done.returncode}): "
            f"{done.stderr.strip()[-500:]}",
            exit_code=done.returncode,
            stderr_tail=done.stderr[-2000:],
        )
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    facts = InterpreterFacts(
        path=python,
        version=tuple(raw["version"]),  # type: ignore[arg-type]
        implementation=raw["implementation"],
        platform=raw["platform"],
        machine=raw["machine"],
        libc=raw["libc"],
        prefix=raw["prefix"],
    )
    if facts.version < (3, 8):
        raise WorkerStartError(
            f"the interpreter {python} is Python {facts.minor}; mvbridge workers need 3.8 or newer",
            exit_code=None,
            stderr_tail="",
        )
    return facts


def cache_dir() -> Path:
    """mvbridge's user cache: ``MVBRIDGE_CACHE_DIR``, else the platform's (``platformdirs``:
    ``~/.cache/mvbridge`` or ``$XDG_CACHE_HOME/mvbridge`` on Linux)."""
    configured = os.environ.get("MVBRIDGE_CACHE_DIR")
    if configured:
        return Path(configured)
    if sys.platform == "linux":
        # platformdirs' own rule for Linux, without importing it before the worker starts
        # (2.5 ms of a script's start-up); tests check that both agree.
        base = os.environ.get("XDG_CACHE_HOME", "")
        return Path(base if base.strip() else os.path.expanduser("~/.cache"), "mvbridge")
    import platformdirs

    return Path(platformdirs.user_cache_dir("mvbridge", appauthor=False))


def runtime_requirements() -> list[str]:
    """What a runtime installs: cloudpickle pinned to the host's (pickles name its helpers)."""
    return ["msgpack>=1.0", "pyzmq>=22", f"cloudpickle=={hidden.cloudpickle_version()}"]


RUNTIME_FORMAT = 2  # bump when a runtime's layout changes (2: compiled bytecode)


@cache
def _code_digest() -> str:
    """A digest of the worker half's code and the runtime's requirements.

    Remembered on disk under the files' sizes and modification times: hashing them takes a
    script's start-up 2 ms, and importing ``hashlib`` (OpenSSL) 4-8 ms more, before the worker
    can start.
    """
    names = worker_modules()
    requirements = runtime_requirements()
    stamp = [RUNTIME_FORMAT, requirements]
    for name in names:
        stat = os.stat(PACKAGE_DIR / name)
        stamp.append([name, stat.st_mtime_ns, stat.st_size])
    key = json.dumps([str(PACKAGE_DIR), stamp])
    path = cache_dir() / "runtime" / "digests.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    digest = known.get(key)
    if isinstance(digest, str):
        return digest
    import hashlib

    sha = hashlib.sha256(b"format %d" % RUNTIME_FORMAT)
    for name in names:
        sha.update(name.encode())
        sha.update((PACKAGE_DIR / name).read_bytes())
    for requirement in requirements:
        sha.update(requirement.encode())
    digest = sha.hexdigest()[:16]
    entries = known if len(known) < 8 else {}
    entries[key] = digest
    _write_json(path, entries)
    return digest


def runtime_key(facts: InterpreterFacts) -> str:
    return f"{facts.implementation}{facts.minor}-{facts.platform}-{_code_digest()}"


def ensure_runtime(facts: InterpreterFacts) -> Path:
    """The runtime directory for this interpreter's version and platform, built if missing.

    Raises:
        WorkerStartError: the runtime's packages could not be installed.
    """
    root = cache_dir() / "runtime"
    final = root / runtime_key(facts)
    if (final / "boot.py").exists():
        return final
    from .locks import file_lock, replace_dir

    with file_lock(root / (final.name + ".lock"), INSTALL_TIMEOUT, "preparing a worker runtime"):
        if (final / "boot.py").exists():
            return final
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=final.name + ".tmp-", dir=root))
        try:
            _build(facts, staging)
            replace_dir(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


def _build(facts: InterpreterFacts, staging: Path) -> None:
    code = staging / "code" / "mvbridge"
    for name in worker_modules():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE_DIR / name, code / name)
    logger.info("preparing the mvbridge runtime for Python %s at %s", facts.minor, staging)
    command = _install_command(facts, staging / "site")
    try:
        done = _run(command)
    except subprocess.TimeoutExpired as exc:
        raise WorkerStartError(
            f"installing the worker runtime for Python {facts.minor} took over "
            f"{INSTALL_TIMEOUT:.0f} s: {' '.join(command)}",
            exit_code=None,
            stderr_tail="",
        ) from exc
    if done.returncode != 0:
        raise WorkerStartError(
            f"could not install the worker runtime (msgpack, pyzmq, cloudpickle) for Python "
            f"{facts.minor} on {facts.platform}; {Path(command[0]).name} said:\n"
            f"{done.stderr.strip()[-2000:]}\ncommand: {' '.join(command)}",
            exit_code=done.returncode,
            stderr_tail=done.stderr[-2000:],
        )
    _compile(facts, staging)
    shutil.copyfile(PACKAGE_DIR / "workers" / "boot.py", staging / "boot.py")


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """One step of building a runtime, its output captured."""
    return subprocess.run(
        command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, stdin=subprocess.DEVNULL
    )


def _compile(facts: InterpreterFacts, staging: Path) -> None:
    # Bytecode now, by the worker's own interpreter: uv installs none, and where
    # PYTHONDONTWRITEBYTECODE is set (most container images) a worker would otherwise compile
    # mvbridge, msgpack and pyzmq from source at every start (about half of it).
    command = [facts.path, "-m", "compileall", "-q", str(staging / "code"), str(staging / "site")]
    try:
        done = _run(command)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("could not compile the worker runtime's bytecode: %s", exc)
        return
    if done.returncode != 0:  # a slower start, not a broken one
        logger.warning("compiling the worker runtime's bytecode failed: %s", done.stdout[-500:])


def _install_command(facts: InterpreterFacts, site: Path) -> list[str]:
    """uv, resolving for the env's interpreter itself; else the host's pip, for its version
    and platform tags. (A venv made by uv has no pip: uv comes first.)"""
    from .installers import find_uv

    uv = find_uv()
    if uv is not None:
        return [
            uv,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(site),
            "--python",
            facts.path,
            "--only-binary",
            ":all:",
            *runtime_requirements(),
        ]
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--target",
        str(site),
        "--only-binary=:all:",
        "--python-version",
        facts.minor,
        "--implementation",
        "cp" if facts.implementation == "cpython" else "pp",
    ]
    for tag in platform_tags(facts):
        command += ["--platform", tag]
    return command + runtime_requirements()


def platform_tags(facts: InterpreterFacts) -> list[str]:
    """Wheel platform tags this interpreter accepts, best first (enough for our three deps)."""
    plat = facts.platform
    arch = facts.machine
    if plat.startswith("linux"):
        tags = []
        if facts.libc and facts.libc.startswith("glibc"):
            major, _, minor = facts.libc.split()[1].partition(".")
            for m in range(int(minor), 4, -1):
                tags.append(f"manylinux_{major}_{m}_{arch}")
            tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        return [*tags, f"linux_{arch}"]
    if plat.startswith("macosx"):
        _, version, mac_arch = plat.split("-")
        top = max(int(version.split(".")[0]), 11)
        tags = [f"macosx_{v}_0_{mac_arch}" for v in range(top + 5, 10, -1)]
        tags += [f"macosx_10_{m}_{mac_arch}" for m in range(16, 8, -1)]
        return tags + [f"macosx_{v}_0_universal2" for v in range(top + 5, 10, -1)]
    return [plat.replace("-", "_").replace(".", "_")]
