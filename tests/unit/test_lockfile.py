"""mvbridge.lock is written only when its content changes, and a failed write says why."""

from __future__ import annotations

import os

import pytest

from mvbridge.bridge.lockfile import read_lock, write_lock
from mvbridge.errors import ConfigError

ENTRY = {"requirements_hash": "abc", "python": "3.11.7", "local": [], "distributions": {"six": "1"}}


def test_an_unchanged_lock_is_not_rewritten(tmp_path):
    path = tmp_path / "mvbridge.lock"
    write_lock(path, {"a": ENTRY})
    os.utime(path, (1, 1))
    write_lock(path, {"a": ENTRY})
    assert path.stat().st_mtime == 1
    assert read_lock(path)["a"]["distributions"] == {"six": "1"}


def test_a_lock_that_cannot_be_written_is_a_config_error(tmp_path):
    # A folder that is not there fails like a read-only one, for root too.
    with pytest.raises(ConfigError, match=r"cannot write .*--locked"):
        write_lock(tmp_path / "gone" / "mvbridge.lock", {"a": ENTRY})
