"""Which subclasses of builtins cross as their base's value (core/builtin_values.py)."""

from __future__ import annotations

import collections

from mvbridge.core.builtin_values import NOT_BUILTIN, base_value


class Row(dict):
    table = "users"


class Defaulting(dict):
    def __missing__(self, key):
        return 0


class Sorted(dict):
    def __iter__(self):
        return iter(sorted(dict.__iter__(self)))


class Name(str):
    def __str__(self):
        return "something else"


def test_values_of_builtin_subclasses_are_their_storage():
    assert type(base_value(Row(a=1))) is dict
    assert base_value(Name("id")) == "id"
    assert type(base_value(Name("id"))) is str
    assert base_value(collections.namedtuple("P", "x y")(1, 2)) == (1, 2)


def test_a_container_that_reads_its_own_way_is_no_value():
    assert base_value(Sorted(b=1, a=2)) is NOT_BUILTIN
    assert base_value(Defaulting(a=1)) is NOT_BUILTIN  # __missing__: dict calls it, lacks it
