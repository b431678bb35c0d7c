"""Property tests of the codec (hypothesis): every value it accepts round-trips exactly, types
included; bytes that are not a message of ours raise ProtocolError and nothing else.

The long campaign (>= 1,000,000 inputs, coverage-guided) is ``bench/fuzz_codec.py``.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack
import numpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mvbridge.core import protocol as P
from mvbridge.core.codec import EXT_FRAME, Decoder, Encoder
from mvbridge.errors import MVBridgeError, ProtocolError
from tests.unit.test_codec import SameProcessSession

EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a: Any, b: Any) -> bool:
    """Exactly equal: the same types all the way down, floats bit for bit (NaN, -0.0),
    arrays by dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, numpy.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, numpy.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True)
        )
    return a == b  # sets, frozensets (of hashable scalars), str, bytes, int, bool, None


def round_trip(value: Any) -> Any:
    frames = Encoder(SameProcessSession()).encode([P.REPLY, 1, None], value)
    frames = [f if isinstance(f, bytes) else bytes(memoryview(f)) for f in frames]
    return Decoder(SameProcessSession()).body(frames)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # big ones too (msgpack stops at 64 bits)
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=2048),
)
hashables = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.binary(max_size=64)),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(hashables, inner, max_size=6),
        st.sets(st.integers() | st.text(max_size=8), max_size=6),
        st.frozensets(st.integers() | st.binary(max_size=8), max_size=6),
    ),
    max_leaves=30,
)

DTYPES = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(endianness="?", max_len=8),
    hnp.unicode_string_dtypes(endianness="?", max_len=8),
)


@st.composite
def arrays(draw: st.DrawFn) -> numpy.ndarray:
    array = draw(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)))
    view = draw(st.sampled_from(["as-is", "transposed", "strided"]))
    if view == "transposed":
        return array.T
    if view == "strided" and array.ndim:
        return array[::2]
    return array


@EXAMPLES
@given(values)
def test_every_plain_value_round_trips_exactly(value):
    assert same(round_trip(value), value)


@EXAMPLES
@given(arrays())
def test_numpy_arrays_of_every_dtype_round_trip_exactly(array):
    result = round_trip(array)
    assert same(result, array)  # tobytes() is C order, whatever the strides
    assert same(round_trip([array, {"nested": (array,)}])[1]["nested"][0], result)


@EXAMPLES
@given(arrays())
def test_numpy_scalars_round_trip_exactly(array):
    if array.size:
        scalar = array.flat[0]
        assert same(round_trip(scalar), scalar)


def test_same_is_not_vacuous():
    assert not same((1,), [1])
    assert not same(0.0, -0.0)
    assert same(math.nan, math.nan)
    assert not same(numpy.zeros(2, "<i4"), numpy.zeros(2, ">i4"))
    assert not same(numpy.zeros((2, 1)), numpy.zeros((1, 2)))


def decode(frames: list[bytes]) -> None:
    """Decode ``frames`` as a message would be: header first, then body or error."""
    decoder = Decoder(SameProcessSession())
    kind = decoder.header(frames)[0]
    if kind == P.ERROR:
        decoder.error(frames)
    else:
        decoder.body(frames)


def framed(header: Any, body: bytes) -> bytes:
    packed = msgpack.packb(header, use_bin_type=True)
    return len(packed).to_bytes(4, "little") + packed + body


ext_codes = st.integers(min_value=1, max_value=20)
msgpack_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
msgpack_values = st.recursive(
    st.one_of(st.none(), st.booleans(), msgpack_ints, st.floats(), st.text(), st.binary())
    | st.builds(msgpack.ExtType, ext_codes, st.binary(max_size=64)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
bodies = st.one_of(
    st.binary(max_size=256),
    msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True)),
)
messages = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            framed,
            st.lists(st.integers(-1, 2**33) | st.none() | st.binary(max_size=4), max_size=5),
            bodies,
        ),
        st.builds(
            framed,
            st.tuples(st.sampled_from([P.REQUEST, P.REPLY, P.ERROR]), msgpack_ints),
            bodies,
        ),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_bytes_that_are_not_a_message_raise_protocol_error(frames):
    """The decoder says ProtocolError (or, for a well-formed value that names what this side
    cannot build, another of our errors); never a crash or a stray exception type."""
    try:
        decode(frames)
    except MVBridgeError:  # ProtocolError, or e.g. SerializationError for an unknown name
        pass


def test_a_malformed_body_is_a_protocol_error():
    """Regression: msgpack's ExtraData and a bad frame index escaped as ValueError and
    IndexError, not ProtocolError."""
    with pytest.raises(ProtocolError, match="ExtraData"):
        decode([framed([P.REPLY, 1, None], b"\x01\x02")])
    frame_ref = msgpack.packb(msgpack.ExtType(EXT_FRAME, msgpack.packb(5)))
    with pytest.raises(ProtocolError, match="IndexError"):
        decode([framed([P.REPLY, 1, None], frame_ref)])
