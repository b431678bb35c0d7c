"""A worker that hangs (a Python loop, blocked in C in ``sleep``, a C loop holding the GIL),
with a deadline and without one; for a local worker and for a service."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import mvbridge
from tests.faults.conftest import Target, started_file
from tests.faults.test_kills import Call, next_call_works
from tests.helpers import wait_until

DEADLINE = 0.5
TIMED_OUT_WITHIN = DEADLINE + 1.0  # CallTimeoutError comes this soon after the call
NEXT_CALL_WITHIN = 2.0  # the next call answers this soon after the timeout
SHUT_DOWN_WITHIN = 10.0  # env.shutdown() ends a hung call (WorkerDiedError) this soon
HANG_SECONDS = 8.0  # long for a call, short enough that no stuck thread outlives the module
# The C loop is short: a worker holding the GIL answers no control request either, and the
# host gives one 10 s (CONTROL_TIMEOUT) before it says the worker is gone. Measured here in the
# host, the loop can take several times as long in a worker on a loaded machine.
GIL_SECONDS = 1.5


def _gil_items(seconds: float) -> int:
    """Items of ``mvb_faults.hold_gil`` that take about ``seconds`` on this machine."""
    import collections
    import itertools

    items = 2_000_000
    started = time.perf_counter()
    collections.deque(itertools.repeat(None, items), maxlen=0)
    return int(items * seconds / max(time.perf_counter() - started, 1e-6))


HANGS = {
    # name: (function name, argument, whether other worker threads run meanwhile)
    "python-loop": ("spin", HANG_SECONDS, True),
    "blocked-in-sleep": ("sleep", HANG_SECONDS, True),
    "c-loop-holding-the-gil": ("hold_gil", None, False),
}


def start_hang(target: Target, name: str) -> Call:
    function, argument, _ = HANGS[name]
    if argument is None:
        # Twice the usual loop: the test needs it still running a second after it started, and
        # a loop measured on a busy host can be short (it ended in under a second in one run).
        argument = _gil_items(2 * GIL_SECONDS)
    marker = started_file()
    call = Call(getattr(target.faults(), function), argument, marker)
    wait_until(lambda: Path(marker).exists())
    return call


@pytest.mark.parametrize("name", list(HANGS))
def test_a_hang_with_a_deadline_times_out(target: Target, name: str):
    faults = target.faults()
    function, argument, others_run = HANGS[name]
    if argument is None:
        argument = _gil_items(GIL_SECONDS)
    started = time.monotonic()
    with pytest.raises(mvbridge.CallTimeoutError), mvbridge.deadline(DEADLINE):
        getattr(faults, function)(argument)
    timed_out = time.monotonic()
    assert timed_out - started < TIMED_OUT_WITHIN
    next_call_works(target)
    if others_run:
        assert time.monotonic() - timed_out < NEXT_CALL_WITHIN
    else:  # nothing of the worker runs until the C loop lets go of the GIL
        assert time.monotonic() - timed_out < 5 * GIL_SECONDS + NEXT_CALL_WITHIN
    target.check_clean()


@pytest.mark.parametrize("awaited", [False, True], ids=["blocking", "awaited"])
def test_a_deadline_interrupts_the_remote_call(target: Target, awaited: bool):
    """The Python loop that passed its deadline stops in the worker too (INTERRUPT), rather
    than running on in a worker thread whose caller has gone."""
    import asyncio

    faults = target.faults()
    started, interrupted = started_file(), started_file()

    def awaited_call() -> None:
        call = mvbridge.aio(faults).spin_noting_interrupts(HANG_SECONDS, started, interrupted)
        asyncio.run(asyncio.wait_for(call, HANG_SECONDS))

    def blocking_call() -> None:
        faults.spin_noting_interrupts(HANG_SECONDS, started, interrupted)

    with pytest.raises(mvbridge.CallTimeoutError), mvbridge.deadline(DEADLINE):
        (awaited_call if awaited else blocking_call)()
    wait_until(lambda: Path(interrupted).exists(), timeout=NEXT_CALL_WITHIN)
    next_call_works(target)
    target.check_clean()


@pytest.mark.parametrize("name", list(HANGS))
def test_a_hang_without_a_deadline_runs_until_shutdown(target: Target, name: str):
    """No deadline: the call may run as long as it needs (no liveness timer kills it), and
    env.shutdown() ends it with WorkerDiedError."""
    call = start_hang(target, name)
    assert not call.done.wait(1.0)
    target.note()
    stopped = time.monotonic()
    target.env.shutdown()
    if HANGS[name][2]:
        with pytest.raises(mvbridge.WorkerDiedError):
            call.wait(SHUT_DOWN_WITHIN)
    else:
        # Nothing of the worker runs while the C loop holds the GIL, its SHUTDOWN included:
        # when the loop ends before the worker is stopped, its reply comes back first.
        try:
            call.wait(SHUT_DOWN_WITHIN)
        except mvbridge.WorkerDiedError:
            pass
    assert time.monotonic() - stopped < SHUT_DOWN_WITHIN
    next_call_works(target)
    target.check_clean()
