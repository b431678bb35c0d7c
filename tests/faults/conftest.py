"""The fault matrix's targets: one local worker, or one `mvbridge spawn` service, per case.

Every case runs against both (``target``) and ends with ``target.check_clean()``: no process
of the case left running, no socket folder and no shared-memory segment left behind.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import mvbridge
from tests.conftest import FIXTURES
from tests.helpers import Keys, Spawn, install_fixture_package, make_venv, wait_until

FAULT_MODULES = ("mvb_faults", "mvb_broken_import", "mvb_segv_import")


@pytest.fixture(scope="session")
def py_faults(venvs: Path) -> str:
    """The host's Python with the misbehaving fixture modules."""
    interpreter = make_venv(venvs / "faults", sys.executable)
    for name in FAULT_MODULES:
        source = (FIXTURES / "pkgs" / f"{name}.py").read_text()
        install_fixture_package(interpreter, name, "1.0", source)
    return interpreter


@pytest.fixture
def faults_service(py_faults: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory):
    """A service per case: one that lost a worker twice within 10 s restarts the next one
    only after a growing delay (its crash-loop backoff), which is not what a case tests."""
    spawned = Spawn(py_faults, tmp_path_factory.mktemp("faults-spawn"), keys)
    yield spawned
    assert spawned.stop() == 0, spawned.log


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def shm_segments(pids: set[int]) -> list[str]:
    """Shared-memory segments made by any of ``pids`` (their names carry the maker's pid)."""
    from mvbridge.core import sharedmem

    folder = sharedmem.default_dir()
    if folder is None:
        return []
    return [
        name
        for name in os.listdir(folder)
        if name.startswith(sharedmem.PREFIX)
        and int(name[len(sharedmem.PREFIX) :].split("-")[0]) in pids
    ]


class Target:
    """One env under test, with the means to hurt its worker and to check what it left."""

    kind = ""

    def __init__(self) -> None:
        self.env = self.make_env()
        self.pids: set[int] = set()  # every worker pid seen (and their children)
        self.ipc_dirs: set[Path] = set()

    def make_env(self) -> mvbridge.Env:
        raise NotImplementedError

    def faults(self):
        return self.env.import_module("mvb_faults")

    def worker_pid(self) -> int:
        """The pid of the worker serving this env now (starting it if need be)."""
        pid = self.faults().pid()
        self.pids.add(pid)
        self.note()
        return pid

    def note(self) -> None:
        session = self.env.current_session()
        link = session.link if session is not None else None
        if getattr(link, "ipc_dir", None) is not None:
            self.ipc_dirs.add(link.ipc_dir)
        for pid in list(self.pids):
            self.pids |= children(pid)

    def kill_worker(self, signum: int = signal.SIGKILL) -> int:
        pid = self.worker_pid()
        os.kill(pid, signum)
        wait_until(lambda: not alive(pid))
        return pid

    def shutdown(self) -> None:
        self.env.shutdown()

    def check_clean(self) -> None:
        """After ``shutdown``: none of the case's processes, socket folders or segments left."""
        self.note()
        self.shutdown()
        wait_until(lambda: not self.orphans())
        left = [str(d) for d in self.ipc_dirs if d.exists()]
        assert not left, f"socket folders left behind: {left}"
        pids = self.pids | {os.getpid()}
        wait_until(lambda: not shm_segments(pids))

    def orphans(self) -> list[int]:
        own = self.own_pids()
        return [pid for pid in self.pids if pid not in own and alive(pid)]

    def own_pids(self) -> set[int]:
        return set()


class LocalTarget(Target):
    kind = "local"

    def __init__(self, interpreter: str) -> None:
        self.interpreter = interpreter
        super().__init__()

    def make_env(self) -> mvbridge.Env:
        return mvbridge.Env("faults-local", interpreter=self.interpreter)

    def note(self) -> None:
        session = self.env.current_session()
        if session is not None and session.process is not None:
            self.pids.add(session.process.pid)
        super().note()


class ServiceTarget(Target):
    kind = "service"

    def __init__(self, service: Spawn, keys: Keys) -> None:
        self.service = service
        self.keys = keys
        super().__init__()

    def make_env(self) -> mvbridge.Env:
        return mvbridge.Env(
            "faults-service", address=self.service.address, **self.keys.env_kwargs()
        )

    def own_pids(self) -> set[int]:
        # The service replaces a worker that died: its current workers are its own, not leaks.
        return {self.service.process.pid} | set(self.service.ping().get("pids", []))

    def check_clean(self) -> None:
        super().check_clean()
        assert self.service.process.poll() is None, self.service.log


@pytest.fixture(params=["local", "service"])
def target(request: pytest.FixtureRequest, py_faults: str) -> Iterator[Target]:
    if request.param == "local":
        made: Target = LocalTarget(py_faults)
    else:
        made = ServiceTarget(
            request.getfixturevalue("faults_service"), request.getfixturevalue("keys")
        )
    try:
        yield made
    finally:
        made.env.shutdown()


def started_file() -> str:
    """A fresh path a remote call writes when it has started."""
    handle, path = tempfile.mkstemp(prefix="mvb-fault-")
    os.close(handle)
    os.unlink(path)
    return path


@pytest.fixture(autouse=True)
def _collect_garbage():
    """Collect after each case: a socket it left unclosed warns here, in the case that left
    it, not in whichever later test the garbage collector happens to run."""
    yield
    import gc

    gc.collect()
