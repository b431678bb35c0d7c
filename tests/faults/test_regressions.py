"""Defects the soak and fuzz campaigns found, one regression test each."""

from __future__ import annotations

import threading
import time

import numpy
import pytest

import mvbridge
from tests.helpers import Keys, Spawn, wait_until


def test_arrays_from_many_threads_before_the_worker_imported_numpy(py_numpy2: str):
    """The soak's first arrays, from 8 threads at once, reached a worker that had not imported
    numpy yet: one thread imported it, the others found the half-made module in sys.modules
    ("partially initialized module 'numpy' has no attribute 'dtype')."""
    for attempt in range(3):
        with mvbridge.Env(f"numpy-race-{attempt}", interpreter=py_numpy2) as env:
            assert env.call(len, "warm") == 4  # the worker is up; numpy is not imported there
            barrier = threading.Barrier(8)
            errors: list[BaseException] = []

            def send(index: int, barrier=barrier, errors=errors) -> None:
                array = numpy.arange(100 + index, dtype=numpy.float32)
                barrier.wait(30)
                try:
                    assert env.call(len, array) == 100 + index
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not errors, errors


# The worker's channels and channel encoders, counted in the worker among the objects the
# garbage collector tracks (freed ones are gone; ones only its next run would free are there).
_CHANNEL_OBJECTS = (
    "sum(type(o).__name__ in ('WorkerChannel', 'Encoder') for o in __import__('gc').get_objects())"
)


def test_ended_service_sessions_free_their_channels_without_the_collector(
    service: Spawn, keys: Keys
):
    """The soak's clients came and went, and a service worker's RSS grew 67 KB with each
    session: an ended session's channels (their Encoder, 256 KiB Packer buffers, socket,
    thread) sat in reference cycles (session -> channels -> channel -> session; Encoder <->
    the Packers calling its hook) that only the garbage collector's next full run freed."""
    with mvbridge.Env("cycles-watch", address=service.address, **keys.env_kwargs()) as watch:
        worker = watch.import_module("builtins")
        worker.eval("__import__('gc').disable()")
        try:
            before = worker.eval(_CHANNEL_OBJECTS)
            for index in range(3):
                with mvbridge.Env(
                    "cycles-client", address=service.address, **keys.env_kwargs()
                ) as env:
                    # A tuple each way: both Encoders pack with their hook (a Packer of its own).
                    assert env.call(tuple, (index, "x")) == (index, "x")
            # Each channel's thread lets go of it within the worker's poll interval.
            wait_until(lambda: worker.eval(_CHANNEL_OBJECTS) <= before)
        finally:
            worker.eval("__import__('gc').enable()")


_LAST_TRIM = "__import__('sys').modules['mvbridge.core.memory']._last[0]"
_NOW = "__import__('time').monotonic()"


def test_ended_sessions_give_freed_memory_back(service: Spawn, keys: Keys):
    """After the cycles above were gone, the soak's host and service workers still grew 3-16
    KB per session: freed memory that glibc kept in its per-thread arenas (``malloc_trim``
    returned all of it). Both sides now trim where a session ends (at most once a second)."""
    from mvbridge.core import memory

    with mvbridge.Env("trim-watch", address=service.address, **keys.env_kwargs()) as watch:
        worker = watch.import_module("builtins")
        client = mvbridge.Env("trim-client", address=service.address, **keys.env_kwargs())
        assert client.call(abs, -1) == 1
        # Past the interval of the last trims, so that this session's end trims on both sides.
        wait_until(lambda: worker.eval(f"{_NOW} - {_LAST_TRIM}") > memory.MIN_INTERVAL)
        wait_until(lambda: time.monotonic() - memory._last[0] > memory.MIN_INTERVAL)
        worker_before, host_before = worker.eval(_LAST_TRIM), memory._last[0]
        client.shutdown()
        assert memory._last[0] > host_before
        wait_until(lambda: worker.eval(_LAST_TRIM) > worker_before)


def test_a_shut_down_env_keeps_no_channel_buffers(py_faults: str):
    """An Env keeps its ended session (its proxies raise StaleReferenceError through it), and
    with it, through a thread-local, the channel the calling thread had used: its codec's
    buffers, 812 KB per shut-down Env, kept for as long as the Env (or its name) lives."""
    import gc
    import tracemalloc

    def used_and_shut_down(name: str) -> mvbridge.Env:
        env = mvbridge.Env(name, interpreter=py_faults)
        assert env.import_module("mvb_faults").echo(name) == name
        env.shutdown()
        return env

    used_and_shut_down("kept-warm-up")  # what a first Env imports and caches is not kept per Env
    kept = []
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for index in range(4):
            kept.append(used_and_shut_down(f"kept-{index}"))
        gc.collect()
        per_env = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert per_env < 200_000, f"{per_env:.0f} bytes kept per shut-down Env"


def test_envs_made_per_request_are_not_all_kept(py_faults: str):
    """``mvbridge.env(name)`` finds the envs made in this process, and so the process held every
    Env it ever made, one per name: an application making one per request under a new name
    kept them all. A shut-down Env is now held only while someone else holds it; one that was
    never shut down, or is held, is still found by name, and starts again when used."""
    import gc
    import weakref

    made = []
    for index in range(3):
        with mvbridge.Env(f"per-request-{index}", interpreter=py_faults) as env:
            assert env.import_module("mvb_faults").echo(index) == index
        made.append(weakref.ref(env))
    del env
    gc.collect()
    assert [ref() for ref in made] == [None, None, None]
    with pytest.raises(mvbridge.ConfigError):
        mvbridge.env("per-request-0")

    mvbridge.Env("made-not-started", interpreter=py_faults)  # no reference kept
    gc.collect()
    assert mvbridge.env("made-not-started").name == "made-not-started"

    kept = mvbridge.Env("kept-by-the-caller", interpreter=py_faults)
    kept.import_module("mvb_faults").pid()
    kept.shutdown()
    gc.collect()
    assert mvbridge.env("kept-by-the-caller") is kept
    assert kept.import_module("mvb_faults").echo("again") == "again"  # starts again
    del kept
    gc.collect()
    assert mvbridge.env("kept-by-the-caller").name == "kept-by-the-caller"  # running: held
    mvbridge.env("kept-by-the-caller").shutdown()
