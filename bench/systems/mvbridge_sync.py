"""``mvbridge sync`` of the two-pandas demo, and the same envs made with uv by hand.

The demo (``examples/two_pandas``) is copied to ``bench/.venv-cache/demo`` without its built
envs and lock. A cold sync starts from no envs and no lock, with uv's download cache warm (a
first, untimed sync and build by hand warm it); the baseline runs ``uv venv`` and
``uv pip install`` of each env's requirements, as a user would without mvbridge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import envs
from .base import NotAvailable

DEMO_SOURCE = envs.REPO_DIR / "examples" / "two_pandas"
DEMO_DIR = envs.CACHE_DIR / "demo" / "two_pandas"
BY_HAND_DIR = envs.CACHE_DIR / "demo" / "by-hand"
MVBRIDGE_CACHE = envs.CACHE_DIR / "demo" / "mvbridge-cache"
SYNC_TIMEOUT = 600.0


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).exists():
        raise NotAvailable("uv is not installed in the bench venv")
    return found


def _run(command: list[str], environ: dict[str, str] | None = None) -> float:
    """Seconds ``command`` took in the demo folder.

    Raises:
        RuntimeError: it failed (with the end of its output).
    """
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=DEMO_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise RuntimeError(f"{' '.join(command[:4])} ... exited with {done.returncode}: {tail}")
    return elapsed


class DemoSync:
    """Times ``mvbridge sync`` on a private copy of the demo."""

    def __init__(self) -> None:
        if not (DEMO_SOURCE / "mvbridge.toml").is_file():
            raise NotAvailable(f"the demo is missing ({DEMO_SOURCE})")
        shutil.rmtree(DEMO_DIR, ignore_errors=True)
        shutil.copytree(
            DEMO_SOURCE, DEMO_DIR, ignore=shutil.ignore_patterns(".mvbridge", "mvbridge.lock")
        )
        self.uv = _uv()
        # Bytecode writes allowed, for both: under PYTHONDONTWRITEBYTECODE (most container
        # images, and these machines) mvbridge compiles what the exposed modules import at
        # the end of the build, which uv by hand leaves to every later process start. That
        # variant is timed on its own (``cold_sync_dontwrite``).
        self.environ = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "MVBRIDGE_CONFIG": str(DEMO_DIR / "mvbridge.toml"),
            "MVBRIDGE_INSTALLER": "uv",
            "MVBRIDGE_STUBS_DIR": str(DEMO_DIR / ".stubs"),  # not into the bench's own venv
            # A cache of the bench's own (warmed by ``warm_up`` as uv's is), so that
            # ``cold_sync_first_stubs`` can empty its stub listings without touching the user's.
            "MVBRIDGE_CACHE_DIR": str(MVBRIDGE_CACHE),
        }
        self.warm = False

    def requirements(self) -> dict[str, list[str]]:
        """Each env's requirements, as the demo's mvbridge.toml lists them."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        config = tomllib.loads((DEMO_DIR / "mvbridge.toml").read_text())
        return {name: list(table["requirements"]) for name, table in config["envs"].items()}

    def sync(self) -> float:
        """Seconds for ``python -m mvbridge sync`` (a fresh interpreter, as users run it)."""
        return _run([sys.executable, "-m", "mvbridge", "sync"], self.environ)

    def cold_sync(self, *options: str, environ: dict[str, str] | None = None) -> float:
        """Seconds for a sync with no envs and no lock (``options`` added to its command)."""
        shutil.rmtree(DEMO_DIR / ".mvbridge", ignore_errors=True)
        (DEMO_DIR / "mvbridge.lock").unlink(missing_ok=True)
        command = [sys.executable, "-m", "mvbridge", "sync", *options]
        return _run(command, self.environ if environ is None else environ)

    def cold_sync_dontwrite(self) -> float:
        """``cold_sync`` under PYTHONDONTWRITEBYTECODE=1 (the build then warms bytecode)."""
        return self.cold_sync(environ={**self.environ, "PYTHONDONTWRITEBYTECODE": "1"})

    def cold_sync_no_stubs(self) -> float:
        """``cold_sync`` with ``--no-stubs``: no worker imports each env's modules after it."""
        return self.cold_sync("--no-stubs")

    def cold_sync_first_stubs(self) -> float:
        """``cold_sync`` with no stub listings cached: each env's worker imports its modules
        (a project's first sync; later rebuilds of the same contents read the cache)."""
        shutil.rmtree(MVBRIDGE_CACHE / "stubs", ignore_errors=True)
        return self.cold_sync()

    def by_hand(self) -> float:
        """Seconds for ``uv venv`` + ``uv pip install`` of every env's requirements."""
        shutil.rmtree(BY_HAND_DIR, ignore_errors=True)
        total = 0.0
        for name, requirements in self.requirements().items():
            venv = BY_HAND_DIR / name
            command = [self.uv, "venv", "--quiet", "--python", sys.executable, str(venv)]
            total += _run(command, self.environ)
            python = str(venv / "bin" / "python")
            command = [self.uv, "pip", "install", "--quiet", "--python", python, *requirements]
            total += _run(command, self.environ)
        return total

    def warm_up(self) -> None:
        """One untimed cold sync and build by hand: uv's cache then holds every wheel."""
        if not self.warm:
            self.cold_sync()
            self.by_hand()
            self.warm = True

    def cleanup(self) -> None:
        """Remove the built envs (the copy of the demo stays, small)."""
        shutil.rmtree(DEMO_DIR / ".mvbridge", ignore_errors=True)
        shutil.rmtree(BY_HAND_DIR, ignore_errors=True)
