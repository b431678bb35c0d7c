"""`mvbridge spawn` services: sessions, lifetimes, pools, failures and security, for real.

Every service here is a real `mvbridge spawn` process on a free loopback port, and every
client a real connection (in this process, or a subprocess that is killed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import mvbridge
from tests.helpers import (
    Spawn,
    build_wheel,
    free_port,
    run_cli,
    run_python,
    wait_until,
    write_config,
)


def client_env(spawned: Spawn, name: str = "svc", **kwargs) -> mvbridge.Env:
    keys = spawned.keys.env_kwargs() if spawned.keys is not None else {}
    return mvbridge.Env(name, address=spawned.address, **keys, **kwargs)


@pytest.fixture
def short_lived(py_v1, keys, tmp_path):
    """Services of a test's own, with short timeouts, stopped at the end of the test."""
    started = []

    def start(*extra, **kwargs):
        spawned = Spawn(py_v1, tmp_path, keys, *extra, **kwargs)
        started.append(spawned)
        return spawned

    yield start
    for spawned in started:
        spawned.stop()


def client_process(spawned: Spawn, body: str, tmp_path) -> subprocess.Popen:
    """A host process that connects, runs ``body``, prints READY and then waits forever."""
    keys = spawned.keys.env_kwargs() if spawned.keys is not None else {}
    source = (
        textwrap.dedent(
            f"""
        import sys, time, mvbridge
        env = mvbridge.Env("svc", address={spawned.address!r}, **{keys!r})
        demo = env.import_module("mvb_demo")
        """
        )
        + textwrap.dedent(body)
        + "\nprint('READY', flush=True)\ntime.sleep(600)\n"
    )
    script = tmp_path / f"client-{time.monotonic_ns()}.py"
    script.write_text(source)
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()
    if line.strip() != "READY":
        process.kill()
        pytest.fail(f"the client did not get ready: {line}{process.stderr.read()}")
    return process


# -- many clients -------------------------------------------------------------------------------
def test_twenty_concurrent_clients_have_isolated_sessions(service):
    envs = [client_env(service, f"c{i}") for i in range(20)]
    try:
        errors = []

        def work(i):
            try:
                demo = envs[i].import_module("mvb_demo")
                counter = demo.make_counter(i)
                for _ in range(20):
                    counter.increment()
                assert counter.value == i + 20
                demo.set_local(f"client {i}")
                assert demo.get_local() == f"client {i}"
            except BaseException as exc:  # reported below, with the client's number
                errors.append((i, exc))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        pids = {env.info.pid for env in envs}
        assert len(pids) == 1  # one worker, twenty sessions
        assert service.ping()["sessions"] >= 20
    finally:
        for env in envs:
            env.shutdown()


def test_one_client_cannot_release_or_reach_another_clients_object(service):
    from mvbridge.core.remote import RemoteObject, TypeInfo

    with client_env(service, "owner") as owner, client_env(service, "other") as other:
        counter = owner.import_module("mvb_demo").make_counter(5)
        oid = counter._mvb_oid
        before = owner.statistics().worker_objects
        other_demo = other.import_module("mvb_demo")
        other_session = other.session()
        other_session.release_later(oid, 10)  # a forged release, carried by the next call
        assert other_demo.add(1, 1) == 2
        assert owner.statistics().worker_objects == before
        assert counter.increment() == 6
        forged = RemoteObject(other_session, oid, TypeInfo("Counter", ["increment"], 0))
        with pytest.raises(mvbridge.StaleReferenceError):
            other_demo.identity(forged)
        object.__setattr__(forged, "_mvb_oid", None)  # nothing to release for the forgery


def test_sigkilled_client_has_its_objects_released_after_the_session_timeout(short_lived, tmp_path):
    spawned = short_lived("--session-timeout", "1")
    client = client_process(spawned, "kept = [demo.make_counter(i) for i in range(25)]\n", tmp_path)
    try:
        assert spawned.ping()["objects"] == 25
        killed = time.monotonic()
        end_process(client)
        wait_until(lambda: spawned.ping()["objects"] == 0, timeout=10)
        assert time.monotonic() - killed < 1 + 5  # session timeout + probe interval + slack
        done = run_cli(
            ["ping", spawned.address, "--json", "--server-key", str(spawned.keys.server_public),
             "--client-key", str(spawned.keys.client_secret)],
            tmp_path,
            timeout=30,
        )  # fmt: skip
        facts = json.loads(done.stdout)
        assert done.returncode == 0
        assert facts["objects"] == 0
        assert facts["sessions"] == 0
        spawned.wait_log("expired: its client was gone")
    finally:
        end_process(client)


