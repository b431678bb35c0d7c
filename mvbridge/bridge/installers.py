"""The installers that build envs: uv (the default) and pip (the fallback), and what they run.

Internal. An installer says why it cannot run (``cannot_install``) before it is chosen. The pip
path uses a pip that supports the env's Python, downloaded once per Python version into the
user cache: the host's own pip may have dropped that Python ("This version of pip does not
support python 3.9"), and the env gets no pip of its own either way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import EnvBuildError
from .locks import file_lock, replace_dir
from .runtime import cache_dir, interpreter_facts

# sysconfig fills its variables on first use without a lock (before Python 3.13), so builds that
# run side by side (``mvbridge sync``) could read them half made: uv's ``find_uv_bin`` then
# failed with "can only concatenate str (not 'NoneType')". Filled here, under the import lock.
sysconfig.get_config_vars()

BUILD_TIMEOUT = float(os.environ.get("MVBRIDGE_BUILD_TIMEOUT", "900"))


# -- installers -----------------------------------------------------------------------------------
class Installer:
    """Creates a virtualenv and installs requirements into it."""

    name = ""

    def cannot_install(self) -> str | None:
        """Why this installer cannot run here, or None when it can."""
        raise NotImplementedError

    def create(self, python: str, path: Path) -> list[str]:
        raise NotImplementedError

    def install(self, env_python: Path, requirements: list[str]) -> list[str]:
        raise NotImplementedError


class UvInstaller(Installer):
    """uv: much faster resolution and installation; used when on PATH or installed as a package."""

    name = "uv"

    def __init__(self) -> None:
        self.binary = find_uv()

    def cannot_install(self) -> str | None:
        return None if self.binary else "uv is not on PATH and the 'uv' package is not installed"

    def create(self, python: str, path: Path) -> list[str]:
        return [str(self.binary), "venv", "--quiet", "--python", python, str(path)]

    def install(self, env_python: Path, requirements: list[str]) -> list[str]:
        return [str(self.binary), "pip", "install", "--python", str(env_python), *requirements]


class PipInstaller(Installer):
    """virtualenv, then a pip for the env's Python run from its wheel (``pip_wheel``)."""

    name = "pip"

    def cannot_install(self) -> str | None:
        try:
            import pip  # noqa: F401
        except ImportError:
            return f"pip is not installed in the host's interpreter ({sys.executable})"
        return None

    def create(self, python: str, path: Path) -> list[str]:
        return [sys.executable, "-m", "virtualenv", "--quiet", "--no-seed", "-p", python, str(path)]

    def install(self, env_python: Path, requirements: list[str]) -> list[str]:
        wheel = pip_wheel(str(env_python))
        return [
            str(env_python),
            f"{wheel}/pip",  # a wheel is importable: pip runs from it, and stays out of the env
            "install",
            "--disable-pip-version-check",
            "--no-input",
            *requirements,
        ]


def find_uv() -> str | None:
    """uv on PATH, else the binary of the installed 'uv' package (``find_uv_bin``), else None."""
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        return str(find_uv_bin())
    except FileNotFoundError:
        return None


def choose_installer(preferred: str | None = None) -> Installer:
    """uv when it can run, else pip; ``preferred`` (or ``MVBRIDGE_INSTALLER``) forces one.

    Raises:
        EnvBuildError: the forced installer cannot run, or neither can.
    """
    preferred = preferred or os.environ.get("MVBRIDGE_INSTALLER") or None
    installers: list[Installer] = [UvInstaller(), PipInstaller()]
    if preferred and preferred not in {i.name for i in installers}:
        raise EnvBuildError(
            f"unknown installer {preferred!r} (from MVBRIDGE_INSTALLER or --installer); "
            "use 'uv' or 'pip'",
            env=None,
        )
    reasons = []
    for installer in installers:
        if preferred and installer.name != preferred:
            continue
        why = installer.cannot_install()
        if why is None:
            return installer
        reasons.append(f"{installer.name}: {why}")
    raise EnvBuildError("no installer can run: " + "; ".join(reasons), env=None)


