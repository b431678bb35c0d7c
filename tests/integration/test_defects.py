"""Defects found in review of the core (issue 8, point 5): each test failed before its fix."""

from __future__ import annotations

import collections
import gc
import threading

import pytest

import mvbridge
from tests.helpers import wait_until


class HostOnly:
    """A host class the worker cannot import: crosses by reference."""

    def __init__(self, value):
        self.value = value


def test_a_pickle_that_fails_half_way_leaves_no_trace(demo, any_env):
    # OrderedDict may be pickled (stdlib), but the lock in it cannot: the attempt had already
    # exported HostOnly(1) and marked its type as described, then fell back to a reference.
    box = collections.OrderedDict(a=HostOnly(1), b=threading.Lock())
    assert demo.identity(box) is box
    before = any_env.statistics().host_objects
    kept = HostOnly(2)
    assert demo.identity(kept) is kept  # its type's description must still be sent
    index = demo.keep(kept)
    assert demo.kept(index).value == 2
    demo.forget()
    del box, kept
    gc.collect()
    demo.version()  # carries the worker's releases
    assert any_env.statistics().host_objects <= before


def test_a_call_past_its_deadline_does_not_leak_a_worker_thread(fresh_env):
    demo = fresh_env.import_module("mvb_demo")
    demo.add(1, 1)
    session = fresh_env.current_session()
    before = session.statistics()["threads"]
    for _ in range(3):
        with pytest.raises(mvbridge.CallTimeoutError), mvbridge.deadline(0.05):
            demo.sleep(0.3)
    # Each late reply goes to a closed channel: its worker thread must not block on it.
    wait_until(lambda: fresh_env.current_session().statistics()["threads"] <= before, timeout=10)


def test_releases_survive_a_message_that_fails_to_encode(demo, any_env):
    counter = demo.make_counter(1)
    baseline = any_env.statistics().worker_objects
    del counter
    gc.collect()  # its release is queued, to ride on the next message
    with pytest.raises(mvbridge.SerializationError):
        demo.identity(mvbridge.by_value(threading.Lock()))  # cannot be encoded
    demo.version()
    assert any_env.statistics().worker_objects == baseline - 1


def test_a_missing_mvbridge_submodule_in_a_worker_is_an_import_error(any_env):
    outcome = any_env.import_module("mvb_demo").call(
        any_env.import_module("mvbridge.core.ops").run_source,
        "probe",
        "def probe():\n    import importlib\n    try:\n        importlib.import_module('mvbridge.nothing_here')\n    except ImportError as exc:\n        return type(exc).__name__\n    except RecursionError:\n        return 'RecursionError'\n",
        [],
        {},
        [],
        {},
    )
    assert outcome == "ModuleNotFoundError"


def test_envs_that_are_shut_down_are_not_kept_alive(py_v1):
    import weakref

    from mvbridge.bridge import env as env_module

    env = mvbridge.Env("short-lived", interpreter=py_v1)
    env.import_module("mvb_demo").add(1, 2)
    env.shutdown()
    ref = weakref.ref(env)
    mvbridge.Env("short-lived", interpreter=py_v1)  # the newest of a name stays registered
    del env
    gc.collect()
    assert ref() is None
    assert all(e.name != "short-lived" or e.state is not mvbridge.EnvState.RUNNING
               for e in env_module._running)  # fmt: skip
