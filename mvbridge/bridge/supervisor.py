"""Start and stop local worker processes; forward their output; never leave orphans.

Internal. Each worker gets the read end of a pipe whose write end only this process holds: when
the host dies, even by SIGKILL, the worker reads EOF and exits. Its stdout and stderr are
forwarded to this process's ``sys.stdout``/``sys.stderr``; the tail of stderr is kept for errors.
Log records and warnings the worker writes on its stderr are replayed here (``records.py``).
"""

from __future__ import annotations

import codecs
import collections
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..core import protocol as P
from ..errors import WorkerStartError
from .records import RecordReader

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 3.0  # SHUTDOWN, then terminate, then kill, each waits this long at most
_STRIPPED_ENV = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "__PYVENV_LAUNCHER__",
)


class WorkerProcess:
    """One local worker process."""

    def __init__(
        self,
        env_name: str,
        python: str,
        runtime: Path,
        endpoints: list[str],
        own_session: bool = False,
        sink: Callable[[str, str, int], None] | None = None,
        log_warnings: bool = False,
    ) -> None:
        """Start ``python`` on the runtime's ``boot.py``.

        Args:
            endpoints: the worker's transport arguments (``--control``/``--channels`` for a
                local worker, ``--service`` for one behind a service).
            own_session: start it in a session of its own, so that a Ctrl-C or a signal to
                our process group does not reach it (a service drains its workers itself).
            sink: takes ``(stream name, text, pid)`` of the worker's output instead of our
                ``sys.stdout``/``sys.stderr`` (a service that logs JSON wraps it).
            log_warnings: replay the worker's warnings as log records, not as warnings (a
                service, where no caller is there to see them).
        """
        self.env_name = env_name
        self.python = python
        read_fd, self._watch_fd = os.pipe()
        environ = {k: v for k, v in os.environ.items() if k not in _STRIPPED_ENV}
        command = [
            python,
            "-u",
            str(runtime / "boot.py"),
            *endpoints,
            "--protocol",
            str(P.PROTOCOL_VERSION),
            "--watch-fd",
            str(read_fd),
            "--parent-pid",
            str(os.getpid()),
        ]
        try:
            self.popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(read_fd,),
                env=environ,
                start_new_session=own_session,
            )
        except OSError as exc:
            os.close(self._watch_fd)
            raise WorkerStartError(
                f"could not start the worker for env {env_name!r} with {python}: {exc}",
                env=env_name,
                exit_code=None,
                stderr_tail="",
            ) from exc
        finally:
            os.close(read_fd)
        self.pid = self.popen.pid
        # Readable once the process has ended: `running` asks it before every call, `wait_exit`
        # waits on it (no polling interval). None where the kernel or Python has no pidfd.
        self._exit_fd: int | None = _pidfd(self.pid)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        self._forwarders = [
            _forward(self.popen.stdout, "stdout", None, self.pid, sink),
            _forward(
                self.popen.stderr,
                "stderr",
                self.stderr_tail,
                self.pid,
                sink,
                RecordReader(env_name, self.pid, log_warnings=log_warnings),
            ),
        ]

    def exit_code(self) -> int | None:
        """The exit code (negative: killed by that signal), or None while it runs."""
        return self.popen.poll()

    def running(self) -> bool:
        """True while the process runs: one system call on the pidfd, which is what a call
        through a module proxy asks first (``Popen.poll`` costs five Python calls and a lock)."""
        ended = self._ended(0)
        return self.popen.poll() is None if ended is None else not ended

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the process to end; its exit code or None."""
        code = self.popen.poll()
        if code is not None:
            return code
        # The pidfd wakes us the moment the process ends, where Popen.wait(timeout) sleeps in
        # growing steps of up to 50 ms: most of what a script's exit paid for its worker.
        ended = self._ended(timeout)
        if ended is not None:
            return self.popen.wait() if ended else None  # it has ended: reaped at once
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _ended(self, timeout: float) -> bool | None:
        """Whether the process ends within ``timeout``, by its pidfd; None without one."""
        fd = self._exit_fd
        if fd is None:
            return None
        try:
            return bool(select.select([fd], [], [], timeout)[0])
        except (OSError, ValueError):  # closed by stop() meanwhile
            return None

    def stderr_text(self, drain_timeout: float = 1.0) -> str:
        """The tail of the worker's stderr, after its output has been read to the end."""
        self._forwarders[1].join(drain_timeout)
        return "".join(self.stderr_tail)

    def stop(self) -> int | None:
        """Make sure the process has ended: terminate, then kill. Returns its exit code."""
        code = self.wait_exit(STOP_TIMEOUT) if self.exit_code() is None else self.exit_code()
        if code is None:
            self.popen.terminate()
            code = self.wait_exit(STOP_TIMEOUT)
        if code is None:
            self.popen.kill()
            code = self.wait_exit(STOP_TIMEOUT)
        self.close_pipe()
        for thread in self._forwarders:
            thread.join(1.0)
        return code

    def close_pipe(self) -> None:
        if self._watch_fd >= 0:
            os.close(self._watch_fd)
            self._watch_fd = -1
        fd = self._exit_fd
        if fd is not None and self.popen.returncode is not None:  # until reaped, still used
            self._exit_fd = None
            os.close(fd)


