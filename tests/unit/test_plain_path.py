"""The short path of small calls: plain frames, plain replies, and frame 0's "more frames" bit.

A call whose values msgpack holds as they are skips the codec's hooks on both sides
(``Encoder.plain_frame``, ``Decoder.plain_reply``); a receiver asks its socket for buffer frames
only when frame 0 says some follow. Each must give exactly what the general path gives.
"""

from __future__ import annotations

import msgpack
import pytest
import zmq

from mvbridge.core import protocol as P
from mvbridge.core.codec import NOT_PLAIN, Decoder, Encoder, LargeBytes, module_reference
from mvbridge.core.peer import receive_message

from .test_codec import SameProcessSession

PLAIN_VALUES = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    "é" * 40,
    b"\x00" * 300,
    [1, [2, {"k": None}]],
    {"a": [1.0, "b"], 3: b"x"},
    [P.OP_CALLATTR, module_reference("benchfuncs"), "noop", [], {}],
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_a_plain_frame_is_the_frame_the_general_encoder_makes(value):
    encoder = Encoder(SameProcessSession())
    header = [P.REQUEST, 7, None]
    assert encoder.plain_frame(header, value) == encoder.encode(header, value)[0]


@pytest.mark.parametrize(
    "value",
    [(1, 2), [1, (2,)], 2**64, {1, 2}, 2j, object(), LargeBytes(b"x" * 10), {"k": frozenset()}],
    ids=repr,
)
def test_values_that_need_the_hook_get_no_plain_frame(value):
    encoder = Encoder(SameProcessSession())
    assert encoder.plain_frame([P.REQUEST, 1, None], value) is None
    # The packer was reset: the next plain frame is whole.
    assert (
        encoder.plain_frame([P.REQUEST, 2, None], [1])
        == encoder.encode([P.REQUEST, 2, None], [1])[0]
    )


@pytest.mark.parametrize("value", [None, False, 5, -3, 2.5, "text", b"raw", "s" * 300], ids=repr)
def test_a_scalar_reply_reads_plain(value):
    frame = Encoder(SameProcessSession()).encode([P.REPLY, 4, None], value)[0]
    assert Decoder.plain_reply(frame, 4) == value
    assert type(Decoder.plain_reply(frame, 4)) is type(value)


def test_other_replies_are_read_the_general_way():
    encoder = Encoder(SameProcessSession())
    cases = [
        encoder.encode([P.REPLY, 4, None], [1])[0],  # a container may hold ext values
        encoder.encode([P.REPLY, 4, None], (1,))[0],
        encoder.encode([P.REPLY, 5, None], 1)[0],  # another request's reply
        encoder.encode([P.REPLY, 4, [[3, 1]]], 1)[0],  # carries releases
        encoder.encode([P.REPLY, 4, None, ["/dev/shm/x"]], 1)[0],  # returns segments
        encoder.encode([P.REQUEST, 4, None], 1)[0],  # a callback
        encoder.encode([P.REPLY, 4, None], LargeBytes(b"x" * 100_000))[0],  # bytes in frame 1
        b"",
        b"\xff\xff",
    ]
    for frame in cases:
        assert Decoder.plain_reply(frame, 4) is NOT_PLAIN


def test_frame_zero_says_when_buffer_frames_follow():
    encoder = Encoder(SameProcessSession())
    single = encoder.encode([P.REPLY, 1, None], b"small")
    split = encoder.encode([P.REPLY, 2, None], LargeBytes(b"y" * 100_000))
    assert len(single) == 1
    assert not single[0][3] & 0x80
    assert len(split) == 2
    assert split[0][3] & 0x80
    assert Decoder.header(split) == [P.REPLY, 2, None, None]


def test_a_receiver_reads_buffer_frames_only_when_frame_zero_says_so():
    context = zmq.Context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    try:
        receiver.setsockopt(zmq.RCVTIMEO, 5000)
        receiver.bind("inproc://plain-path")
        sender.connect("inproc://plain-path")
        encoder = Encoder(SameProcessSession())
        messages = [
            encoder.encode([P.REPLY, 1, None], LargeBytes(b"z" * 70_000)),
            encoder.encode([P.REPLY, 2, None], "next"),
        ]
        for frames in messages:
            sender.send_multipart(frames)
        first, second = receive_message(receiver), receive_message(receiver)
        assert len(first) == 2
        assert bytes(first[1].buffer) == b"z" * 70_000
        assert Decoder(SameProcessSession()).body(first) == b"z" * 70_000
        assert second == messages[1]
    finally:
        sender.close(linger=0)
        receiver.close(linger=0)
        context.term()


def test_a_header_length_with_the_bit_set_is_still_read_as_its_length():
    header = msgpack.packb([P.REPLY, 9, None])
    frame = (len(header) | P.MORE_FRAMES).to_bytes(4, "little") + header + msgpack.packb(1)
    assert Decoder.header([frame, b"buffer"]) == [P.REPLY, 9, None, None]
    assert P.peek_header(frame) == [P.REPLY, 9]
