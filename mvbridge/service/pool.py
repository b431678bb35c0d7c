"""The worker processes behind a service: started, watched, replaced when they die.

Internal. Each worker runs the env's interpreter on the private runtime with ``--service``, in
a process session of its own (a Ctrl-C or a SIGTERM sent to the service's process group must
not kill calls the service is draining), and with the parent-death pipe of every local worker,
so none outlives the service. A worker that keeps dying right after start is restarted with a
growing delay.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bridge.supervisor import WorkerProcess

logger = logging.getLogger("mvbridge.service")

RESTART_DELAY_MIN = 0.5
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 10.0  # a worker up this long resets the restart delay


@dataclass
class PoolWorker:
    """One worker process of the pool.

    Attributes:
        index: its slot in the pool (0..N-1), kept by its replacements.
        process: the process.
        facts: what it reported when it came up (None until then).
        sessions: ids of the sessions it holds.
    """

    index: int
    process: WorkerProcess
    started_at: float = field(default_factory=time.monotonic)
    facts: dict[str, Any] | None = None
    sessions: set[bytes] = field(default_factory=set)

    @property
    def ident(self) -> bytes:
        """Its routing id at the router (``workers/server.py`` sets it from its pid)."""
        return b"w%d" % self.process.pid

    @property
    def up(self) -> bool:
        return self.facts is not None and self.process.exit_code() is None


class Pool:
    """N workers of one env, reachable by the router at ``backend``."""

    def __init__(
        self,
        env_name: str,
        interpreter: str,
        runtime: Path,
        backend: str,
        size: int,
        cleanup_dir: Path | None = None,
    ) -> None:
        self.env_name = env_name
        self.interpreter = interpreter
        self.runtime = runtime
        self.backend = backend
        self.size = size
        self.cleanup_dir = cleanup_dir  # the service's private folder, if it is killed outright
        self.workers: dict[int, PoolWorker] = {}
        self._restart_at: dict[int, float] = {}
        self._delay: dict[int, float] = {}
        self.sink: Any = None  # where workers' output goes (None: our stdout/stderr)

    def start(self) -> None:
        for index in range(self.size):
            self._start(index)

    def _start(self, index: int) -> PoolWorker:
        process = WorkerProcess(
            self.env_name,
            self.interpreter,
            self.runtime,
            ["--service", self.backend]
            + (["--cleanup-dir", str(self.cleanup_dir)] if self.cleanup_dir else []),
            own_session=True,
            sink=self.sink,
            log_warnings=True,
        )
        worker = self.workers[index] = PoolWorker(index, process)
        return worker

    def by_ident(self, ident: bytes) -> PoolWorker | None:
        for worker in self.workers.values():
            if worker.ident == ident:
                return worker
        return None

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers.values() if w.process.exit_code() is None]

    def all_up(self) -> bool:
        return len(self.workers) == self.size and all(w.up for w in self.workers.values())

    def least_loaded(self) -> PoolWorker | None:
        """The live worker holding the fewest sessions (new sessions go there)."""
        up = [w for w in self.workers.values() if w.up]
        return min(up, key=lambda w: (len(w.sessions), w.index)) if up else None

    def reap(self, now: float) -> list[tuple[PoolWorker, int]]:
        """Workers that have exited since the last look, with their exit codes; schedules
        their replacements (started by ``restart_due``)."""
        dead = []
        for index, worker in list(self.workers.items()):
            code = worker.process.exit_code()
            if code is None:
                continue
            del self.workers[index]
            worker.process.stop()
            dead.append((worker, code))
            delay = self._delay.get(index, 0.0)
            if now - worker.started_at > STABLE_AFTER:
                delay = 0.0
            self._delay[index] = min(RESTART_DELAY_MAX, max(RESTART_DELAY_MIN, delay * 2))
            self._restart_at[index] = now + (delay if delay else 0.0)
            if delay:
                logger.warning(
                    "worker %d died again within %.0f s of its start; next start in %.1f s",
                    index,
                    STABLE_AFTER,
                    delay,
                    extra={"event": "worker-backoff", "worker": index},
                )
        return dead

    def restart_due(self, now: float) -> list[PoolWorker]:
        """Start the replacements whose time has come."""
        started = []
        for index, when in list(self._restart_at.items()):
            if when <= now:
                del self._restart_at[index]
                started.append(self._start(index))
        return started

    def stop(self, timeout: float) -> None:
        """Wait up to ``timeout`` for every worker to exit (they were told to), then make them."""
        give_up = time.monotonic() + timeout
        for worker in self.workers.values():
            worker.process.wait_exit(max(0.0, give_up - time.monotonic()))
        for worker in self.workers.values():
            worker.process.stop()
        self.workers.clear()
