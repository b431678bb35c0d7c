"""Defects the soak and fuzz campaigns found, one regression test each."""

from __future__ import annotations

import threading

import numpy

import mvbridge


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
