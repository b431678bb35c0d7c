"""Loggers for the code a worker runs, with ``logging`` imported on first use.

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

``logging`` (with ``traceback``, which it imports) took 4-7 ms of every worker's start-up, a
tenth of a plain worker's cold start, for messages most workers never log. The worker's
forwarding of log records to the host starts when ``logging`` is first imported
(``workers/records.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import logging


def logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, importing ``logging`` now if nothing has yet."""
    import logging

    return logging.getLogger(name)