def end_process(process: subprocess.Popen) -> None:
    process.kill()
    process.communicate(timeout=10)  # reaps it and closes its pipes


@pytest.mark.timeout(240)
def test_a_thousand_short_lived_clients_leave_nothing_behind(short_lived):
    spawned = short_lived("--session-timeout", "1")
    with client_env(spawned, "warm") as warm:  # threads and sockets a first session creates
        warm.import_module("mvb_demo").make_counter(1)
    wait_until(lambda: spawned.ping()["sessions"] == 0)
    before = spawned.ping()
    for i in range(1000):
        env = client_env(spawned, "brief")
        demo = env.import_module("mvb_demo")
        keep = demo.make_counter(i)
        assert keep.increment() == i + 1
        if i % 2:
            env.shutdown()  # says goodbye
        else:  # vanishes: no goodbye, so the service must notice by itself
            env.current_session().link.end = lambda said_goodbye: None
            env.shutdown()
        del keep
    wait_until(lambda: spawned.ping()["sessions"] == 0, timeout=30)
    assert spawned.ping()["objects"] == 0
    # Channel threads end within a poll interval of their session.
    wait_until(lambda: spawned.ping()["threads"] <= before["threads"] + 2)
    wait_until(lambda: spawned.ping()["fds"] <= before["fds"] + 5)


# -- stopping -----------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_drains_a_call_in_flight_then_exits_zero(short_lived, signum):
    spawned = short_lived("--grace", "20")
    env = client_env(spawned)
    demo = env.import_module("mvb_demo")
    results = []
    call = threading.Thread(target=lambda: results.append(demo.sleep(1.5)))
    call.start()
    wait_until(lambda: spawned.ping()["calls_in_flight"] == 1)
    spawned.signal(signum)
    spawned.wait_log("draining:")
    with pytest.raises(mvbridge.MVBridgeError):
        client_env(spawned, "late").import_module("mvb_demo")  # no new sessions now
    with pytest.raises(mvbridge.WorkerDiedError, match="shutting down"):
        demo.add(1, 1)  # nor new calls, from this thread's channel
    call.join(30)
    assert results == [1.5]
    assert spawned.wait_exit(30) == 0
    assert "stopped" in spawned.log
    env.shutdown()
    with socket_on(spawned.port):  # the port is free again
        pass


class socket_on:
    """Bind 127.0.0.1:port (fails if the port is still in use)."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds
        self.sock.bind(("127.0.0.1", port))

    def __enter__(self):
        return self.sock

    def __exit__(self, *exc):
        self.sock.close()


def test_a_client_cannot_stop_the_service(service):
    from mvbridge.core import protocol as P

    with client_env(service, "rogue") as env:
        env.import_module("mvb_demo").add(1, 2)
        env.session().control(P.SHUTDOWN)  # ends this client's session only
    assert service.ping()["workers_up"] == 1
    with client_env(service, "after") as env:
        assert env.import_module("mvb_demo").add(2, 2) == 4


# -- failures the client sees -------------------------------------------------------------------
class ForeverCall:
    """``demo.sleep_forever`` running in a thread of its own: how and when it ended."""

    def __init__(self, demo, tmp_path) -> None:
        self.started = tmp_path / f"started-{time.monotonic_ns()}"
        self.error: BaseException | None = None
        self.ended_at = 0.0
        self.thread = threading.Thread(target=self._run, args=(demo,))
        self.thread.start()
        wait_until(self.started.exists)

    def _run(self, demo) -> None:
        try:
            demo.sleep_forever(str(self.started))
        except BaseException as exc:
            self.error = exc
        self.ended_at = time.monotonic()

    def wait_failed(self, timeout: float) -> float:
        """When it failed (it must fail with WorkerDiedError within ``timeout``)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the call did not fail"
        assert isinstance(self.error, mvbridge.WorkerDiedError), self.error
        return self.ended_at


