"""Soak: many mixed calls, sampling every process's resources; ``python bench/soak.py``.

``--mode local``: 8 threads call one local worker. ``--mode service``: 20 clients (each its
own ``Env``, a session of its own) come and go against a ``mvbridge spawn`` service on
loopback, each ending its session after ``--session-calls`` calls and opening a new one.
Every call is one of: a value round trip, a reference made and read, a callback, a remote
exception, a numpy array round trip, an iteration of a remote generator (counted as one call
each; a reference and an iteration are two and three round trips).

Every ``--interval`` seconds it samples the RSS, threads, open fds and sockets of the host, the
worker(s) and the service, the object tables of both sides, and the ``/dev/shm`` segments of
these processes. It writes the samples (JSON) and an SVG plot, and prints whether each series
stayed within 5 % of its value after warm-up (the first ``--warm-up`` fraction of the run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy

import mvbridge

TOLERANCE = 0.05


class Box:
    """Defined in __main__, so the worker hands it out by reference."""

    def __init__(self, value: int) -> None:
        self.value = value


def make_box(value: int) -> Box:
    return Box(value)


def fail(message: str) -> None:
    raise ValueError(message)


def generate(n: int) -> Any:
    return (i * i for i in range(n))


def call_back(fn: Callable[[int], int], value: int) -> int:
    return fn(value) + 1


def echo(value: Any) -> Any:
    return value


ARRAY = numpy.arange(2048, dtype=numpy.float64)


def one_call(env: mvbridge.Env, index: int) -> None:
    """One of the six kinds of call, by ``index``."""
    kind = index % 6
    if kind == 0:
        value = [index, "text", (1.5, b"bytes"), {"k": None}]
        assert env.call(echo, value) == value
    elif kind == 1:
        assert env.call(make_box, index).value == index
    elif kind == 2:
        assert env.call(call_back, lambda v: v * 2, index) == index * 2 + 1
    elif kind == 3:
        try:
            env.call(fail, "expected")
        except ValueError:
            pass
        else:
            raise AssertionError("no ValueError")
    elif kind == 4:
        assert env.call(echo, ARRAY)[-1] == ARRAY[-1]
    else:
        assert sum(env.call(generate, 20)) == 2470


# -- sampling -------------------------------------------------------------------------------------
def proc_facts(pid: int) -> dict[str, float]:
    """RSS (MB), threads, fds and sockets of ``pid``, from /proc."""
    facts = {"rss_mb": 0.0, "threads": 0.0, "fds": 0.0, "sockets": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                facts["rss_mb"] = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                facts["threads"] = float(line.split()[1])
        fds = os.listdir(f"/proc/{pid}/fd")
        facts["fds"] = float(len(fds))
        sockets = 0
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    sockets += 1
            except OSError:
                pass
        facts["sockets"] = float(sockets)
    except OSError:
        pass
    return facts


def shm_segments(pids: list[int]) -> int:
    from mvbridge.core import sharedmem

    folder = sharedmem.default_dir()
    if folder is None:
        return 0
    prefixes = tuple(f"{sharedmem.PREFIX}{pid}-" for pid in pids)
    return sum(1 for name in os.listdir(folder) if name.startswith(prefixes))


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.done = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.samples: list[dict[str, float]] = []
        self.started = time.monotonic()
        self.stop = threading.Event()

    def count(self, n: int = 1) -> None:
        with self.lock:
            self.done += n

    def take(self) -> int | None:
        """The index of the next call, or None when the budget is spent."""
        with self.lock:
            if self.done >= self.args.calls or self.stop.is_set():
                return None
            self.done += 1
            return self.done

    def sample(self, processes: dict[str, int], tables: dict[str, float]) -> None:
        row: dict[str, float] = {"t": round(time.monotonic() - self.started, 2), "calls": self.done}
        for name, pid in processes.items():
            for key, value in proc_facts(pid).items():
                row[f"{name}.{key}"] = value
        row.update(tables)
        row["shm_segments"] = float(shm_segments(list(processes.values())))
        self.samples.append(row)
        if self.args.verbose:
            print(json.dumps(row), flush=True)


def run_local(soak: Soak) -> None:
    env = mvbridge.Env("soak-local", interpreter=sys.executable)
    worker = env.info.pid
    # The sampling below makes a request when releases are pending: its channel (a worker
    # thread, a socket on each side) opens now, not as a step in the middle of the run.
    env.call(echo, 0)

    def caller() -> None:
        while (index := soak.take()) is not None:
            try:
                one_call(env, index)
            except Exception as exc:  # a soak records failures; it does not stop on one
                soak.errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(soak.args.threads)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        stats = env.statistics()
        soak.sample(
            {"host": os.getpid(), "worker": worker},
            {
                "worker_objects": float(stats.worker_objects),
                "host_objects": float(stats.host_objects),
                "host_proxies": float(stats.host_proxies),
                "host_py_threads": float(threading.active_count()),
            },
        )
        soak.stop.wait(soak.args.interval)
        for thread in threads:
            thread.join(0)
    env.shutdown()


def run_service(soak: Soak) -> None:
    from mvbridge.service.ping import ping
    from tests.helpers import free_port

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(Path(tempfile.gettempdir()) / f"mvbridge-soak-{port}.log", "wb")  # noqa: SIM115
    service = subprocess.Popen(
        [sys.executable, "-m", "mvbridge", "spawn", "--env", "soak", "--interpreter",
         sys.executable, "--address", address, "--insecure", "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    sessions = [0]

    def client(number: int) -> None:
        while not soak.stop.is_set() and soak.done < soak.args.calls:
            env = mvbridge.Env(f"soak-client-{number}", address=address, connect_timeout=30)
            sessions[0] += 1
            try:
                for _ in range(soak.args.session_calls):
                    index = soak.take()
                    if index is None:
                        break
                    try:
                        one_call(env, index)
                    except Exception as exc:
                        soak.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                env.shutdown()

    try:
        facts = ping(address, None, 60)
        while not facts.get("workers_up"):
            time.sleep(0.2)
            facts = ping(address, None, 10)
        threads = [
            threading.Thread(target=client, args=(n,), daemon=True)
            for n in range(soak.args.clients)
        ]
        for thread in threads:
            thread.start()
        while any(t.is_alive() for t in threads):
            facts = ping(address, None, 10)
            processes = {"host": os.getpid(), "service": service.pid}
            for i, pid in enumerate(sorted(facts.get("pids", []))):
                processes[f"worker{i}"] = pid
            soak.sample(
                processes,
                {
                    "service_sessions": float(facts.get("sessions", 0)),
                    "worker_objects": float(facts.get("objects", 0)),
                    "sessions_opened": float(sessions[0]),
                    "host_py_threads": float(threading.active_count()),
                },
            )
            soak.stop.wait(soak.args.interval)
    finally:
        service.terminate()
        service.wait(30)
        log.close()


# -- verdict and plot -----------------------------------------------------------------------------
FLAT_SERIES = ("rss_mb", "threads", "fds", "sockets", "objects", "proxies", "shm_segments")
COUNTERS = ("t", "calls", "sessions_opened")


def verdict(
    samples: list[dict[str, float]], warm_up: float, in_flight: int
) -> dict[str, dict[str, float]]:
    """Per series: its value after warm-up, its last and largest values, and whether it stayed
    within TOLERANCE of the first (counts of objects and proxies within ``in_flight`` either
    way, as each caller may hold one for the call it is in; threads, fds, sockets within 2)."""
    start = max(1, int(len(samples) * warm_up))
    after = samples[start:] or samples[-1:]
    result = {}
    for key in samples[0]:
        if key in COUNTERS or not any(part in key for part in FLAT_SERIES):
            continue
        base = after[0][key]
        values = [row[key] for row in after]
        high = max(values)
        counted = "objects" in key or "proxies" in key
        # Threads, fds and sockets move by one or two with the calls in flight.
        slack = max(TOLERANCE * base, in_flight if counted else 0.0 if "rss" in key else 2.0)
        result[key] = {
            "after_warm_up": round(base, 1),
            "last": round(values[-1], 1),
            "max": round(high, 1),
            "flat": bool(high - base <= slack and base - min(values) <= slack),
        }
    return result


def svg_plot(samples: list[dict[str, float]], title: str, path: Path) -> None:
    """Panels of series over time, each scaled to its own range (a small SVG, no matplotlib)."""
    groups = [key for key in ("rss_mb", "threads", "fds", "sockets") if key in str(samples[0])]
    groups += ["objects", "shm_segments"]
    width, height, cols = 360, 180, 3
    rows = (len(groups) + cols - 1) // cols
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    t_max = max(row["t"] for row in samples) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * width}" '
        f'height="{rows * height + 30}" font-family="sans-serif" font-size="11">',
        f'<text x="8" y="18" font-size="14">{title}</text>',
    ]
    for n, group in enumerate(groups):
        x0, y0 = (n % cols) * width + 45, (n // cols) * height + 40
        w, h = width - 60, height - 45
        keys = [k for k in samples[0] if group in k and k not in COUNTERS]
        values = [row[k] for row in samples for k in keys] or [0.0]
        low, high = min(values), max(values)
        low, high = (low * 0.95, high * 1.05) if high > low else (low - 1, high + 1)
        frame = f'x="{x0}" y="{y0}" width="{w}" height="{h}"'
        parts.append(f'<rect {frame} fill="none" stroke="#999"/>')
        parts.append(f'<text x="{x0}" y="{y0 - 4}">{group}</text>')
        parts.append(f'<text x="{x0 - 4}" y="{y0 + 10}" text-anchor="end">{high:.0f}</text>')
        parts.append(f'<text x="{x0 - 4}" y="{y0 + h}" text-anchor="end">{low:.0f}</text>')
        parts.append(f'<text x="{x0 + w}" y="{y0 + h + 12}" text-anchor="end">{t_max:.0f} s</text>')
        for c, key in enumerate(keys):
            scale = h / (high - low)
            points = " ".join(
                f"{x0 + w * row['t'] / t_max:.1f},{y0 + h - scale * (row[key] - low):.1f}"
                for row in samples
            )
            colour = colours[c % len(colours)]
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}"/>')
            parts.append(f'<text x="{x0 + 4}" y="{y0 + 12 + 11 * c}" fill="{colour}">{key}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["local", "service"], default="local")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--session-calls", type=int, default=500)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--warm-up", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--plot", type=Path, default=None, help="SVG path (default: in --out)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    soak = Soak(args)
    (run_local if args.mode == "local" else run_service)(soak)
    seconds = time.monotonic() - soak.started
    in_flight = args.threads if args.mode == "local" else args.clients
    flat = verdict(soak.samples, args.warm_up, in_flight)
    summary = {
        "mode": args.mode,
        "calls": soak.done,
        "seconds": round(seconds, 1),
        "calls_per_second": round(soak.done / seconds),
        "errors": len(soak.errors),
        "first_errors": soak.errors[:5],
        "series": flat,
        "all_flat": all(entry["flat"] for entry in flat.values()),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"soak-{args.mode}.json").write_text(
        json.dumps({"summary": summary, "samples": soak.samples}, indent=1) + "\n"
    )
    plot = args.plot or args.out / f"soak-{args.mode}.svg"
    svg_plot(soak.samples, f"mvbridge soak ({args.mode}): {soak.done:,} calls in "
             f"{seconds:.0f} s", plot)  # fmt: skip
    print(json.dumps(summary, indent=1))
    return 0 if summary["all_flat"] and not soak.errors else 1


if __name__ == "__main__":
    sys.exit(main())
