"""The partition search and the explanations, against a small working resolver of our own.

The fake stands at the edge the search talks to (``check``): it really decides whether a set
of ``name<op>version`` requirements has a solution over a made-up index, so the search is
tested on shapes the registry makes awkward (crowns, non-pairwise conflicts, 20 clusters).
"""

from __future__ import annotations

import itertools
import operator
import re

import pytest

from mvbridge.plan.explain import shorten
from mvbridge.plan.resolvers import Answer
from mvbridge.plan.search import partition

_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, ">=": operator.ge}


class TinyResolver:
    """Every distribution has versions 1..9; a requirement is ``name`` + ops, e.g. ``a==2``."""

    def __init__(self, items: list[str]) -> None:
        self.items = items
        self.asked = 0

    def check(self, chosen: frozenset[int]) -> Answer:
        self.asked += 1
        wanted: dict[str, list] = {}
        for i in chosen:
            for part in self.items[i].split(";"):
                name, op, version = re.match(r"(\w+)(==|!=|<|>=)(\d+)", part).groups()
                wanted.setdefault(name, []).append((_OPS[op], int(version)))
        pins = {}
        for name, tests in wanted.items():
            fits = [v for v in range(1, 10) if all(op(v, bound) for op, bound in tests)]
            if not fits:
                return Answer(None, f"Because you require {name} ..., no solution")
            pins[name] = str(max(fits))
        return Answer(pins)

    def suspects(self, answer: Answer, group):
        return [i for i in group if self.items[i].split("=")[0].rstrip("!<>") in answer.message]


def plan(items: list[str], **kwargs):
    resolver = TinyResolver(items)
    found = partition(len(items), resolver.check, resolver.suspects, **kwargs)
    asked = resolver.asked
    for group, answer in zip(found.groups, found.answers, strict=True):
        assert answer.ok
        assert resolver.check(frozenset(group)).ok
    assert sorted(i for g in found.groups for i in g) == sorted(
        set(range(len(items))) - set(found.unresolvable)
    )
    resolver.asked = asked
    return found, resolver


def fewest_by_brute_force(items: list[str]) -> int:
    resolver = TinyResolver(items)
    n = len(items)
    for k in range(1, n + 1):
        for colours in itertools.product(range(k), repeat=n):
            if all(
                resolver.check(frozenset(i for i in range(n) if colours[i] == c)).ok
                for c in range(k)
            ):
                return k
    raise AssertionError


def test_a_list_that_resolves_is_one_group_after_one_question():
    found, resolver = plan(["a==1", "b>=2", "c<5"])
    assert found.groups == [[0, 1, 2]]
    assert resolver.asked == 1
    assert found.exact


def test_two_conflicting_pairs_and_free_items_make_two_groups_not_four():
    found, _ = plan(["a==1", "a==2", "b==1", "b==2", "c>=1", "d>=1"])
    assert len(found.groups) == 2
    assert found.conflicts == [[0, 1], [2, 3]]
    assert [4, 5] in [[i for i in g if i >= 4] for g in found.groups]  # free ones stay together


def test_a_conflict_of_three_whose_pairs_all_resolve_is_found():
    # a>=5 with a<7 gives 5 or 6; a>=5 with a!=5;a!=6 gives 7; a<7 with a!=5;a!=6 gives 4.
    found, _ = plan(["a>=5", "a<7", "a!=5;a!=6"])
    assert found.conflicts == [[0, 1, 2]]
    assert len(found.groups) == 2


def test_the_exact_search_beats_a_first_fit_order_on_a_crown():
    # A crown: u_i conflicts with v_j for i != j. Two groups suffice ({u..}, {v..}), while
    # first fit in the order u1 v1 u2 v2 ... needs one group per pair.
    n = 4
    items = []
    for i in range(n):
        items += [f"u{i}==1;" + ";".join(f"x{i}{j}==1" for j in range(n) if j != i)]
        items += [f"v{i}==1;" + ";".join(f"x{j}{i}==2" for j in range(n) if j != i)]
    found, _ = plan(items)
    assert len(found.groups) == fewest_by_brute_force(items) == 2
    assert found.exact


@pytest.mark.parametrize("seed", range(6))
def test_the_exact_search_finds_the_fewest_groups_on_random_lists(seed):
    import random

    rng = random.Random(seed)
    items = [
        f"{rng.choice('abc')}{rng.choice(['==', '!=', '<', '>='])}{rng.randint(1, 9)}"
        for _ in range(7)
    ]
    found, _ = plan(items)
    assert len(found.groups) == fewest_by_brute_force(
        [items[i] for i in range(len(items)) if i not in found.unresolvable]
    )


def test_above_the_exact_limit_a_verified_greedy_places_twenty_clusters():
    items = [f"p{c}=={v}" for c in range(20) for v in (1, 2)] + ["free>=1"]
    found, _ = plan(items, exact_limit=12)
    assert not found.exact
    assert len(found.groups) == 2  # every group verified by plan(); pairs are easy for greedy


def test_an_item_that_resolves_nowhere_is_set_aside():
    found, _ = plan(["a==1", "b<1", "a==2"])
    assert found.unresolvable == [1]
    assert len(found.groups) == 2


def test_free_items_join_the_hosts_group_when_it_is_as_large_as_any():
    found, _ = plan(["h==1", "a==2", "h==2", "z>=1"], host=0)
    host_group = next(g for g in found.groups if 0 in g)
    assert 3 in host_group


UV_TRANSITIVE = """error: No solution found when resolving dependencies
  cause: Because packaging==21.3 depends on one of:
             pyparsing>=2.0.2,<3.0.5
             pyparsing>3.0.5
         and you require packaging==21.3, we can conclude that you require one of:
             pyparsing>=2.0.2,<3.0.5
             pyparsing>3.0.5

         And because you require pyparsing==3.0.5, we can conclude that your requirements are unsatisfiable."""
UV_MARKER = """error: No solution found when resolving dependencies
  cause: Because anyio==4.0.0 depends on exceptiongroup{python_full_version < '3.11'}>=1.0.2 and you require anyio==4.0.0, we can conclude that you require exceptiongroup>=1.0.2.
         And because you require exceptiongroup==1.0.0, we can conclude that your requirements are unsatisfiable."""
PIP_PINS = """ERROR: Cannot install six==1.15.0 and six==1.16.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested six==1.15.0
    The user requested six==1.16.0
ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/"""


@pytest.mark.parametrize(
    ("message", "short"),
    [
        (
            UV_TRANSITIVE,
            "packaging==21.3 needs pyparsing>=2.0.2,<3.0.5 or pyparsing>3.0.5; "
            "pyparsing==3.0.5 is required (Python 3.11)",
        ),
        (
            UV_MARKER,
            "anyio==4.0.0 needs exceptiongroup>=1.0.2 (when python_full_version < '3.11'); "
            "exceptiongroup==1.0.0 is required (Python 3.11)",
        ),
        (PIP_PINS, "six==1.15.0 and six==1.16.0 are both required (Python 3.11)"),
        ("something unexpected\n  happened", "something unexpected happened (Python 3.11)"),
    ],
)
def test_explanations_keep_the_premises_of_the_resolvers_message(message, short):
    assert shorten(message, "3.11") == short
