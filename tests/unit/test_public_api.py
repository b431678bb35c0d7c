"""The public names: exported, documented, and light to import."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import mvbridge

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def test_every_public_name_is_documented():
    text = (DOCS / "reference" / "api.md").read_text()
    missing = [name for name in mvbridge.__all__ if f"## `{name}`" not in text]
    assert not missing


def test_every_public_name_exists():
    for name in mvbridge.__all__:
        assert getattr(mvbridge, name) is not None


def test_errors_share_one_root_and_pickle():
    import pickle

    for name in mvbridge.errors.__all__:
        cls = getattr(mvbridge, name)
        assert issubclass(cls, mvbridge.MVBridgeError)
        error = cls("message", env="x")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert str(copy) == "message"
        assert copy.env == "x"
    assert issubclass(mvbridge.CallTimeoutError, TimeoutError)


def test_import_mvbridge_loads_no_host_machinery():
    code = (
        "import sys, mvbridge; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('zmq', 'mvbridge', 'virtualenv', 'numpy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['mvbridge', 'mvbridge.errors']"