def pip_wheel(python: str) -> Path:
    """A pip wheel that supports ``python``'s version, downloaded once into the user cache.

    Raises:
        EnvBuildError: pip could not be downloaded for that Python.
    """
    facts = interpreter_facts(python)
    folder = cache_dir() / "pip" / f"{facts.implementation}{facts.minor}"
    found = sorted(folder.glob("pip-*.whl"))
    if found:
        return found[0]
    with file_lock(folder.with_name(folder.name + ".lock"), BUILD_TIMEOUT, "downloading pip"):
        found = sorted(folder.glob("pip-*.whl"))
        if found:
            return found[0]
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
        try:
            implementation = "cp" if facts.implementation == "cpython" else "pp"
            command = [
                sys.executable, "-m", "pip", "download", "--quiet",
                "--disable-pip-version-check", "--no-input", "--no-deps", "--only-binary=:all:",
                "--python-version", facts.minor, "--implementation", implementation,
                "--dest", str(staging), "pip",
            ]  # fmt: skip
            run_command(f"(pip for Python {facts.minor})", command)
            replace_dir(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return sorted(folder.glob("pip-*.whl"))[0]


TICK_SECONDS = 30.0  # how often a long build says it is still going


def run_command(
    env_name: str,
    command: list[str],
    ticking: Callable[[float], None] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> str:
    """Run one build step; its stdout, or ``EnvBuildError`` with the installer's own words.

    ``ticking`` is told the elapsed seconds every ``TICK_SECONDS`` while the step runs (a
    build from source), so a long compile is never silent; ``on_line`` gets each line of its
    output as it comes (download sizes, ``downloads.DownloadReporter``).
    """
    try:
        done = _run(command, ticking, on_line)
    except subprocess.TimeoutExpired as exc:
        raise step_error(
            f"env {env_name!r}: {command[0]} took over {BUILD_TIMEOUT:.0f} s and was stopped "
            f"(set MVBRIDGE_BUILD_TIMEOUT to allow longer): {' '.join(command)}",
            command,
            env_name,
        ) from exc
    except OSError as exc:
        raise step_error(
            f"env {env_name!r}: could not run {command[0]}: {exc}", command, env_name
        ) from exc
    if done.returncode != 0:
        output = failure_summary(done.stderr.strip() or done.stdout.strip())
        raise step_error(
            f"env {env_name!r}: the installer failed (exit code {done.returncode}):\n{output}\n"
            f"command: {' '.join(command)}",
            command,
            env_name,
            done.returncode,
            output,
        )
    return done.stdout


def step_error(
    message: str,
    command: list[str],
    env: str | None = None,
    returncode: int | None = None,
    output_tail: str = "",
) -> EnvBuildError:
    """The error of a build or resolve step that ran ``command`` (or could not)."""
    return EnvBuildError(
        message,
        env=env,
        command=" ".join(command),
        returncode=returncode,
        output_tail=output_tail,
    )


# Runs an installer step in a process group of its own and kills the whole group (the
# installer and the build backends it started) when the process that asked for the step dies:
# a `mvbridge sync` killed with SIGKILL left uv and a build backend running for as long as
# the build took. A process that is SIGKILLed runs no code, so the guard watches its parent.
_GUARD = """
import os, signal, subprocess, sys
parent = os.getppid()
child = subprocess.Popen(sys.argv[1:])
while True:
    try:
        code = child.wait(0.2)
        break
    except subprocess.TimeoutExpired:
        if os.getppid() != parent:
            os.killpg(0, signal.SIGKILL)
sys.exit(code if code >= 0 else 128 - code)
"""


def _guarded(command: list[str]) -> list[str]:
    if os.name != "posix":
        return command
    return [sys.executable, "-I", "-S", "-c", _GUARD, *command]


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, OSError):  # not POSIX, or it has ended
        process.kill()


def _run(
    command: list[str],
    ticking: Callable[[float], None] | None,
    on_line: Callable[[str], None] | None,
) -> Any:
    started = time.monotonic()
    with subprocess.Popen(
        _guarded(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",  # a compiler's output is not always valid UTF-8
        start_new_session=os.name == "posix",  # its group: the guard can end it all
    ) as process:
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=_read, args=(stream, kept, on_line), daemon=True)
            for stream, kept in ((process.stdout, out), (process.stderr, err))
        ]
        for reader in readers:
            reader.start()
        try:
            while True:
                elapsed = time.monotonic() - started
                if elapsed >= BUILD_TIMEOUT:
                    raise subprocess.TimeoutExpired(command, BUILD_TIMEOUT)
                try:
                    process.wait(timeout=min(TICK_SECONDS, BUILD_TIMEOUT - elapsed))
                    break
                except subprocess.TimeoutExpired:
                    if ticking is not None:
                        ticking(time.monotonic() - started)
        except BaseException:
            _kill_group(process)  # never wait out a long compile for a failed progress line
            raise
        for reader in readers:
            # A build backend's stray child could hold a pipe open after the installer exits.
            reader.join(timeout=10.0)
    return subprocess.CompletedProcess(command, process.returncode, "".join(out), "".join(err))


def _read(stream: Any, kept: list[str], on_line: Callable[[str], None] | None) -> None:
    for line in stream:
        kept.append(line)
        if on_line is not None:
            try:
                on_line(line.rstrip("\n"))
            except Exception:  # a progress display must not lose the installer's output
                pass


# Where uv ("Failed to build") and pip ("subprocess-exited-with-error") start a build's story.
_FAILED_BUILD = re.compile(
    r"^.*(Failed to build|error: subprocess-exited-with-error|Building wheel for .* did not run)",
    re.M,
)
_HEAD_LINES = 25


def failure_summary(output: str) -> str:
    """What to show of a failed install: where a build failed, its first lines (the real
    error, not the tail of a compiler log); otherwise the end of the output."""
    found = _FAILED_BUILD.search(output)
    if found is None:
        return output[-3000:]
    lines = output[found.start() :].splitlines()
    shown = "\n".join(lines[:_HEAD_LINES])
    if len(lines) > _HEAD_LINES:
        shown += f"\n[... {len(lines) - _HEAD_LINES} more lines of build output ...]"
    return shown
