"""Awaited calls against threads (issue 10): ``python bench/aio.py [--rounds N] [--seconds S]``.

Calls/s of 1, 10 and 100 concurrent ``await mvbridge.aio(operator).add(1, 2)`` from one event
loop, and of the same concurrency with host threads making sync calls, each as a ratio to the
baseline measured in the same run (sync calls from one thread). Rounds are interleaved; the
report gives the median and the spread (min-max) over rounds. The worker is a plain local worker
of this Python (stdlib ``operator``), so nothing needs building. Writes
``bench/results/aio.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``mvbridge`` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mvbridge

CONCURRENCY = (1, 10, 100)
RESULTS = Path(__file__).resolve().parent / "results"


def sync_threads(module, threads: int, seconds: float) -> float:
    """Calls/s of ``threads`` host threads calling ``module.add`` for ``seconds``."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def work(i: int) -> None:
        add = module.add
        add(1, 2)  # opens this thread's channel before the clock starts
        start.wait()
        n = 0
        while time.perf_counter() < stop_at[0]:
            add(1, 2)
            n += 1
        counts[i] = n

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - began)


def awaited(module, tasks: int, seconds: float) -> float:
    """Calls/s of ``tasks`` coroutines awaiting ``aio(module).add`` on one loop for ``seconds``."""

    async def main() -> float:
        view = mvbridge.aio(module)
        await asyncio.gather(*(view.add(1, 2) for _ in range(tasks)))  # open the pool
        stop_at = time.perf_counter() + seconds
        counts = [0] * tasks

        async def work(i: int) -> None:
            n = 0
            while time.perf_counter() < stop_at:
                await view.add(1, 2)
                n += 1
            counts[i] = n

        began = time.perf_counter()
        await asyncio.gather(*(work(i) for i in range(tasks)))
        return sum(counts) / (time.perf_counter() - began)

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="per measure and round")
    parser.add_argument("--pool", type=int, default=16, help="Env(async_pool=N)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    rows: dict[str, list[float]] = {"baseline": []}
    for c in CONCURRENCY:
        rows[f"await x{c}"] = []
        rows[f"threads x{c}"] = []
    with mvbridge.Env("bench-aio", interpreter=sys.executable, async_pool=options.pool) as env:
        module = env.import_module("operator")
        module.add(1, 2)
        for r in range(options.rounds):
            rows["baseline"].append(sync_threads(module, 1, options.seconds))
            for c in CONCURRENCY:
                rows[f"await x{c}"].append(awaited(module, c, options.seconds))
                rows[f"threads x{c}"].append(sync_threads(module, c, options.seconds))
            sys.stderr.write(f"round {r + 1}/{options.rounds} done\n")
    report = summarise(rows, options)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "aio.json").write_text(json.dumps(report, indent=2) + "\n")
    (options.out / "aio.md").write_text(markdown(report))
    sys.stdout.write(markdown(report))
    return 0


def summarise(rows: dict[str, list[float]], options: argparse.Namespace) -> dict:
    base = rows["baseline"]
    measures = {}
    for name, values in rows.items():
        # Each round's ratio to that round's baseline, so drift between rounds cancels out.
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        measures[name] = {
            "calls_per_s_median": statistics.median(values),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "rounds": options.rounds,
        "seconds": options.seconds,
        "async_pool": options.pool,
        "measures": measures,
    }


def markdown(report: dict) -> str:
    lines = [
        "### Awaited calls against threads (`bench/aio.py`)",
        "",
        f"Python {report['python']} on {report['machine']} ({report['cpus']} CPUs); "
        f"{report['rounds']} rounds of {report['seconds']} s per measure; "
        f"`async_pool={report['async_pool']}`. Ratio: calls/s over the baseline (sync calls "
        "from one thread) of the same round; spread is min-max over rounds.",
        "",
        "| measure | calls/s (median) | ratio (median) | spread |",
        "|---|---:|---:|---:|",
    ]
    for name, m in report["measures"].items():
        lines.append(
            f"| {name} | {m['calls_per_s_median']:,.0f} | {m['ratio_median']:.2f} | "
            f"{m['ratio_min']:.2f}-{m['ratio_max']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
