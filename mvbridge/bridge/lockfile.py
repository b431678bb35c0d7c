"""``mvbridge.lock``: every env's resolved distributions, so a sync can be repeated exactly.

Internal. The file is TOML, written by hand here (only strings and tables), read with tomllib.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .envs import EnvRecord, canonical

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LOCK_VERSION = 1


def read_lock(path: Path) -> dict[str, dict[str, Any]] | None:
    """``{env: {requirements_hash, python, local, distributions}}`` from the lock, or None.

    Raises:
        ConfigError: the lock file is unreadable or of an unknown version.
    """
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc}); delete it and run `mvbridge sync` to write it anew"
        ) from exc
    if data.get("version") != LOCK_VERSION:
        raise ConfigError(
            f"{path}: lock version {data.get('version')!r}; this mvbridge reads version "
            f"{LOCK_VERSION}. Delete it and run `mvbridge sync` to write it anew"
        )
    return data.get("envs", {})


def lock_entry(record: EnvRecord, requirements_hash: str) -> dict[str, Any]:
    """What the lock keeps of one built env."""
    return {
        "requirements_hash": requirements_hash,
        "python": record.python,
        "local": list(record.local),
        "distributions": dict(sorted(record.distributions.items())),
    }


def pins_of(entry: dict[str, Any]) -> dict[str, str]:
    """The ``name==version`` pins of a lock entry: every distribution but the local ones."""
    local = set(entry.get("local", []))
    return {n: v for n, v in entry["distributions"].items() if n not in local}


def write_lock(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Write the lock atomically (a reader never sees half a file)."""
    lines = [
        "# mvbridge.lock: written by `mvbridge sync`; `mvbridge sync --locked` rebuilds exactly",
        "# these versions. Commit it; do not edit it by hand.",
        f"version = {LOCK_VERSION}",
    ]
    for name in sorted(entries):
        entry = entries[name]
        lines += ["", f"[envs.{_key(name)}]"]
        lines.append(f"requirements_hash = {_string(entry['requirements_hash'])}")
        lines.append(f"python = {_string(entry['python'])}")
        lines.append(f"local = [{', '.join(_string(n) for n in entry['local'])}]")
        lines += ["", f"[envs.{_key(name)}.distributions]"]
        for dist, version in sorted(
            entry["distributions"].items(), key=lambda kv: canonical(kv[0])
        ):
            lines.append(f"{_key(dist)} = {_string(version)}")
    text = "\n".join(lines) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return  # unchanged: a read-only project (a deployed service) is fine
    except OSError:
        pass
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mvbridge.lock.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a lock file is meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; make its folder writable, or use "
            "`mvbridge sync --locked`, which only reads the lock"
        ) from exc


def _string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def _key(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() else _string(name)
