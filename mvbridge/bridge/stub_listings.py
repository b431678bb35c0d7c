"""What a stub is rendered from: a module's listing, read in its env or from the user cache.

Internal. Reading a listing means starting a worker and importing the module with everything
it imports: for a module over pandas, over a second, most of it compiling pandas' bytecode on a
fresh env. The listing depends only on what the env holds, so it is cached
(``cache_dir()/stubs``, one JSON file per module) under a key of the env's spec hash (its
interpreter, requirements with local folders by content, exposed modules), every installed
distribution's version, and the reader's own source. A rebuilt env with the same contents (a
cold ``mvbridge sync`` in CI, a fresh clone) then writes its stubs without starting a worker.
Rendering always runs afresh: it depends on what the host has installed.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import os
import tempfile
from pathlib import Path
from typing import Any

from .envs import EnvRecord
from .runtime import cache_dir

FORMAT = 2  # bump when what a cached entry holds changes (2: only importable submodules)
_READER_SOURCE = Path(__file__).parents[1] / "core" / "stubinfo.py"


def read_listings(env: Any, module: str) -> dict[str, Any]:
    """``module``'s listing and its readable submodules' (``{"module": ..., "submodules":
    {name: listing}}``), read in the running ``env``."""
    reader = env.import_module("mvbridge.core.stubinfo")
    listing = reader.stub_listing(module)
    submodules = {}
    if listing["package"]:
        for sub in listing["submodules"]:
            if not sub.isidentifier() or keyword.iskeyword(sub):
                continue  # no stub can be imported by that name
            try:
                submodules[sub] = reader.stub_listing(f"{module}.{sub}")
            except Exception:
                continue  # a submodule that cannot be read is left out, not the package
    return {"module": listing, "submodules": submodules}


class ListingCache:
    """Listings on disk under ``folder`` (default ``cache_dir()/stubs``), keyed by content."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder if folder is not None else cache_dir() / "stubs"

    @staticmethod
    def key(record: EnvRecord, module: str) -> str:
        """The key of ``module`` as the env of ``record`` holds it."""
        reader = hashlib.sha256(_READER_SOURCE.read_bytes()).hexdigest()
        distributions = sorted((name.lower(), v) for name, v in record.distributions.items())
        text = json.dumps([FORMAT, reader, record.spec_hash, record.python, distributions, module])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The listings stored under ``key``, or None (absent or unreadable)."""
        try:
            data = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("format") == FORMAT else None

    def put(self, key: str, listings: dict[str, Any]) -> None:
        """Store ``listings`` under ``key``; a cache that cannot be written is skipped."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                json.dump({"format": FORMAT, **listings}, file)
            os.replace(temporary, path)  # readers see a whole entry or none
        except OSError:
            pass  # only makes the next sync slower


def listings(env: Any, module: str, record: EnvRecord | None) -> dict[str, Any]:
    """``module``'s listings: from the cache when ``record`` says what the env holds and an
    entry matches, else read in ``env`` (and then cached)."""
    if record is None:
        return read_listings(env, module)
    cache = ListingCache()
    key = cache.key(record, module)
    found = cache.get(key)
    if found is not None:
        return found
    read = read_listings(env, module)
    try:
        normal = json.loads(json.dumps(read))  # as a later sync reads it: tuples as lists
    except (TypeError, ValueError):
        return read  # not plain JSON: rendered, never cached
    cache.put(key, normal)
    return normal
