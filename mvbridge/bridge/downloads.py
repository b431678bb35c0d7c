"""What an installer says it downloads, as build progress: each file's size and the total so far.

Internal. uv prints ``Downloading numpy (16.1MiB)`` for its larger files, pip prints
``Downloading pandas-2.2.2-cp311-...whl (13.0 MB)`` for every file; both reach the live table
(and the plain lines off a terminal) as ``downloading pandas (12.4 MiB, 28.5 MiB so far)``.
Nothing is said when everything comes from the installer's cache.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DOWNLOADING = re.compile(r"^\s*Downloading (\S+) \((\d+(?:\.\d+)?) ?([kKMG]i?B|bytes)\)\s*$")
_UNIT_BYTES = {
    "bytes": 1,
    "kB": 1e3,
    "KB": 1e3,
    "KiB": 1024,
    "MB": 1e6,
    "MiB": 1024**2,
    "GB": 1e9,
    "GiB": 1024**3,
}
_ARCHIVES = (".whl", ".tar.gz", ".zip", ".tar.bz2")


def parse(line: str) -> tuple[str, float] | None:
    """``(distribution or file name, bytes)`` of an installer's download line, else None."""
    found = _DOWNLOADING.match(line)
    if found is None:
        return None
    name, amount, unit = found.groups()
    name = name.rstrip("/").rpartition("/")[2]  # old pips print the whole URL
    if name.endswith(_ARCHIVES):
        name = name.split("-", 1)[0]  # a wheel's or sdist's file name starts with its project
    return name, float(amount) * _UNIT_BYTES.get(unit, 1)


def size_text(size: float) -> str:
    return f"{size / 1024**2:.1f} MiB" if size >= 1024**2 else f"{size / 1024:.0f} KiB"


class DownloadReporter:
    """Called with each output line of an install; says each download with the total so far."""

    def __init__(self, env_name: str, say: Callable[[str], None]) -> None:
        self.env_name = env_name
        self.say = say
        self.total = 0.0

    def __call__(self, line: str) -> None:
        found = parse(line)
        if found is None:
            return
        name, size = found
        so_far = f", {size_text(self.total + size)} so far" if self.total else ""
        self.total += size
        self.say(f"env {self.env_name!r}: downloading {name} ({size_text(size)}{so_far})")
