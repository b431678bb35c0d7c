"""Arbitrary control messages and channel frames sent to a real worker (hypothesis): each is
answered (FAIL, or an ERROR reply) or dropped; the worker never crashes, hangs or stops
serving its real host."""

from __future__ import annotations

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mvbridge
from mvbridge.core import dists
from mvbridge.core import protocol as P
from mvbridge.core.codec import Decoder, Encoder
from tests.helpers import Keys, Spawn
from tests.unit.test_codec import SameProcessSession
from tests.unit.test_codec_properties import bodies, framed, msgpack_ints, msgpack_values

REPLY_WITHIN_MS = 5000
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class RawHost:
    """A second host of the env's worker, speaking bytes on its control socket."""

    def __init__(self, env: mvbridge.Env) -> None:
        self.env = env
        self.pid = env.import_module("mvb_faults").pid()
        self.context = zmq.Context.instance()
        self.control = self.context.socket(zmq.DEALER)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(env.current_session().link.address)
        self.channel: zmq.Socket | None = None

    def ask(self, frames: list[bytes]) -> list:
        """Send ``frames`` on the control socket; the worker's reply, unpacked."""
        self.control.send_multipart(frames)
        assert self.control.poll(REPLY_WITHIN_MS), f"no reply to {frames!r}"
        return P.unpack(self.control.recv())

    def open_channel(self) -> None:
        hello = {"protocol": P.PROTOCOL_VERSION, "python_minor": dists.PYTHON_VERSION}
        assert self.ask(P.control_message(P.HELLO, 1, hello))[0] == P.OK
        kind, _, (_cid, endpoint) = self.ask(P.control_message(P.OPEN, 2))
        assert kind == P.OK
        self.channel = self.context.socket(zmq.DEALER)
        self.channel.setsockopt(zmq.LINGER, 0)
        self.channel.connect(endpoint)

    def still_serves(self) -> None:
        """A real request on the raw channel, and a real call of the env, both answered."""
        assert self.channel is not None
        session = SameProcessSession()
        self.channel.send_multipart(
            Encoder(session).encode([P.REQUEST, 99, None], [P.OP_VERSIONS, None, ["msgpack"]])
        )
        while True:
            assert self.channel.poll(REPLY_WITHIN_MS), "the worker's channel stopped answering"
            frames = self.channel.recv_multipart()
            if Decoder.header(frames)[1] == 99:
                break
        assert "msgpack" in Decoder(session).body(frames)
        assert self.env.import_module("mvb_faults").pid() == self.pid

    def close(self) -> None:
        for socket in (self.control, self.channel):
            if socket is not None:
                socket.close(0)


@pytest.fixture(scope="module")
def bad_input_env(py_faults: str):
    with mvbridge.Env("faults-bad-input", interpreter=py_faults) as env:
        yield env


@pytest.fixture(scope="module")
def raw(bad_input_env: mvbridge.Env):
    """A raw host with a channel; the control fuzzing uses another (its HELLO, CLOSE and BYE
    would end this one's session, as they may)."""
    host = RawHost(bad_input_env)
    host.open_channel()
    yield host
    host.close()


@pytest.fixture(scope="module")
def raw_control(bad_input_env: mvbridge.Env):
    host = RawHost(bad_input_env)
    yield host
    host.close()


control_kinds = st.integers(0, 30).filter(lambda kind: kind != P.SHUTDOWN)
control_frames = st.one_of(
    st.lists(st.binary(max_size=64), min_size=1, max_size=3),
    st.builds(
        lambda kind, rid, payload: [msgpack.packb([kind, rid, payload], use_bin_type=True)],
        control_kinds,
        msgpack_ints,
        msgpack_values,
    ),
)


@FUZZ
@given(control_frames)
def test_every_control_message_is_answered(raw_control: RawHost, frames: list[bytes]):
    reply = raw_control.ask(frames)
    assert reply[0] in (P.OK, P.FAIL)


channel_frames = st.lists(
    st.one_of(
        st.builds(framed, st.tuples(st.just(P.REQUEST), st.integers(1000, 2**31)), bodies),
        st.binary(max_size=64),
    ),
    min_size=1,
    max_size=3,
)


