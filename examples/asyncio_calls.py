"""Await calls into an env from an event loop (mvbridge.aio, env.acall, async with Env).

Starts a worker on this Python (no env to build), runs 200 awaited calls at once on one loop
with a bounded pool of worker threads, passes a coroutine callback, and bounds a slow call with
asyncio.timeout. Run: python examples/asyncio_calls.py
"""

from __future__ import annotations

import asyncio
import sys

import mvbridge


async def main() -> None:
    async with mvbridge.Env("aio-example", interpreter=sys.executable, async_pool=8) as env:
        operator = mvbridge.aio(env.import_module("operator"))
        sums = await asyncio.gather(*(operator.add(i, i) for i in range(200)))
        print("200 awaited calls:", sums[:5], "...", sums[-1])

        async def double(x):
            await asyncio.sleep(0)  # a coroutine callback, awaited on this loop
            return 2 * x

        builtins = mvbridge.aio(env.import_module("builtins"))
        doubled = await builtins.list(await builtins.map(double, [1, 2, 3]))
        print("coroutine callback:", doubled)

        time = mvbridge.aio(env.import_module("time"))
        try:
            async with asyncio.timeout(0.1):
                await time.sleep(5)
        except TimeoutError:
            print("a slow call was cancelled; the loop went on")

        def mean(values):
            return sum(values) / len(values)

        print("host function run there:", await env.acall(mean, [1, 2, 3, 4]))


if __name__ == "__main__":
    asyncio.run(main())
