"""Where a small call's time goes, and what raw pyzmq itself costs: ``python bench/floors.py``.

Three experiments, each alternating its variants round by round (the machine is shared):

1. **CPU split.** CPU time per no-op call of every thread of host and worker (from
   ``/proc/<pid>/task/*/stat``), raw pyzmq against mvbridge's local worker: the Python threads
   and ZeroMQ's I/O threads apart. This is the profile of both processes together that says
   how much of the gap is Python work per message and how much is transport.
2. **Receive patterns on raw pyzmq** (issue 11, point 6): a worker thread that blocks in
   ``recv``, polls first (``socket.poll``, or ``zmq_poll`` with items made once), or receives
   with ``RCVTIMEO``. mvbridge's worker must wake up now and then to look at stop flags.
3. **The service's hop.** Raw pyzmq over TCP + CURVE straight to the worker, and through a
   relay process (a Python ROUTER-DEALER loop, which is what ``mvbridge spawn``'s router is
   on the data path, or libzmq's ``zmq_proxy``: the floor of a data path without Python),
   against mvbridge's service.

Results go to ``bench/results/floors.md`` (``--out``). Runs in the benchmark's host venv like
``run.py`` (``python bench/run.py`` builds it), or in any venv with mvbridge, pyzmq and msgpack.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the bench package from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack
import zmq

from bench import envs

Call = Callable[[], Any]
READY_TIMEOUT_MS = 30_000
WORKER = Path(__file__).with_name("workers") / "floor_worker.py"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds so far of each thread of ``pid``, keyed ``python`` (every Python thread) or
    ``io`` (ZeroMQ's I/O threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"python": 0.0, "io": 0.0}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        used = (int(fields[11]) + int(fields[12])) / ticks
        out["io" if name.startswith("ZMQbg") else "python"] += used
    return out


def measure(call: Call, worker_pid: int, calls: int) -> dict[str, float]:
    """Median latency and CPU per call (µs) of every thread group of host and worker."""
    for _ in range(300):
        call()
    host0, worker0 = thread_cpu(os.getpid()), thread_cpu(worker_pid)
    clock = time.perf_counter
    durations = []
    for _ in range(calls):
        started = clock()
        call()
        durations.append(clock() - started)
    host1, worker1 = thread_cpu(os.getpid()), thread_cpu(worker_pid)
    per_call = 1e6 / calls
    return {
        "median_us": statistics.median(durations) * 1e6,
        "host_py": (host1["python"] - host0["python"]) * per_call,
        "host_io": (host1["io"] - host0["io"]) * per_call,
        "worker_py": (worker1["python"] - worker0["python"]) * per_call,
        "worker_io": (worker1["io"] - worker0["io"]) * per_call,
    }


class RawWorker:
    """``workers/floor_worker.py`` in one of its modes, and a DEALER connected to it."""

    def __init__(self, mode: str, curve: bool = False) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mvb-floor-"))
        self.context = zmq.Context()
        command = [sys.executable, str(WORKER), mode, str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.process.stdout is not None
        address, server_public = self.process.stdout.readline().split()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVTIMEO, READY_TIMEOUT_MS)
        if curve:
            public, secret = zmq.curve_keypair()
            self.socket.curve_serverkey = server_public.encode()
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        self.socket.connect(address)
        self.pid = int(self.process.stdout.readline())  # the process that serves the calls
        message = msgpack.packb("noop")

        def call() -> Any:
            self.socket.send(message)
            return msgpack.unpackb(self.socket.recv())

        self.call = call

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()
        os.killpg(self.process.pid, signal.SIGKILL)  # a relay's own worker with it
        self.process.wait(10)
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()


def rounds_of(
    variants: dict[str, Callable[[], tuple[Call, int, Callable[[], None]]]],
    rounds: int,
    calls: int,
) -> dict[str, dict[str, float]]:
    """Each variant measured once a round, variants alternating; medians over rounds."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, start in variants.items():
            call, pid, stop = start()
            try:
                results[name].append(measure(call, pid, calls))
            finally:
                stop()
    return {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
    }


def raw(mode: str, curve: bool = False) -> Callable[[], tuple[Call, int, Callable[[], None]]]:
    def start() -> tuple[Call, int, Callable[[], None]]:
        worker = RawWorker(mode, curve)
        return worker.call, worker.pid, worker.close

    return start


def mvbridge_local() -> tuple[Call, int, Callable[[], None]]:
    import mvbridge

    env = mvbridge.Env("floors", interpreter=str(envs.WORKER_PYTHON))
    env.start()
    noop = env.import_module("benchfuncs").noop
    process = env.session().process
    assert process is not None
    return noop, process.pid, env.shutdown


def mvbridge_service() -> tuple[Call, int, Callable[[], None]]:
    from bench.systems.mvbridge_spawn import MvbridgeSpawn

    system = MvbridgeSpawn()
    system.start()
    assert system.process is not None
    return system.funcs.noop, system.process.pid, system.stop


COLUMNS = ["median_us", "host_py", "host_io", "worker_py", "worker_io"]
HEADERS = [
    "median round trip",
    "host Python threads",
    "host I/O thread",
    "worker Python threads",
    "worker I/O thread(s)",
]


def table(title: str, results: dict[str, dict[str, float]], note: str) -> list[str]:
    lines = [f"### {title}", "", note, "", "| variant | " + " | ".join(HEADERS) + " |"]
    lines.append("|---|" + "---|" * len(HEADERS))
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.1f}" for c in COLUMNS) + " |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000, help="per variant and round")
    parser.add_argument("--out", default=str(envs.BENCH_DIR / "results" / "floors.md"))
    args = parser.parse_args(argv)
    envs.ensure_worker_venv(print)
    command = " ".join(["python bench/floors.py", *(argv or sys.argv[1:])])
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    lines = [
        f"Run of {started}, `{command}`: {args.rounds} rounds of {args.calls} no-op calls per"
        " variant. Every figure is a median over rounds, in µs: the round trip, and CPU time"
        " per call of each group of threads (from /proc). The machine is shared: compare rows"
        " of one table, not tables of different runs.",
        "",
    ]
    split = rounds_of(
        {"raw pyzmq (DEALER pair, ipc)": raw("block"), "mvbridge local worker": mvbridge_local},
        args.rounds,
        args.calls,
    )
    lines += table(
        "CPU per no-op call, both processes",
        split,
        "Host: `module.noop()` through a module proxy; raw: `send` + `recv` of msgpack.",
    )
    patterns = rounds_of(
        {
            "blocking recv": raw("block"),
            "socket.poll(100), then recv": raw("poll"),
            "zmq_poll with items made once, then recv": raw("zpoll"),
            "recv with RCVTIMEO = 100 ms": raw("timeo"),
        },
        args.rounds,
        args.calls,
    )
    lines += table(
        "Raw pyzmq: how the worker thread waits for a request",
        patterns,
        "The same raw worker, four ways of waiting; only the worker's Python thread differs.",
    )
    hops = rounds_of(
        {
            "raw, TCP + CURVE, direct": raw("curve", curve=True),
            "raw, TCP + CURVE, through a Python relay": raw("relay", curve=True),
            "raw, TCP + CURVE, through a C relay (zmq_proxy)": raw("cproxy", curve=True),
            "mvbridge spawn (service)": mvbridge_service,
        },
        args.rounds,
        args.calls,
    )
    lines += table(
        "The service's hop: TCP + CURVE, direct and through a relay",
        hops,
        "Worker columns are the process that serves the calls (for the relay and the service,"
        " the relay or router process: its Python and I/O threads are the hop's cost).",
    )
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
