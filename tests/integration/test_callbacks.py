"""Host callables called back from the worker; nesting; many host threads at once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import mvbridge


def test_host_callable_runs_in_the_host(demo):
    calls = []

    def record(value):
        calls.append((value, threading.get_ident()))
        return value + 1

    assert demo.call(record, 41) == 42
    assert calls == [(41, threading.get_ident())]


def test_callback_exception_reaches_the_worker_and_comes_back(demo):
    def explode():
        raise LookupError("from the host")

    with pytest.raises(LookupError, match="from the host"):
        demo.call(explode)


def test_nested_chain_to_depth_ten(demo):
    depths = []

    def host_step(depth):
        depths.append(depth)
        if depth == 10:
            return "bottom"
        return demo.nest(host_step, depth + 1)

    assert demo.nest(host_step, 1) == "bottom"
    assert depths == list(range(1, 11))


def test_a_chain_of_callbacks_without_end_stops_with_nesting_error(demo):
    depths = []

    def host_step(depth):
        depths.append(depth)
        return demo.nest(host_step, depth + 1)

    with pytest.raises(mvbridge.NestingError, match="nested 40 deep"):
        demo.nest(host_step, 1)
    assert depths == list(range(1, 41))  # stopped at the 41st nested request on a side
    assert demo.nest(lambda depth: depth, 7) == 7


def test_eight_threads_call_at_once(demo):
    def work(n):
        total = 0
        for i in range(50):
            total += demo.add(i, n)
            assert demo.call(lambda x: x * 2, i) == i * 2
        return total

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8), timeout=60))
    assert results == [sum(i + n for i in range(50)) for n in range(8)]


def test_calls_from_one_host_thread_run_on_one_worker_thread(demo):
    barrier = threading.Barrier(4, timeout=20)
    seen = {}

    def work(name):
        demo.set_local(name)
        barrier.wait()  # every thread has set its value before any reads
        ids = {demo.thread_id() for _ in range(20)}
        seen[name] = (ids, demo.get_local())

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(seen) == 4
    worker_threads = set()
    for name, (ids, local) in seen.items():
        assert len(ids) == 1
        assert local == name
        worker_threads |= ids
    assert len(worker_threads) == 4


def test_callback_from_a_thread_the_library_starts(demo):
    seen = []

    def record(value):
        seen.append(threading.current_thread().name)
        return value * 2

    assert demo.call_in_thread(record, 21) == 42
    assert len(seen) == 1
    assert seen[0] != threading.current_thread().name  # served by a host thread of its own


def test_callbacks_from_a_worker_thread_pool_run_at_once(demo):
    barrier = threading.Barrier(4, timeout=20)  # all four pool threads are in the host at once

    def meet(i):
        barrier.wait()
        return i + 1

    assert demo.map_in_pool(meet, range(8), 4) == list(range(1, 9))


def test_callback_from_a_timer_after_the_call_returned(demo):
    fired = threading.Event()
    got = []

    def later(value):
        got.append(value)
        fired.set()

    assert demo.call_later(later, 0.05, "late") is True
    assert fired.wait(20)
    assert got == ["late"]


def test_iterator_fed_by_a_callback_on_a_background_thread(demo):
    assert list(demo.fed_iterator(lambda i: i * i, 50)) == [i * i for i in range(50)]


def test_callback_from_a_worker_thread_calls_back_into_the_worker(demo):
    def nested(i):
        return demo.add(i, 100)  # host -> worker from inside a worker thread's callback

    assert demo.map_in_pool(nested, range(6), 3) == [i + 100 for i in range(6)]


def test_nesting_through_worker_threads_both_ways(demo):
    def down(depth):
        return "bottom" if depth == 4 else demo.call_in_thread(down, depth + 1)

    assert demo.call_in_thread(down, 0) == "bottom"


def test_error_in_a_thread_callback_reaches_the_worker_thread(demo):
    def explode(_):
        raise KeyError("host side")

    with pytest.raises(KeyError, match="host side"):
        demo.call_in_thread(explode, 1)
