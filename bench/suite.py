"""Interleaved rounds: every measure on every system, systems shuffled within each round."""

from __future__ import annotations

import contextlib
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .harness import Limits, ThreadGang, time_calls
from .measures import (
    BYTES_SIZE,
    CLIENT_THREADS,
    CLIENTS,
    MANY_THREADS,
    MEASURES,
    THREADS,
    Context,
    Measure,
    call_budget,
)
from .systems import ALL
from .systems.base import NotAvailable, System

Log = Callable[[str], None]


@dataclass(frozen=True)
class SuiteConfig:
    """How much to run.

    Attributes:
        rounds: interleaved rounds wanted.
        limits: per-measure time limits.
        budget: seconds the rounds may take; later rounds are dropped to stay within it.
        seed: seeds the system order of each round.
        systems: keys to run (empty: all).
        measures: measure keys to run (empty: all).
    """

    rounds: int
    limits: Limits
    budget: float
    seed: int = 1
    systems: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()


def _start(system: System, log: Log) -> str | None:
    """Start ``system``; None if it runs, else why it does not."""
    reason = system.cannot_run()
    if reason is not None:
        log(f"  {system.key}: n/a ({reason})")
        return reason
    started = time.perf_counter()
    try:
        system.start()
    except Exception as exc:
        log(f"  {system.key}: failed to start: {exc!r}")
        with contextlib.suppress(Exception):
            system.stop()
        return f"failed to start: {type(exc).__name__}: {exc}"
    log(f"  {system.key}: started in {time.perf_counter() - started:.2f} s")
    return None


def _stop(system: System, gangs: list[ThreadGang], log: Log) -> None:
    gangs[0].release(system.key, system.close_thread_caller)
    gangs[1].release(f"{system.key}/client", system.close_client_caller)
    gangs[2].release(system.key, system.close_thread_caller)
    try:
        system.stop()
    except Exception as exc:
        log(f"  {system.key}: stop failed: {exc!r}")


def _failed(measure: Measure, system: System, exc: Exception, log: Log) -> dict[str, Any]:
    if isinstance(exc, NotAvailable):
        return {"na": str(exc)}
    log(f"    {measure.key} on {system.key} failed: {exc!r}")
    log("      " + traceback.format_exc().strip().replace("\n", "\n      ")[-1500:])
    return {"error": f"{type(exc).__name__}: {exc}"}


def _run_once(measure: Measure, system: System, ctx: Context, log: Log) -> dict[str, Any]:
    assert measure.run is not None
    started = time.perf_counter()
    try:
        result = measure.run(system, ctx)
    except Exception as exc:
        return _failed(measure, system, exc, log)
    result["took_s"] = round(time.perf_counter() - started, 3)
    return result


