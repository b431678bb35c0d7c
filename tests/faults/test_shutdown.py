"""Shutdown under load: interpreter exit, mvbridge.shutdown() and a service's SIGTERM while 8
threads are mid-call. Bounded time; every caller gets a result or a clear error; no
traceback noise."""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from pathlib import Path

import pytest

import mvbridge
from tests.faults.conftest import Target, children
from tests.helpers import run_python, wait_until

THREADS = 8
SHUTDOWN_WITHIN = 10.0


def load(faults, results: list, index: int, stop: threading.Event) -> None:
    """Mixed calls until one fails or ``stop``; record the outcome."""
    try:
        while not stop.is_set():
            if index % 2:
                assert faults.echo([index, "x" * 100]) == [index, "x" * 100]
            else:
                faults.sleep(0.2)
        results.append("stopped")
    except mvbridge.MVBridgeError as exc:
        results.append(type(exc).__name__)
    except BaseException as exc:  # anything else is a defect the test reports
        results.append(f"unexpected {type(exc).__name__}: {exc}")


def start_load(faults) -> tuple[list, list[threading.Thread], threading.Event]:
    """8 threads calling ``faults`` (a module proxy), each mid-call by the time it returns."""
    results: list = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=load, args=(faults, results, i, stop), daemon=True)
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every thread get mid-call; the outcome does not depend on it
    return results, threads, stop


def test_mvbridge_shutdown_under_load(target: Target):
    """Calls in flight fail with WorkerDiedError; a thread's next call starts a new worker
    (as after any shutdown), so the load is stopped once shutdown() has returned."""
    target.worker_pid()
    results, threads, stop = start_load(target.faults())
    started = time.monotonic()
    mvbridge.shutdown()
    assert time.monotonic() - started < SHUTDOWN_WITHIN
    stop.set()
    for thread in threads:
        thread.join(SHUTDOWN_WITHIN)
    assert len(results) == THREADS
    assert set(results) <= {"WorkerDiedError", "stopped"}, results
    assert "WorkerDiedError" in results  # the sleeping half was mid-call
    target.check_clean()


_EXIT_SCRIPT = """
import os, sys, threading, time
import mvbridge

env = mvbridge.Env("exit-under-load", {where})
faults = env.import_module("mvb_faults")
faults.pid()

def load(index):
    try:
        while True:
            if index % 2:
                faults.echo([index, "x" * 100])
            else:
                faults.sleep(0.2)
    except mvbridge.MVBridgeError as exc:  # one write: lines of threads do not interleave
        os.write(1, ("%s %d\\n" % (type(exc).__name__, index)).encode())

for index in range({threads}):
    threading.Thread(target=load, args=(index,)).start()  # not daemons: exit waits for them
time.sleep(0.5)
os.write(1, b"exiting\\n")
"""


@pytest.mark.parametrize("kind", ["local", "service"])
def test_interpreter_exit_under_load(kind: str, py_faults: str, tmp_path: Path, request):
    """The main thread ends while 8 non-daemon threads call: a call in flight, and a call
    made after the exit began ("no new one starts now"), get WorkerDiedError; the process
    exits 0 within the bound, stderr stays empty."""
    if kind == "local":
        where = f"interpreter={py_faults!r}"
    else:
        service = request.getfixturevalue("faults_service")
        keys = request.getfixturevalue("keys")
        where = f"address={service.address!r}, **{keys.env_kwargs()!r}"
    source = textwrap.dedent(_EXIT_SCRIPT).format(where=where, threads=THREADS)
    started = time.monotonic()
    done = run_python(source, tmp_path, timeout=60)
    assert time.monotonic() - started < SHUTDOWN_WITHIN + 10  # + start-up of a Python
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "exiting"
    ended = {int(index): kind for kind, index in (line.split() for line in lines[1:])}
    assert sorted(ended) == list(range(THREADS))
    assert set(ended.values()) == {"WorkerDiedError"}, ended


def test_service_sigterm_under_load(faults_service, keys):
    """SIGTERM: calls in flight finish (the drain), new ones get WorkerDiedError; the service
    exits 0 within its drain bound, its workers with it, and its log has no traceback."""
    workers = children(faults_service.process.pid)
    env = mvbridge.Env("faults-sigterm", address=faults_service.address, **keys.env_kwargs())
    try:
        results, threads, _stop = start_load(env.import_module("mvb_faults"))
        started = time.monotonic()
        faults_service.signal(signal.SIGTERM)
        assert faults_service.wait_exit(SHUTDOWN_WITHIN + 5) == 0, faults_service.log
        assert time.monotonic() - started < SHUTDOWN_WITHIN + 5
        for thread in threads:
            thread.join(SHUTDOWN_WITHIN)
        assert len(results) == THREADS
        assert set(results) <= {"WorkerDiedError", "WorkerStartError"}, results
    finally:
        env.shutdown()
    assert "Traceback" not in faults_service.log
    wait_until(lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists()])