@FUZZ
@given(channel_frames)
def test_channel_garbage_is_answered_or_dropped(raw: RawHost, frames: list[bytes]):
    assert raw.channel is not None
    raw.channel.send_multipart(frames)
    try:
        request = Decoder.header(frames)
    except mvbridge.ProtocolError:
        return  # dropped (and logged) by the worker; the next test case goes on
    assert raw.channel.poll(REPLY_WITHIN_MS), "a request with a good header got no answer"
    answer = raw.channel.recv_multipart()
    assert Decoder.header(answer)[:2] in ([P.ERROR, request[1]], [P.REPLY, request[1]])


def test_the_worker_still_serves_after_the_fuzzing(raw: RawHost, raw_control: RawHost):
    raw.still_serves()
    assert raw_control.ask(P.control_message(P.PING, 7)) == [P.OK, 7, raw.pid]


# -- the service's router -------------------------------------------------------------------------
class RawClient:
    """A client of a ``mvbridge spawn`` service speaking bytes on its own CURVE connection."""

    def __init__(self, service: Spawn, keys: Keys, routing_id: bytes | None = None) -> None:
        from mvbridge.bridge.keys import client_keys

        pair = client_keys(keys.server_public, keys.client_secret)
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if routing_id is not None:
            self.socket.setsockopt(zmq.ROUTING_ID, routing_id)
        self.socket.curve_serverkey = pair.server_public
        self.socket.curve_publickey = pair.public
        self.socket.curve_secretkey = pair.secret
        self.socket.connect(service.address)

    def send(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)
        while self.socket.poll(0):  # whatever the router answered: only its liveness matters
            self.socket.recv_multipart()

    def close(self) -> None:
        self.socket.close(0)


routes = st.one_of(
    st.just(P.CONTROL_ROUTE),
    st.integers(0, 2**32 - 1).map(P.route),
    st.binary(max_size=8),
)
router_messages = st.one_of(
    st.lists(st.binary(max_size=64), min_size=1, max_size=4),
    st.builds(lambda route, frames: [route, *frames], routes, control_frames),
    st.builds(lambda route, frames: [route, *frames], routes, channel_frames),
)


@pytest.fixture(scope="module")
def fuzzed_service(py_faults: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory):
    spawned = Spawn(py_faults, tmp_path_factory.mktemp("fuzzed-spawn"), keys)
    yield spawned
    assert spawned.stop() == 0, spawned.log


@pytest.fixture(scope="module")
def raw_client(fuzzed_service: Spawn, keys: Keys):
    client = RawClient(fuzzed_service, keys)
    yield client
    client.close()


@pytest.fixture(scope="module")
def raw_channel_client(fuzzed_service: Spawn, keys: Keys):
    """A connection named as a channel's own (``b"c" + route + session id``) of a session
    that the service does not know, then of one it does."""
    client = RawClient(fuzzed_service, keys, routing_id=b"c" + P.route(1) + b"s" * 16)
    yield client
    client.close()


@FUZZ
@given(router_messages)
def test_the_router_survives_any_frames(raw_client: RawClient, frames: list[bytes]):
    raw_client.send(frames)


@FUZZ
@given(st.one_of(channel_frames, st.lists(st.binary(max_size=64), min_size=1, max_size=4)))
def test_the_router_survives_any_frames_on_a_channel_connection(
    raw_channel_client: RawClient, frames: list[bytes]
):
    raw_channel_client.send(frames)


def test_the_service_still_serves_after_the_fuzzing(
    raw_client: RawClient, raw_channel_client: RawClient, fuzzed_service: Spawn, keys: Keys
):
    assert fuzzed_service.process.poll() is None
    with mvbridge.Env("after-fuzz", address=fuzzed_service.address, **keys.env_kwargs()) as env:
        assert env.import_module("operator").add(2, 3) == 5
    assert fuzzed_service.ping()["workers_up"]
    assert "Traceback" not in fuzzed_service.log, fuzzed_service.log[-3000:]