def test_service_killed_during_a_long_call_fails_the_call_then_comes_back(short_lived, tmp_path):
    spawned = short_lived()
    env = client_env(spawned, heartbeat_timeout=2, connect_timeout=20)
    demo = env.import_module("mvb_demo")
    counter = demo.make_counter(1)
    call = ForeverCall(demo, tmp_path)
    killed = time.monotonic()
    spawned.process.kill()
    assert call.wait_failed(10) - killed < 2 + 1
    again = short_lived(port=spawned.port)
    assert demo.add(2, 3) == 5  # the module proxy opened a new session on the new service
    assert demo.pid() == again.ping()["pids"][0]
    with pytest.raises(mvbridge.StaleReferenceError):
        counter.increment()
    env.shutdown()


def test_stopped_service_fails_a_call_within_the_heartbeat_timeout(short_lived, tmp_path):
    spawned = short_lived()
    env = client_env(spawned, heartbeat_timeout=2)
    call = ForeverCall(env.import_module("mvb_demo"), tmp_path)
    stopped = time.monotonic()
    spawned.signal(signal.SIGSTOP)  # a hung host or a network that stopped delivering
    try:
        assert 1.0 < call.wait_failed(15) - stopped < 2 + 2
    finally:
        spawned.signal(signal.SIGCONT)
    env.shutdown()


def test_call_to_a_service_that_is_down_fails_within_connect_timeout(keys):
    address = f"tcp://127.0.0.1:{free_port()}"
    env = mvbridge.Env("down", address=address, connect_timeout=1, **keys.env_kwargs())
    started = time.monotonic()
    with pytest.raises(mvbridge.WorkerStartError, match=address.replace(".", r"\.")):
        env.import_module("mvb_demo")
    assert time.monotonic() - started < 1 + 1.5


def test_short_drop_resumes_the_session_and_its_proxies(short_lived):
    from tests.helpers import TcpRelay

    spawned = short_lived("--session-timeout", "30")
    with TcpRelay(spawned.port) as relay:
        env = mvbridge.Env(
            "relayed", address=f"tcp://127.0.0.1:{relay.port}", **spawned.keys.env_kwargs()
        )
        demo = env.import_module("mvb_demo")
        counter = demo.make_counter(10)
        session = env.current_session()
        relay.cut()  # every connection through the relay drops; the client reconnects
        wait_until(lambda: session.link.epoch == 1)
        assert counter.increment() == 11  # the same session, resumed
        assert env.current_session() is session
        assert "resumed" in spawned.log
        env.shutdown()


# -- pools --------------------------------------------------------------------------------------
def test_pool_of_four_replaces_a_killed_worker_and_only_its_sessions_fail(short_lived):
    spawned = short_lived("--workers", "4")
    facts = spawned.ping()
    assert facts["workers_up"] == 4
    envs = [client_env(spawned, f"p{i}") for i in range(8)]
    try:
        demos = [env.import_module("mvb_demo") for env in envs]
        pids = [demo.pid() for demo in demos]
        assert sorted(set(pids)) == sorted(facts["pids"])  # new sessions go to the least loaded
        counters = [demo.make_counter(0) for demo in demos]
        outcomes: dict[int, object] = {}

        def long_call(i):
            try:
                outcomes[i] = demos[i].sleep(4)
            except BaseException as exc:
                outcomes[i] = exc

        calls = [threading.Thread(target=long_call, args=(i,)) for i in range(8)]
        for call in calls:
            call.start()
        wait_until(lambda: spawned.ping()["calls_in_flight"] == 8)
        victim = pids[0]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        for i, call in enumerate(calls):
            call.join(20)
            if pids[i] == victim:
                assert isinstance(outcomes[i], mvbridge.WorkerDiedError), outcomes[i]
            else:
                assert outcomes[i] == 4
        assert time.monotonic() - killed < 4 + 5
        wait_until(
            lambda: spawned.ping()["workers_up"] == 4 and victim not in spawned.ping()["pids"]
        )
        for i, demo in enumerate(demos):
            if pids[i] == victim:
                assert demo.pid() != victim  # the module proxy opened a new session
                with pytest.raises(mvbridge.StaleReferenceError):
                    counters[i].increment()
            else:
                assert demo.pid() == pids[i]
                assert counters[i].increment() == 1
    finally:
        for env in envs:
            env.shutdown()
    assert f"(pid {victim}) was killed by SIGKILL" in spawned.log


