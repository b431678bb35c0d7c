"""In-process calls: the floor, with no process boundary at all."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from ..procs import WORKERS_DIR
from .base import SMALL_ARGS, Call, NotAvailable, System


def _load_benchfuncs() -> ModuleType:
    # Loaded from its file under a private name: putting bench/workers on sys.path would let
    # the host import "benchfuncs" too, which could change how mvbridge passes its objects.
    spec = importlib.util.spec_from_file_location(
        "_bench_inprocess_funcs", WORKERS_DIR / "benchfuncs.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchfuncs = _load_benchfuncs()


class InProcess(System):
    key = "inprocess"
    label = "in-process call (floor)"
    notes = "array echo copies the array there and back: the floor of by-value semantics"

    def noop(self) -> Call:
        return benchfuncs.noop

    def small_args(self) -> Call:
        echo_args = benchfuncs.echo_args
        return lambda: echo_args(*SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        echo = benchfuncs.echo
        return lambda: echo(payload)

    def echo_array(self, array: Any) -> Call:
        echo = benchfuncs.echo
        return lambda: echo(array.copy()).copy()

    def method_call(self) -> Call:
        counter = benchfuncs.Counter()
        return lambda: counter.m(1)

    def thread_caller(self) -> Call:
        return benchfuncs.noop

    def generator(self, n: int) -> Iterable[Any]:
        return benchfuncs.count_up(n)

    def cold_start(self, numpy: bool) -> float:
        raise NotAvailable("no worker process to start")
