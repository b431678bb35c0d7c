"""KeyboardInterrupt during a call (Ctrl-C in the main thread, or raised in another host
thread) reaches the worker thread serving it, and the next call answers at once."""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.faults.conftest import ServiceTarget, Target, started_file
from tests.faults.test_kills import Call
from tests.helpers import wait_until

INTERRUPTED_WITHIN = 1.0  # KeyboardInterrupt reaches the host's caller this soon
NEXT_CALL_WITHIN = 2.0  # the next call from that thread answers this soon after it
LONG = 30.0  # the interrupted call would run this long


@pytest.fixture(autouse=True)
def _default_sigint_handler():
    """Python's own SIGINT handler (KeyboardInterrupt), whatever an earlier test of the run
    left installed: the cases stand for a user's Ctrl-C in a plain program."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def ctrl_c() -> None:
    """SIGINT, to the main thread: the kernel may give a process's signal to any of its
    threads, and then a main thread blocked in C (``time.sleep``) would not wake for it."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def interrupt_when_started(marker: str, thread: threading.Thread | None = None) -> None:
    """Once ``marker`` exists: Ctrl-C (SIGINT) for the main thread, or an asynchronous
    KeyboardInterrupt raised in ``thread``."""

    def run() -> None:
        wait_until(lambda: Path(marker).exists(), timeout=30)
        if thread is None:
            ctrl_c()
        else:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt)
            )

    threading.Thread(target=run, daemon=True).start()


@pytest.mark.parametrize(
    ("function", "same_thread"),
    [
        pytest.param("spin", True, id="python-loop"),  # the interrupt lands: same worker thread
        pytest.param("sleep", False, id="blocked-in-sleep"),  # stuck in C: a fresh worker thread
    ],
)
def test_ctrl_c_in_the_main_thread(target: Target, function: str, same_thread: bool):
    faults = target.faults()
    before = faults.thread_id()
    marker = started_file()
    interrupt_when_started(marker)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        getattr(faults, function)(LONG, marker)
    interrupted = time.monotonic()
    assert interrupted - Path(marker).stat().st_mtime < INTERRUPTED_WITHIN + NEXT_CALL_WITHIN
    after = faults.thread_id()
    assert time.monotonic() - interrupted < NEXT_CALL_WITHIN
    assert (after == before) is same_thread
    assert interrupted - started < LONG / 2
    target.check_clean()


def test_keyboard_interrupt_in_a_host_thread(target: Target):
    """A thread other than the main one, interrupted mid-call; its next call answers on the
    same worker thread (the remote loop was interrupted, not abandoned)."""
    faults = target.faults()
    marker = started_file()
    results: list[object] = []

    def caller() -> None:
        before = faults.thread_id()
        try:
            faults.spin(LONG, marker)
        except KeyboardInterrupt:
            interrupted = time.monotonic()
            results.append(faults.thread_id() == before)
            results.append(time.monotonic() - interrupted)

    call = Call(caller)
    interrupt_when_started(marker, call.thread)
    call.wait(LONG / 2)
    assert len(results) == 2, results
    assert results[0] is True, results
    assert results[1] < NEXT_CALL_WITHIN
    target.check_clean()


def test_interrupted_callbacks_end_the_remote_call(target: Target):
    """Ctrl-C while the host runs the worker's callback: the callback's KeyboardInterrupt goes
    back to the worker, the host's caller gets KeyboardInterrupt, the next call answers."""
    faults = target.faults()
    inside = threading.Event()

    def callback() -> None:
        inside.set()
        time.sleep(LONG)

    threading.Thread(target=lambda: (inside.wait(30), ctrl_c()), daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        faults.call(callback)
    interrupted = time.monotonic()
    assert faults.echo("next") == "next"
    assert time.monotonic() - interrupted < NEXT_CALL_WITHIN
    target.check_clean()


@pytest.mark.parametrize("function", ["spin", "sleep"])
def test_an_interrupt_just_after_the_send_reaches_the_worker(target: Target, function: str):
    """KeyboardInterrupt right after the request went out, before the caller waits for the
    reply (where a loaded machine delivers it late): the worker's call is interrupted (or its
    channel dropped), so the next call answers at once, not after the 30 s call."""
    faults = target.faults()
    faults.thread_id()  # this thread's channel exists
    channel = target.env.current_session().channel()
    send = channel.send
    marker = started_file()

    def send_then_interrupt(frames: list) -> None:
        send(frames)
        channel.send = send  # once
        wait_until(lambda: Path(marker).exists(), timeout=30)  # the worker runs it
        raise KeyboardInterrupt

    channel.send = send_then_interrupt
    with pytest.raises(KeyboardInterrupt):
        getattr(faults, function)(LONG, marker)
    interrupted = time.monotonic()
    assert faults.echo("next") == "next"
    assert time.monotonic() - interrupted < NEXT_CALL_WITHIN
    target.check_clean()


def test_a_cancelled_awaited_call_is_interrupted_in_the_worker(target: Target):
    """An awaited call cancelled mid-call (``task.cancel()``, as ``asyncio.timeout`` does) is
    interrupted in the worker too: its Python loop stops there at once, rather than running
    its 30 s on a worker thread nobody waits for; the next awaited call answers."""
    import asyncio

    import mvbridge

    faults = target.faults()
    started, interrupted = started_file(), started_file()

    async def main() -> float:
        call = asyncio.ensure_future(
            mvbridge.aio(faults).spin_noting_interrupts(LONG, started, interrupted)
        )
        while not Path(started).exists():
            await asyncio.sleep(0.02)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        cancelled = time.monotonic()
        assert await mvbridge.aio(faults).echo("next") == "next"
        return time.monotonic() - cancelled

    assert asyncio.run(asyncio.wait_for(main(), LONG / 2)) < NEXT_CALL_WITHIN
    wait_until(lambda: Path(interrupted).exists(), timeout=INTERRUPTED_WITHIN + 2)
    target.check_clean()


def test_a_call_whose_service_session_ends_is_interrupted(faults_service, keys):
    """The client ends its session (``env.shutdown()``: BYE) while a call runs: the service
    interrupts that call rather than running it to its end for nobody; the caller gets
    WorkerDiedError, the service logs no traceback and serves the next session."""
    import mvbridge

    target = ServiceTarget(faults_service, keys)
    started, interrupted = started_file(), started_file()
    call = Call(target.faults().spin_noting_interrupts, LONG, started, interrupted)
    wait_until(lambda: Path(started).exists())
    target.env.shutdown()
    wait_until(lambda: Path(interrupted).exists(), timeout=INTERRUPTED_WITHIN + 2)
    with pytest.raises(mvbridge.WorkerDiedError):
        call.wait(NEXT_CALL_WITHIN)
    target.check_clean()
    assert "Traceback" not in faults_service.log, faults_service.log[-3000:]
