"""Progress of the command line on stderr: a live table of envs on a terminal, lines otherwise.

Host-only (the worker half never imports it). Off a terminal (CI, a pipe, a log file) every
step is one ``mvbridge: ...`` line, as scripts and tests read them. On a terminal, while
``live_envs()`` is active, each env gets one row that shows its latest step and the time it
has taken so far, redrawn four times a second; other messages print above the table. rich
draws it; without rich, or with ``MVBRIDGE_PLAIN=1``, the lines are used everywhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

_ENV_STEP = re.compile(r"^env '([^']+)': (.*)$", re.S)
_live: _EnvTable | None = None


def progress(message: str) -> None:
    """One step of a long operation (a build): a row of the live table, or a line."""
    table = _live
    if table is not None:
        table.update(message)
    else:
        print(f"mvbridge: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def live_envs() -> Iterator[None]:
    """Show env steps as a live table while the block runs (on a terminal, with rich)."""
    global _live
    if not sys.stderr.isatty() or os.environ.get("MVBRIDGE_PLAIN") or _live is not None:
        yield
        return
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:
        yield
        return
    table = _EnvTable()
    with Live(table, console=Console(stderr=True), refresh_per_second=4) as live:
        table.console = live.console
        _live = table
        try:
            yield
        finally:
            _live = None


class _EnvTable:
    """Env name -> (latest step, when its first step came, when it finished or None)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self.console: Any = None

    def update(self, message: str) -> None:
        found = _ENV_STEP.match(message)
        if found is None:
            self.console.print(f"mvbridge: {message}", highlight=False, markup=False)
            return
        name, step = found.groups()
        now = time.monotonic()
        with self.lock:
            row = self.rows.setdefault(name, [step, now, None])
            row[0] = step
            if step.startswith("ready in"):
                row[2] = now

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("env", style="bold")
        table.add_column("step")
        table.add_column("time", justify="right")
        now = time.monotonic()
        with self.lock:
            rows = list(self.rows.items())
        for name, (step, started, finished) in rows:
            elapsed = (finished or now) - started
            table.add_row(name, step.splitlines()[0][:100], f"{elapsed:5.1f} s")
        return table