# -- callbacks ----------------------------------------------------------------------------------
def test_callback_of_a_session_that_ended_fails_at_once_in_the_worker(service):
    with client_env(service, "gone") as first:
        index = first.import_module("mvb_demo").hold(lambda: "from a closed session")
    with client_env(service, "second") as second:
        demo = second.import_module("mvb_demo")
        started = time.monotonic()
        outcome = demo.call_held_in_thread(index)
        assert "MVBridgeError" in outcome["error"]
        assert "gone" in outcome["error"] or "not connected" in outcome["error"]
        assert time.monotonic() - started < 5


# -- security -----------------------------------------------------------------------------------
def test_unknown_client_key_is_refused_and_logged(service, keys):
    env = mvbridge.Env(
        "stranger",
        address=service.address,
        server_key=str(keys.server_public),
        client_key=str(keys.stranger_secret),
        connect_timeout=5,
    )
    started = time.monotonic()
    with pytest.raises(mvbridge.WorkerStartError, match="refused this client's key"):
        env.start()
    assert time.monotonic() - started < 3
    service.wait_log("refused a client from 127.0.0.1")


def test_keyless_client_is_refused_and_logged(service):
    env = mvbridge.Env("keyless", address=service.address, connect_timeout=5)
    with pytest.raises(mvbridge.WorkerStartError, match="handshake failed"):
        env.start()
    service.wait_log("a client without CurveZMQ")


def test_arrays_cross_in_frames_not_shared_memory(py_numpy1, keys, tmp_path):
    import numpy as np

    spawned = Spawn(py_numpy1, tmp_path, keys)  # numpy 1.x behind the service, 2.x here
    try:
        _arrays_cross(spawned, np)
    finally:
        assert spawned.stop() == 0, spawned.log


def _arrays_cross(spawned, np):
    with client_env(spawned, "arrays") as env:
        demo = env.import_module("mvb_demo")
        big = np.arange(3_000_000, dtype="float64")  # 24 MB: shared memory locally
        doubled = demo.double(big)
        assert np.array_equal(doubled, big * 2)
        assert env.current_session().segments is None
        assert demo.make_array(5).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert demo.numpy_version().startswith("1.")


def test_keys_added_later_are_read_on_sighup(py_v1, keys, tmp_path):
    empty = tmp_path / "allow-none"
    empty.mkdir()
    spawned = Spawn(py_v1, tmp_path, keys, "--allow", str(empty))
    try:
        assert "every client is refused" in spawned.log
        env = client_env(spawned, "later", connect_timeout=3)
        with pytest.raises(mvbridge.WorkerStartError, match="refused"):
            env.start()
        (empty / "client.key").write_bytes((keys.allow / "client.key").read_bytes())
        spawned.signal(signal.SIGHUP)
        spawned.wait_log("re-read the allowed client keys: 1")
        with client_env(spawned, "later") as env:
            assert env.import_module("mvb_demo").add(1, 1) == 2
    finally:
        spawned.stop()


def test_spawn_refuses_tcp_without_keys_and_insecure_off_loopback(py_v1, tmp_path):
    done = run_cli(["spawn", "--env", "x", "--interpreter", py_v1], tmp_path, timeout=60)
    assert done.returncode == 1
    assert "mvbridge keygen" in done.stderr
    done = run_cli(
        [
            "spawn",
            "--env",
            "x",
            "--interpreter",
            py_v1,
            "--insecure",
            "--address",
            "tcp://0.0.0.0:7799",
        ],
        tmp_path,
        timeout=60,
    )
    assert done.returncode == 1
    assert "--insecure is refused" in done.stderr


def test_insecure_service_on_loopback_serves_plain_clients(py_v1, tmp_path):
    spawned = Spawn(py_v1, tmp_path, None)
    try:
        assert "INSECURE" in spawned.log
        with client_env(spawned, "plain") as env:
            assert env.import_module("mvb_demo").add(3, 4) == 7
    finally:
        assert spawned.stop() == 0


