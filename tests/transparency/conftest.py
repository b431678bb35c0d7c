"""The transparency suite's env (one venv with every library) and its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_venv

from .libraries import LIBRARIES, SHARE_REQUIRED

NATIVE = Path(__file__).with_name("native_doctests.py")
ROOT = Path(__file__).parents[2]

# Per library: (examples found, native passes, bridged passes, [failure lines]); filled by the
# tests, written to REPORT_FILE and shown in the terminal summary.
REPORT: dict[str, tuple[int, int, int, list[str]]] = {}
REPORT_FILE: list[Path] = []


@pytest.fixture(scope="session")
def py_transparency(venvs: Path) -> str:
    """The host's Python with the four libraries at their pinned versions."""
    return make_venv(venvs / "transparency", sys.executable, [lib.requirement for lib in LIBRARIES])


@pytest.fixture(scope="session")
def native_doctests(py_transparency: str) -> dict[str, dict]:
    """Every package's doctests as plain data, with their outcomes run natively in the env."""
    packages = [package for lib in LIBRARIES for package in lib.packages]
    done = subprocess.run(
        [py_transparency, str(NATIVE), *packages],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {found["package"]: found for found in json.loads(done.stdout)["packages"]}


@pytest.fixture(scope="session")
def py_clean_host(venvs: Path) -> str:
    """The host's Python with mvbridge (this checkout, editable) and its dependencies only."""
    return make_venv(venvs / "clean-host", sys.executable, ["-e", str(ROOT)])


def run_bridged(host: str, env_python: str, packages: list[dict], tops: list[str], folder: Path):
    """``bridged.main`` in ``host``: the host's versions of ``tops``, and every outcome."""
    source = folder / "doctests.json"
    source.write_text(json.dumps(packages))
    done = subprocess.run(
        [host, "-m", "tests.transparency.bridged", env_python, ",".join(tops), str(source)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout)


def record(name: str, found: int, native: int, bridged: int, lines: list[str], folder: Path) -> str:
    """Keep one library's result; returns the whole report so far (also written to a file)."""
    REPORT[name] = (found, native, bridged, lines)
    if not REPORT_FILE:
        REPORT_FILE.append(folder / "transparency-report.md")
    text = report_text()
    REPORT_FILE[0].write_text(text)
    return text


def report_text() -> str:
    """The table of shares and the list of failures, as Markdown."""
    lines = [
        "| library | examples | natively passing | also bridged | share |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (found, native, bridged, _) in REPORT.items():
        share = "%.1f %%" % (100.0 * bridged / native) if native else "n/a"
        lines.append(f"| {name} | {found} | {native} | {bridged} | {share} |")
    lines.append("")
    lines.append(f"required: {100 * SHARE_REQUIRED:.0f} % per library")
    for name, (_, native, bridged, failures) in REPORT.items():
        if failures:
            lines.append("")
            lines.append(f"{name}: {native - bridged} failing bridged")
            lines.extend("  " + line for line in failures)
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not REPORT:
        return
    terminalreporter.section("mvbridge transparency: library doctests through proxies")
    terminalreporter.write(report_text())
    if REPORT_FILE:
        terminalreporter.write(f"(also in {REPORT_FILE[0]})\n")
