"""mvbridge with a local worker: ``mvbridge.Env(interpreter=...)`` on a plain venv with numpy.

The worker venv (``bench/.venv-worker``) has numpy and the bench functions (``benchfuncs``,
``benchfuncs_np``) in its site-packages, nothing else: mvbridge brings its own runtime.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import Any

from .. import envs
from .base import SMALL_ARGS, Call, System, time_script
from .mvbridge_sync import DemoSync

IMPORT_TIMEOUT = 60.0
_IMPORT_SCRIPT = (
    "import sys, time; t = time.perf_counter(); import mvbridge; "
    "print(time.perf_counter() - t, *sorted(m for m in ('zmq', 'msgpack', 'cloudpickle', "
    "'numpy', 'mvbridge.bridge') if m in sys.modules))"
)


class MvbridgeLocal(System):
    key = "mvbridge"
    label = "mvbridge, local worker"
    notes = "Env(interpreter=venv with numpy); module proxies; arrays by value"

    def __init__(self) -> None:
        self.env: Any = None
        self._names = itertools.count(1)
        self.heavy_imports: list[str] = []
        self.cold_extra: dict[str, float] = {}
        self._demo: DemoSync | None = None

    def cannot_run(self) -> str | None:
        if not envs.WORKER_PYTHON.exists():
            return f"the worker venv {envs.WORKER_VENV} is missing"
        try:
            import mvbridge  # noqa: F401
        except ImportError as exc:
            return f"cannot import mvbridge: {exc}"
        return None

    def start(self) -> None:
        import mvbridge

        self.use(mvbridge.Env("bench", interpreter=str(envs.WORKER_PYTHON)))

    def use(self, env: Any) -> None:
        """Start ``env`` and take the bench functions from it."""
        self.env = env
        self.env.start()
        self.funcs = self.env.import_module("benchfuncs")
        self.funcs_np = self.env.import_module("benchfuncs_np")

    def stop(self) -> None:
        if self.env is not None:
            self.env.shutdown()
            self.env = None
        if self._demo is not None:
            self._demo.cleanup()
            self._demo = None

    def noop(self) -> Call:
        return self.funcs.noop

    def small_args(self) -> Call:
        echo_args = self.funcs.echo_args
        return lambda: echo_args(*SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        echo = self.funcs.echo
        return lambda: echo(payload)

    def echo_array(self, array: Any) -> Call:
        echo = self.funcs_np.echo
        return lambda: echo(array)

    def method_call(self) -> Call:
        counter = self.funcs.Counter()
        return lambda: counter.m(1)

    def thread_caller(self) -> Call:
        return self.funcs.noop  # each host thread gets its own channel

    def generator(self, n: int) -> Iterable[Any]:
        return self.funcs.count_up(n)

    def next_per_item(self, n: int) -> Call:
        remote_generator = self.funcs.count_up(n)
        return lambda: next(remote_generator)

    def cold_start(self, numpy: bool) -> float:
        import mvbridge
        from mvbridge.bridge import runtime

        # A fresh host pays the interpreter probe once per interpreter; mvbridge caches it
        # per process, so forget it to measure what a newly started application sees.
        clear = getattr(runtime.interpreter_facts, "cache_clear", None)
        if clear is not None:
            clear()
        started = time.perf_counter()
        # The probe Env's first start runs anyway, timed on its own to show its share.
        runtime.interpreter_facts(str(envs.WORKER_PYTHON))
        self.cold_extra = {"probe_ms": (time.perf_counter() - started) * 1e3}
        env = mvbridge.Env(f"bench-cold-{next(self._names)}", interpreter=str(envs.WORKER_PYTHON))
        try:
            env.import_module("benchfuncs_np" if numpy else "benchfuncs").noop()
            return time.perf_counter() - started
        finally:
            env.shutdown()

    def startup(self) -> tuple[float, float]:
        script = envs.BENCH_DIR / "workers" / "startup_mvbridge.py"
        return time_script([sys.executable, str(script), str(envs.WORKER_PYTHON)])

    def demo_sync(self) -> DemoSync:
        if self._demo is None:
            self._demo = DemoSync()
        self._demo.warm_up()
        return self._demo

    def import_time(self) -> float:
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_SCRIPT],
            capture_output=True,
            text=True,
            timeout=IMPORT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=True,
        )
        seconds, *self.heavy_imports = done.stdout.split()
        return float(seconds)
