"""Objects of two envs used together: what Python gives for unrelated types, or the real result,
and never an endless bounce between the host and the two workers (#8, point 3)."""

from __future__ import annotations

import operator

import pytest

import mvbridge


@pytest.fixture(scope="module", params=["local", "service"])
def old(request: pytest.FixtureRequest):
    """mvb_demo 1.0 on the host's Python: a local worker, or a `mvbridge spawn` service."""
    if request.param == "service":
        spawned = request.getfixturevalue("service")
        keys = request.getfixturevalue("keys")
        env = mvbridge.Env("old-service", address=spawned.address, **keys.env_kwargs())
    else:
        env = mvbridge.Env("old", interpreter=request.getfixturevalue("py_v1"))
    with env:
        module = env.import_module("mvb_demo")
        assert module.version() == "1.0"
        yield module


@pytest.fixture(scope="module")
def new(py_v2: str):
    """mvb_demo 2.0 on CPython 3.8."""
    with mvbridge.Env("new", interpreter=py_v2) as env:
        module = env.import_module("mvb_demo")
        assert module.version() == "2.0"
        yield module


def test_equality_of_unrelated_types_is_false_both_ways(old, new):
    a, b = old.Version(1, 2), new.Version(1, 2)
    assert (a == b) is False
    assert (b == a) is False
    assert (a != b) is True
    assert a not in [b]


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
def test_ordering_of_unrelated_types_is_the_native_type_error(old, new, compare):
    a, b = old.Version(1, 2), new.Version(1, 3)
    symbol = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}[compare.__name__]
    with pytest.raises(TypeError, match=f"'{symbol}' not supported between instances of "):
        compare(a, b)
    with pytest.raises(TypeError):
        sorted([a, b])


def test_objects_of_one_env_still_compare_as_they_do_there(old):
    a, b = old.Version(1, 2), old.Version(1, 3)
    assert a < b
    assert b > a
    assert a <= b
    assert not a >= b
    assert a == old.Version(1, 2)
    assert a != b
    assert sorted([b, a]) == [a, b]
    with pytest.raises(TypeError, match="'<' not supported between instances of 'Version' and"):
        a < (1, 3)  # noqa: B015 - the comparison is the test
    assert (a == (1, 2)) is False


def test_duck_typed_operators_compute_the_real_result(old, new):
    assert (old.Loose(1) < new.Loose(2)) is True
    assert (new.Loose(2) < old.Loose(1)) is False
    assert old.Loose(3) == new.Loose(3)
    assert (old.Loose(1) + new.Loose(2)).value == 3
    assert (new.Loose(1) + old.Loose(2) + 4).value == 7


def test_one_envs_object_as_an_argument_to_the_others_methods(old, new):
    a, b = old.Version(1, 2), new.Version(3, 4)
    bumped = b.bump(a)  # the 3.8 worker reads a.major and a.minor through the host
    assert (bumped.major, bumped.minor) == (4, 6)
    assert new.identity(a) is a  # passed through the other env, it comes back as itself
    # The other env's interpreter runs the operator: NotImplemented from each side, once.
    assert new.call(operator.eq, a, b) is False
    with pytest.raises(TypeError, match="not supported between instances of"):
        new.call(operator.lt, a, b)


def test_a_chain_without_end_is_stopped_with_a_clear_error(old, new):
    # Each Mirror answers == by asking the other one: natively a RecursionError; across two envs
    # a chain host -> old -> host -> new -> ... that mvbridge stops at a fixed depth.
    with pytest.raises(mvbridge.NestingError, match="nested 40 deep") as caught:
        old.Mirror() == new.Mirror()  # noqa: B015 - the comparison is the test
    assert not isinstance(caught.value, RecursionError)
    assert caught.value.limit == 40
    # Every process unwound: all three still answer, on the same threads.
    assert old.greet("a") == "Hello, a"
    assert new.greet("b") == "Howdy, b"
    assert (old.Version(1) == old.Version(1)) is True
