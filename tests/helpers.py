"""Test helpers: the one polling loop, interpreters, venvs and fixture packages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

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
    """Create a virtualenv with ``python``; install ``packages`` with uv; return its interpreter.

    uv, not the venv's pip: virtualenv no longer seeds pip into a Python 3.8 venv.
    """
    from uv import find_uv_bin

    subprocess.run(
        [sys.executable, "-m", "virtualenv", "-q", "--no-seed", "-p", python, str(path)],
        check=True,
        timeout=120,
    )
    interpreter = str(path / "bin" / "python")
    if packages:
        subprocess.run(
            [find_uv_bin(), "pip", "install", "-q", "--python", interpreter, *packages],
            check=True,
            timeout=300,
        )
    return interpreter


def own_site_dirs() -> list[str]:
    """The site-packages folders this test run imports from, in order.

    A venv's own, and its base interpreter's too when it was made with system site packages;
    ``sysconfig``'s purelib names only the first.
    """
    return [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]


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
    write_fixture_package(site_packages(interpreter), name, version, source)


def write_fixture_package(site: Path, name: str, version: str, source: str) -> None:
    """Write package ``name`` and its dist-info into folder ``site`` (a site-packages or a
    folder a host puts on its path)."""
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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Keys:
    """A server key pair, an allowed client key pair and a stranger's, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        from mvbridge.bridge.keys import generate

        self.folder = folder
        self.allow = folder / "allow"
        self.server_public, self.server_secret = generate("server", folder)
        client_public, self.client_secret = generate("client", folder / "clients")
        self.stranger_public, self.stranger_secret = generate("stranger", folder / "strangers")
        self.allow.mkdir(exist_ok=True)
        (self.allow / "client.key").write_bytes(client_public.read_bytes())

    def env_kwargs(self) -> dict[str, str]:
        return {"server_key": str(self.server_public), "client_key": str(self.client_secret)}

    def spawn_args(self) -> list[str]:
        return ["--key", str(self.server_secret), "--allow", str(self.allow)]


class Spawn:
    """A real ``mvbridge spawn`` process on a free loopback port; stopped by ``stop()``.

    ``log`` holds what it wrote to stderr. Every wait is bounded.
    """

    started: ClassVar[list[Spawn]] = []  # every one of this run, for the leak guard

    def __init__(
        self,
        interpreter: str,
        folder: Path,
        keys: Keys | None,
        *extra: str,
        port: int | None = None,
        env_name: str = "svc",
        ready: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.keys = keys
        self.log_path = folder / f"spawn-{self.port}-{time.monotonic_ns()}.log"
        security = keys.spawn_args() if keys is not None else ["--insecure"]
        # An interpreter is served as it is; a config path means its env, built if need be.
        target = (
            ["--config", interpreter]
            if interpreter.endswith(".toml")
            else ["--interpreter", interpreter]
        )
        command = [
            sys.executable, "-m", "mvbridge", "spawn", "--env", env_name, *target,
            "--address", self.address, *security, *extra,
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        Spawn.started.append(self)
        if ready:
            self.wait_ready()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ping(self, timeout: float = 5.0) -> dict:
        """The service's facts (``mvbridge ping`` in-process); raises MVBridgeError if down."""
        from mvbridge.bridge.keys import client_keys
        from mvbridge.service.ping import ping

        keys = None
        if self.keys is not None:
            keys = client_keys(self.keys.server_public, self.keys.client_secret)
        return ping(self.address, keys, timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while "serving env" not in self.log:
            if self.process.poll() is not None:
                pytest.fail(f"mvbridge spawn exited with {self.process.returncode}:\n{self.log}")
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"mvbridge spawn did not come up within {timeout} s:\n{self.log}")
            time.sleep(0.02)

    def wait_log(self, text: str, timeout: float = WAIT_TIMEOUT) -> None:
        wait_until(lambda: text in self.log, timeout)

    def signal(self, signum: int) -> None:
        os.kill(self.process.pid, signum)

    def wait_exit(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail(f"mvbridge spawn did not exit within {timeout} s:\n{self.log}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL; the workers follow their parent."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()
        return self.process.returncode


class TcpRelay:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>; ``cut()`` drops every connection.

    It stands for a network between a client and a service that can fail on purpose.
    """

    def __init__(self, target: int) -> None:
        import socket
        import threading

        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._pairs: list = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source, sink) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass

    def cut(self) -> None:
        import socket

        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def __enter__(self) -> TcpRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        self.listener.close()
        self.cut()
