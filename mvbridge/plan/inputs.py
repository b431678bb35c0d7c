"""The requirement list to plan: arguments, ``-r`` files, or ``[project].dependencies``.

Internal. Local paths become absolute: those on the command line relative to the current
folder, those in a requirements file relative to that file (as pip reads them).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..config import is_local_requirement
from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def gather(
    requirements: Sequence[str], files: Sequence[Path], start: Path
) -> tuple[list[str], str]:
    """The requirements to plan, without repeats, and where they came from (for messages).

    With no ``requirements`` and no ``files``: ``[project].dependencies`` of the nearest
    ``pyproject.toml`` from ``start`` upwards.

    Raises:
        ConfigError: a file is missing or unreadable, or holds an option plan cannot follow.
    """
    found = [absolute(r, start) for r in requirements]
    for file in files:
        found += read_requirements_file(file)
    if requirements or files:
        return _unique(found), "the command line"
    pyproject = nearest_pyproject(start)
    if pyproject is None:
        raise ConfigError(
            f"no requirements given and no pyproject.toml in {start} or above; name them "
            "(mvbridge plan 'pandas==2.2.0' ...) or read a file (-r requirements.txt)"
        )
    return _unique(project_dependencies(pyproject)), f"{pyproject} [project].dependencies"


def absolute(requirement: str, folder: Path) -> str:
    """A local path made absolute relative to ``folder``; anything else stripped, as it is."""
    text = requirement.strip()
    if is_local_requirement(text):
        return str((folder / Path(text).expanduser()).resolve())
    return text


def nearest_pyproject(start: Path) -> Path | None:
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder / "pyproject.toml"
    return None


def project_dependencies(pyproject: Path) -> list[str]:
    """``[project].dependencies`` of ``pyproject``.

    Raises:
        ConfigError: not valid TOML, or no such list.
    """
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: not valid TOML: {exc}") from exc
    dependencies = data.get("project", {}).get("dependencies")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise ConfigError(
            f"{pyproject}: no [project].dependencies list to plan; name the requirements or "
            "read a file (-r requirements.txt)"
        )
    return [d.strip() for d in dependencies]


def read_requirements_file(path: Path, _seen: frozenset[Path] = frozenset()) -> list[str]:
    """The requirements of a pip requirements file: comments, ``\\`` continuations, nested
    ``-r FILE`` and ``-e PATH`` are followed; any other option is refused.

    Raises:
        ConfigError: the file cannot be read, includes itself, or holds another option.
    """
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"{path}: includes itself through -r")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read requirements file {path}: {exc.strerror}") from exc
    found: list[str] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith(("-r ", "--requirement ", "-r=", "--requirement=")):
            nested = line.split("=", 1)[1] if "=" in line.split()[0] else line.split(None, 1)[1]
            found += read_requirements_file(path.parent / nested.strip(), _seen | {path})
        elif line.startswith(("-e ", "--editable ")):
            found.append(absolute(line.split(None, 1)[1], path.parent))
        elif line.startswith("-"):
            raise ConfigError(
                f"{where}: option {line.split()[0]!r} is not followed by mvbridge plan; "
                "set indexes in uv's or pip's own configuration"
            )
        else:
            found.append(absolute(line, path.parent))
    return found


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of each logical line: joined continuations, comments dropped."""
    out: list[tuple[int, str]] = []
    pending, first = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw if raw.lstrip().startswith("#") else raw.split(" #", 1)[0]
        if line.lstrip().startswith("#"):
            line = ""
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = " ".join((pending + line).split())
        pending = ""
        if whole:
            out.append((first, whole))
    if pending.strip():
        out.append((first, " ".join(pending.split())))
    return out


def _unique(requirements: list[str]) -> list[str]:
    return list(dict.fromkeys(r for r in requirements if r))
