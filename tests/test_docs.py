"""The documentation builds without warnings, and the code is lint clean."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_is_clean():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "mvbridge", "tests", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout


def test_worker_half_compiles_on_python_3_8():
    from tests.helpers import require_python

    python = require_python("3.8")
    from mvbridge.bridge.runtime import WORKER_MODULES

    files = [str(ROOT / "mvbridge" / name) for name in [*WORKER_MODULES, "workers/boot.py"]]
    done = subprocess.run(
        [python, "-m", "py_compile", *files], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
