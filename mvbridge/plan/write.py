"""A plan written into the config: one ``[envs.NAME]`` table per group, comments kept.

Internal. tomlkit edits the document in place, so the user's formatting, comments and order
stay as they were; only the new tables are added, at the end of the envs. The file written is
the config in force (``mvbridge.toml``, or ``pyproject.toml`` with ``[tool.mvbridge]``, or the
file ``MVBRIDGE_CONFIG`` names); without one, the nearest ``pyproject.toml``, else a new
``mvbridge.toml`` in the current folder. The new text is checked by ``load_config`` before it
replaces the file, in one rename.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from ..config import (
    CONFIG_NAME,
    find_config,
    is_local_requirement,
    load_config,
    resolve_requirement,
)
from ..errors import ConfigError
from .inputs import nearest_pyproject
from .planner import Group, Plan


@dataclass(frozen=True)
class Written:
    """What ``write_plan`` did.

    Attributes:
        path: the file written.
        added: envs added.
        replaced: envs that existed with other requirements and were replaced (``replace``).
        kept: envs that existed with the same requirements and Python, left as they were.
        others: envs declared before that are not part of the plan (``sync`` builds them too).
    """

    path: Path
    added: list[str]
    replaced: list[str]
    kept: list[str]
    others: list[str]


def config_file(start: Path) -> Path:
    """The file ``--write`` writes to (see the module docstring)."""
    found = find_config(start)
    if found is not None:
        return found
    return nearest_pyproject(start) or start.resolve() / CONFIG_NAME


def write_plan(plan: Plan, path: Path, replace: bool = False) -> Written:
    """Add every group of ``plan`` but the host's to ``path`` as an env.

    Raises:
        ConfigError: the file is not valid TOML or not a valid config; or an env of a planned
            name exists with other requirements or another Python and ``replace`` is False
            (nothing is written then).
    """
    pyproject = path.name == "pyproject.toml"
    existing = load_config(path).envs if path.exists() else {}  # type: ignore[union-attr]
    root = path.parent.resolve()
    groups = [g for g in plan.groups if not g.host]
    same, different = [], []
    for group in groups:
        spec = existing.get(group.name)
        if spec is None:
            continue
        wanted = sorted(resolve_requirement(r, root) for r in group.requirements)
        if sorted(spec.requirements) == wanted and spec.python == plan.target.python:
            same.append(group.name)
        else:
            different.append(group.name)
    if different and not replace:
        where = "[tool.mvbridge.envs]" if pyproject else "[envs]"
        raise ConfigError(
            f"{path}: {where} already declares {', '.join(map(repr, different))} with other "
            "requirements or another Python; nothing was written. Rename or remove "
            f"{'it' if len(different) == 1 else 'them'}, or run plan --write --replace to "
            "replace them"
        )
    document = (
        tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    )
    envs = _envs_table(document, pyproject)
    for group in groups:
        if group.name in same:
            continue
        table = _env_table(group, plan, root)
        if group.name in envs:
            envs[group.name] = table
        else:
            envs.add(group.name, table)
    text = tomlkit.dumps(document)
    _replace_checked(path, text if text.endswith("\n") else text + "\n")
    planned = {g.name for g in groups}
    return Written(
        path=path,
        added=[g.name for g in groups if g.name not in existing],
        replaced=different,
        kept=same,
        others=[name for name in existing if name not in planned],
    )


def _envs_table(document: tomlkit.TOMLDocument, pyproject: bool) -> Any:
    """The ``envs`` table (``tool.mvbridge.envs`` in a pyproject), created as a super table so
    that only ``[tool.mvbridge.envs.NAME]`` headers appear."""
    container = document
    if pyproject:
        for key in ("tool", "mvbridge"):
            if key not in container:
                container.add(key, tomlkit.table(is_super_table=True))
            container = container[key]
    if "envs" not in container:
        container.add("envs", tomlkit.table(is_super_table=True))
    return container["envs"]


def _env_table(group: Group, plan: Plan, root: Path) -> Any:
    table = tomlkit.table()
    apart = [
        " + ".join(c.requirements)
        for c in plan.conflicts
        if not c.nowhere and set(c.requirements) & set(group.requirements)
    ]
    why = "; ".join(apart) or "no conflict"
    table.add(tomlkit.comment(f"mvbridge plan (Python {plan.target.minor}): apart for {why}"))
    requirements = tomlkit.array()
    requirements.extend(_relative(r, root) for r in group.requirements)
    if len(group.requirements) > 3:
        requirements.multiline(True)
    table.add("requirements", requirements)
    if plan.target.python is not None:
        table.add("python", plan.target.python)
    return table


def _relative(requirement: str, root: Path) -> str:
    """A local path as the config writes it: relative to the config's folder."""
    if not is_local_requirement(requirement):
        return requirement
    relative = os.path.relpath(requirement, root)
    return relative if relative.startswith(".") else f"./{relative}"


def _replace_checked(path: Path, text: str) -> None:
    """Check ``text`` as a config, then put it in place of ``path`` in one rename."""
    scratch = Path(tempfile.mkdtemp(prefix=".mvbridge-plan-", dir=path.parent))
    try:
        candidate = scratch / path.name
        candidate.write_text(text, encoding="utf-8")
        try:
            load_config(candidate)
        except ConfigError as exc:
            raise ConfigError(
                f"{path}: the planned envs would not make a valid config: {exc}"
            ) from exc
        if path.exists():
            shutil.copymode(path, candidate)
        os.replace(candidate, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
