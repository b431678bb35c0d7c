"""``mvbridge spawn`` that stops when a pipe closes: the service a Ray actor runs.

Internal. ``python -m mvbridge.service.watched FD SPAWN-ARGS...`` serves like ``mvbridge spawn
SPAWN-ARGS...``, and drains and exits (SIGTERM to itself) once the pipe at ``FD`` reaches EOF:
its write end is held only by the actor (``ray_actor.py``), so the service goes when the actor
goes, even when Ray kills the actor's process with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def watch(fd: int) -> None:
    """SIGTERM this process once ``fd`` reads EOF (its writer has gone)."""

    def run() -> None:
        try:
            while os.read(fd, 1):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run, name="mvbridge-actor-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    from ..cli import main as cli_main

    watch(int(argv[0]))
    return cli_main(["spawn", *argv[1:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
