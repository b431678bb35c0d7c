"""numpy arrays cross by value between numpy 2 (host) and numpy 1 (worker), both ways."""

from __future__ import annotations

import pytest

import mvbridge

np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def numpy1(py_numpy1):
    with mvbridge.Env("numpy1", interpreter=py_numpy1) as env:
        yield env.import_module("mvb_demo")


def test_worker_really_has_numpy_1(numpy1):
    assert numpy1.numpy_version().startswith("1.")
    assert np.__version__.startswith("2.")


@pytest.mark.parametrize(
    "array",
    [
        np.arange(10, dtype="int64"),
        np.linspace(0, 1, 7).reshape(7, 1),
        np.zeros((3, 4, 5), dtype="float32"),
        np.array([1 + 2j, 3], dtype="complex128"),
        np.array([True, False]),
        np.array(["a", "bc"]),
        np.arange(12).reshape(3, 4).T,  # not contiguous
        np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
        np.zeros(3, dtype=[("x", "<i4"), ("y", "<f8")]),
        np.arange(200_000, dtype="float64"),  # large: its own frame
    ],
    ids=lambda a: f"{a.dtype}-{a.shape}",
)
def test_array_round_trip_across_numpy_versions(numpy1, array):
    result = numpy1.identity(array)
    assert isinstance(result, np.ndarray)
    assert result.dtype == array.dtype
    assert result.shape == array.shape
    np.testing.assert_array_equal(result, array)


def test_received_array_is_writable_and_its_own(numpy1):
    result = numpy1.make_array(100_000)
    result[0] = 42.0
    assert result[0] == 42.0
    assert numpy1.double(np.ones(3)).tolist() == [2.0, 2.0, 2.0]


def test_numpy_scalars_cross_by_value(numpy1):
    value = numpy1.identity(np.float32(1.5))
    assert isinstance(value, np.float32)
    assert value == 1.5


def test_np_asarray_of_a_remote_array_like_fetches_the_value(numpy1):
    counter = numpy1.make_counter(4)  # iterable, with __len__ and __getitem__
    np.testing.assert_array_equal(np.asarray(counter), [0, 1, 2, 3])


linux_only = pytest.mark.skipif(
    not __import__("sys").platform.startswith("linux"),
    reason="shared-memory segments are used on Linux only",
)


def _segments():
    import os

    folder = "/dev/shm"
    return (
        sorted(n for n in os.listdir(folder) if n.startswith("mvb-seg-"))
        if os.path.isdir(folder)
        else []
    )


@pytest.fixture
def numpy1_fresh(py_numpy1):
    with mvbridge.Env("numpy1-fresh", interpreter=py_numpy1) as env:
        yield env


@linux_only
def test_large_arrays_cross_through_shared_memory_by_value(numpy1_fresh):
    demo = numpy1_fresh.import_module("mvb_demo")
    first = np.arange(1_000_000, dtype="float64")  # 8 MB: above the shared-memory threshold
    result = demo.double(first)
    assert numpy1_fresh.current_session().segments is not None
    np.testing.assert_array_equal(result, first * 2)
    result[0] = -1.0  # writable, and ours: the next transfers must not touch it
    second = demo.double(np.ones(1_000_000))
    assert result[0] == -1.0
    assert result[1] == 2.0
    np.testing.assert_array_equal(second, 2.0)
    for _ in range(20):  # freed arrays give their segments back: the pools stay small
        demo.identity(np.zeros(1_000_000))
    stats = numpy1_fresh.current_session().segments.statistics()
    assert stats["own_segments"] <= 3
    assert 0 < len(_segments()) <= 8


@linux_only
def test_segments_are_removed_when_the_session_ends(numpy1_fresh):
    demo = numpy1_fresh.import_module("mvb_demo")
    before = set(_segments())
    kept = demo.identity(np.zeros(1_000_000))
    assert set(_segments()) - before
    numpy1_fresh.shutdown()
    assert set(_segments()) <= before
    assert kept.sum() == 0  # an array received earlier stays valid: its mapping is its own


@linux_only
def test_segments_are_removed_when_the_worker_is_killed(numpy1_fresh):
    import os
    import signal

    from tests.helpers import wait_until

    demo = numpy1_fresh.import_module("mvb_demo")
    before = set(_segments())
    kept = demo.make_array(1_000_000)  # a segment of the worker's, mapped here
    os.kill(numpy1_fresh.info.pid, signal.SIGKILL)
    wait_until(lambda: numpy1_fresh.current_session().process.exit_code() is not None)
    demo.version()  # the next use restarts the worker and cleans up after the dead one
    assert set(_segments()) <= before
    assert kept[-1] == 999_999.0


@linux_only
def test_host_killed_leaves_no_segments_behind(py_numpy1):
    import os
    import subprocess
    import sys
    import textwrap

    from tests.helpers import wait_until

    script = f"""
        import os, time, numpy, mvbridge
        env = mvbridge.Env("orphan-arrays", interpreter={py_numpy1!r})
        demo = env.import_module("mvb_demo")
        kept = demo.double(numpy.ones(1_000_000))  # one segment each way
        names = sorted(n for n in os.listdir("/dev/shm") if n.startswith("mvb-seg-"))
        print(env.info.pid, " ".join(names), flush=True)
        time.sleep(600)
    """
    host = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        pid, *names = host.stdout.readline().split()
        assert names
        host.kill()
        host.wait(10)
        wait_until(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), timeout=5)
        assert not set(names) & set(_segments())
    finally:
        host.kill()
        host.stdout.close()


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] == "Z"
    except FileNotFoundError:
        return True
