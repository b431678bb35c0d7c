"""Every example runs: scripts in examples/, and folders with an mvbridge.toml and an app.py."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.helpers import run_cli

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
PROJECTS = sorted(p.parent for p in EXAMPLES.glob("*/mvbridge.toml"))
EXPECTED = {
    "two_pandas": ["dep_a: pandas 2.2.0", "dep_b: pandas 2.0.3"],
    "pydantic_v1_v2": ["1.10."],
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_script_runs(script):
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_example_project_syncs_and_runs(project, tmp_path):
    copy = tmp_path / project.name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".mvbridge", "mvbridge.lock"))
    synced = run_cli(["sync", "--no-stubs"], copy, timeout=540)
    assert synced.returncode == 0, synced.stderr
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for expected in EXPECTED.get(project.name, []):
        assert expected in done.stdout


@pytest.mark.timeout(600)
def test_demo_command_runs_from_anywhere(tmp_path):
    done = run_cli(["demo"], tmp_path, timeout=540)
    assert done.returncode == 0, done.stderr
    assert "dep_a: pandas 2.2.0, has Series.case_when: True" in done.stdout
    assert "dep_b: pandas 2.0.3, has Series.case_when: False" in done.stdout
