"""What a real resolver says about one set of requirements: the versions, or why there are none.

Internal. ``uv pip compile`` is the default (uv is a dependency; it resolves from the index's
metadata without installing anything); ``pip install --dry-run --report`` is the fallback, run
by the target interpreter with a pip that supports it (``installers.pip_wheel``). mvbridge never
compares version strings itself: markers, extras, transitive pins and ``Requires-Python`` are
the resolver's business.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..bridge.envs import find_interpreter
from ..bridge.installers import BUILD_TIMEOUT, find_uv, pip_wheel, step_error
from ..bridge.runtime import interpreter_facts
from ..errors import EnvBuildError, WorkerStartError

# A resolver's "there is no solution", as opposed to a failure to run (network, bad syntax).
_UV_UNSATISFIABLE = "No solution found when resolving dependencies"
_PIP_UNSATISFIABLE = ("ResolutionImpossible", "No matching distribution found")
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*(\S+)")


@dataclass(frozen=True)
class Target:
    """The Python a plan resolves for.

    Attributes:
        minor: ``"3.11"``: what the plan and the JSON report say.
        version: the full version resolved for (``"3.11.7"``), or ``minor`` when no interpreter
            of that version was found.
        interpreter: that interpreter, or None (uv can resolve without one; pip cannot).
        python: what the user asked for (a version or a path), None for the host's Python;
            written into each env as its ``python``.
    """

    minor: str
    version: str
    interpreter: str | None
    python: str | None = None


@dataclass(frozen=True)
class Answer:
    """The resolver's verdict on one set of requirements.

    Attributes:
        resolved: every distribution and its version when the set resolves, else None.
        message: the resolver's own explanation when it does not ('' when it does).
    """

    resolved: dict[str, str] | None
    message: str = ""
    cached: bool = field(default=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.resolved is not None


def find_target(python: str | None) -> tuple[Target, str | None]:
    """The target for ``--python`` (a version, a path, or None for the host's Python), found
    as envs find their interpreters (``envs.find_interpreter``); and a warning, or None.

    Raises:
        EnvBuildError: ``python`` is a path that does not run, or neither a version nor a path.
    """
    try:
        interpreter = find_interpreter(python)
        facts = interpreter_facts(interpreter)
    except (EnvBuildError, WorkerStartError) as exc:
        if python is None or not re.fullmatch(r"\d+\.\d+", python):
            raise EnvBuildError(f"--python {python}: {exc}", env=None) from exc
        warning = f"{exc}; resolving for Python {python} all the same"
        return Target(minor=python, version=python, interpreter=None, python=python), warning
    version = "%d.%d.%d" % facts.version
    return Target(minor=facts.minor, version=version, interpreter=interpreter, python=python), None


class Resolver:
    """Runs one resolver; says why it cannot run before it is chosen."""

    name = ""

    def cannot_resolve(self, target: Target) -> str | None:
        """Why this resolver cannot resolve for ``target`` here, or None when it can."""
        raise NotImplementedError

    def resolve(self, requirements: Sequence[str], target: Target) -> Answer:
        """Resolve ``requirements`` together for ``target``.

        Raises:
            EnvBuildError: the resolver failed to run or to read the requirements (as opposed
                to finding that they do not resolve, which is an ``Answer``).
        """
        raise NotImplementedError


class UvResolver(Resolver):
    """``uv pip compile``: resolves from metadata, for any Python version (``--python-version``)."""

    name = "uv"

    def __init__(self) -> None:
        self.binary = find_uv()

    def cannot_resolve(self, target: Target) -> str | None:
        return None if self.binary else "uv is not on PATH and the 'uv' package is not installed"

    def resolve(self, requirements: Sequence[str], target: Target) -> Answer:
        # An interpreter to resolve with, named: asked only for a version, uv would first look
        # for one (and pyenv's shims take seconds each to say they are not it).
        interpreter = target.interpreter or sys.executable
        command = [
            str(self.binary), "pip", "compile", "-", "--python", interpreter,
            "--python-version", target.version,
            "--no-header", "--no-annotate", "--quiet", "--color", "never",
        ]  # fmt: skip
        done = _run(command, "\n".join(requirements) + "\n")
        if done.returncode == 0:
            return Answer(_parse_pins(done.stdout))
        output = done.stderr.strip() or done.stdout.strip()
        if _UV_UNSATISFIABLE in output:
            return Answer(None, output)
        raise _failure(command, done.returncode, output)


class PipResolver(Resolver):
    """``pip install --dry-run --report`` run by the target interpreter: the fallback."""

    name = "pip"

    def cannot_resolve(self, target: Target) -> str | None:
        if target.interpreter is None:
            return (
                f"pip resolves only inside an interpreter, and no Python {target.minor} was found"
            )
        return None

    def resolve(self, requirements: Sequence[str], target: Target) -> Answer:
        assert target.interpreter is not None
        with tempfile.TemporaryDirectory(prefix="mvbridge-plan-") as scratch:
            listing = Path(scratch) / "requirements.txt"
            listing.write_text("\n".join(requirements) + "\n")
            report = Path(scratch) / "report.json"
            command = [
                target.interpreter, f"{pip_wheel(target.interpreter)}/pip", "install",
                "--dry-run", "--ignore-installed", "--report", str(report),
                "--disable-pip-version-check", "--no-input", "-r", str(listing),
            ]  # fmt: skip
            done = _run(command, "")
            if done.returncode == 0:
                installs = json.loads(report.read_text()).get("install", [])
                return Answer(
                    {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}
                )
        output = "\n".join(
            line
            for line in (done.stderr + "\n" + done.stdout).splitlines()
            if line.strip() and "Location 'file:" not in line
        )
        if any(marker in output for marker in _PIP_UNSATISFIABLE):
            return Answer(None, output)
        raise _failure(command, done.returncode, output)


def choose_resolver(target: Target, preferred: str | None = None) -> Resolver:
    """uv when it can run, else pip; ``preferred`` (or ``MVBRIDGE_INSTALLER``) forces one.

    Raises:
        EnvBuildError: the forced resolver cannot run, or neither can.
    """
    preferred = preferred or os.environ.get("MVBRIDGE_INSTALLER") or None
    resolvers: list[Resolver] = [UvResolver(), PipResolver()]
    if preferred and preferred not in {r.name for r in resolvers}:
        raise EnvBuildError(
            f"unknown resolver {preferred!r} (from MVBRIDGE_INSTALLER or --resolver); "
            "use 'uv' or 'pip'",
            env=None,
        )
    reasons = []
    for resolver in resolvers:
        if preferred and resolver.name != preferred:
            continue
        why = resolver.cannot_resolve(target)
        if why is None:
            return resolver
        reasons.append(f"{resolver.name}: {why}")
    raise EnvBuildError("no resolver can run: " + "; ".join(reasons), env=None)


def _parse_pins(output: str) -> dict[str, str]:
    """``name==version`` lines of ``uv pip compile`` (a ``name @ url`` keeps its URL; a bare
    local path names no distribution and is left out)."""
    pins = {}
    for line in output.splitlines():
        line = line.split("#", 1)[0].strip().removesuffix("\\").strip()
        match = _PINNED.match(line) or _DIRECT.match(line)
        if match:
            pins[match.group(1)] = match.group(2)
    return pins


def _run(command: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise step_error(
            f"{Path(command[0]).name} took over {BUILD_TIMEOUT:.0f} s to resolve and was stopped "
            f"(set MVBRIDGE_BUILD_TIMEOUT to allow longer): {' '.join(command)}",
            command,
        ) from exc
    except OSError as exc:
        raise step_error(f"could not run {command[0]}: {exc}", command) from exc


def _failure(command: list[str], returncode: int, output: str) -> EnvBuildError:
    tail = output[-3000:]
    return step_error(
        f"the resolver failed (exit code {returncode}), not for a conflict:\n{tail}\n"
        f"command: {' '.join(command)}",
        command,
        returncode=returncode,
        output_tail=tail,
    )