def _run_sliced(
    measure: Measure, systems: list[System], ctx: Context, rng: random.Random, log: Log
) -> dict[str, dict[str, Any]]:
    """Time each system's call in slices, alternating systems, and pool each one's durations."""
    assert measure.prepare is not None
    assert measure.reduce is not None
    outcomes: dict[str, dict[str, Any]] = {}
    calls = {}
    for system in systems:
        try:
            calls[system.key] = (system, measure.prepare(system, ctx))
        except Exception as exc:
            outcomes[system.key] = _failed(measure, system, exc, log)
    max_calls, max_seconds = call_budget(measure, ctx.limits)
    slices = ctx.limits.slices
    durations: dict[str, list[float]] = {key: [] for key in calls}
    order = list(calls)
    for _ in range(slices):
        rng.shuffle(order)
        for key in order:
            if key in outcomes:
                continue
            system, call = calls[key]
            try:
                durations[key] += time_calls(
                    call, max(3, max_calls // slices), max_seconds / slices, warmup=5, min_calls=3
                )
            except Exception as exc:
                outcomes[key] = _failed(measure, system, exc, log)
    for key in calls:
        if key not in outcomes:
            outcomes[key] = measure.reduce(durations[key])
    return outcomes


def _restart(system: System, gangs: list[ThreadGang], log: Log) -> str | None:
    log(f"  restarting {system.key} after an error")
    _stop(system, gangs, log)
    return _start(system, log)


def run(config: SuiteConfig, log: Log, raw: dict[str, Any]) -> None:
    """Run the rounds, filling ``raw`` (systems, rounds, stopped_early) as they complete.

    Every worker is stopped on the way out, whatever happened.
    """
    import numpy as np

    systems = [cls() for cls in ALL if not config.systems or cls.key in config.systems]
    status: dict[str, str | None] = {}
    rounds: list[dict[str, Any]] = raw["rounds"]
    raw["systems"] = [
        {"key": s.key, "label": s.label, "notes": s.notes, "skipped": None, "baseline": s.baseline}
        for s in systems
    ]
    with contextlib.ExitStack() as stack:
        gangs = [
            ThreadGang(THREADS),
            ThreadGang(CLIENTS * CLIENT_THREADS),
            ThreadGang(MANY_THREADS),
        ]
        for gang in gangs:
            stack.callback(gang.stop)
        log("starting workers")
        for system, record in zip(systems, raw["systems"], strict=True):
            status[system.key] = record["skipped"] = _start(system, log)
            stack.callback(_stop, system, gangs, log)
        ctx = Context(
            limits=config.limits,
            gang=gangs[0],
            many=gangs[2],
            clients=gangs[1],
            payload=np.random.default_rng(1).bytes(BYTES_SIZE),
            array=np.random.default_rng(2).random(config.limits.array_bytes // 8),
        )
        began = time.perf_counter()
        for index in range(config.rounds):
            spent = time.perf_counter() - began
            if index and spent + rounds[-1]["seconds"] > config.budget:
                raw["stopped_early"] = (
                    f"stopped after {index} of {config.rounds} rounds to stay within the "
                    f"{config.budget:.0f} s budget"
                )
                log(raw["stopped_early"])
                break
            rounds.append(_round(index, systems, status, ctx, config, gangs, log))
        # The measures that disturb the machine, as many rounds of them, after all the others.
        for done in rounds:
            later = _round(done["index"], systems, status, ctx, config, gangs, log, after=True)
            done["results"].update(later["results"])
            done["seconds"] = round(done["seconds"] + later["seconds"], 2)


def _round(
    index: int,
    systems: list[System],
    status: dict[str, str | None],
    ctx: Context,
    config: SuiteConfig,
    gangs: list[ThreadGang],
    log: Log,
    after: bool = False,
) -> dict[str, Any]:
    """One round of the measures that run in rounds, or (``after``) of those that run after."""
    rng = random.Random(config.seed * 1000 + index + (500 if after else 0))
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    log(f"{'after the rounds: round' if after else 'round'} {index + 1}/{config.rounds}")
    for measure in MEASURES:
        if config.measures and measure.key not in config.measures:
            continue
        if measure.after_rounds != after:
            continue
        listed = [s for s in systems if not measure.only or s.key in measure.only]
        rng.shuffle(listed)
        outcomes: dict[str, dict[str, Any]] = {}
        running = []
        for system in listed:
            reason = measure.na or status[system.key]
            if reason:
                outcomes[system.key] = {"na": reason}
            else:
                running.append(system)
        if measure.prepare is not None:
            outcomes.update(_run_sliced(measure, running, ctx, rng, log))
        else:
            for system in running:
                outcomes[system.key] = _run_once(measure, system, ctx, log)
        for system in running:
            if "error" in outcomes[system.key] and not measure.key.startswith("cold"):
                status[system.key] = _restart(system, gangs, log)
        results[measure.key] = outcomes
        log(f"  {measure.key}: {_brief(measure, outcomes)}")
    seconds = time.perf_counter() - started
    log(f"  round took {seconds:.1f} s")
    return {"index": index, "seconds": round(seconds, 2), "results": results}


def _brief(measure: Measure, results: dict[str, dict[str, Any]]) -> str:
    parts = []
    for key, outcome in results.items():
        value = outcome.get(measure.primary)
        if isinstance(value, float):
            parts.append(f"{key}={value:.3g}")
        elif "error" in outcome:
            parts.append(f"{key}=error")
    return " ".join(parts) or "n/a"
