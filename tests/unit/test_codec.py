"""The codec in one process: a session whose peer is this same interpreter."""

from __future__ import annotations

import pytest

from mvbridge.core import protocol as P
from mvbridge.core.codec import Decoder, Encoder
from mvbridge.core.peer import Session
from mvbridge.core.remote import RemoteObject
from mvbridge.errors import SerializationError


class SameProcessSession(Session):
    """A real Session; 'the peer' is this interpreter, so versions always match."""

    def __init__(self):
        from mvbridge.core import dists

        super().__init__(dists.PYTHON_VERSION)

    def peer_version(self, top):
        from mvbridge.core import dists

        return dists.version_of(top)


def round_trip(value, encoder_session=None, decoder_session=None):
    sender = encoder_session or SameProcessSession()
    receiver = decoder_session or SameProcessSession()
    frames = Encoder(sender).encode([P.REPLY, 1, None], value)
    frames = [bytes(f) if not isinstance(f, bytes) else f for f in frames]
    assert Decoder.header(frames) == [P.REPLY, 1, None, None]
    return Decoder(receiver).body(frames)


@pytest.mark.parametrize(
    "value",
    [(1, (2, [3])), {1, 2}, frozenset([3]), 2j, 2**100, {(1, 2): "x"}, [b"\x00" * 100_000]],
    ids=repr,
)
def test_types_survive(value):
    result = round_trip(value)
    assert result == value
    assert type(result) is type(value)


def test_unknown_object_becomes_a_reference_on_the_receiving_side():
    class Local:
        pass

    sender = SameProcessSession()
    obj = Local()
    proxy = round_trip(obj, encoder_session=sender)
    assert isinstance(proxy, RemoteObject)
    assert sender.table.statistics().live_objects == 1


def test_reference_sent_back_resolves_to_the_original():
    class Local:
        pass

    owner, other = SameProcessSession(), SameProcessSession()
    obj = Local()
    proxy = round_trip(obj, encoder_session=owner, decoder_session=other)
    assert round_trip(proxy, encoder_session=other, decoder_session=owner) is obj


def test_unknown_ext_type_is_a_serialization_error():
    import msgpack

    from mvbridge.core.codec import _join

    header, body = msgpack.packb([P.REPLY, 1, None]), msgpack.packb(msgpack.ExtType(99, b""))
    frames = [_join(header, body, False)]
    with pytest.raises(SerializationError, match="unknown ext type 99"):
        Decoder(SameProcessSession()).body(frames)


def test_an_iterator_error_is_dropped_with_its_iterator():
    from mvbridge.core import dists
    from mvbridge.core.ops import next_batch

    def failing():
        yield 1
        raise KeyError("late")

    session = Session(dists.PYTHON_VERSION)
    iterator = failing()
    oid = session.table.export(iterator)
    assert next_batch(session, iterator, 4) == [[1], False]  # the KeyError waits for it
    assert len(session.pending_errors) == 1
    del iterator
    session.received([[oid, 1]], None)  # the peer dropped its proxy before asking again
    assert session.pending_errors == {}  # nor the error, nor the iterator it holds, stays
