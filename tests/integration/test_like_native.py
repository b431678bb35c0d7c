"""Proxies behave like the native objects where real libraries' doctests showed otherwise.

Each test failed before its fix; the transparency suite (tests/transparency) found the cases.
"""

from __future__ import annotations

import pytest


def test_isinstance_with_a_remote_class_asks_the_worker(demo):
    counter = demo.make_counter(1)
    assert isinstance(counter, demo.Counter)  # a module's class, named lazily
    assert isinstance(counter, (int, demo.Counter))
    assert not isinstance(demo.make_plain(), demo.Counter)
    assert not isinstance(3, demo.Counter)
    counter_class = demo.identity(demo.Counter)  # the class itself, by reference
    assert isinstance(counter, counter_class)
    assert not isinstance(demo.make_table(a=1), counter_class)


def test_issubclass_with_remote_classes_asks_the_worker(demo):
    assert issubclass(demo.DeepParseError, demo.ParseError)  # real classes, as before
    table_class = demo.identity(demo.Table)
    assert issubclass(table_class, demo.Table)  # two proxies of one class
    assert issubclass(demo.Table, table_class)
    assert not issubclass(demo.Plain, demo.Table)


def test_isinstance_with_a_remote_function_raises_type_error_as_natively(demo):
    # (A guard: this held before, by another way.)
    with pytest.raises(TypeError):
        isinstance(1, demo.add)