def raw_client(address: str, keys, routing_id: bytes | None = None):
    """A bare pyzmq DEALER with an allowed CURVE key: says whatever a test makes it say."""
    import zmq

    from mvbridge.bridge.keys import client_keys

    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if routing_id is not None:
        socket.setsockopt(zmq.ROUTING_ID, routing_id)
    client = client_keys(keys.server_public, keys.client_secret)
    socket.curve_serverkey, socket.curve_publickey = client.server_public, client.public
    socket.curve_secretkey = client.secret
    socket.connect(address)
    return socket


def test_garbage_on_the_port_leaves_the_service_answering(service, keys):
    import socket

    import zmq

    from mvbridge.core import protocol as P

    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as raw:
        raw.sendall(os.urandom(4096))  # not ZMTP at all
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as raw:
        raw.sendall(b"\xff" + b"\x00" * 8 + b"\x7f\x03\x00NULL" + os.urandom(64))  # a bad greeting
    context = zmq.Context.instance()
    plain = context.socket(zmq.DEALER)  # no CURVE: refused before any message gets through
    plain.setsockopt(zmq.LINGER, 0)
    plain.connect(service.address)
    plain.send_multipart([b"\x00\x00\x00\x00", b"\xc1 garbage"])
    authed = raw_client(service.address, keys)  # a valid key sending nonsense
    try:
        for frames in (
            [b"just one frame"],
            [b"bad route", b"x"],
            [P.CONTROL_ROUTE, b"\xc1 not msgpack"],
            [P.CONTROL_ROUTE, P.pack([P.HELLO, 1, "not a map"])],
            [P.CONTROL_ROUTE, P.pack(["kind", "id", None])],
            [P.route(7), b"\x05\x00\x00\x00garbage"],
            [P.route(7), os.urandom(100), os.urandom(100)],
        ):
            authed.send_multipart(frames)
        with client_env(service, "after-garbage") as env:
            assert env.import_module("mvb_demo").add(20, 22) == 42
        assert service.ping()["workers_up"] == 1
    finally:
        plain.close(linger=0)
        authed.close(linger=0)
    assert "rejected a malformed message" in service.log


def test_each_host_thread_calls_on_a_connection_of_its_own(service):
    """A host thread's channel connects to the service itself, not through the host's I/O
    thread (whose hop was most of a service call's cost on the host)."""
    import zmq

    with client_env(service, "own-connections") as env:
        demo = env.import_module("mvb_demo")
        seen = []
        ready = threading.Barrier(3, timeout=30)  # all three channels open at once

        def call() -> None:
            assert demo.add(1, 2) == 3
            socket = env.session().channel().socket
            seen.append((socket.getsockopt(zmq.LAST_ENDPOINT), socket.getsockopt(zmq.ROUTING_ID)))
            ready.wait()

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert [endpoint.decode() for endpoint, _ in seen] == [service.address] * 3
        ids = {routing_id for _, routing_id in seen}
        assert len(ids) == 3
        assert all(routing_id.startswith(b"c") for routing_id in ids)
        assert demo.add(2, 2) == 4


