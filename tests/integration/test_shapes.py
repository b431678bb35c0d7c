"""Proxies are shaped like their remote type: probes answer as they would locally, both ways."""

from __future__ import annotations

import collections.abc as abc

import pytest

import mvbridge


def raises_type_error(fn, *args):
    with pytest.raises(TypeError):
        fn(*args)
    return True


# -- host proxies of worker objects -------------------------------------------------------------
def test_a_remote_function_is_callable_and_nothing_else(demo):
    remote_fn = demo.identity(demo.add)  # the worker's own function, by reference
    assert isinstance(remote_fn, mvbridge.RemoteObject)
    assert callable(remote_fn)
    assert isinstance(remote_fn, abc.Callable)
    assert remote_fn(2, 3) == 5
    for probe in ("__iter__", "__len__", "__getitem__", "__contains__", "__array__", "__next__"):
        assert not hasattr(remote_fn, probe), probe
    assert not isinstance(remote_fn, abc.Iterable)
    assert not isinstance(remote_fn, abc.Sized)
    assert raises_type_error(iter, remote_fn)
    assert raises_type_error(len, remote_fn)


def test_a_remote_container_is_iterable_sized_and_named_like_its_type(demo):
    counter = demo.make_counter(3)
    assert type(counter).__name__ == "Counter"
    assert type(counter).__module__ == "mvb_demo"
    assert isinstance(counter, mvbridge.RemoteObject)
    assert isinstance(counter, abc.Iterable)
    assert isinstance(counter, abc.Sized)
    assert isinstance(counter, abc.Container)
    assert isinstance(counter, abc.Hashable)
    assert not callable(counter)
    assert not isinstance(counter, abc.Mapping)
    assert list(counter) == [0, 1, 2]
    assert len(counter) == 3


def test_a_remote_mapping_is_a_mapping_by_the_abcs_rules(demo):
    table = demo.make_table(a=1, b=2)
    assert isinstance(table, abc.Mapping)
    assert not isinstance(table, abc.MutableMapping)
    assert dict(table) == {"a": 1, "b": 2}
    assert sorted(table.keys()) == ["a", "b"]  # Mapping's own methods, run in the worker


def test_a_remote_generator_is_an_iterator_and_a_generator(demo):
    generator = demo.generate(3)
    assert isinstance(generator, abc.Iterator)
    assert isinstance(generator, abc.Generator)
    assert next(generator) == 0
    assert list(generator) == [1, 2]


def test_a_plain_remote_object_has_no_container_or_number_methods(demo):
    plain = demo.make_plain()
    assert type(plain).__name__ == "Plain"
    assert not callable(plain)
    assert not isinstance(plain, abc.Iterable)
    assert raises_type_error(lambda: plain + 1)
    assert raises_type_error(lambda: plain < plain)
    assert plain == plain  # by identity, locally: one proxy per remote object
    assert hash(plain) == hash(plain)
    assert bool(plain) is True
    assert "Plain object" in repr(plain)


def test_shaping_costs_no_round_trip_per_probe(demo, any_env):
    counter = demo.make_counter(2)
    session = any_env.current_session()
    sent_before = session.table.statistics()  # the host's own table does not move on probes
    for _ in range(100):
        hasattr(counter, "__array__")
        isinstance(counter, abc.Iterable)
        callable(counter)
    assert session.table.statistics() == sent_before
    assert type(counter) is type(demo.make_counter(5))  # one class per remote type, cached


# -- worker proxies of host objects -------------------------------------------------------------
class HostBox:
    """A host container: iterable and sized."""

    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def test_a_host_function_looks_like_a_function_to_the_worker(demo):
    def double(value):
        return value * 2

    shape = demo.shape_of(double)
    assert {k for k, v in shape.items() if v is True} == {"callable", "is_callable_abc", "hashable"}
    assert shape["iter_error"] == "TypeError"
    assert shape["len_error"] == "TypeError"


def test_a_host_container_looks_like_one_to_the_worker(demo):
    shape = demo.shape_of(HostBox([1, 2]))
    truths = {k for k, v in shape.items() if v is True}
    assert truths == {"has_iter", "has_len", "iterable", "sized", "hashable"}
    assert shape["iter_error"] is None


class HostTable(abc.Mapping):
    """A host mapping, by subclassing the ABC."""

    def __init__(self, **items):
        self.items = items

    def __getitem__(self, key):
        return self.items[key]

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


class HostCountdown:
    """A host iterator."""

    def __init__(self, start):
        self.left = start

    def __iter__(self):
        return self

    def __next__(self):
        if self.left <= 0:
            raise StopIteration
        self.left -= 1
        return self.left


def test_a_host_mapping_and_a_host_iterator_keep_their_abcs_in_the_worker(demo):
    table = demo.shape_of(HostTable(a=1))
    assert table["mapping"]
    assert table["sized"]
    assert not table["sequence"]
    countdown = demo.shape_of(HostCountdown(2))
    assert countdown["iterator"]
    assert not countdown["sized"]


def test_a_library_that_probes_for_list_likes_calls_a_host_callback(demo):
    # Before shaping, the callback claimed __iter__ and the library tried to iterate it.
    assert demo.apply_like_pandas(lambda v: v + 1, [1, 2, 3]) == [2, 3, 4]
    assert demo.apply_like_pandas(HostBox([abs, str]), [-1]) == [[1, "-1"]]


# -- numpy's probes stay deliberate ----------------------------------------------------------------
def test_numpy_sees_a_remote_function_as_a_plain_object(demo):
    import numpy as np

    remote_fn = demo.identity(demo.add)
    assert np.asarray(remote_fn, dtype=object).shape == ()  # a scalar object, no round trip


# -- a real library: pandas in the worker, a host function ----------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pandas_series_apply_calls_a_host_function(py_pandas):
    with mvbridge.Env("shapes-pandas", interpreter=py_pandas) as env:
        pd = env.import_module("pandas")
        series = pd.Series([1, 2, 3])
        doubled = series.apply(lambda value: value * 2)
        assert doubled.tolist() == [2, 4, 6]
        frame = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
        assert frame.apply(lambda column: int(column.sum())).tolist() == [3, 7]
        assert isinstance(series, abc.Iterable)
        assert isinstance(series, abc.Sized)
        assert len(series) == 3
        import numpy as np

        assert hasattr(series, "__array__")  # an array-like answers numpy's probe
        assert np.asarray(series).tolist() == [1, 2, 3]
        assert not hasattr(pd.Series.apply, "__array__")
