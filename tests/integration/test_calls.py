"""Calls into a worker: values keep their types, errors come back as themselves."""

from __future__ import annotations

import inspect
import json
import pydoc
import traceback

import pytest

import mvbridge

PLAIN_VALUES = [
    None,
    True,
    0,
    -(2**63),
    2**64 + 1,
    -(10**40),
    1.5,
    "text",
    "",
    b"bytes",
    (1, "a", (2.0, None)),
    (),
    [1, [2, (3,)]],
    {"k": [1, 2, 3]},
    {1: "int key", (1, 2): "tuple key", None: "none key"},
    {1, 2, 3},
    frozenset({"a", "b"}),
    1 + 2j,
    {"nested": [{"deep": ({1, 2}, frozenset(), 3j)}]},
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_plain_value_round_trip_keeps_type(demo, value):
    result = demo.identity(value)
    assert result == value
    assert type(result) is type(value)


def test_bytearray_arrives_as_bytes_with_its_content(demo):
    # msgpack packs bytearray natively as bin, before any hook can see it.
    assert demo.identity(bytearray(b"ba")) == b"ba"


def test_tuple_and_list_stay_apart(demo):
    args, kwargs = demo.echo(1, (2,), [3], key=(4, [5]))
    assert args == (1, (2,), [3])
    assert type(args) is tuple
    assert kwargs == {"key": (4, [5])}


def test_large_bytes_round_trip(demo):
    payload = bytes(range(256)) * 4096  # 1 MiB: travels in its own frame
    assert demo.identity(payload) == payload


def test_keyword_and_default_arguments(demo):
    assert demo.add(1) == 2
    assert demo.add(1, 2, scale=3) == 9


def test_module_attribute_values(demo):
    assert demo.__version__ in ("1.0", "2.0")
    assert demo.GREETING in ("Hello", "Howdy")


def test_builtin_exception_is_rebuilt_with_remote_traceback(demo):
    with pytest.raises(ValueError, match="boom") as info:
        demo.fail("boom")
    cause = info.value.__cause__
    assert cause is not None
    assert "in fail" in str(cause)
    printed = "".join(traceback.format_exception(info.value))
    assert "raise ValueError(message)" in printed


def test_stdlib_exception_type_is_rebuilt(any_env):
    remote_json = any_env.import_module("json")
    with pytest.raises(json.JSONDecodeError):
        remote_json.loads("{")


def test_unrebuildable_exception_becomes_remote_error(demo):
    with pytest.raises(mvbridge.RemoteError) as info:
        demo.fail_custom()
    assert info.value.type_name == "mvb_demo.DemoError"
    assert "raise DemoError(7" in info.value.remote_traceback


def test_missing_attribute_raises_attribute_error(demo):
    with pytest.raises(AttributeError):
        demo.no_such_function  # noqa: B018
    assert not hasattr(demo, "no_such_function")


def test_missing_module_raises_module_not_found(any_env):
    with pytest.raises(ModuleNotFoundError):
        any_env.import_module("surely_not_installed_anywhere")


def test_host_never_imports_the_proxied_module(demo):
    import sys

    demo.version()
    assert "mvb_demo" not in sys.modules


def test_signature_doc_and_help_show_the_remote_function(demo):
    assert str(inspect.signature(demo.add)) == "(a, b=1, *, scale: int = 1) -> int"
    assert demo.add.__doc__ == "Add two numbers, then scale."
    text = pydoc.render_doc(demo.add, renderer=pydoc.plaintext)
    assert "add(a, b=1, *, scale: int = 1) -> int" in text
    assert "Add two numbers, then scale." in text


def test_env_info_reports_the_worker(any_env):
    info = any_env.info
    assert info.pid == any_env.import_module("mvb_demo").pid()
    assert info.protocol == mvbridge.core.protocol.PROTOCOL_VERSION
    assert set(info.runtime) >= {"msgpack", "pyzmq", "cloudpickle"}


def test_env_call_ships_a_host_function(any_env):
    def square_plus(x, *, plus=0):
        return x * x + plus

    assert any_env.call(square_plus, 7, plus=1) == 50


def test_env_call_runs_stdlib_function_by_name(any_env):
    import math

    assert any_env.call(math.factorial, 10) == 3628800


_MAKE_ZMQ_ERRORS = (
    "(lambda z: [(type(e).__name__, e.errno) for e in"
    " (z.Again(), z.ContextTerminated(), z.ZMQError(z.ENOTSUP))])"
    "(__import__('sys').modules['mvbridge.workers.channels'].zmq)"
)


def test_the_workers_own_pyzmq_can_raise_its_errors(any_env):
    # Our pyzmq has left the worker's sys.modules, and its exceptions import zmq when made:
    # without workers/boot.py's binding, a receive that timed out raised ModuleNotFoundError.
    import zmq

    builtins = any_env.import_module("builtins")
    made = builtins.eval(_MAKE_ZMQ_ERRORS)
    assert made == [
        ("Again", zmq.EAGAIN),
        ("ContextTerminated", zmq.ETERM),
        ("ZMQError", zmq.ENOTSUP),
    ]
    assert builtins.eval("'zmq' in __import__('sys').modules") is False
