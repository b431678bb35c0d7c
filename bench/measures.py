"""What is measured: one ``Measure`` per table, each run on one system at a time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .harness import Call, Limits, MeasureError, ThreadGang, iterate, latency_metrics, percentile
from .systems.base import SMALL_ARGS, NotAvailable, System

BYTES_SIZE = 1_000_000  # "1 MB"
GENERATOR_ITEMS = 100_000
SLOW_ARRAY_SECONDS = 5.0  # a system slower than this per array round trip is timed once
THREADS = 4
MANY_THREADS = 16  # issue 11: 16 threads scale no worse than raw pyzmq does
CLIENTS = 20
CLIENT_THREADS = 4  # threads per client (issue 11: 20 clients x 4 threads)


@dataclass
class Context:
    """What every measure needs: limits, payloads, the host threads, what was verified."""

    limits: Limits
    gang: ThreadGang
    many: ThreadGang
    clients: ThreadGang
    payload: bytes
    array: Any
    verified: set[tuple[str, str]] = field(default_factory=set)
    too_slow: dict[tuple[str, str], str] = field(default_factory=dict)
    flips: dict[tuple[str, str], bool] = field(default_factory=dict)

    def flip(self, system: System, measure: str) -> bool:
        """Alternates True/False on each call for ``system`` and ``measure``."""
        key = (system.key, measure)
        self.flips[key] = not self.flips.get(key, False)
        return self.flips[key]

    def first(self, system: System, measure: str) -> bool:
        """True the first time ``system`` runs ``measure`` (results are checked then)."""
        key = (system.key, measure)
        if key in self.verified:
            return False
        self.verified.add(key)
        return True


@dataclass(frozen=True)
class Measure:
    """One row group of the report.

    A measure either ``run``s once per system and round, or is timed per call: ``prepare``
    gives the call, the suite times it in slices that alternate between systems (so a
    system and its baseline are measured side by side), and ``reduce`` turns the pooled
    durations into metrics.

    Attributes:
        key: stable name in the JSON.
        title: heading in the Markdown.
        columns: (metric, column header) shown in the table, primary first.
        primary: the metric ratios are taken of.
        better: "lower" or "higher".
        baseline: system key the in-round ratio divides by (None: no ratio column).
        run: runs the measure once on a system.
        prepare: makes the call to time (checking its result once).
        reduce: pooled per-call durations (s) to metrics.
        only: if set, the table lists only these systems.
        na: if set, the measure is n/a for every listed system, with this reason.
        after_rounds: it disturbs the machine (the syncs build envs of hundreds of MB, which
            left the next round's 100 MB array echo at a third of its speed): its rounds run
            after every round of the other measures.
    """

    key: str
    title: str
    columns: tuple[tuple[str, str], ...]
    primary: str
    better: str
    baseline: str | None
    run: Callable[[System, Context], dict[str, Any]] | None = None
    prepare: Callable[[System, Context], Call] | None = None
    reduce: Callable[[list[float]], dict[str, Any]] | None = None
    only: tuple[str, ...] = ()
    na: str = ""
    after_rounds: bool = False


def call_budget(measure: Measure, limits: Limits) -> tuple[int, float]:
    """(calls, seconds) a per-call measure may spend on one system in one round."""
    if measure.key == "bytes":
        return limits.bulk_calls, limits.bulk_seconds
    if measure.key == "per_item":
        return limits.per_item_calls, limits.latency_seconds
    return limits.latency_calls, limits.latency_seconds


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _checked(call: Callable[[], Any], ok: Callable[[Any], bool], what: str) -> None:
    if not ok(call()):
        raise MeasureError(f"{what}: the echoed value differs from the one sent")


def prepare_noop(system: System, ctx: Context) -> Call:
    return system.noop()


def prepare_small(system: System, ctx: Context) -> Call:
    call = system.small_args()
    if ctx.first(system, "small"):
        _checked(call, lambda got: _plain(got) == _plain(SMALL_ARGS), "small arguments")
    return call


def prepare_method(system: System, ctx: Context) -> Call:
    return system.method_call()


def prepare_bytes(system: System, ctx: Context) -> Call:
    call = system.echo_bytes(ctx.payload)
    if ctx.first(system, "bytes"):
        _checked(call, lambda got: bytes(got) == ctx.payload, "1 MB bytes")
    return call


def prepare_per_item(system: System, ctx: Context) -> Call:
    return system.next_per_item(GENERATOR_ITEMS)


def reduce_latency(durations: list[float]) -> dict[str, Any]:
    return latency_metrics(durations)


def reduce_bytes(durations: list[float]) -> dict[str, Any]:
    p50 = percentile(durations, 0.5)
    return {"p50_ms": p50 * 1e3, "gb_s": BYTES_SIZE / p50 / 1e9, "samples": len(durations)}


def reduce_per_item(durations: list[float]) -> dict[str, Any]:
    p50 = percentile(durations, 0.5)
    return {"ms": p50 * GENERATOR_ITEMS * 1e3, "us_item": p50 * 1e6, "samples": len(durations)}


def run_array(system: System, ctx: Context) -> dict[str, Any]:
    import numpy as np

    key = (system.key, "array")
    if key in ctx.too_slow:
        raise NotAvailable(ctx.too_slow[key])
    call = system.echo_array(ctx.array)
    clock = time.perf_counter
    durations: list[float] = []
    if ctx.first(system, "array"):
        # Checked once, untimed: a first echo also sets up what later ones reuse (mvbridge's
        # shared-memory pool), which a --quick run's single timed echo would otherwise measure.
        start = clock()
        got = call()
        took = clock() - start
        if not np.array_equal(got, ctx.array):
            raise MeasureError("array echo: the echoed array differs from the one sent")
        del got
        if took > SLOW_ARRAY_SECONDS:
            durations.append(took)
            ctx.too_slow[key] = (
                f"one round trip took {took:.0f} s, so it was timed in the first round only"
            )
    deadline = clock() + ctx.limits.huge_seconds
    while not durations or len(durations) < ctx.limits.huge_reps:
        if key in ctx.too_slow:
            break
        start = clock()
        call()
        durations.append(clock() - start)
        if durations[0] > SLOW_ARRAY_SECONDS:
            ctx.too_slow[key] = (
                f"one round trip took {durations[0]:.0f} s, so it was timed in the first round only"
            )
            break
        if clock() > deadline:
            break
    p50 = percentile(durations, 0.5)
    nbytes = ctx.array.nbytes
    return {"gb_s": nbytes / p50 / 1e9, "s": p50, "samples": len(durations)}


def run_threads(system: System, ctx: Context) -> dict[str, Any]:
    rate = ctx.gang.calls_per_second(system.key, system.thread_caller, ctx.limits.threads_seconds)
    return {"calls_s": rate}


def run_threads_many(system: System, ctx: Context) -> dict[str, Any]:
    """Calls/s of 16 threads, and their scaling over 4 measured right before (same round)."""
    seconds = ctx.limits.threads_seconds
    four = ctx.gang.calls_per_second(system.key, system.thread_caller, seconds)
    many = ctx.many.calls_per_second(system.key, system.thread_caller, seconds)
    return {"calls_s": many, "scaling": many / four}


def run_clients(system: System, ctx: Context) -> dict[str, Any]:
    key = f"{system.key}/client"
    rate = ctx.clients.calls_per_second(key, system.client_caller, ctx.limits.threads_seconds)
    return {"calls_s": rate}


POOL_SECONDS = 1.0  # of CPU-bound calls, per pool size and round


def run_pool(system: System, ctx: Context) -> dict[str, Any]:
    """Aggregate CPU-bound calls/s through ``--workers 1``, ``min(4, cores)`` and 4."""
    pool_rate = getattr(system, "pool_rate", None)
    if pool_rate is None:
        raise NotAvailable("measured for the service")
    cores = os.cpu_count() or 1
    here = min(4, cores)
    rates = {n: pool_rate(n, POOL_SECONDS) for n in sorted({1, here, 4})}
    scaling = rates[here] / rates[1]
    return {
        "w1": rates[1],
        "w_here": rates[here],
        "w4": rates[4],
        "scaling": scaling,
        "efficiency": scaling / here,
        "cores": cores,
    }


def run_cold(system: System, ctx: Context) -> dict[str, Any]:
    ms = system.cold_start(numpy=False) * 1e3
    return {"ms": ms, **getattr(system, "cold_extra", {})}


def run_cold_numpy(system: System, ctx: Context) -> dict[str, Any]:
    ms = system.cold_start(numpy=True) * 1e3
    return {"ms": ms, **getattr(system, "cold_extra", {})}


STARTUP_RUNS = 3  # per round; the median is kept (one fresh process is noisy)


def run_startup(system: System, ctx: Context) -> dict[str, Any]:
    runs = sorted((system.startup() for _ in range(STARTUP_RUNS)), key=lambda r: r[0])
    first, exit_ = runs[len(runs) // 2][0], sorted(r[1] for r in runs)[len(runs) // 2]
    return {"first_ms": first * 1e3, "exit_ms": exit_ * 1e3}


def run_generator(system: System, ctx: Context) -> dict[str, Any]:
    result = iterate(
        system.generator(GENERATOR_ITEMS), GENERATOR_ITEMS, ctx.limits.generator_seconds
    )
    if not result["extrapolated"] and result["items"] != GENERATOR_ITEMS:
        raise MeasureError(f"the generator yielded {result['items']} items")
    return result


def run_import(system: System, ctx: Context) -> dict[str, Any]:
    samples = sorted(system.import_time() for _ in range(3))
    heavy = " ".join(getattr(system, "heavy_imports", [])) or "none"
    return {"ms": samples[1] * 1e3, "heavy": heavy}


def run_sync_cold(system: System, ctx: Context) -> dict[str, Any]:
    demo = system.demo_sync()
    if ctx.flip(system, "sync_cold"):  # alternate which goes first, round by round
        uv_s = demo.by_hand()
        sync_s = demo.cold_sync()
    else:
        sync_s = demo.cold_sync()
        uv_s = demo.by_hand()
    result = {"s": sync_s, "uv_s": uv_s, "vs_uv": sync_s / uv_s}
    if ctx.first(system, "sync_cold_variants"):  # once a run: each costs a build
        result["no_stubs_s"] = demo.cold_sync_no_stubs()
        result["dontwrite_s"] = demo.cold_sync_dontwrite()
        result["first_stubs_s"] = demo.cold_sync_first_stubs()
    return result


def run_sync_noop(system: System, ctx: Context) -> dict[str, Any]:
    demo = system.demo_sync()
    demo.sync()  # untimed: makes sure there is nothing left to do
    samples = sorted(demo.sync() for _ in range(3))
    return {"s": samples[1]}


MEASURES: list[Measure] = [
    Measure(
        "noop",
        "No-op call",
        (("p50_us", "p50 \u00b5s"), ("p99_us", "p99 \u00b5s"), ("calls_s", "calls/s")),
        "p50_us",
        "lower",
        "zmq",
        prepare=prepare_noop,
        reduce=reduce_latency,
    ),
    Measure(
        "small",
        'Small-arguments call `f(1, "abc", {"k": [1, 2, 3]})`, echoed',
        (("p50_us", "p50 \u00b5s"), ("p99_us", "p99 \u00b5s")),
        "p50_us",
        "lower",
        "zmq",
        prepare=prepare_small,
        reduce=reduce_latency,
    ),
    Measure(
        "method",
        "Method call on a remote object `obj.m(x)`",
        (("p50_us", "p50 \u00b5s"), ("p99_us", "p99 \u00b5s")),
        "p50_us",
        "lower",
        "zmq",
        prepare=prepare_method,
        reduce=reduce_latency,
    ),
    Measure(
        "bytes",
        "1 MB `bytes` echo",
        (("p50_ms", "p50 ms"), ("gb_s", "GB/s")),
        "p50_ms",
        "lower",
        "zmq_zc",
        prepare=prepare_bytes,
        reduce=reduce_bytes,
    ),
    Measure(
        "array",
        "100 MB float64 numpy array echo (GB/s = 100 MB / round trip)",
        (("gb_s", "GB/s"), ("s", "round trip s")),
        "gb_s",
        "higher",
        "zmq_zc",
        run=run_array,
    ),
    Measure(
        "threads",
        "No-op calls/s from 4 host threads",
        (("calls_s", "calls/s"),),
        "calls_s",
        "higher",
        "zmq",
        run=run_threads,
    ),
    Measure(
        "threads16",
        f"No-op calls/s from {MANY_THREADS} host threads, and their scaling over {THREADS}",
        (("calls_s", "calls/s"), ("scaling", f"\u00f7 calls/s of {THREADS} threads")),
        "calls_s",
        "higher",
        "zmq",
        run=run_threads_many,
    ),
    Measure(
        "clients",
        f"No-op calls/s from {CLIENTS} clients \u00d7 {CLIENT_THREADS} threads (service; raw "
        "pyzmq: a connection per thread)",
        (("calls_s", "calls/s"),),
        "calls_s",
        "higher",
        "zmq_curve",
        run=run_clients,
        only=("zmq_curve", "mvbridge_spawn"),
    ),
    Measure(
        "cold",
        "Cold start, plain worker (spawn to first call returned)",
        (("ms", "ms"), ("probe_ms", "of which interpreter probe, ms")),
        "ms",
        "lower",
        "zmq",
        run=run_cold,
    ),
    Measure(
        "cold_numpy",
        "Cold start, worker imports numpy",
        (("ms", "ms"), ("probe_ms", "of which interpreter probe, ms")),
        "ms",
        "lower",
        "zmq",
        run=run_cold_numpy,
    ),
    Measure(
        "pool",
        "CPU-bound calls through `mvbridge spawn --workers N`, 2N clients (calls/s)",
        (
            ("w1", "--workers 1"),
            ("w_here", "--workers min(4, cores)"),
            ("w4", "--workers 4"),
            ("scaling", "min(4, cores) over 1"),
            ("efficiency", "of linear"),
            ("cores", "cores"),
        ),
        "efficiency",
        "higher",
        None,
        run=run_pool,
        only=("mvbridge_spawn",),
    ),
    Measure(
        "startup",
        "Start-up as a script pays it: process start to first result, last call to exit",
        (("first_ms", "first result, ms"), ("exit_ms", "exit after the last call, ms")),
        "first_ms",
        "lower",
        "zmq",
        run=run_startup,
        only=("zmq", "mvbridge"),
    ),
    Measure(
        "generator",
        "Iterate a remote generator of 100,000 items",
        (("ms", "ms"), ("items_s", "items/s")),
        "ms",
        "lower",
        "zmq",
        run=run_generator,
    ),
    Measure(
        "per_item",
        "Reference: one round trip per generator item (`next()` on the proxy), for 100,000",
        (("ms", "ms (projected)"), ("us_item", "\u00b5s/item")),
        "ms",
        "lower",
        "zmq",
        prepare=prepare_per_item,
        reduce=reduce_per_item,
        only=("zmq", "mvbridge"),
    ),
    Measure(
        "import",
        "`import mvbridge` in a fresh interpreter",
        (("ms", "ms"), ("heavy", "heavy modules it loaded")),
        "ms",
        "lower",
        None,
        run=run_import,
        only=("mvbridge",),
    ),
    Measure(
        "sync_cold",
        "Cold `mvbridge sync` of the demo with uv (no envs, no lock, uv's cache and mvbridge's "
        "stub cache warm, bytecode writes allowed)",
        (
            ("s", "s"),
            ("uv_s", "uv venv + uv pip install by hand, s"),
            ("vs_uv", "ratio"),
            ("no_stubs_s", "s with --no-stubs (first round)"),
            ("dontwrite_s", "s under PYTHONDONTWRITEBYTECODE=1 (first round)"),
            ("first_stubs_s", "s with no stub listings cached (first round)"),
        ),
        "s",
        "lower",
        None,
        run=run_sync_cold,
        only=("mvbridge",),
        after_rounds=True,
    ),
    Measure(
        "sync_noop",
        "`mvbridge sync` with nothing to do (demo)",
        (("s", "s"),),
        "s",
        "lower",
        None,
        run=run_sync_noop,
        only=("mvbridge",),
        after_rounds=True,
    ),
]
