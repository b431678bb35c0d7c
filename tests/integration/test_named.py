"""Named objects cross by name and arrive as the receiver's own (issue 8, point 1)."""

from __future__ import annotations

import enum
import http

import numpy as np
import pytest

import mvbridge


@pytest.fixture(scope="module")
def numpy1(py_numpy1):
    """A worker with numpy 1.x; this host has numpy 2.x."""
    with mvbridge.Env("named-numpy1", interpreter=py_numpy1) as env:
        demo = env.import_module("mvb_demo")
        assert demo.numpy_version().startswith("1.")
        yield demo


def test_a_numpy_2_scalar_type_arrives_as_numpy_1s_own(numpy1):
    assert numpy1.is_own(np.float32, "numpy", "float32")
    assert numpy1.zeros_of(np.float32, 3) == "float32"
    assert numpy1.zeros_of(np.dtype("int16"), 2) == "int16"  # a dtype object, by its descr


def test_ufuncs_and_numpy_functions_run_in_the_worker(numpy1):
    assert numpy1.is_own(np.log1p, "numpy", "log1p")
    assert numpy1.map_over(np.log1p, [0.0]) == [0.0]
    assert numpy1.call(np.median, [1.0, 3.0, 2.0]) == 2.0
    assert numpy1.is_own(np.median, "numpy", "median")


def test_a_name_the_worker_lacks_falls_back_to_a_reference(numpy1):
    # numpy.unstack is new in numpy 2.1: the numpy 1 worker calls it back in the host.
    pieces = numpy1.call(np.unstack, np.arange(4.0).reshape(2, 2))
    assert [p.tolist() for p in pieces] == [[0.0, 1.0], [2.0, 3.0]]
    assert not numpy1.is_own(np.unstack, "mvb_demo", "identity")


def test_builtins_and_method_descriptors_cross_by_name(demo):
    assert demo.reduce_with(min, [3, 1, 2]) == 1
    assert demo.sorted_by(["b", "A", "c"], str.lower) == ["A", "b", "c"]
    assert demo.is_own(str.lower, "builtins", "str.lower")
    assert demo.is_own(len, "builtins", "len")


def test_stdlib_classes_functions_and_enum_members_are_each_sides_own(demo):
    import collections
    import json

    assert demo.is_own(collections.OrderedDict, "collections", "OrderedDict")
    assert demo.is_own(json.dumps, "json", "dumps")
    assert demo.is_own(http.HTTPStatus.NOT_FOUND, "http", "HTTPStatus.NOT_FOUND")
    assert demo.identity(http.HTTPStatus.OK) is http.HTTPStatus.OK  # and back, the host's own


class Color(enum.Enum):
    RED = 1


def test_host_only_names_stay_references(demo):
    assert demo.identity(Color.RED) is Color.RED  # the worker cannot import tests.*: a proxy
    assert demo.call(_double, 21) == 42  # a module-level host function, called back


def _double(value):
    return value * 2
