"""Run mvbridge's benchmark suite: ``python bench/run.py [--quick]``.

Builds (once, cached) the benchmark's virtualenvs, then reruns itself inside ``.venv-host``
under a hard timeout, runs interleaved rounds of every measure on every system, and writes
``bench/results/latest.{md,json}`` (``quick.*`` with ``--quick``). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import faulthandler
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable as a package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import envs
from bench.harness import Limits

FULL = {"rounds": 7, "budget": 1500.0}  # a round takes 1-2 min, its first one more
QUICK = {"rounds": 2, "budget": 60.0}
QUICK_LIMITS = Limits(
    slices=3,
    latency_calls=1000,
    latency_seconds=0.2,
    bulk_calls=100,
    bulk_seconds=0.2,
    huge_reps=3,
    huge_seconds=0.5,
    threads_seconds=0.25,
    generator_seconds=0.5,
    per_item_calls=500,
    array_bytes=10_000_000,  # RPyC alone takes ~50 s per 100 MB round trip
)
# The measuring process is stopped past its budget and this much more, workers and all: a
# round that starts inside the budget runs to its end, and the report is written after it.
HARD_TIMEOUT_SLACK = 300.0
_STARTED_VAR = "MVBRIDGE_BENCH_STARTED"


def log(message: str) -> None:
    """Progress on stderr, with seconds since the run began."""
    started = float(os.environ.get(_STARTED_VAR, "0") or 0) or time.time()
    sys.stderr.write(f"[{time.time() - started:6.1f}s] {message}\n")
    sys.stderr.flush()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7, quick 2)")
    parser.add_argument("--budget", type=float, help="seconds the rounds may take in all")
    parser.add_argument("--systems", default="", help="comma-separated system keys (default all)")
    parser.add_argument("--measures", default="", help="comma-separated measure keys (default all)")
    parser.add_argument("--out", type=Path, default=envs.BENCH_DIR / "results")
    parser.add_argument("--name", help="output file stem (default latest, quick with --quick)")
    parser.add_argument("--timeout", type=float, help="hard limit, s (default: budget + 300)")
    parser.add_argument(
        "--update-docs", action="store_true", help="paste the table into docs/performance.md"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = (QUICK if args.quick else FULL)["budget"]
    if args.timeout is None:
        args.timeout = args.budget + HARD_TIMEOUT_SLACK
    return args


def outer(argv: list[str], args: argparse.Namespace) -> int:
    """Build the venvs, then run the suite in ``.venv-host`` under a hard timeout."""
    try:
        envs.ensure_host_venv(log)
        envs.ensure_worker_venv(log)
        envs.compile_checkout()
    except envs.SetupError as exc:
        log(f"setup failed: {exc}")
        return 2
    envs.ignore_dir(envs.CACHE_DIR)
    environ = {**os.environ, "MVBRIDGE_CACHE_DIR": str(envs.CACHE_DIR)}
    command = [str(envs.HOST_PYTHON), str(Path(__file__).resolve()), "--inner", *argv]
    process = subprocess.Popen(command, env=environ, stdin=subprocess.DEVNULL)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # handled below: the suite is asked to stop too

    signal.signal(signal.SIGTERM, on_term)
    try:
        return process.wait(args.timeout)
    except subprocess.TimeoutExpired:
        log(f"the run passed its {args.timeout:.0f} s limit; stopping it")
        return _end(process, signal.SIGTERM, 124)
    except KeyboardInterrupt:
        return _end(process, signal.SIGTERM, 130)


def _end(process: subprocess.Popen[bytes], sig: int, code: int) -> int:
    """Ask the suite to stop (it stops its workers), then kill it if it does not."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    return code


def inner(args: argparse.Namespace) -> int:
    """Run the suite (inside ``.venv-host``) and write the results."""
    from bench import suite

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(143)  # unwinds through the suite, which stops every worker

    signal.signal(signal.SIGTERM, on_term)
    faulthandler.dump_traceback_later(max(30.0, args.timeout - 30.0), exit=False)
    preset = QUICK if args.quick else FULL
    config = suite.SuiteConfig(
        rounds=args.rounds or int(preset["rounds"]),
        limits=QUICK_LIMITS if args.quick else Limits(),
        budget=args.budget,
        systems=tuple(key for key in args.systems.split(",") if key),
        measures=tuple(key for key in args.measures.split(",") if key),
    )
    log(
        f"suite: {config.rounds} rounds, budget {config.budget:.0f} s, "
        f"Python {platform.python_version()}"
    )
    raw: dict[str, Any] = {"systems": [], "rounds": [], "stopped_early": ""}
    error = ""
    try:
        suite.run(config, log, raw)
    except Exception as exc:  # a bug of the suite: write what was measured, say so
        error = f"{type(exc).__name__}: {exc}"
        log(f"the suite stopped: {error}")
    except BaseException:
        log("interrupted: workers stopped, no results written")
        raise
    finally:
        faulthandler.cancel_dump_traceback_later()
    if raw["rounds"]:
        _write(args, config, raw, error)
    return 1 if error or not raw["rounds"] else 0


def _write(args: argparse.Namespace, config: Any, raw: dict[str, Any], error: str) -> None:
    from bench import facts, report
    from bench.measures import MEASURES

    started = float(os.environ.get(_STARTED_VAR, "0") or 0) or time.time()
    data: dict[str, Any] = {
        "meta": facts.collect(),
        "config": {
            "rounds_planned": config.rounds,
            "budget_s": config.budget,
            "quick": args.quick,
            "seed": config.seed,
            "limits": dataclasses.asdict(config.limits),
            "total_seconds": time.time() - started,
        },
        "measures": [
            {
                "key": m.key,
                "title": m.title,
                "primary": m.primary,
                "better": m.better,
                "baseline": m.baseline,
            }
            for m in MEASURES
        ],
        **raw,
        "error": error,
    }
    data["summary"] = report.summarize(data)
    data["peers"] = report.compare_peers(data)
    data["targets"] = report.evaluate_targets(data)
    name = args.name or ("quick" if args.quick else "latest")
    for path in report.write(data, args.out, name):
        log(f"wrote {path}")
    if args.update_docs:
        page = envs.REPO_DIR / "docs" / "performance.md"
        if report.update_docs(page, report.markdown(data)):
            log(f"updated {page}")
        else:
            log(f"{page} has no results block to update")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault(_STARTED_VAR, str(time.time()))
    args = parse(argv)
    if args.inner:
        return inner(args)
    if envs.in_host_venv():  # already inside: no rebuild, no re-exec
        os.environ.setdefault("MVBRIDGE_CACHE_DIR", str(envs.CACHE_DIR))
        return inner(args)
    return outer(argv, args)


if __name__ == "__main__":
    sys.exit(main())
