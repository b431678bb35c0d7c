"""The benchmark's own virtualenvs, built from the package registry and cached under ``bench/``.

``.venv-host`` runs the benchmark: the peers, numpy, mvbridge's dependencies, and this
checkout's mvbridge through a ``.pth`` file. ``.venv-worker`` is the env mvbridge's worker runs
in: numpy and the bench functions only. A venv is rebuilt when its requirements change; one
peer that fails to install is recorded and skipped, not fatal.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
HOST_VENV = BENCH_DIR / ".venv-host"
WORKER_VENV = BENCH_DIR / ".venv-worker"
HOST_PYTHON = HOST_VENV / "bin" / "python"
WORKER_PYTHON = WORKER_VENV / "bin" / "python"
CACHE_DIR = BENCH_DIR / ".venv-cache"  # mvbridge's worker runtimes for the bench (ignored too)
STAMP = "bench-stamp.json"
PIP_TIMEOUT = 600.0
VENV_TIMEOUT = 120.0

NUMPY = "numpy==2.4.6"
UV = "uv==0.13.9"  # mvbridge sync installs with uv when the host has it; so does the baseline
# Pinned so runs stay comparable; a peer that cannot install is skipped with the reason.
PEERS: dict[str, list[str]] = {
    "rpyc": ["rpyc==6.0.2"],
    "execnet": ["execnet==2.1.2"],
    "pyro5": ["Pyro5==5.17"],
    "zerorpc": ["zerorpc==0.6.3", "gevent==26.9.0"],
}
WORKER_FILES = ["benchfuncs.py", "benchfuncs_np.py"]


class SetupError(RuntimeError):
    """A benchmark venv could not be built."""


def mvbridge_requirements() -> list[str]:
    """mvbridge's runtime dependencies, read from this checkout's pyproject.toml."""
    text = (REPO_DIR / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the one list we need, without a TOML parser
        found = re.search(r"^dependencies = \[(.*?)\]", text, re.DOTALL | re.MULTILINE)
        return re.findall(r'"([^"]+)"', found.group(1)) if found else []
    return list(tomllib.loads(text)["project"]["dependencies"])


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"timed out after {timeout:.0f} s: {' '.join(command)}") from exc


def ignore_dir(directory: Path) -> None:
    """Make git (and so ruff) ignore ``directory``, as virtualenv does for its venvs."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ".gitignore").write_text("# made by bench/envs.py: a cache, never committed\n*\n")


def _create(venv: Path) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    done = _run([sys.executable, "-m", "venv", str(venv)], VENV_TIMEOUT)
    if done.returncode != 0:
        raise SetupError(f"could not create {venv}: {done.stderr.strip()[-1000:]}")
    ignore_dir(venv)
    return venv / "bin" / "python"


def _pip_install(python: Path, requirements: list[str]) -> str | None:
    """Install ``requirements``; None on success, else pip's error tail."""
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    try:
        done = _run([*command, *requirements], PIP_TIMEOUT)
    except SetupError as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.strip()[-1000:] or f"pip exited with {done.returncode}"
    return None


def _site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    done = _run([str(python), "-c", code], VENV_TIMEOUT)
    if done.returncode != 0:
        raise SetupError(f"{python} does not run: {done.stderr.strip()[-500:]}")
    return Path(done.stdout.strip())


def _stamp(venv: Path) -> dict[str, object] | None:
    try:
        return json.loads((venv / STAMP).read_text())
    except (OSError, ValueError):
        return None


def ensure_host_venv(log: Callable[[str], None]) -> dict[str, str | None]:
    """Build ``.venv-host`` if needed; returns {peer: None | why it did not install}."""
    wanted = {
        "python": sys.version,
        "base": [NUMPY, UV, *mvbridge_requirements()],
        "peers": PEERS,
    }
    stamp = _stamp(HOST_VENV)
    if stamp is not None and {k: stamp.get(k) for k in wanted} == wanted:
        return dict(stamp["failed"])  # type: ignore[call-overload]
    log(f"building {HOST_VENV.name} (peers from the package registry)")
    python = _create(HOST_VENV)
    error = _pip_install(python, list(wanted["base"]))  # type: ignore[arg-type]
    if error is not None:
        raise SetupError(f"could not install the base requirements: {error}")
    failed: dict[str, str | None] = {}
    for peer, requirements in PEERS.items():
        failed[peer] = _pip_install(python, requirements)
        if failed[peer] is not None:
            log(f"  {peer} did not install; it will be skipped: {failed[peer]}")
    (_site_packages(python) / "mvbridge-checkout.pth").write_text(str(REPO_DIR) + "\n")
    (HOST_VENV / STAMP).write_text(json.dumps({**wanted, "failed": failed}, indent=1))
    return failed


def compile_checkout() -> None:
    """Bytecode for the checkout's mvbridge, as ``pip install`` would write it.

    The host venv imports the checkout through a .pth file; where PYTHONDONTWRITEBYTECODE is
    set, it would otherwise compile mvbridge at every start, which no installed copy does.
    """
    done = subprocess.run(
        [str(HOST_PYTHON), "-m", "compileall", "-q", str(REPO_DIR / "mvbridge")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SetupError(f"could not compile mvbridge's bytecode: {done.stdout[-500:]}")


def ensure_worker_venv(log: Callable[[str], None]) -> None:
    """Build ``.venv-worker`` if needed and copy the bench functions into its site-packages."""
    wanted = {"python": sys.version, "requirements": [NUMPY]}
    stamp = _stamp(WORKER_VENV)
    if stamp != wanted:
        log(f"building {WORKER_VENV.name} (numpy only)")
        python = _create(WORKER_VENV)
        error = _pip_install(python, [NUMPY])
        if error is not None:
            raise SetupError(f"could not install numpy in the worker venv: {error}")
        (WORKER_VENV / STAMP).write_text(json.dumps(wanted, indent=1))
    site = _site_packages(WORKER_PYTHON)
    for name in WORKER_FILES:
        shutil.copyfile(BENCH_DIR / "workers" / name, site / name)


def in_host_venv() -> bool:
    """True when this interpreter is the benchmark's own venv."""
    return Path(sys.prefix).resolve() == HOST_VENV.resolve()
