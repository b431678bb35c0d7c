"""dtype wires describe a dtype exactly, or not at all (core/arrays.py)."""

from __future__ import annotations

import pytest

from mvbridge.core import arrays

np = pytest.importorskip("numpy")

DTYPES = {
    "float": np.dtype("<f8"),
    "big-endian": np.dtype(">i4"),
    "datetime": np.dtype("datetime64[ms]"),
    "unicode": np.dtype("<U7"),
    "object": np.dtype(object),
    "string": np.dtypes.StringDType(),
    "structured": np.dtype([("a", "<i4"), ("b", "<f8")]),
    "aligned": np.dtype([("a", "u1"), ("b", "<i8")], align=True),
    "padded": np.dtype({"names": ["a"], "formats": ["<i2"], "offsets": [4], "itemsize": 16}),
    "titled": np.dtype({"names": ["a"], "formats": ["<i2"], "titles": ["Alpha"]}),
    "nested": np.dtype([("v", "<f4", (2, 3)), ("n", [("x", "<i2"), ("o", "O")])]),
    "record": np.dtype((np.record, [("x", "<i4")])),
}


@pytest.mark.parametrize("name", DTYPES)
def test_a_dtype_comes_back_from_its_wire_exactly(name):
    dtype = DTYPES[name]
    back = arrays.dtype_from_wire(arrays.dtype_wire(dtype))
    assert back == dtype
    assert back.itemsize == dtype.itemsize
    assert back.isalignedstruct == dtype.isalignedstruct
    assert back.type is dtype.type
    assert back.fields == dtype.fields


def test_a_dtype_without_a_portable_description_has_no_wire():
    assert arrays.dtype_wire(np.dtypes.StringDType(na_object=None)) is None