def start_local(env_name: str, python: str, runtime: Path) -> tuple[WorkerProcess, Path]:
    """Start a local worker on ipc sockets in a private folder (made by ``mkdtemp``, mode
    0700, so only this user connects); the process and the folder.

    This module imports neither pyzmq nor the codec: a host starts its worker first and
    imports those while the worker boots.
    """
    ipc_dir = Path(tempfile.mkdtemp(prefix="mvb-"))
    try:
        process = WorkerProcess(
            env_name,
            python,
            runtime,
            [
                "--control",
                f"ipc://{ipc_dir}/ctl",
                "--channels",
                f"ipc://{ipc_dir}/ch",
                "--cleanup-dir",  # the worker removes it if we are killed outright
                str(ipc_dir),
            ],
        )
    except BaseException:
        shutil.rmtree(ipc_dir, ignore_errors=True)
        raise
    return process, ipc_dir


def _pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)  # Linux 5.3+, Python 3.9+
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except OSError:  # an old kernel, or the process has been reaped already
        return None


def describe_exit(code: int | None) -> str:
    """Human words for an exit code: 'exited with code 1', 'was killed by SIGKILL'."""
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _forward(
    pipe: object,
    stream_name: str,
    tail: collections.deque[str] | None,
    pid: int,
    sink: Callable[[str, str, int], None] | None,
    reader: RecordReader | None = None,
) -> threading.Thread:
    def write(text: str) -> None:
        if tail is not None:
            tail.extend(text.splitlines(keepends=True))
        if sink is not None:
            sink(stream_name, text, pid)
            return
        target: TextIO | None = getattr(sys, stream_name, None)
        if target is not None:
            try:
                target.write(text)
                target.flush()
            except (OSError, ValueError):
                pass  # our own stream closed: keep draining the worker's

    # The worker's log records and warnings come on its stderr (records.py); the rest is output.
    if reader is not None:
        reader.write = write

    def run() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        fd = pipe.fileno()  # type: ignore[attr-defined]
        try:
            while True:
                chunk = os.read(fd, 65536)
                text = decoder.decode(chunk, final=not chunk)
                if text:
                    if reader is not None:
                        reader.feed(text)
                    else:
                        write(text)
                if not chunk:
                    break
        finally:
            if reader is not None:
                reader.close()
            pipe.close()  # type: ignore[attr-defined]

    thread = threading.Thread(target=run, name=f"mvbridge-{stream_name}-{pid}", daemon=True)
    thread.start()
    return thread
