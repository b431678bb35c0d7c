"""legacy_calc 1.0: a stand-in for a library that must run in an env of its own."""

from __future__ import annotations

import os
import sys
import threading

__version__ = "1.0"


def total(values):
    """Add up ``values``."""
    return sum(values)


def where():
    """Which process and Python serve the call."""
    return {"pid": os.getpid(), "python": "%d.%d.%d" % sys.version_info[:3]}


def transform(fn, values):
    """Apply a callable of the caller's to each value (a callback over the network)."""
    return [fn(value) for value in values]


def report_later(fn, message, delay=0.1):
    """Call ``fn(message)`` from a thread of this library's own, after returning."""
    timer = threading.Timer(delay, fn, (message,))
    timer.daemon = True
    timer.start()
    return "scheduled"
