"""Test helpers: the one polling loop, interpreters, venvs and fixture packages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WAIT_TIMEOUT = 10.0


def wait_until(predicate: Callable[[], object], timeout: float = WAIT_TIMEOUT) -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {predicate}")
        time.sleep(0.02)


def find_python(minor: str) -> str | None:
    """A working CPython ``minor`` (e.g. "3.8") from pyenv or PATH, checked by running it."""
    candidates: list[str] = []
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(root) / "versions"
    if versions.is_dir():
        for entry in sorted(versions.iterdir(), reverse=True):
            if entry.name.startswith(minor + ".") and entry.name[len(minor) + 1 :].isdigit():
                candidates.append(str(entry / "bin" / f"python{minor}"))
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidates.append(str(Path(directory) / f"python{minor}"))
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == minor:
            return candidate
    return None


def require_python(minor: str) -> str:
    """``find_python`` or skip (fail when CI is set: CI machines must have it)."""
    found = find_python(minor)
    if found is None:
        message = f"no working CPython {minor} found under $PYENV_ROOT/versions or on PATH"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def make_venv(path: Path, python: str, packages: list[str] | None = None) -> str:
    """Create a virtualenv with ``python``; pip-install ``packages``; return its interpreter."""
    seed = [] if packages else ["--no-seed"]
    subprocess.run(
        [sys.executable, "-m", "virtualenv", "-q", *seed, "-p", python, str(path)],
        check=True,
        timeout=120,
    )
    interpreter = str(path / "bin" / "python")
    if packages:
        subprocess.run(
            [interpreter, "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
            check=True,
            timeout=300,
        )
    return interpreter


def site_packages(interpreter: str) -> Path:
    done = subprocess.run(
        [interpreter, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return Path(done.stdout.strip())


def install_fixture_package(interpreter: str, name: str, version: str, source: str) -> None:
    """Install a one-module package straight into a venv, with real dist-info metadata."""
    site = site_packages(interpreter)
    package = site / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(source)
    dist_info = site / f"{name}-{version}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    (dist_info / "top_level.txt").write_text(name + "\n")
    (dist_info / "RECORD").write_text(f"{name}/__init__.py,,\n")
    (dist_info / "INSTALLER").write_text("mvbridge-tests\n")


def build_wheel(folder: Path, name: str, version: str, modules: dict[str, str]) -> Path:
    """Write a minimal valid wheel (no build backend needed); ``modules`` maps paths to source.

    Its import names may differ from the distribution name (as PyYAML's ``yaml`` does).
    """
    import base64
    import hashlib
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = dict(modules)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: mvbridge-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    tops = sorted({path.split("/")[0].removesuffix(".py") for path in modules})
    files[f"{info}/top_level.txt"] = "\n".join(tops) + "\n"
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def write_config(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mvbridge.toml"
    path.write_text(text)
    return path


def run_cli(args: list[str], cwd: Path, timeout: float = 300, **env: str):
    """``python -m mvbridge ARGS`` in ``cwd``; returns the CompletedProcess."""
    environ = dict(os.environ)
    environ.pop("MVBRIDGE_CONFIG", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mvbridge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )


def run_python(source: str, cwd: Path, timeout: float = 120, **env: str):
    """Run ``source`` with the host's Python in ``cwd``; returns the CompletedProcess."""
    environ = dict(os.environ)
    environ.pop("MVBRIDGE_CONFIG", None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", source],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
    )
