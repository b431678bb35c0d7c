"""The partition: the fewest groups of requirements that each resolve, every group verified.

Internal. Items are numbered ``0..n-1`` (an item is one requirement, or the block of host
requirements); ``check(items)`` asks the resolver about a set of them. Conflicts are not only
pairwise (three requirements may fail together while every pair resolves), so the search
works with *conflict sets*: minimal sets that do not resolve, each found by the resolver.

1. The whole list resolves: one group, one question.
2. Otherwise repeat: take the conflict sets known so far; split the items into the fewest
   groups that contain none of them (exactly, by backtracking, while at most ``EXACT_LIMIT``
   items take part in conflicts; by a greedy above); items in no conflict set join the largest
   group; ask the resolver about every group. Stop when every group resolves. From each group
   that does not, extract a new minimal conflict set (a group holds no known one, so the set is
   new) and go round again.

A minimal conflict set comes from QuickXplain (Junker, AAAI 2004) over the failing group, after
one guess: the items whose names the resolver's message mentions, tried alone first. The guess
only saves questions; it never decides. Since every conflict set really fails, a partition into
fewer groups than the exact search finds would put a whole conflict set in one group: when the
search was exact, the result is the fewest groups there are. A conflict set of one item is an
item that resolves nowhere; it is set aside and reported.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .resolvers import Answer

EXACT_LIMIT = 12  # items in conflicts up to which the fewest groups are searched exactly
Check = Callable[[frozenset[int]], Answer]
Suspects = Callable[[Answer, Sequence[int]], list[int]]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Partition:
    """The outcome of the search.

    Attributes:
        groups: item numbers per group, each in input order; groups ordered by their first item.
        answers: the resolver's answer for each group (every one resolved).
        conflicts: the minimal conflict sets found (two items or more), in input order.
        unresolvable: items that resolve nowhere, even alone.
        exact: True when the number of groups is proven the fewest.
        rounds: partitions tried.
    """

    groups: list[list[int]]
    answers: list[Answer]
    conflicts: list[list[int]]
    unresolvable: list[int]
    exact: bool
    rounds: int


def partition(
    count: int,
    check: Check,
    suspects: Suspects,
    *,
    host: int | None = None,
    exact_limit: int = EXACT_LIMIT,
    progress: Progress | None = None,
    label: Callable[[int], str] = str,
    workers: int = 4,
) -> Partition:
    """Split items ``0..count-1`` into the fewest groups that each resolve (see the module).

    ``host``, if given, is the item whose group stays with the host; among groups of equal size
    it is the one free items join. ``label`` names an item in progress messages; ``workers``
    bounds the questions asked at once.

    Raises:
        EnvBuildError: the resolver failed to run.
    """
    say = progress or (lambda message: None)
    alive = list(range(count))
    conflicts: list[list[int]] = []
    unresolvable: list[int] = []
    if not alive:
        return Partition([], [], [], [], True, 0)
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        whole = check(frozenset(alive))
        failing = [] if whole.ok else [(alive, whole)]
        groups, answers, exact, rounds = [alive], [whole], True, 1
        while failing:
            for found in pool.map(
                lambda g: _minimal_conflict(g[0], g[1], check, suspects), failing
            ):
                if len(found) == 1:
                    unresolvable.append(found[0])
                    alive.remove(found[0])
                else:
                    conflicts.append(found)
                say(_describe(found, label))
            groups, exact = _colour(alive, conflicts, host, exact_limit)
            rounds += 1
            say(f"trying {len(groups)} group(s) ({len(conflicts)} conflict(s) known)")
            answers = list(pool.map(lambda g: check(frozenset(g)), groups))
            failing = [(g, a) for g, a in zip(groups, answers, strict=True) if not a.ok]
    order = sorted(range(len(groups)), key=lambda i: groups[i][0])
    return Partition(
        groups=[groups[i] for i in order],
        answers=[answers[i] for i in order],
        conflicts=sorted(conflicts),
        unresolvable=sorted(unresolvable),
        exact=exact,
        rounds=rounds,
    )


def _describe(found: list[int], label: Callable[[int], str]) -> str:
    if len(found) == 1:
        return f"{label(found[0])} resolves nowhere"
    return f"conflict: {' + '.join(label(i) for i in found)}"


# -- conflict sets --------------------------------------------------------------------------------
def _minimal_conflict(
    group: Sequence[int], answer: Answer, check: Check, suspects: Suspects
) -> list[int]:
    """A minimal subset of ``group`` (which does not resolve) that does not resolve either."""
    guess = suspects(answer, group)
    if guess and len(guess) < len(group) and not check(frozenset(guess)).ok:
        group = guess
    return sorted(_quickxplain([], False, list(group), check))


def _quickxplain(
    background: list[int], added: bool, candidates: list[int], check: Check
) -> list[int]:
    """QuickXplain: a minimal ``X`` of ``candidates`` such that ``background + X`` fails,
    given that ``background + candidates`` fails. ``added``: ``background`` grew since the
    caller last knew it resolved."""
    if added and not check(frozenset(background)).ok:
        return []
    if len(candidates) == 1:
        return candidates
    half = len(candidates) // 2
    first, second = candidates[:half], candidates[half:]
    from_second = _quickxplain(background + first, True, second, check)
    from_first = _quickxplain(background + from_second, bool(from_second), first, check)
    return from_first + from_second


# -- colouring ------------------------------------------------------------------------------------
def _colour(
    alive: list[int], conflicts: list[list[int]], host: int | None, exact_limit: int
) -> tuple[list[list[int]], bool]:
    """The fewest groups of ``alive`` holding no whole conflict set; free items join the
    largest. Returns the groups and whether the search was exact."""
    core = sorted({i for c in conflicts for i in c if i in alive})
    free = [i for i in alive if i not in core]
    sets = [frozenset(c) for c in conflicts]
    exact = len(core) <= exact_limit
    groups = _exact(core, sets) if exact else _greedy(core, sets)
    if free:
        if not groups:
            groups = [[]]
        largest = max(range(len(groups)), key=lambda g: (len(groups[g]), host in groups[g], -g))
        groups[largest] = sorted(groups[largest] + free)
    return [sorted(g) for g in groups], exact


def _completes(item: int, group: list[int], sets: list[frozenset[int]]) -> bool:
    """True when adding ``item`` to ``group`` would put a whole conflict set in it."""
    members = set(group) | {item}
    return any(item in s and s <= members for s in sets)


def _exact(core: list[int], sets: list[frozenset[int]]) -> list[list[int]]:
    """The fewest groups, by backtracking over k = 1, 2, ... (items by most conflicts first,
    each into an existing group or one new group, so no partition is tried twice)."""
    if not core:
        return []
    degree = {i: sum(i in s for s in sets) for i in core}
    order = sorted(core, key=lambda i: (-degree[i], i))
    for k in range(1, len(order) + 1):
        groups: list[list[int]] = []
        if _place(order, 0, groups, k, sets):
            return groups
    raise AssertionError("one group per item always works: conflict sets have two items")


def _place(
    order: list[int], at: int, groups: list[list[int]], k: int, sets: list[frozenset[int]]
) -> bool:
    if at == len(order):
        return True
    item = order[at]
    for group in groups:
        if not _completes(item, group, sets):
            group.append(item)
            if _place(order, at + 1, groups, k, sets):
                return True
            group.pop()
    if len(groups) < k:
        groups.append([item])
        if _place(order, at + 1, groups, k, sets):
            return True
        groups.pop()
    return False


def _greedy(core: list[int], sets: list[frozenset[int]]) -> list[list[int]]:
    """Items by most conflicts first, each into the largest group it completes no set in."""
    degree = {i: sum(i in s for s in sets) for i in core}
    groups: list[list[int]] = []
    for item in sorted(core, key=lambda i: (-degree[i], i)):
        fits = [g for g in groups if not _completes(item, g, sets)]
        if fits:
            max(fits, key=len).append(item)
        else:
            groups.append([item])
    return groups
