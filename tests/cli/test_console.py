"""Progress on a terminal is a live table of envs; off a terminal, lines (#12, point 2)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

import pytest

from tests.helpers import run_cli, write_config

CONFIG = '[envs.quick]\nrequirements = ["six==1.16.0"]\n'


def run_on_a_terminal(args: list[str], cwd, timeout: float) -> str:
    """Run mvbridge with stderr on a pseudo-terminal; everything it wrote there."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in ("MVBRIDGE_CONFIG", "NO_COLOR")}
    environ.update(TERM="xterm-256color", COLUMNS="120")
    process = subprocess.Popen(
        [sys.executable, "-m", "mvbridge", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env=environ,
    )
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    process.wait(timeout=max(1, deadline - time.monotonic()))
    os.close(leader)
    assert process.returncode == 0
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sync_on_a_terminal_shows_one_live_row_per_env(tmp_path):
    write_config(tmp_path, CONFIG)
    shown = run_on_a_terminal(["sync", "--no-stubs"], tmp_path, timeout=240)
    assert "\x1b[" in shown  # drawn, not printed line by line
    assert "quick" in shown
    assert "ready in" in shown
    assert "mvbridge: env 'quick': installing" not in shown  # no plain lines for env steps


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sync_off_a_terminal_prints_lines(tmp_path):
    write_config(tmp_path, CONFIG)
    done = run_cli(["sync", "--no-stubs"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "mvbridge: env 'quick': installing six==1.16.0" in done.stderr
    assert "\x1b[" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sync_says_what_it_downloads_and_how_much(tmp_path):
    # A cold uv cache: the wheel must come from the registry, and uv reports its size.
    write_config(tmp_path, '[envs.big]\nrequirements = ["numpy==2.2.6"]\n')
    done = run_cli(["sync", "--no-stubs"], tmp_path, UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if "downloading" in line)
    assert re.fullmatch(r"mvbridge: env 'big': downloading numpy \(\d+\.\d MiB\)", line), line
