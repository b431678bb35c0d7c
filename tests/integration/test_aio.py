"""Awaited calls (``mvbridge.aio``, ``env.acall``): concurrency, cancellation, deaths, for real.

Each body runs on a local worker of the host's Python, one on CPython 3.8 and a service
(``any_env``), unless it kills a worker. Async bodies run under ``asyncio.run``; the checks that
poll (``wait_until``) run after it, off the loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest

import mvbridge
from mvbridge.bridge.aio_channel import EXECUTOR_THREADS
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(60)


def run(coro):
    return asyncio.run(coro)


def worker_threads(env: mvbridge.Env) -> int:
    return env.current_session().statistics()["threads"]


def settled(env: mvbridge.Env, threads: int):
    """A predicate: the worker is back to ``threads`` threads and nothing is held or queued."""

    def check() -> bool:
        stats = env.statistics()
        return (
            worker_threads(env) <= threads
            and stats.worker_objects == 0
            and stats.host_proxies == 0
            and stats.pending_releases == 0
        )

    return check


# -- calls ------------------------------------------------------------------------------------
def test_module_object_and_attribute_views_return_what_sync_calls_return(any_env, demo):
    counter = demo.make_counter(3)

    async def main():
        view = mvbridge.aio(demo)
        assert await view.add(2, 3, scale=2) == demo.add(2, 3, scale=2) == 10
        assert await view.greet("Ann") == demo.greet("Ann")
        assert await mvbridge.aio(demo.add)(1, 2) == 3  # a module attribute proxy
        made = await view.make_counter(5)
        assert isinstance(made, mvbridge.RemoteObject)
        assert await mvbridge.aio(made).increment(2) == 7
        assert await mvbridge.aio(counter.increment)() == 4  # an object's method proxy
        assert await mvbridge.aio(counter).value == 4  # await a view: the attribute's value
        assert await view.GREETING == demo.GREETING
        assert await view.version() == demo.version()
        assert await any_env.acall(sum, [1, 2, 3]) == 6
        with pytest.raises(ValueError, match="boom"):
            await view.fail("boom")
        assert await view.add(1, 1) == 2  # the channel that carried the error is fine

    run(main())
    assert counter.value == 4


def test_async_for_iterates_in_batches(any_env, demo):
    async def main():
        items = [i async for i in mvbridge.aio(demo.generate(100))]
        assert items == list(range(100))
        generator = await mvbridge.aio(demo).generate(3)
        assert [i async for i in mvbridge.aio(generator)] == [0, 1, 2]
        counter = await mvbridge.aio(demo).make_counter(4)
        assert [i async for i in mvbridge.aio(counter)] == [0, 1, 2, 3]

    run(main())


def test_aio_of_a_non_proxy_raises_type_error():
    with pytest.raises(TypeError, match="takes a proxy"):
        mvbridge.aio(len)


def test_five_hundred_concurrent_awaits_use_no_thread_each(any_env, demo):
    async def main():
        view = mvbridge.aio(demo)
        assert await view.add(0, 0) == 0  # started, and the executor's threads made
        before = threading.active_count()
        results = await asyncio.gather(*(view.add(i, i) for i in range(500)))
        assert results == [2 * i for i in range(500)]
        assert threading.active_count() - before <= EXECUTOR_THREADS
        pool = any_env.current_session().async_pools[asyncio.get_running_loop()]
        assert pool.opened <= any_env.async_pool

    run(main())


def test_a_slow_call_does_not_delay_quick_ones(any_env, demo):
    async def main():
        view = mvbridge.aio(demo)
        done: list[str] = []
        started = asyncio.Event()

        async def slow():
            await view.signal_then_sleep(started.set, 3)
            done.append("slow")

        async def quick(i):
            assert await view.add(i, 1) == i + 1
            done.append("quick")

        slow_task = asyncio.create_task(slow())
        await started.wait()  # the slow call is running in the worker
        await asyncio.gather(*(quick(i) for i in range(50)))
        assert not slow_task.done()
        await slow_task
        assert done == ["quick"] * 50 + ["slow"]

    run(main())


def test_coroutine_callbacks_are_awaited_on_the_loop(any_env, demo):
    async def main():
        loop = asyncio.get_running_loop()
        seen = []

        async def double(x):
            assert asyncio.get_running_loop() is loop
            await asyncio.sleep(0)  # a real suspension on the host's loop
            seen.append(x)
            return 2 * x

        view = mvbridge.aio(demo)
        assert await view.map_over(double, [1, 2, 3]) == [2, 4, 6]
        assert await view.call(double, 21) == 42
        assert seen == [1, 2, 3, 21]

        async def broken():
            raise KeyError("from the host")

        with pytest.raises(KeyError, match="from the host"):
            await view.call(broken)

    run(main())


def test_a_coroutine_callback_from_a_library_thread_is_awaited_too(any_env, demo):
    async def main():
        loop = asyncio.get_running_loop()

        async def triple(x):
            assert asyncio.get_running_loop() is loop  # the awaits' own loop
            await asyncio.sleep(0)
            return 3 * x

        # The worker calls it from a thread of its own: a reverse channel, served by a host
        # thread, which hands the coroutine to the loop.
        assert await mvbridge.aio(demo).call_in_thread(triple, 5) == 15

    run(main())


def test_a_coroutine_callback_of_a_plain_call_runs_on_a_loop_of_its_own(demo):
    async def triple(x):
        await asyncio.sleep(0)
        return 3 * x

    assert demo.call_in_thread(triple, 7) == 21  # no event loop anywhere: one is made for it


def test_items_an_async_for_read_ahead_stay_with_the_iterator(demo):
    it = demo.countdown(8)

    async def main():
        seen = []
        async for item in mvbridge.aio(it):  # batches of 1, then 4: 7, 6, 5, 4 wait
            seen.append(item)
            if len(seen) == 2:
                break
        return seen

    assert run(main()) == [8, 7]
    assert next(it) == 6  # what the async reader fetched ahead comes first
    assert list(it) == [5, 4, 3, 2, 1]


# -- cancellation and deadlines ---------------------------------------------------------------
def test_cancelled_and_timed_out_awaits_leak_nothing(any_env, demo):
    demo.add(1, 1)
    threads = worker_threads(any_env)

    async def main():
        view = mvbridge.aio(demo)
        assert await view.add(1, 1) == 2
        started = asyncio.Event()
        task = asyncio.create_task(view.signal_then_sleep(started.set, 0.5))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await view.sleep(0.5)
        made = [await view.make_counter(i) for i in range(3)]
        del made
        # Other calls are unaffected, on the same loop.
        assert await asyncio.gather(*(view.add(i, 1) for i in range(20))) == [
            i + 1 for i in range(20)
        ]

    run(main())
    # The loop's pool closed with the loop; the cancelled calls' threads end after their calls.
    wait_until(settled(any_env, threads))
    assert demo.add(2, 2) == 4


def test_call_timeout_and_deadline_carry_over(py_v1):
    with mvbridge.Env("aio-timeout", interpreter=py_v1, call_timeout=0.2) as env:
        demo = env.import_module("mvb_demo")

        async def main():
            view = mvbridge.aio(demo)
            with pytest.raises(mvbridge.CallTimeoutError):
                await view.sleep(2)
            assert await view.add(1, 2) == 3

        run(main())

    with mvbridge.Env("aio-deadline", interpreter=py_v1) as env:
        demo = env.import_module("mvb_demo")

        async def main():
            view = mvbridge.aio(demo)
            with mvbridge.deadline(0.2), pytest.raises(mvbridge.CallTimeoutError):
                await view.sleep(2)
            assert await view.sleep(0.3) == 0.3  # outside the block: no deadline

        run(main())


# -- pools ------------------------------------------------------------------------------------
def test_async_pool_bounds_the_calls_running_at_once(py_v1):
    with mvbridge.Env("aio-pool", interpreter=py_v1, async_pool=2) as env:
        demo = env.import_module("mvb_demo")

        async def main():
            view = mvbridge.aio(demo)
            assert await asyncio.gather(*(view.thread_id() for _ in range(40)))
            ids = set(await asyncio.gather(*(view.thread_id() for _ in range(40))))
            assert 1 <= len(ids) <= 2
            pool = env.current_session().async_pools[asyncio.get_running_loop()]
            assert pool.opened <= 2

        run(main())

    with pytest.raises(mvbridge.ConfigError, match="async_pool"):
        mvbridge.Env("bad-pool", interpreter=py_v1, async_pool=0)


def test_async_with_env_starts_and_stops_off_the_loop(py_v1):
    async def main():
        async with mvbridge.Env("aio-with", interpreter=py_v1) as env:
            assert env.state is mvbridge.EnvState.STOPPED  # the first await starts it
            assert await env.acall(os.getpid) != os.getpid()
            assert env.state is mvbridge.EnvState.RUNNING
        return env

    env = run(main())
    assert env.state is mvbridge.EnvState.STOPPED


# -- deaths -----------------------------------------------------------------------------------
@pytest.mark.parametrize("python", ["v1", "v2"])
def test_sigkill_under_concurrent_awaits_fails_every_one_within_a_second(python, request):
    interpreter = request.getfixturevalue("py_" + python)
    with mvbridge.Env(f"aio-kill-{python}", interpreter=interpreter, async_pool=4) as env:
        demo = env.import_module("mvb_demo")

        async def main():
            view = mvbridge.aio(demo)
            pid = await view.pid()
            started = asyncio.Event()
            count = 0

            def one_started():
                nonlocal count
                count += 1
                if count == 4:
                    started.set()

            # 4 on the pool's channels, 16 waiting for one of them.
            tasks = [
                asyncio.create_task(view.signal_then_sleep(one_started, 30)) for _ in range(20)
            ]
            await started.wait()
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            elapsed = time.monotonic() - killed_at
            assert all(isinstance(r, mvbridge.WorkerDiedError) for r in results), results
            assert elapsed < 1.0
            # The next call starts a new worker (off the loop).
            assert await view.pid() != pid

        run(main())
