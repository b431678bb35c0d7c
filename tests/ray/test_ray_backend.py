"""``backend = "ray"`` on a real 2-node Ray cluster: calls, callbacks, arrays, errors, an env
Ray itself could not import in, a killed actor, a killed worker, a lost node, two replicas.

Run with ``python tests/ray/run.py`` (a loopback-only network namespace, wheels downloaded
first; see ``conftest.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

import mvbridge
from tests.helpers import wait_until

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180)]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (its parent, a Ray worker, did not reap it yet) is gone too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _endpoint(env: mvbridge.Env) -> dict:
    return env.current_session().link.endpoint


@pytest.fixture
def demo_env(cluster):
    with mvbridge.Env("demo", requirements=["mvb_demo==1.0", "numpy"], backend="ray") as env:
        yield env


def test_calls_callbacks_arrays_and_errors_through_a_ray_placed_worker(demo_env):
    import numpy as np

    demo = demo_env.import_module("mvb_demo")
    assert demo.greet("ray") == "Hello, ray"
    info = demo_env.info
    # The worker runs in the env built on its node, reached over TCP + CurveZMQ, not through Ray.
    assert info.address.startswith("tcp://127.0.0.1:")
    assert "/envs/demo-" in info.executable
    assert info.pid not in (os.getpid(), _endpoint(demo_env)["actor_pid"])
    assert demo.pid() == info.pid

    # Callbacks, nested and from a worker thread of its own.
    seen = []
    assert demo.call(lambda x: x * 2, 21) == 42
    assert demo.nest(lambda depth: depth + demo.add(1, 1), 5) == 7
    done = threading.Event()
    demo.call_in_thread(lambda: (seen.append(threading.get_ident()), done.set()))
    assert done.wait(10)
    assert seen

    # Arrays cross by value, both ways.
    array = np.arange(1_000_000, dtype=np.float64)
    doubled = demo.double(array)
    assert isinstance(doubled, np.ndarray)
    assert np.array_equal(doubled, array * 2)

    # Errors: a builtin type rebuilt, a remote class usable in except.
    with pytest.raises(ValueError, match="boom"):
        demo.fail("boom")
    with pytest.raises(demo.ParseError):
        demo.parse("deep")


def test_an_env_whose_pin_breaks_import_ray_still_works(cluster):
    """protobuf 3.19 lacks ``google.protobuf.internal.builder``, which Ray's generated code
    imports: layered over Ray's own packages (what ``runtime_env`` does), it breaks Ray. The
    env here is mvbridge's own, so the pin stands and the worker runs."""
    with mvbridge.Env(
        "old-pb", requirements=["mvb_demo==1.0", "protobuf==3.19.6"], backend="ray"
    ) as env:

        def protobuf_facts():
            import sysconfig

            import google.protobuf

            return google.protobuf.__version__, sysconfig.get_paths()["purelib"]

        version, site = env.call(protobuf_facts)
        assert version == "3.19.6"
        assert env.import_module("mvb_demo").greet("pb") == "Hello, pb"
    # The same protobuf ahead of Ray's own packages, in Ray's interpreter: `import ray` fails.
    broken = subprocess.run(
        [sys.executable, "-c", "import ray"],
        env={**os.environ, "PYTHONPATH": site},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode != 0
    assert "protobuf" in broken.stderr


@pytest.mark.parametrize("kill", ["ray.kill", "SIGKILL"])
def test_a_killed_actor_takes_its_worker_and_ray_brings_both_back(demo_env, kill):
    """``ray.kill`` ends the actor's child processes itself; a SIGKILL (the OOM killer, say)
    leaves that to the pipe the service watches."""
    import ray

    demo = demo_env.import_module("mvb_demo")
    counter = demo.make_counter(5)
    old = _endpoint(demo_env)
    old_pid = demo.pid()
    if kill == "SIGKILL":
        os.kill(old["actor_pid"], signal.SIGKILL)
    else:
        ray.kill(demo_env.current_session().link.actor, no_restart=False)
    wait_until(lambda: _gone(old_pid) and _gone(old["service_pid"]), timeout=30)
    # The next call asks the actor (restarted by Ray) where its new worker is.
    assert demo.pid() != old_pid
    new = _endpoint(demo_env)
    assert new["server_public"] != old["server_public"]
    assert new["actor_pid"] != old["actor_pid"]
    with pytest.raises(mvbridge.StaleReferenceError):
        counter.increment()
    assert demo_env.statistics().restarts == 1


def test_a_dead_worker_ends_its_actor_and_ray_restarts_both(demo_env):
    demo = demo_env.import_module("mvb_demo")
    old = _endpoint(demo_env)
    os.kill(old["service_pid"], signal.SIGKILL)
    wait_until(lambda: _gone(old["actor_pid"]), timeout=30)
    assert demo.greet("again") == "Hello, again"
    new = _endpoint(demo_env)
    assert new["actor_pid"] != old["actor_pid"]
    assert new["service_pid"] != old["service_pid"]


def test_two_replicas_spread_and_each_session_sticks_to_one(cluster):
    spec = {"requirements": ["mvb_demo==1.0"], "backend": "ray", "replicas": 2}
    with mvbridge.Env("pair", **spec) as first, mvbridge.Env("pair", **spec) as second:
        one = first.import_module("mvb_demo")
        pid = one.pid()
        two = second.import_module("mvb_demo")
        assert two.pid() != pid  # the second session went to the other replica
        assert _endpoint(first)["address"] != _endpoint(second)["address"]
        # Not asserted: that they are on two nodes. Ray's SPREAD is best effort, and takes
        # the actors of the tests before (ending) into account.
        assert {one.pid() for _ in range(5)} == {pid}  # and the first stayed where it was


def test_shutdown_ends_the_actors_unless_detached(cluster):
    import ray

    with mvbridge.Env("kept", requirements=["mvb_demo==1.0"], backend="ray", detached=True) as env:
        address = env.info.address
        name = env.current_session().link.actor_name
    actor = ray.get_actor(name, namespace="mvbridge")  # still there, for other hosts
    try:
        with mvbridge.Env(
            "kept", requirements=["mvb_demo==1.0"], backend="ray", detached=True
        ) as env:
            assert env.info.address == address
    finally:
        ray.kill(actor, no_restart=True)
    with mvbridge.Env("gone", requirements=["mvb_demo==1.0"], backend="ray") as env:
        env.start()
        name = env.current_session().link.actor_name
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor(name, namespace="mvbridge")


def test_a_lost_node_gets_the_env_rebuilt_on_another(cluster):
    """Last: it replaces node b (by b2, with the same resources)."""
    with mvbridge.Env(
        "moving", requirements=["mvb_demo==1.0"], backend="ray", resources={"b": 0.5}
    ) as env:
        demo = env.import_module("mvb_demo")
        old_pid = demo.pid()
        old = _endpoint(env)
        assert old["node_id"] == cluster.b.node_id
        cluster.cluster.remove_node(cluster.b)
        wait_until(lambda: _gone(old_pid), timeout=30)
        cluster.b = cluster.add("b2")
        assert demo.greet("b2") == "Hello, b2"
        new = _endpoint(env)
        assert new["node_id"] == cluster.b.node_id
        assert "cache-b2" in env.info.executable  # built anew, in the new node's cache


def test_an_env_that_cannot_build_raises_the_builders_error_and_is_tried_again(cluster):
    import ray

    with mvbridge.Env("unbuildable", requirements=["mvb-nowhere==9.9"], backend="ray") as env:
        for _ in range(2):  # the failed actor is ended: the second use builds again, afresh
            with pytest.raises(mvbridge.EnvBuildError, match="mvb-nowhere") as caught:
                env.start()
            assert "the installer failed" in str(caught.value)
        name = env._replicas.names[0]
        with pytest.raises(ValueError, match="Failed to look up actor"):
            ray.get_actor(name, namespace="mvbridge")
