"""Start and stop the benchmark's worker processes: readiness line, timeouts, no orphans."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
from pathlib import Path

WORKERS_DIR = Path(__file__).resolve().parent / "workers"
READY_TIMEOUT = 60.0  # a worker must print its ready line within this
STOP_TIMEOUT = 3.0  # each of: wait, terminate, kill


class WorkerError(RuntimeError):
    """A worker process did not come up or stopped answering."""


class Worker:
    """One worker script (``bench/workers/NAME.py``) in its own process.

    Args:
        script: file name in ``bench/workers/``.
        args: extra command-line arguments.
        pass_fds: inherited file descriptors (pipe ends).
        wait_ready: wait for the worker's ready line before returning.
    """

    def __init__(
        self,
        script: str,
        args: list[str],
        pass_fds: tuple[int, ...] = (),
        wait_ready: bool = True,
    ) -> None:
        self.script = script
        # The worker's stderr, kept for error messages; closed by stop().
        self.log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the worker)
        command = [
            sys.executable,
            str(WORKERS_DIR / script),
            *args,
            "--parent-pid",
            str(os.getpid()),
        ]
        self.popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
            pass_fds=pass_fds,
        )
        self.ready_line = ""
        if wait_ready:
            self.ready_line = self.read_line(READY_TIMEOUT)

    def read_line(self, timeout: float) -> str:
        """The next line the worker prints on stdout.

        Raises:
            WorkerError: none came within ``timeout`` or the worker exited.
        """
        assert self.popen.stdout is not None
        fd = self.popen.stdout.fileno()
        readable, _, _ = select.select([fd], [], [], timeout)
        line = self.popen.stdout.readline().decode() if readable else ""
        if not line:
            self.popen.kill()
            self.popen.wait(STOP_TIMEOUT)
            tail = self.stderr_tail()
            self.stop()
            raise WorkerError(f"{self.script} did not start: {tail}")
        return line.strip()

    def stderr_tail(self) -> str:
        """The end of the worker's stderr."""
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return text[-800:] or f"(no stderr; exit code {self.popen.poll()})"

    def stop(self, asked: bool = False) -> int | None:
        """End the process: terminate, then kill (after a wait if it was ``asked`` to exit).

        Returns:
            its exit code, or None if it survived SIGKILL for ``STOP_TIMEOUT``.
        """
        code = None
        for action in (None, self.popen.terminate, self.popen.kill):
            if action is None and not asked:
                continue
            if action is not None and self.popen.poll() is None:
                action()
            try:
                code = self.popen.wait(STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                pass
        if self.popen.stdout is not None:
            self.popen.stdout.close()
        self.log.close()
        return code


def ipc_dir() -> Path:
    """A private (0700) directory for one worker's sockets."""
    return Path(tempfile.mkdtemp(prefix="mvb-bench-"))
