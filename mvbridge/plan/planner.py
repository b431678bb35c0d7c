"""A plan: the requirements split into the fewest groups that resolve, named, with reasons.

Internal. Glues the steps together: the items to place (each requirement; the host's own
requirements as one block that must stay together), the resolver's answers, the search, the
explanations, and a name per group.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import is_local_requirement
from .answers import AnswerCache, Checker, CheckerStatistics
from .explain import canonical, mentioned, shorten
from .resolvers import Answer, Resolver, Target
from .search import EXACT_LIMIT, partition

HOST_GROUP = "host"
_PROJECT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PIN = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?\s*===?\s*([^\s;,]+)\s*(?:;|$)")


@dataclass(frozen=True)
class Group:
    """Requirements that resolve together.

    Attributes:
        name: the env name it gets (``"host"`` for the host's group).
        requirements: the requirements, in input order.
        resolved: every distribution it resolves to, and its version.
        host: True for the group of the host's own requirements (never written as an env).
    """

    name: str
    requirements: list[str]
    resolved: dict[str, str]
    host: bool = False


@dataclass(frozen=True)
class Conflict:
    """Requirements that do not resolve together (one: it resolves nowhere).

    Attributes:
        requirements: the requirements; without any one of them the rest resolve.
        reason: the resolver's explanation, shortened to one line.
    """

    requirements: list[str]
    reason: str

    @property
    def nowhere(self) -> bool:
        return len(self.requirements) == 1


@dataclass(frozen=True)
class Plan:
    """The outcome of ``mvbridge plan``.

    Attributes:
        target: the Python it was made for.
        resolver: ``"uv"`` or ``"pip"``.
        groups: the groups, the host's first if any.
        conflicts: every minimal conflict found, those that resolve nowhere included.
        exact: True when the number of groups is proven the fewest.
        statistics: the resolver questions it took.
        seconds: how long it took.
    """

    target: Target
    resolver: str
    groups: list[Group]
    conflicts: list[Conflict]
    exact: bool
    statistics: CheckerStatistics
    seconds: float

    @property
    def unresolvable(self) -> list[str]:
        return [c.requirements[0] for c in self.conflicts if c.nowhere]


def make_plan(
    requirements: Sequence[str],
    target: Target,
    resolver: Resolver,
    *,
    host: Sequence[str] = (),
    cache: AnswerCache | None = None,
    refresh: bool = False,
    progress: Callable[[str], None] | None = None,
    exact_limit: int = EXACT_LIMIT,
) -> Plan:
    """Plan ``requirements`` (and the ``host``'s own, kept in one group) for ``target``.

    Raises:
        EnvBuildError: the resolver failed to run (a conflict is not a failure).
    """
    say = progress or (lambda message: None)
    started = time.monotonic()
    host = list(dict.fromkeys(host))
    items: list[tuple[str, ...]] = [tuple(host)] if host else []
    items += [(r,) for r in requirements if r not in host]
    names = [set().union(*(_names(r) for r in item)) for item in items]
    checker = Checker(resolver, target, cache, refresh)

    def check(chosen: frozenset[int]) -> Answer:
        return checker.check(r for i in chosen for r in items[i])

    def suspects(answer: Answer, group: Sequence[int]) -> list[int]:
        said = mentioned(answer.message)
        return [i for i in group if names[i] & said]

    def label(i: int) -> str:
        return "the host's requirements" if host and i == 0 else items[i][0]

    say(
        f"plan: resolving {len(items) - bool(host)} requirement(s)"
        + (f" and {len(host)} of the host" if host else "")
        + f" for Python {target.version} with {resolver.name}"
    )
    found = partition(
        len(items),
        check,
        suspects,
        host=0 if host else None,
        exact_limit=exact_limit,
        progress=lambda message: say("plan: " + message),
        label=label,
        workers=min(4, os.cpu_count() or 1) * 2,  # resolvers wait on the network as much as CPU
    )
    conflicts = []
    for chosen in [*found.conflicts, *([i] for i in found.unresolvable)]:
        answer = check(frozenset(chosen))
        reason = shorten(answer.message, target.minor)
        if len(chosen) == 1:
            reason = f"resolves nowhere: {reason}"
        conflicts.append(Conflict([r for i in chosen for r in items[i]], reason))
    leads = [_lead(group, found.conflicts) for group in found.groups]
    group_names = _names_for(
        [items[lead][0] for lead in leads], [0 in g and bool(host) for g in found.groups]
    )
    groups = [
        Group(
            name=name,
            requirements=[r for i in group for r in items[i]],
            resolved=dict(sorted((answer.resolved or {}).items())),
            host=bool(host) and 0 in group,
        )
        for name, group, answer in zip(group_names, found.groups, found.answers, strict=True)
    ]
    statistics = checker.statistics()
    seconds = round(time.monotonic() - started, 3)
    say(
        f"plan: {len(groups)} group(s) after {statistics.asked} question(s): "
        f"{statistics.resolved} resolved, {statistics.from_disk} from the cache, in {seconds:.2f} s"
    )
    return Plan(target, resolver.name, groups, conflicts, found.exact, statistics, seconds)


def _names(requirement: str) -> set[str]:
    """The canonical distribution names a requirement may go by (a local folder: its name)."""
    if is_local_requirement(requirement):
        return {canonical(Path(requirement).name)}
    match = _PROJECT.match(requirement)
    return {canonical(match.group(1))} if match else set()


def _lead(group: list[int], conflicts: list[list[int]]) -> int:
    """The item a group is named after: its first one that takes part in a conflict (the
    reason the group exists), else its first."""
    involved = {i for c in conflicts for i in c}
    return next((i for i in group if i in involved), group[0])


def _names_for(leads: list[str], hosts: list[bool]) -> list[str]:
    """An env name per group, after its lead requirement's import name (``dep_a``, ``six``),
    told apart by the pinned version (``six_1_15_0``) or a number where two would clash."""
    bases = [
        HOST_GROUP if is_host else _import_name(lead)
        for lead, is_host in zip(leads, hosts, strict=True)
    ]
    names = list(bases)
    for index, base in enumerate(bases):
        if hosts[index] or (bases.count(base) == 1 and base != HOST_GROUP):
            continue
        pin = _PIN.match(leads[index])
        names[index] = f"{base}_{_safe(pin.group(1))}" if pin else base
    for index, name in enumerate(names):
        taken = names[:index] + ([HOST_GROUP] if not hosts[index] else [])
        number = 2
        while name in taken:
            name = f"{names[index]}_{number}"
            number += 1
        names[index] = name
    return names


def _import_name(requirement: str) -> str:
    """``typing-extensions>=4`` -> ``typing_extensions``; ``./src/dep_a`` -> ``dep_a``."""
    if is_local_requirement(requirement):
        raw = Path(requirement).name
    else:
        match = _PROJECT.match(requirement)
        raw = match.group(1) if match else "env"
    name = re.sub(r"[^A-Za-z0-9_]+", "_", raw).strip("_").lower() or "env"
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def _safe(text: str) -> str:
    """A version as part of an env name: ``1.15.0`` -> ``1_15_0`` (a dot would have to be
    quoted in every TOML header: ``[envs."six-1.15.0"]``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "x"
