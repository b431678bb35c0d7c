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


def test_object_arrays_cross_by_reference(numpy1):
    array = np.array([object(), 1], dtype=object)
    index = numpy1.keep(array)
    kept = numpy1.kept(index)
    assert kept is array  # our own object came back: the very same one
    numpy1.forget()
