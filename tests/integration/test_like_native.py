"""Proxies behave like the native objects where real libraries' doctests showed otherwise.

Each test failed before its fix; the transparency suite (tests/transparency) found the cases.
"""

from __future__ import annotations

import datetime
import itertools

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


def test_a_bound_method_of_a_host_list_reaches_that_list(demo):
    # toolz's doctest: compose(inc, do(log.append)) run in the worker fills the host's log.
    log = []
    demo.call(log.append, 1)
    demo.map_over(log.append, [2, 3])
    assert log == [1, 2, 3]


def test_a_bound_method_of_a_stdlib_object_reaches_that_object(demo):
    import collections

    counts = collections.Counter()
    demo.call(counts.update, "aab")
    assert counts == {"a": 2, "b": 1}
    store = {}
    demo.call(store.__setitem__, "k", 1)  # a method-wrapper
    assert store == {"k": 1}


def test_methods_of_immutable_values_and_modules_still_cross_by_value(demo):
    import math

    assert demo.map_over("-".join, [["a", "b"]]) == ["a-b"]
    assert demo.is_own(math.sqrt, "math", "sqrt")
    assert demo.call(dict.fromkeys, "ab") == {"a": None, "b": None}


def _answer(instance):
    return 42


def test_a_remote_property_in_a_host_class_works_as_a_property(demo):
    # toolz's instanceproperty doctest: the descriptor's __get__ runs where it lives.
    class Host:
        answer = demo.call(property, _answer)  # the worker's property, by reference

    host = Host()
    assert host.answer == 42
    assert isinstance(Host.answer, type(Host.__dict__["answer"]))  # the property itself
    with pytest.raises(AttributeError):
        host.answer = 1  # a property without a setter: __set__ is forwarded too


def test_a_remote_function_in_a_host_class_binds_like_a_method(demo):
    remote_echo = demo.identity(demo.echo)

    class Host:
        echo = remote_echo

    host = Host()
    args, kwargs = host.echo(1, k=2)
    assert args[0] is host
    assert args[1:] == (1,)
    assert kwargs == {"k": 2}
    assert Host.echo is remote_echo


def test_a_remote_tzinfo_is_a_tzinfo_here(demo):
    # dateutil's doctests: datetime(..., tzinfo=tz.gettz("America/New_York")) in the host, and
    # datetimes of the worker whose tzinfo crosses by reference.
    zone = demo.zone(2, "TWO")
    assert isinstance(zone, datetime.tzinfo)
    moment = datetime.datetime(2024, 1, 1, 12, tzinfo=zone)
    assert moment.utcoffset() == datetime.timedelta(hours=2)
    assert moment.tzname() == "TWO"
    assert str(moment) == "2024-01-01 12:00:00+02:00"
    assert demo.identity(moment).tzinfo is zone  # to the worker and back, by value
    made = demo.moment_in(2024, 1, 1, 12, demo.zone(-5, "FIVE"))
    assert str(made) == "2024-01-01 12:00:00-05:00"
    assert made.astimezone(zone) == moment + datetime.timedelta(hours=7)
    assert datetime.datetime.now(zone).tzname() == "TWO"


def test_an_iterator_crosses_by_reference_so_it_advances(demo):
    # A stdlib callable_iterator used to cross by value: the host's copy called take() with a
    # copy of the list iterator each time, and never reached the sentinel.
    assert list(demo.chunks([1, 2, 3, 4, 5, 6, 7], 3)) == [[1, 2, 3], [4, 5, 6], [7]]


def test_the_worker_reads_a_host_iterator_item_by_item(demo):
    it = iter(range(10))
    assert demo.take(3, it) == [0, 1, 2]
    assert next(it) == 3  # nothing read ahead by the worker and lost to the host
    assert demo.take(2, it) == [4, 5]
    assert list(it) == [6, 7, 8, 9]


def test_items_read_ahead_stay_with_their_iterator(demo):
    it = demo.countdown(8)
    assert next(it) == 8
    first = list(itertools.islice(it, 2))  # iter(it): reads ahead in batches
    assert first == [7, 6]
    assert next(it) == 5  # what the batch held comes first
    assert list(it) == [4, 3, 2, 1]


def test_groupby_groups_come_in_step_with_their_parent(demo):
    grouped = [(key, "".join(group)) for key, group in demo.groups("aabcccdde")]
    assert grouped == [("a", "aa"), ("b", "b"), ("c", "ccc"), ("d", "dd"), ("e", "e")]


def test_a_dict_subclass_that_reads_its_own_way_stays_a_reference(demo):
    mapping = demo.sorted_map()
    assert list(mapping) == ["a", "b", "c"]  # its own order, not its storage's
    assert mapping["b"] == 2


def test_rows_of_nested_plain_data_still_come_in_batches(demo):
    start = demo.produced()
    rows = demo.nested_rows(100)
    first = list(itertools.islice(rows, 2))
    assert first == [[0, [0, {"k": (0,)}]], [1, [1, {"k": (1,)}]]]
    assert demo.produced() - start == 5  # a batch of 1, then of 4: not one request per row


def test_a_finished_loop_releases_the_remote_iterator_without_the_gc(demo, any_env):
    import gc

    before = any_env.statistics().worker_objects
    gc.disable()
    try:
        for _ in range(20):
            for _ in demo.countdown(3):
                pass
        assert any_env.statistics().worker_objects == before  # no proxy kept by a cycle
    finally:
        gc.enable()