def test_a_channel_connection_under_another_key_cannot_reach_a_session(py_v1, tmp_path):
    """Knowing a session's id is not enough: the service takes a channel's messages only with
    the key that opened the session. (The id itself is a 128-bit secret of the client's; one
    naming a channel that is connected now would take that connection over, ZeroMQ's
    ROUTER_HANDOVER, which is how a reconnecting client gets its connection back.)"""
    import zmq

    from mvbridge.bridge.keys import client_keys, generate
    from mvbridge.core import protocol as P
    from mvbridge.core.codec import Encoder
    from tests.helpers import Keys
    from tests.unit.test_codec import SameProcessSession

    keys = Keys(tmp_path / "keys")
    other_public, other_secret = generate("other", tmp_path / "keys" / "other")
    (keys.allow / "other.key").write_bytes(other_public.read_bytes())  # also allowed
    spawned = Spawn(py_v1, tmp_path, keys)
    intruder = zmq.Context.instance().socket(zmq.DEALER)
    intruder.setsockopt(zmq.LINGER, 0)
    try:
        with client_env(spawned, "victim") as env:
            demo = env.import_module("mvb_demo")
            assert demo.add(1, 1) == 2
            session = env.session()
            route = P.route(session.channel().cid + 1000)  # no channel of the victim's
            pair = client_keys(keys.server_public, other_secret)
            intruder.curve_serverkey, intruder.curve_publickey = pair.server_public, pair.public
            intruder.curve_secretkey = pair.secret
            intruder.setsockopt(zmq.ROUTING_ID, b"c" + route + session.link._sid)
            intruder.connect(spawned.address)
            request = Encoder(SameProcessSession()).encode(
                [P.REQUEST, 77, None], [P.OP_VERSIONS, None, ["msgpack"]]
            )
            intruder.send_multipart(request)
            spawned.wait_log("a channel of a session that is not its own")
            assert not intruder.poll(0)  # nothing reached the worker, so nothing came back
            assert demo.add(2, 3) == 5  # and the session it aimed at goes on
    finally:
        intruder.close(linger=0)
        assert spawned.stop() == 0, spawned.log


def test_oversized_message_is_refused_by_the_client_and_by_the_service(short_lived, keys):

    from mvbridge.core import protocol as P

    spawned = short_lived("--max-message-size", "64K")
    with client_env(spawned, "big") as env:
        demo = env.import_module("mvb_demo")
        with pytest.raises(mvbridge.ProtocolError, match="over the service's limit"):
            demo.identity(b"x" * 70_000)  # refused before a byte is sent
        assert demo.add(1, 2) == 3  # the session goes on
    # A client that ignores the limit gets an error from the service itself.
    raw = raw_client(spawned.address, keys)
    try:
        request = P.error_message(5, "x", "y")[0]  # any well-formed header will do:
        request = request[:5] + bytes([P.REQUEST]) + request[6:]  # make it a REQUEST
        raw.send_multipart([P.route(1), request, b"a" * 40_000, b"b" * 40_000])
        assert raw.poll(10_000)
        _route, frame = raw.recv_multipart()
        assert P.peek_header(frame) == [P.ERROR, 5]
        assert b"over the service's limit" in frame
        # The same on a channel's own connection (how mvbridge's hosts send calls).
        raw.close(linger=0)
        raw = raw_client(spawned.address, keys, routing_id=b"c" + P.route(1) + b"s" * 16)
        raw.send_multipart([request, b"a" * 40_000, b"b" * 40_000])
        assert raw.poll(10_000)
        (frame,) = raw.recv_multipart()
        assert P.peek_header(frame) == [P.ERROR, 5]
        assert b"over the service's limit" in frame
    finally:
        raw.close(linger=0)
    assert "rejected a message of 80" in spawned.log


# -- operations ---------------------------------------------------------------------------------
def test_ping_json_reports_the_service_and_exits_one_when_down(service, keys, tmp_path):
    args = ["--server-key", str(keys.server_public), "--client-key", str(keys.client_secret)]
    done = run_cli(["ping", service.address, "--json", *args], tmp_path, timeout=30)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    for key in ("env", "python", "pids", "sessions", "objects", "rtt_ms"):
        assert key in facts
    assert facts["python"] == "%d.%d.%d" % sys.version_info[:3]
    down = run_cli(
        ["ping", f"tcp://127.0.0.1:{free_port()}", "--timeout", "1", *args], tmp_path, timeout=30
    )
    assert down.returncode == 1
    assert "down" in down.stderr
    text = run_cli(["ping", service.address, *args], tmp_path, timeout=30)
    assert text.returncode == 0
    assert "up, round trip" in text.stdout


def test_json_log_lines_parse(short_lived):
    spawned = short_lived("--log-format", "json")
    with client_env(spawned, "j") as env:
        env.import_module("mvb_demo").speak("hello")
    spawned.stop()
    events = [json.loads(line) for line in spawned.log.splitlines() if line.strip()]
    kinds = {e.get("event") for e in events}
    assert {"start", "session-open", "session-end", "stop"} <= kinds
    assert any(e.get("event") == "worker-output" and "out:hello" in e["message"] for e in events)


