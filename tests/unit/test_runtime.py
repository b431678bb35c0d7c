"""The worker runtime's key and mvbridge's cache folder, as a host computes them before it starts
a worker (without the imports that would delay that start)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import platformdirs
import pytest

from mvbridge.bridge import runtime


@pytest.mark.skipif(sys.platform != "linux", reason="the shortcut is Linux's")
@pytest.mark.parametrize("xdg", [None, "", "   ", "/somewhere/cache"])
def test_cache_dir_is_platformdirs_own_answer(monkeypatch: pytest.MonkeyPatch, xdg: str | None):
    monkeypatch.delenv("MVBRIDGE_CACHE_DIR", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    assert runtime.cache_dir() == Path(platformdirs.user_cache_dir("mvbridge", appauthor=False))


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("MVBRIDGE_CACHE_DIR", str(tmp_path))
    assert runtime.cache_dir() == tmp_path


def _sha_of(package: Path) -> str:
    """The digest as computed from the files themselves."""
    sha = hashlib.sha256(b"format %d" % runtime.RUNTIME_FORMAT)
    for name in runtime.worker_modules():
        sha.update(name.encode())
        sha.update((package / name).read_bytes())
    for requirement in runtime.runtime_requirements():
        sha.update(requirement.encode())
    return sha.hexdigest()[:16]


@pytest.fixture
def package_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A copy of the worker half that ``runtime`` digests, and a cache of its own."""
    copy = tmp_path / "mvbridge"
    for name in runtime.worker_modules():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(runtime.PACKAGE_DIR / name, copy / name)
    monkeypatch.setattr(runtime, "PACKAGE_DIR", copy)
    monkeypatch.setenv("MVBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    runtime._code_digest.cache_clear()
    yield copy
    runtime._code_digest.cache_clear()


def test_the_code_digest_is_remembered_and_follows_every_change(package_copy: Path):
    first = runtime._code_digest()
    assert first == _sha_of(package_copy)
    assert (runtime.cache_dir() / "runtime" / "digests.json").exists()
    runtime._code_digest.cache_clear()
    assert runtime._code_digest() == first  # from the cache, the same answer
    edited = package_copy / "workers" / "server.py"
    edited.write_text(edited.read_text() + "\n# changed\n")
    runtime._code_digest.cache_clear()
    changed = runtime._code_digest()
    assert changed != first
    assert changed == _sha_of(package_copy)


def test_a_damaged_digest_cache_is_read_past(package_copy: Path):
    cache = runtime.cache_dir() / "runtime" / "digests.json"
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert runtime._code_digest() == _sha_of(package_copy)
