"""Two versions of one import name, workers on other Pythons, and the user's own pins."""

from __future__ import annotations

import sys

import pytest

import mvbridge


def test_two_versions_of_one_package_in_one_host(env_v1, env_v2):
    old = env_v1.import_module("mvb_demo")
    new = env_v2.import_module("mvb_demo")
    assert (old.version(), new.version()) == ("1.0", "2.0")
    assert old.greet("Ada") == "Hello, Ada"
    assert new.greet("Ada") == "Howdy, Ada"
    # values cross between the two workers through the host
    assert new.identity(old.echo(1, k=(2,))) == ((1,), {"k": (2,)})


def test_object_of_one_env_is_usable_from_another(env_v1, env_v2):
    counter = env_v1.import_module("mvb_demo").make_counter(2)
    # env_v2 gets a reference to the host's proxy, which forwards to env_v1
    assert env_v2.import_module("mvb_demo").call(counter.increment, 3) == 5
    assert counter.value == 5


def test_worker_runs_another_python_minor_version(env_v2):
    assert env_v2.info.python.startswith("3.8.")
    assert not env_v2.info.python.startswith("%d.%d." % sys.version_info[:2])


def test_user_pins_of_msgpack_and_cloudpickle_are_what_user_code_sees(py_pinned):
    with mvbridge.Env("pinned", interpreter=py_pinned) as env:
        demo = env.import_module("mvb_demo")
        seen = demo.runtime_modules_seen()
        assert seen["msgpack"][0] == "0.6.2"
        assert seen["cloudpickle"][0] == "1.6.0"
        assert seen["zmq"] is None  # the env has no pyzmq; ours stays hidden
        assert "site-packages" in seen["msgpack"][1]
        # and mvbridge itself still works there, with its own versions
        assert env.info.runtime["cloudpickle"] != "1.6.0"
        assert demo.add(2, 3) == 5
        assert demo.identity({"k": (1, 2.5, b"x")}) == {"k": (1, 2.5, b"x")}
        assert demo.call(lambda: 7) == 7


def test_plain_env_has_nothing_installed_and_still_works(env_v1):
    demo = env_v1.import_module("mvb_demo")
    seen = demo.runtime_modules_seen()
    assert seen == {"msgpack": None, "cloudpickle": None, "zmq": None}


def test_env_call_across_python_versions_ships_source(env_v2):
    import math as host_math  # noqa: F401 - shipped as an import of the worker's math

    assert env_v2.call(_hypotenuse, 3, 4) == 5.0


def _hypotenuse(a, b):
    return math.sqrt(a * a + b * b)


def test_env_call_across_versions_refuses_closures_clearly(env_v2):
    offset = 1

    def closure(x):
        return x + offset

    with pytest.raises(mvbridge.SerializationError, match="closure"):
        env_v2.call(closure, 1)


import math  # noqa: E402 - a module global that _hypotenuse uses


class _Shipped:
    def __init__(self, value):
        self.value = value


def test_our_cloudpickle_stays_hidden_after_the_worker_uses_it(env_v1):
    demo = env_v1.import_module("mvb_demo")
    copy = demo.identity(mvbridge.by_value(_Shipped(3)))  # the worker unpickles and pickles code
    assert copy.value == 3
    assert demo.runtime_modules_seen()["cloudpickle"] is None
