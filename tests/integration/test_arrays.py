"""Arrays of every kind cross whole: object, structured, record, masked, subclassed (#8, 4).

Each array goes to workers on numpy 1 (the host's Python and 3.8) and on the host's numpy 2, and
comes back from them; the worker says what it received (``mvb_arrays.describe``, run natively on
each side).
"""

from __future__ import annotations

import importlib.util
import sys
import threading

import pytest

import mvbridge
from tests.conftest import FIXTURES

np = pytest.importorskip("numpy")
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@pytest.fixture(scope="module")
def local():
    """The host's own mvb_arrays (the workers have it installed)."""
    path = FIXTURES / "pkgs" / "mvb_arrays.py"
    spec = importlib.util.spec_from_file_location("mvb_arrays", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mvb_arrays"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["mvb_arrays"]


@pytest.fixture(scope="module", params=["numpy1", "numpy2", "numpy1_py38"])
def remote(request, local):
    interpreter = request.getfixturevalue(f"py_{request.param}")
    with mvbridge.Env(request.param, interpreter=interpreter) as env:
        module = env.import_module("mvb_arrays")
        assert module.numpy_version()[0] == request.param[len("numpy")]
        yield module


def padded():
    spec = {"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 8], "itemsize": 24}
    return np.zeros(2, dtype=np.dtype(spec))


ARRAYS = {
    "object": lambda: np.array([1, "a", (1, 2), [3, 4], None, {"k": 1}], dtype=object),
    "object-2d": lambda: np.array([[1, "a"], [None, 2.5]], dtype=object),
    "object-of-arrays": lambda: np.array([np.arange(3), np.arange(2)], dtype=object),
    "structured-with-object": lambda: np.array(
        [(1, "x"), (2, [1])], dtype=[("i", "<i4"), ("o", "O")]
    ),
    "structured-padded": padded,
    "structured-aligned": lambda: np.zeros(
        2, dtype=np.dtype([("a", "u1"), ("b", "<i8")], align=True)
    ),
    "structured-nested": lambda: np.zeros(2, dtype=[("v", "<f4", (3,)), ("n", [("x", "<i2")])]),
    "record": lambda: np.rec.array([(1, 2.0), (3, 4.0)], dtype=[("x", "i4"), ("y", "f8")]),
    "matrix": lambda: np.matrix([[1, 2], [3, 4]]),
    "masked": lambda: np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0], fill_value=-1.0),
    "masked-object": lambda: np.ma.masked_array(np.array([1, "x"], dtype=object), mask=[1, 0]),
    "masked-hard": lambda: np.ma.masked_array([1, 2], mask=[0, 1], hard_mask=True),
    "masked-structured": lambda: np.ma.masked_array(
        np.zeros(2, dtype=[("x", "i4"), ("y", "f8")]), mask=[(0, 1), (1, 0)]
    ),
    "masked-without-mask": lambda: np.ma.masked_array([1, 2]),
}


@pytest.mark.parametrize("kind", ARRAYS)
def test_the_worker_receives_the_array_as_it_is(remote, local, kind):
    array = ARRAYS[kind]()
    assert remote.describe(array) == local.describe(array)


@pytest.mark.parametrize("kind", ARRAYS)
def test_an_array_comes_back_as_it_went(remote, kind):
    array = ARRAYS[kind]()
    back = remote.element([array], 0)  # through the worker's numpy and back
    assert type(back) is type(array)
    assert back.dtype == array.dtype
    assert repr(back) == repr(array)


@pytest.mark.parametrize("kind", ["object", "struct_obj", "record", "matrix", "masked", "tagged"])
def test_arrays_made_by_the_worker_arrive_as_they_are(remote, local, kind):
    array = remote.made(kind)
    assert local.describe(array) == remote.describe(array)
    assert type(array).__qualname__ == remote.describe(array)["type"]


def test_the_mask_is_kept_so_masked_values_stay_out(remote):
    values = np.ma.masked_array([1.0, 100.0, 3.0], mask=[0, 1, 0])
    assert remote.masked_mean(values) == 2.0
    assert remote.element(values, 1) is np.ma.masked


def test_matrix_keeps_its_own_product(remote):
    a = np.matrix([[1, 2], [3, 4]])
    product = remote.matrix_product(a, a)
    assert type(product) is np.matrix
    assert product.tolist() == [[7, 10], [15, 22]]  # a matrix product, not elementwise


def test_record_fields_read_as_attributes_on_both_sides(remote):
    records = remote.made("record")
    assert records.x.tolist() == [1, 3]
    assert remote.element(records, 1).y == 4.0  # a numpy.record scalar


def test_a_subclass_keeps_its_state_both_ways(remote, local):
    sent = local.tagged([1, 2], "host")
    assert remote.describe(sent)["tag"] == "host"
    back = remote.element([sent], 0)
    assert isinstance(back, local.Tagged)
    assert back.tag == "host"


def test_an_object_array_element_that_cannot_be_copied_stays_a_reference(remote):
    lock = threading.Lock()
    array = np.array([lock, 1], dtype=object)
    back = remote.element([array], 0)
    assert back[0] is lock  # our own lock came back, through a reference in the worker
    assert back[1] == 1


class HostOnly(np.ndarray):
    """A subclass the workers cannot import."""


def test_a_subclass_the_worker_lacks_crosses_by_reference(remote):
    array = np.arange(3).view(HostOnly)
    assert remote.element([array], 0) is array  # never a bare ndarray
    assert remote.describe(array)["type"] != "ndarray"


def test_a_subclass_with_its_own_pickling_never_arrives_as_a_bare_view(remote, local):
    array = local.make_self_pickled([1, 2])
    back = remote.element([array], 0)
    assert isinstance(back, local.SelfPickled)
    assert back.tolist() == [1, 2]


def test_a_memmap_sends_its_values(remote, tmp_path):
    mapped = np.memmap(tmp_path / "data.bin", dtype="int32", mode="w+", shape=(4,))
    mapped[:] = [1, 2, 3, 4]
    facts = remote.describe(mapped)
    assert facts["type"] == "ndarray"
    assert facts["values"] == "[1, 2, 3, 4]"
    del mapped


def test_string_dtype_arrives_as_str_elements(remote):
    array = np.array(["a", "bc"], dtype=np.dtypes.StringDType())
    facts = remote.describe(array)
    assert facts["values"] == "['a', 'bc']"
    expected = "StringDType()" if remote.numpy_version().startswith("2.") else "object"
    assert facts["dtype"] == expected
