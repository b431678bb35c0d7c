"""A library's exception classes, reached through proxies, are real classes (issue 8, point 2)."""

from __future__ import annotations

import pytest

import mvbridge
from tests.helpers import run_python


def test_except_a_remote_class_catches_it_and_its_subclasses(demo):
    with pytest.raises(demo.ParseError) as caught:
        demo.parse("plain")
    assert type(caught.value) is demo.ParseError
    with pytest.raises(demo.ParseError) as deeper:
        demo.parse("deep")  # DeepParseError(ParseError)
    assert type(deeper.value) is demo.DeepParseError
    assert deeper.value.args == ("bad input", 7)


def test_the_class_keeps_its_name_builtin_bases_and_is_a_remote_error(demo):
    cls = demo.ParseError
    assert isinstance(cls, type)
    assert (cls.__name__, cls.__module__) == ("ParseError", "mvb_demo")
    assert issubclass(cls, ValueError)
    assert issubclass(cls, mvbridge.RemoteError)
    assert issubclass(demo.DeepParseError, cls)
    assert not issubclass(cls, demo.DeepParseError)
    with pytest.raises(ValueError, match="bad input") as caught:  # a builtin base catches it
        demo.parse("deep")
    exc = caught.value
    assert isinstance(exc, demo.ParseError)
    assert isinstance(exc, mvbridge.RemoteError)
    assert exc.type_name == "mvb_demo.DeepParseError"
    assert "DeepParseError" in exc.remote_traceback
    assert "raise DeepParseError" in str(exc.__cause__)
    assert str(exc) == str(("bad input", 7))


def test_the_same_class_however_it_is_reached(demo):
    listed = demo.error_classes()  # classes inside a returned list
    assert listed == [demo.ParseError, demo.DeepParseError]
    assert demo.identity(demo.ParseError) is demo.ParseError


def test_the_class_still_catches_after_the_worker_restarted(fresh_env):
    import os
    import signal

    from tests.helpers import wait_until

    demo = fresh_env.import_module("mvb_demo")
    error_class = demo.ParseError  # kept by the application from before
    os.kill(demo.pid(), signal.SIGKILL)
    wait_until(lambda: fresh_env.current_session().process.exit_code() is not None)
    with pytest.raises(error_class):
        demo.parse("plain")


class HostError(LookupError):
    """The host's own exception class, given to the worker."""


def test_a_host_exception_class_catches_in_the_worker(demo):
    def fail():
        raise HostError("from the host", 3)

    assert demo.catch(fail, HostError) == ["caught", "HostError", ["from the host", 3], False]


def test_a_remote_class_travels_back_as_the_workers_own(demo):
    # The worker's `except ParseError` gets its real class back, and catches only what it should.
    assert demo.catch(lambda: demo.parse("deep"), demo.ParseError)[:2] == [
        "caught",
        "DeepParseError",
    ]
    with pytest.raises(ValueError, match="not a parse error"):
        demo.catch(_raise_value_error, demo.ParseError)


def _raise_value_error():
    raise ValueError("not a parse error")


def _raise_keyboard_interrupt():
    raise KeyboardInterrupt


def test_a_remote_keyboard_interrupt_is_never_raised_as_one(any_env):
    with pytest.raises(mvbridge.RemoteError, match="KeyboardInterrupt"):
        any_env.call(_raise_keyboard_interrupt)


_PROXY_IN_SYS_MODULES = """
import os
import sys
import mvbridge

# Deep enough that looking the class up on the proxy, which asks the worker, whose reply names
# the class again, overflows the C stack (a segfault in CI) instead of ending in RecursionError.
sys.setrecursionlimit(1_000_000)
with mvbridge.Env("proxied", interpreter=os.environ["MVB_TEST_PYTHON"]) as env:
    demo = env.import_module("mvb_demo")
    sys.modules["mvb_demo"] = demo  # as an import hook that gives proxies does
    cls = demo.ParseError
    assert isinstance(cls, type) and issubclass(cls, mvbridge.RemoteError), cls
    try:
        demo.parse("plain")
    except cls:
        pass
    assert demo.identity(demo.DeepParseError) is demo.DeepParseError
print("ok")
"""


def test_a_proxy_module_in_sys_modules_is_not_taken_for_the_hosts_own(py_v1, tmp_path):
    # Finding the host's own class of a name must never look it up on a proxy.
    done = run_python(_PROXY_IN_SYS_MODULES, tmp_path, MVB_TEST_PYTHON=py_v1)
    assert (done.returncode, done.stdout) == (0, "ok\n"), done.stderr[-3000:]
