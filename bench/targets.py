"""The speed targets of issue 4, and whether mvbridge's in-round ratios meet them."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

SYSTEM = "mvbridge"
TIMES = "\u00d7"


@dataclass(frozen=True)
class Target:
    """One row of the issue's target table.

    Attributes:
        measure: the measure it judges.
        text: the target as the issue words it.
        kind: "at_most" / "at_least" (ratio to ``baseline`` in the same round), "speedup"
            (mvbridge's per-item time over its batched time, same round), "absolute" (value
            at most ``limit``), "floor" (value at least ``limit``), "added" (value minus
            ``baseline``'s in the same round, at most ``limit``), or "na".
        limit: the bound.
        baseline: system key for ratio targets.
        metric: the metric judged, when not the measure's primary one.
        system: the system judged (mvbridge's local row unless said).
        unit: how an absolute value reads ("ms", "s", or the ratio sign).
        na: why it cannot be measured yet.
    """

    measure: str
    text: str
    kind: str
    limit: float = 0.0
    baseline: str = ""
    metric: str = ""
    unit: str = ""
    na: str = ""
    system: str = SYSTEM


TARGETS: list[Target] = [
    Target("noop", f"\u2264 1.2{TIMES} raw pyzmq", "at_most", 1.2, "zmq"),
    Target("small", f"\u2264 1.3{TIMES} raw pyzmq", "at_most", 1.3, "zmq"),
    Target("method", f"one round trip: \u2264 1.3{TIMES} raw pyzmq", "at_most", 1.3, "zmq"),
    Target("bytes", f"\u2264 1.2{TIMES} raw pyzmq zero-copy", "at_most", 1.2, "zmq_zc"),
    Target("array", f"\u2265 4{TIMES} raw pyzmq zero-copy (GB/s)", "at_least", 4.0, "zmq_zc"),
    Target("threads", f"\u2265 1.0{TIMES} raw pyzmq, socket per thread", "at_least", 1.0, "zmq"),
    Target(
        "threads16",
        f"16 threads scale over 4 no worse than raw pyzmq's (\u2265 1.0{TIMES} its scaling)",
        "at_least",
        1.0,
        "zmq",
        metric="scaling",
    ),
    Target("cold", f"\u2264 1.2{TIMES} a raw pyzmq worker's", "at_most", 1.2, "zmq"),
    Target(
        "noop",
        f"service over TCP + CURVE \u2264 1.3{TIMES} raw pyzmq over TCP + CURVE",
        "at_most",
        1.3,
        "zmq_curve",
        system="mvbridge_spawn",
    ),
    Target(
        "clients",
        f"service, 20 clients \u00d7 4 threads \u2265 0.8{TIMES} raw pyzmq's calls/s",
        "at_least",
        0.8,
        "zmq_curve",
        system="mvbridge_spawn",
    ),
    Target(
        "pool",
        "`--workers 4` \u2265 3\u00d7 `--workers 1` on 4 cores (75% of linear); here: "
        "`--workers min(4, cores)` \u2265 75% of linear",
        "floor",
        0.75,
        metric="efficiency",
        unit=" of linear",
        system="mvbridge_spawn",
    ),
    Target("startup", f"first result \u2264 1.3{TIMES} raw pyzmq's", "at_most", 1.3, "zmq"),
    Target(
        "startup",
        "exit after the last call adds \u2264 20 ms to raw pyzmq's",
        "added",
        20.0,
        "zmq",
        metric="exit_ms",
        unit=" ms",
    ),
    Target("generator", f"\u2265 20{TIMES} faster than a round trip per item", "speedup", 20.0),
    Target("import", "\u2264 30 ms", "absolute", 30.0, unit=" ms"),
    Target("sync_noop", "\u2264 0.5 s", "absolute", 0.5, unit=" s"),
    Target(
        "sync_cold",
        f"\u2264 1.3{TIMES} uv venv + uv pip install by hand",
        "absolute",
        1.3,
        metric="vs_uv",
        unit=TIMES,
    ),
]


def _value(
    rounds: list[dict[str, Any]], index: int, measure: str, metric: str, system: str = SYSTEM
) -> float | None:
    outcome = rounds[index]["results"].get(measure, {}).get(system, {})
    value = outcome.get(metric)
    return value if isinstance(value, (int, float)) else None


def evaluate(target: Target, rounds: list[dict[str, Any]], primary: str) -> dict[str, Any]:
    """Per-round ratios (or values) for mvbridge, their median/min/max and met / not met."""
    result: dict[str, Any] = {
        "measure": target.measure,
        "target": target.text,
        "kind": target.kind,
        "unit": target.unit,
        "baseline": target.baseline,
        "system": target.system,
    }
    if target.kind == "na":
        return {**result, "status": "n/a", "reason": target.na}
    values: list[float] = []
    for index in range(len(rounds)):
        mine = _value(rounds, index, target.measure, target.metric or primary, target.system)
        if target.kind in ("absolute", "floor"):
            other: float | None = 1.0
        elif target.kind == "speedup":
            other, mine = mine, _value(rounds, index, "per_item", "ms")
        else:
            outcome = rounds[index]["results"].get(target.measure, {}).get(target.baseline, {})
            other = outcome.get(target.metric or primary)
        if target.kind == "added":
            if mine is not None and isinstance(other, (int, float)):
                values.append(mine - other)
        elif mine is not None and other:
            values.append(mine / other)
    if not values:
        outcome = (
            rounds[0]["results"].get(target.measure, {}).get(target.system, {}) if rounds else {}
        )
        reason = outcome.get("na") or outcome.get("error") or "not measured"
        return {**result, "status": "n/a", "reason": reason}
    mid = statistics.median(values)
    at_most = target.kind in ("at_most", "absolute", "added")
    met = mid <= target.limit if at_most else mid >= target.limit
    return {
        **result,
        "status": "met" if met else "not met",
        "median": mid,
        "min": min(values),
        "max": max(values),
        "rounds": len(values),
        "per_round": values,
    }
