"""The worker killed (SIGKILL, SIGTERM) before, during and after a call, during a 100 MB
transfer, during a callback and during start-up; for a local worker and for a service."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import mvbridge
from tests.faults.conftest import Target, alive, children, started_file
from tests.helpers import Spawn, wait_until

DIED_WITHIN = 5.0  # a call in flight when its worker dies fails this soon
SIGNALS = [pytest.param(signal.SIGKILL, id="SIGKILL"), pytest.param(signal.SIGTERM, id="SIGTERM")]
MB = 1024 * 1024


class Call:
    """``fn(*args)`` on a thread of its own; ``wait()`` gives its result or raises its error."""

    def __init__(self, fn, *args) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self.thread.start()

    def _run(self, fn, args) -> None:
        try:
            self.result = fn(*args)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def wait(self, timeout: float) -> object:
        assert self.done.wait(timeout), f"the call did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        return self.result


def fails_as_died(call: Call, within: float = DIED_WITHIN) -> None:
    """``call`` ends with WorkerDiedError within ``within`` seconds from now."""
    started = time.monotonic()
    with pytest.raises(mvbridge.WorkerDiedError):
        call.wait(within)
    assert time.monotonic() - started < within


def next_call_works(target: Target) -> None:
    assert target.faults().echo([1, (2, "three")]) == [1, (2, "three")]


@pytest.mark.parametrize("signum", SIGNALS)
def test_killed_before_a_call(target: Target, signum: int):
    """Idle worker killed: the next call starts (or reaches) a new worker and answers."""
    faults = target.faults()
    first = target.worker_pid()
    target.kill_worker(signum)
    started = time.monotonic()
    try:
        assert faults.echo(1) == 1
    except mvbridge.WorkerDiedError:
        pass  # a service session learns of the death with the call that finds it
    assert time.monotonic() - started < DIED_WITHIN
    next_call_works(target)
    assert target.worker_pid() != first
    target.check_clean()


@pytest.mark.parametrize("signum", SIGNALS)
def test_killed_during_a_call(target: Target, signum: int):
    faults = target.faults()
    pid = target.worker_pid()
    marker = started_file()
    call = Call(faults.sleep, 60, marker)
    wait_until(lambda: Path(marker).exists())
    os.kill(pid, signum)
    fails_as_died(call)
    next_call_works(target)
    target.check_clean()


@pytest.mark.parametrize("signum", SIGNALS)
def test_killed_after_a_call_its_objects_are_stale(target: Target, signum: int):
    """A reference from the dead worker raises StaleReferenceError; module calls go on."""
    kept = target.faults().Box(7)
    assert kept.value == 7
    target.kill_worker(signum)
    with pytest.raises((mvbridge.StaleReferenceError, mvbridge.WorkerDiedError)):
        _ = kept.value
    next_call_works(target)
    with pytest.raises(mvbridge.StaleReferenceError):
        _ = kept.value
    target.check_clean()


def test_killed_during_100_mb_transfers(target: Target):
    """Calls that send and receive 100 MB each, back to back; the worker dies under them."""
    faults = target.faults()
    pid = target.worker_pid()
    payload = b"\x01" * (100 * MB)
    rounds: list[int] = []

    def transfer_until_it_fails() -> None:
        while True:
            assert faults.size(payload) == len(payload)
            assert len(faults.make_bytes(100 * MB)) == 100 * MB
            rounds.append(1)

    call = Call(transfer_until_it_fails)
    wait_until(lambda: rounds, timeout=60)
    os.kill(pid, signal.SIGKILL)
    fails_as_died(call, DIED_WITHIN + 10)  # a 100 MB message in the host's hands finishes first
    next_call_works(target)
    target.check_clean()


def test_killed_during_a_callback(target: Target):
    """The worker dies while the host runs its callback: the callback's reply goes nowhere,
    the call fails with WorkerDiedError."""
    faults = target.faults()
    pid = target.worker_pid()
    inside, release = threading.Event(), threading.Event()

    def callback() -> str:
        inside.set()
        release.wait(30)
        return "late"

    call = Call(faults.call, callback)
    assert inside.wait(30)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid))
    release.set()
    fails_as_died(call)
    next_call_works(target)
    target.check_clean()


def test_local_worker_killed_during_start_up(py_faults: str):
    """The first call fails with WorkerStartError (or WorkerDiedError if it got as far as the
    handshake); the next call starts a new worker."""
    env = mvbridge.Env("faults-start", interpreter=py_faults)
    before = children(os.getpid())
    killer_saw: list[int] = []

    def kill_the_new_worker() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = children(os.getpid()) - before
            if new:
                for pid in new:
                    os.kill(pid, signal.SIGKILL)
                killer_saw.extend(new)
                return
            time.sleep(0.001)

    killer = threading.Thread(target=kill_the_new_worker, daemon=True)
    killer.start()
    started = time.monotonic()
    with pytest.raises((mvbridge.WorkerStartError, mvbridge.WorkerDiedError)):
        env.import_module("mvb_faults").pid()
    assert time.monotonic() - started < DIED_WITHIN
    killer.join(30)
    assert killer_saw
    try:
        assert env.import_module("mvb_faults").echo(2) == 2
    finally:
        env.shutdown()
    wait_until(lambda: not (children(os.getpid()) - before))


def test_service_killed_during_start_up(py_faults: str, keys, tmp_path: Path):
    """`mvbridge spawn` killed before it serves: a client gets WorkerStartError within its
    connect timeout, and the service's workers follow it (no orphans)."""
    spawned = Spawn(py_faults, tmp_path, keys, ready=False)
    wait_until(lambda: children(spawned.process.pid), timeout=30)  # its worker is starting
    workers = children(spawned.process.pid)
    spawned.process.kill()
    spawned.wait_exit()
    env = mvbridge.Env("faults-dead-service", address=spawned.address, connect_timeout=2.0,
                       **keys.env_kwargs())  # fmt: skip
    started = time.monotonic()
    with pytest.raises(mvbridge.WorkerStartError):
        env.import_module("mvb_faults").pid()
    assert time.monotonic() - started < 2.0 + DIED_WITHIN
    env.shutdown()
    wait_until(lambda: not [pid for pid in workers if alive(pid)])