# -- configured services ------------------------------------------------------------------------
def test_spawn_builds_a_configured_env_and_clients_import_its_modules(keys, tmp_path):
    wheel = build_wheel(
        tmp_path / "wheels",
        "mvb-svcthing",
        "3.1",
        {"mvb_svcthing/__init__.py": "def hello():\n    return 'served'\n"},
    )
    server = write_config(tmp_path / "server", f'[envs.legacy]\nrequirements = ["{wheel}"]\n')
    spawned = Spawn(str(server), tmp_path, keys, env_name="legacy")
    try:
        client = tmp_path / "client"
        (client / "keys").mkdir(parents=True)
        (client / "keys" / "server.key").write_bytes(keys.server_public.read_bytes())
        (client / "keys" / "me.key_secret").write_bytes(keys.client_secret.read_bytes())
        write_config(
            client,
            f'[envs.legacy]\naddress = "{spawned.address}"\nserver_key = "keys/server.key"\n'
            'client_key = "keys/me.key_secret"\n',
        )
        synced = run_cli(["sync"], client, timeout=60)
        assert synced.returncode == 0, synced.stderr
        assert "the service exposes mvb_svcthing" in synced.stderr
        ran = run_python("from mvbridge import mvb_svcthing\nprint(mvb_svcthing.hello())", client)
        assert ran.stdout.strip() == "served", ran.stderr
        listed = run_cli(["envs"], client, timeout=60)
        assert f"service {spawned.address}" in listed.stdout
        assert "mvb-svcthing==3.1" in listed.stdout or "mvb_svcthing==3.1" in listed.stdout
        (client / ".mvbridge" / "envs" / "legacy" / "mvbridge-service.json").unlink()
        ran = run_python("from mvbridge import mvb_svcthing\nprint(mvb_svcthing.hello())", client)
        assert ran.stdout.strip() == "served", ran.stderr  # asked the service on first import
    finally:
        assert spawned.stop() == 0, spawned.log


def test_keys_from_the_environment(service, keys, monkeypatch):
    monkeypatch.setenv("MVBRIDGE_SERVER_KEY", str(keys.server_public))
    monkeypatch.setenv("MVBRIDGE_CLIENT_KEY", str(keys.client_secret))
    with mvbridge.Env("from-environ", address=service.address) as env:
        assert env.import_module("mvb_demo").add(5, 5) == 10


def test_env_info_and_statistics_of_a_service_env(service):
    with client_env(service, "facts") as env:
        demo = env.import_module("mvb_demo")
        kept = demo.make_counter(1)
        info = env.info
        assert info.address == service.address
        assert info.pid == demo.pid() == service.ping()["pids"][0]
        assert env.statistics().worker_objects >= 1
        assert env.state is mvbridge.EnvState.RUNNING
        del kept
    assert env.state is mvbridge.EnvState.STOPPED


def test_spawn_on_a_port_in_use_exits_at_once_with_the_reason(py_v1, keys, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        args = ["spawn", "--env", "x", "--interpreter", py_v1, "--address",
                f"tcp://127.0.0.1:{port}", *keys.spawn_args()]  # fmt: skip
        started = time.monotonic()
        done = run_cli(args, tmp_path, timeout=60)
    assert done.returncode == 1
    assert "Address already in use (is another service using that port?)" in done.stderr
    assert time.monotonic() - started < 30


def test_ipv6_loopback_works_when_the_machine_has_it(py_v1, tmp_path):
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = free_port()  # free on IPv4; an IPv6 port of that number is all but certainly free
    log = tmp_path / "v6.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mvbridge", "spawn", "--env", "v6", "--interpreter", py_v1,
             "--address", f"tcp://[::1]:{port}", "--insecure"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "serving env" in log.read_text(), timeout=60)
        with mvbridge.Env("v6", address=f"tcp://[::1]:{port}") as env:
            assert env.import_module("mvb_demo").add(6, 6) == 12
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()


def test_a_secret_key_given_as_server_key_is_refused(keys):
    env = mvbridge.Env(
        "confused",
        address="tcp://127.0.0.1:1",
        server_key=str(keys.server_secret),
        client_key=str(keys.client_secret),
    )
    with pytest.raises(mvbridge.ConfigError, match="the service's secret key"):
        env.start()
