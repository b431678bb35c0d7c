"""An inter-process file lock that dies with its holder, and atomic build-aside helpers.

Internal. The lock is ``filelock``'s (an ``flock`` on POSIX, ``msvcrt.locking`` on Windows): the
operating system drops it when its process ends, so a crashed builder never leaves a lock behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import filelock

from ..errors import MVBridgeError


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Raises:
        MVBridgeError: another process held the lock for longer than ``timeout`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), mode=0o600)
    try:
        lock.acquire(timeout=timeout, poll_interval=0.05)
    except filelock.Timeout:
        raise MVBridgeError(
            f"timed out after {timeout:.0f} s waiting for another process that is "
            f"{what} (lock file {path}); if no such process runs, delete the lock file"
        ) from None
    try:
        yield
    finally:
        lock.release()


def replace_dir(staging: Path, final: Path) -> None:
    """Move a completed ``staging`` directory to ``final``, replacing what was there."""
    if final.exists():
        old = final.with_name(final.name + f".old-{os.getpid()}")
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)
