"""A dependency that fails to import or segfaults in its import, that calls os._exit,
sys.exit or os.fork, closes fds 0-2 or floods stdout; for a local worker and for a service."""

from __future__ import annotations

import time

import pytest

import mvbridge
from tests.faults.conftest import Target
from tests.faults.test_kills import DIED_WITHIN, Call, next_call_works

FLOOD_MB = 50
FLOOD_WITHIN = 60.0  # 50 MB of output reach the host's stdout (or the service log) this soon


def test_an_import_that_fails_raises_its_error(target: Target):
    pid = target.worker_pid()
    with pytest.raises(RuntimeError, match="native library is missing"):
        target.env.import_module("mvb_broken_import")
    next_call_works(target)
    assert target.worker_pid() == pid
    target.check_clean()


def test_an_import_that_segfaults_is_a_dead_worker(target: Target):
    target.worker_pid()
    started = time.monotonic()
    with pytest.raises(mvbridge.WorkerDiedError) as raised:
        target.env.import_module("mvb_segv_import")
    assert time.monotonic() - started < DIED_WITHIN
    assert "SIGSEGV" in str(raised.value)
    next_call_works(target)
    target.check_clean()


def test_os_exit_is_a_dead_worker(target: Target):
    target.worker_pid()
    with pytest.raises(mvbridge.WorkerDiedError) as raised:
        target.faults().exit_now(3)
    assert "code 3" in str(raised.value) or "status 3" in str(raised.value)
    next_call_works(target)
    target.check_clean()


def test_sys_exit_ends_the_call_not_the_worker(target: Target):
    pid = target.worker_pid()
    with pytest.raises(mvbridge.RemoteError, match="SystemExit"):
        target.faults().sys_exit(3)
    next_call_works(target)
    assert target.worker_pid() == pid
    target.check_clean()


def test_a_fork_in_the_worker(target: Target):
    pid = target.worker_pid()
    assert target.faults().fork_child() == ("ok", 0)
    next_call_works(target)
    assert target.worker_pid() == pid
    target.check_clean()


def test_closing_fds_0_to_2(target: Target):
    """The worker's stdout and stderr are gone: printing fails there, calls go on."""
    pid = target.worker_pid()
    with pytest.raises(OSError, match="Bad file descriptor"):
        target.faults().close_std_fds()
    for _ in range(3):  # new channels' sockets may now get fds 0-2
        Call(next_call_works, target).wait(DIED_WITHIN)
        next_call_works(target)
    assert target.worker_pid() == pid
    target.check_clean()


def test_flooding_stdout(target: Target, capfd: pytest.CaptureFixture[str]):
    pid = target.worker_pid()
    started = time.monotonic()
    assert target.faults().flood_stdout(FLOOD_MB) == FLOOD_MB
    assert time.monotonic() - started < FLOOD_WITHIN
    next_call_works(target)
    assert target.worker_pid() == pid
    target.check_clean()
