"""References: identity both ways, forced value/ref, and release by the garbage collector."""

from __future__ import annotations

import gc
import pickle
import sys
import threading

import pytest

import mvbridge


class HostOnly:
    """A host class the worker cannot import: crosses by reference."""

    def __init__(self, value):
        self.value = value

    def double(self):
        return self.value * 2


def test_host_object_comes_back_as_the_same_object(demo):
    mine = HostOnly(3)
    assert demo.identity(mine) is mine


def test_host_object_is_used_by_reference_in_the_worker(demo):
    mine = HostOnly(4)
    assert demo.call(mine.double) == 8
    index = demo.keep(mine)
    mine.value = 5
    assert demo.call(demo.kept(index).double) == 10
    demo.forget()


def test_same_remote_object_gives_the_same_proxy(demo):
    counter = demo.make_counter(1)
    index = demo.keep(counter)
    assert demo.kept(index) is counter
    demo.forget()


def test_remote_object_passed_back_is_the_original(demo):
    counter = demo.make_counter(2)
    assert demo.call_twice_same(demo.identity, counter)
    assert demo.identity(counter) is counter


def test_stdlib_objects_cross_by_value(demo):
    import datetime
    import decimal

    value = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert demo.identity(value) == value
    assert type(demo.identity(decimal.Decimal("1.5"))) is decimal.Decimal


def test_unpicklable_stdlib_object_crosses_by_reference(demo):
    lock = threading.Lock()
    assert demo.identity(lock) is lock


def test_by_ref_forces_a_reference(demo):
    data = {"a": 1}
    index = demo.keep(mvbridge.by_ref(data))
    kept = demo.kept(index)
    assert kept is data
    demo.forget()


def test_by_value_forces_a_copy(any_env):
    demo = any_env.import_module("mvb_demo")
    mine = HostOnly(6)
    if any_env.info.python.startswith("%d.%d." % sys.version_info[:2]):
        copy = demo.identity(mvbridge.by_value(mine))  # the class travels as code
        assert copy is not mine
        assert copy.value == 6
    else:
        with pytest.raises(mvbridge.SerializationError, match="No module named 'tests'"):
            demo.identity(mvbridge.by_value(mine))


def test_by_value_of_an_unpicklable_value_is_a_clear_error(demo):
    with pytest.raises(mvbridge.SerializationError, match="by value"):
        demo.identity(mvbridge.by_value(threading.Lock()))


@pytest.mark.timeout(180)
def test_create_and_drop_cycles_leave_the_table_at_its_size(any_env):
    demo = any_env.import_module("mvb_demo")
    make = demo.make_counter
    make(0)
    gc.collect()
    before = any_env.statistics().worker_objects
    # Each release rides on the next message, so a leak shows after a few cycles; 5,000 keeps
    # the service case (two hops a call) well inside its timeout on a slow, shared machine.
    for i in range(5_000):
        make(i)  # the proxy dies at once; its release rides on a later message
    gc.collect()
    after = any_env.statistics()
    assert after.worker_objects == before
    assert after.pending_releases == 0


def test_host_objects_are_released_when_the_worker_drops_them(any_env):
    demo = any_env.import_module("mvb_demo")
    for i in range(200):
        demo.identity(HostOnly(i))
    demo.version()  # carries the worker's releases back
    wait_for = any_env.statistics
    assert wait_for().host_objects <= 1


def test_proxies_do_not_pickle_with_plain_pickle(demo):
    with pytest.raises(mvbridge.SerializationError):
        pickle.dumps(demo.make_counter(1))
