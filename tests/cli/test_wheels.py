"""Envs install from wheels unless told to build; the demo runs on any host Python (#12, 1).

A requirement that has no wheel for the env's Python is named before anything is compiled,
with an installed Python that has one; ``python = "auto"`` picks the newest such Python.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mvbridge.bridge import wheels
from tests.helpers import find_python, require_python, run_cli, write_config

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "mvb-tiny"
version = "1.0"

[tool.setuptools]
py-modules = ["mvb_tiny"]
"""


def tiny_sdist(folder: Path) -> Path:
    """An sdist of a one-module package, and no wheel of it anywhere."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mvb_tiny-1.0.tar.gz"
    files = {
        "pyproject.toml": TINY_PYPROJECT,
        "mvb_tiny.py": "ANSWER = 42\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: mvb-tiny\nVersion: 1.0\n",
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"mvb_tiny-1.0/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def sdist_index(tmp_path):
    """A find-links folder holding only the tiny sdist, seen by uv through UV_FIND_LINKS."""
    folder = tmp_path / "links"
    tiny_sdist(folder)
    return {"UV_FIND_LINKS": str(folder)}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_requirement_without_a_wheel_stops_before_building(tmp_path, sdist_index):
    project = tmp_path / "project"
    write_config(project, '[envs.tiny]\nrequirements = ["mvb-tiny==1.0"]\n')
    done = run_cli(["sync", "--no-stubs"], project, **sdist_index)
    assert done.returncode != 0
    assert "mvb-tiny==1.0 has no wheel for CPython" in done.stderr
    assert "allow_build = true" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / ".mvbridge" / "envs" / "tiny").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_allow_build_announces_the_build_and_builds(tmp_path, sdist_index):
    project = tmp_path / "project"
    write_config(project, '[envs.tiny]\nrequirements = ["mvb-tiny==1.0"]\nallow_build = true\n')
    done = run_cli(["sync", "--no-stubs"], project, **sdist_index)
    assert done.returncode == 0, done.stderr
    assert "has no wheel for CPython" in done.stderr
    assert "building it from source, this can take many minutes" in done.stderr
    assert done.stderr.index("building it from source") < done.stderr.index("ready in")


@pytest.mark.timeout(120)
def test_auto_picks_the_newest_installed_python_with_wheels():
    newest = wheels.installed_pythons()[0][0]
    chosen = wheels.auto_interpreter("old", ["six==1.16.0"], False, lambda message: None)
    assert chosen == dict(wheels.installed_pythons())[newest]  # a pure wheel fits them all
    require_python("3.11")
    # pandas 2.0.3 has wheels up to CPython 3.11 only.
    chosen = wheels.auto_interpreter("pandas", ["pandas==2.0.3"], False, lambda message: None)
    assert chosen == dict(wheels.installed_pythons())["3.11"]


@pytest.mark.timeout(120)
def test_auto_without_a_fitting_python_says_what_it_tried(sdist_index, monkeypatch):
    for key, value in sdist_index.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception, match="found no installed Python") as caught:
        wheels.auto_interpreter("tiny", ["mvb-tiny==1.0"], False, lambda message: None)
    assert "allow_build = true" in str(caught.value)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("minor", ["3.10", "3.12", "3.13"])
def test_the_demo_runs_on_other_host_pythons(minor, tmp_path_factory):
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor} here")
    from uv import find_uv_bin

    host = tmp_path_factory.mktemp(f"host-{minor}") / "v"
    repo = Path(__file__).resolve().parents[2]
    uv = find_uv_bin()
    subprocess.run([uv, "venv", "-q", "--python", python, str(host)], check=True, timeout=120)
    host_python = str(host / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", host_python, str(repo)], check=True, timeout=300
    )
    # The envs are built once for every host: the runs share this session's cache.
    done = subprocess.run(
        [host_python, "-m", "mvbridge", "demo"],
        capture_output=True,
        text=True,
        timeout=800,
        cwd=tmp_path_factory.getbasetemp(),
        env={k: v for k, v in os.environ.items() if k != "MVBRIDGE_CONFIG"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "dep_a: pandas 2.2.0, has Series.case_when: True" in done.stdout
    assert "dep_b: pandas 2.0.3, has Series.case_when: False" in done.stdout
    assert sys.version_info[:2] != tuple(map(int, minor.split(".")))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_interrupted_sync_leaves_each_env_built_and_locked_or_neither(tmp_path, sdist_index):
    from mvbridge.bridge.lockfile import read_lock
    from mvbridge.config import load_config

    project = tmp_path / "project"
    write_config(
        project,
        '[envs.quick]\nrequirements = ["six==1.16.0"]\n\n'
        '[envs.tiny]\nrequirements = ["mvb-tiny==1.0"]\nallow_build = true\n',
    )
    environ = {k: v for k, v in os.environ.items() if k != "MVBRIDGE_CONFIG"}
    process = subprocess.Popen(
        [sys.executable, "-m", "mvbridge", "sync", "--no-stubs"],
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, **sdist_index},
    )
    assert process.stderr is not None
    for line in process.stderr:  # the test's timeout bounds this
        if "building it from source" in line:
            process.send_signal(signal.SIGINT)  # to the process alone, not its installers
            break
    rest = process.communicate(timeout=240)[1]
    assert process.returncode == 130, rest
    assert "interrupted: finishing the builds under way" in rest
    config = load_config(project / "mvbridge.toml")
    built = {
        name
        for name in config.envs
        if (config.state_dir / "envs" / name / "mvbridge-env.json").is_file()
    }
    assert "tiny" in built  # the build under way finished
    assert set(read_lock(config.lock_path) or {}) == built


@pytest.mark.timeout(120)
def test_the_check_ignores_what_the_interpreter_has_installed(py_v1):
    # mvb_demo is installed in that venv but on no index: installed must not mean "has a wheel".
    assert wheels.missing_wheels(py_v1, ["mvb_demo==1.0"]) != []


@pytest.mark.timeout(120)
def test_auto_leaves_an_unknown_requirement_to_the_install_to_explain():
    newest = wheels.installed_pythons()[0][1]
    chosen = wheels.auto_interpreter("x", ["mvb-no-such-dist-zz==1.0"], False, lambda m: None)
    assert chosen == newest  # not "no Python has wheels", which would mislead
