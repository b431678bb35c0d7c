"""An env build killed with SIGKILL: nothing half-built is used, the build lock dies with its
holder, and the next sync builds the env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.faults.conftest import alive, children
from tests.helpers import wait_until, write_config

pytestmark = pytest.mark.timeout(300)

BACKEND = '''
"""A build backend that takes its time: it says when it started, then sleeps."""
import base64, hashlib, os, time, zipfile

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    marker = os.environ.get("MVB_SLOW_MARKER")
    if marker:
        open(marker, "w").write(str(os.getpid()))
    time.sleep(float(os.environ.get("MVB_SLOW_SECONDS", "0")))
    name = "mvb_slow-1.0-py3-none-any.whl"
    info = "mvb_slow-1.0.dist-info"
    files = {
        "mvb_slow/__init__.py": "ANSWER = 42\\n",
        info + "/METADATA": "Metadata-Version: 2.1\\nName: mvb-slow\\nVersion: 1.0\\n",
        info + "/WHEEL": "Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        info + "/top_level.txt": "mvb_slow\\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(text.encode())))
    files[info + "/RECORD"] = "\\n".join(record + [info + "/RECORD,,"]) + "\\n"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return name
'''

PYPROJECT = """
[build-system]
requires = []
build-backend = "slow_backend"
backend-path = ["."]

[project]
name = "mvb-slow"
version = "1.0"
"""


def sync(project: Path, **env: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "MVBRIDGE_CONFIG"}
    return subprocess.Popen(
        [sys.executable, "-m", "mvbridge", "sync", "--no-stubs"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environ, **env},
    )


def test_an_env_build_killed_with_sigkill(tmp_path: Path):
    project = tmp_path / "project"
    package = project / "slowpkg"
    package.mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (package / "slow_backend.py").write_text(BACKEND)
    write_config(project, '[envs.slow]\nrequirements = ["./slowpkg"]\nallow_build = true\n')
    marker = tmp_path / "building"
    builder = sync(project, MVB_SLOW_MARKER=str(marker), MVB_SLOW_SECONDS="120")
    wait_until(lambda: marker.exists() or builder.poll() is not None, timeout=120)
    assert builder.poll() is None, builder.communicate()
    helpers = children(builder.pid)  # the installer, and the backend it runs
    builder.send_signal(signal.SIGKILL)
    builder.communicate(timeout=30)
    env_dir = project / ".mvbridge" / "envs" / "slow"
    assert not (env_dir / "mvbridge-env.json").exists()  # nothing half-built is used
    killed = time.monotonic()
    wait_until(lambda: not [pid for pid in helpers if alive(pid)], timeout=30)
    assert time.monotonic() - killed < 30
    again = sync(project, MVB_SLOW_SECONDS="0")
    _out, err = again.communicate(timeout=240)
    assert again.returncode == 0, err
    assert (env_dir / "mvbridge-env.json").exists()
