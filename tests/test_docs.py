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
    from mvbridge.bridge.runtime import worker_modules

    files = [str(ROOT / "mvbridge" / name) for name in worker_modules()]
    done = subprocess.run(
        [python, "-m", "py_compile", *files], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_ruff_targets_py38_exactly_where_the_worker_half_is():
    import tomllib

    from mvbridge.bridge.runtime import WORKER_HALF

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    targets = config["tool"]["ruff"]["per-file-target-version"]
    assert set(targets.values()) == {"py38"}
    assert sorted(targets) == sorted(f"mvbridge/{pattern}" for pattern in WORKER_HALF)


def test_the_shared_half_imports_neither_the_host_nor_the_worker_half():
    import ast

    offenders = []
    for path in sorted((ROOT / "mvbridge" / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith(
                    (
                        "..bridge",
                        "..workers",
                        "mvbridge.bridge",
                        "mvbridge.workers",
                        "..cli",
                        "..config",
                    )
                ):
                    offenders.append(f"{path.name}: {name}")
    assert not offenders
