"""Crashes, restarts, deadlines, shutdown, output forwarding and orphans."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import mvbridge
from tests.helpers import wait_until


def test_sigkill_mid_call_raises_worker_died_within_a_second(fresh_env, tmp_path):
    demo = fresh_env.import_module("mvb_demo")
    pid = fresh_env.info.pid
    started = tmp_path / "started"
    errors = []
    done = threading.Event()

    def call():
        try:
            demo.sleep_forever(str(started))
        except BaseException as exc:
            errors.append((exc, time.monotonic()))
        done.set()

    thread = threading.Thread(target=call)
    thread.start()
    wait_until(started.exists)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    assert done.wait(5)
    thread.join(5)
    exc, at = errors[0]
    assert isinstance(exc, mvbridge.WorkerDiedError)
    assert at - killed_at < 1.0
    assert "SIGKILL" in str(exc)
    assert "1 call in flight" in str(exc)


def test_next_use_restarts_and_module_proxies_follow(fresh_env):
    demo = fresh_env.import_module("mvb_demo")
    counter = demo.make_counter(1)
    first_pid = demo.pid()
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: fresh_env.current_session().process.exit_code() is not None)
    assert fresh_env.state is mvbridge.EnvState.DIED
    assert demo.pid() != first_pid  # the module proxy imported mvb_demo in the new worker
    assert fresh_env.state is mvbridge.EnvState.RUNNING
    assert fresh_env.statistics().restarts == 1
    with pytest.raises(mvbridge.StaleReferenceError):
        counter.increment()
    assert "stale" in repr(counter)


def test_from_import_of_a_function_survives_restart(fresh_env):
    pid_fn = fresh_env.import_module("mvb_demo").pid
    first = pid_fn()
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: fresh_env.current_session().process.exit_code() is not None)
    assert pid_fn() != first


def test_worker_exit_during_call_is_reported(fresh_env):
    demo = fresh_env.import_module("mvb_demo")
    with pytest.raises(mvbridge.WorkerDiedError, match="exited with code 5"):
        demo.exit_code(5)


def test_deadline_per_call_raises_call_timeout(fresh_env):
    demo = fresh_env.import_module("mvb_demo")
    started = time.monotonic()
    with pytest.raises(mvbridge.CallTimeoutError), mvbridge.deadline(0.3):
        demo.sleep(5)
    assert time.monotonic() - started < 2.0
    assert demo.add(1, 1) == 2  # a new channel; the late reply is never mistaken for this one


def test_deadline_per_env(py_v1):
    with mvbridge.Env("deadline", interpreter=py_v1, call_timeout=0.3) as env:
        demo = env.import_module("mvb_demo")
        with pytest.raises(TimeoutError):
            demo.sleep(5)
        assert demo.sleep(0) == 0


def test_shutdown_with_calls_in_flight_does_not_hang(fresh_env, tmp_path):
    demo = fresh_env.import_module("mvb_demo")
    started = tmp_path / "started"
    errors = []

    def call():
        try:
            demo.sleep_forever(str(started))
        except mvbridge.MVBridgeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    wait_until(started.exists)
    began = time.monotonic()
    fresh_env.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    assert time.monotonic() - began < 8
    assert isinstance(errors[0], mvbridge.WorkerDiedError)
    assert fresh_env.state is mvbridge.EnvState.STOPPED
    assert demo.add(2, 2) == 4  # used again: a new worker


def test_worker_output_reaches_host_streams(fresh_env, monkeypatch):
    # Plain buffers read with getvalue(): capfd.readouterr() truncates its file and can drop
    # what the forwarding thread writes while it reads.
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    demo = fresh_env.import_module("mvb_demo")
    assert demo.speak("hi") == 2
    wait_until(lambda: "out:hi" in out.getvalue() and "err:hi" in err.getvalue())
    assert "err:hi" not in out.getvalue()
    assert "out:hi" not in err.getvalue()


def run_host_script(source: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_interpreter_exit_stops_workers(py_v1):
    done = run_host_script(
        f"""
        import mvbridge, threading
        env = mvbridge.Env("exit", interpreter={py_v1!r})
        demo = env.import_module("mvb_demo")
        print(demo.pid(), flush=True)
        # a non-daemon thread stuck in a call must not keep the interpreter alive
        threading.Thread(target=demo.sleep, args=(600,)).start()
        """
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    wait_until(lambda: not _alive(pid), timeout=5)


def test_host_killed_by_sigkill_leaves_no_worker(py_v1):
    script = f"""
        import mvbridge, os, sys, time
        env = mvbridge.Env("orphan", interpreter={py_v1!r})
        print(env.import_module("mvb_demo").pid(), os.path.dirname(env.info.address[6:]), flush=True)
        time.sleep(600)
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.getcwd()
    host = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = host.stdout.readline()
        worker_pid, socket_dir = line.split()
        worker_pid = int(worker_pid)
        assert _alive(worker_pid)
        assert os.path.isdir(socket_dir)
        host.kill()
        host.wait(10)
        wait_until(lambda: not _alive(worker_pid), timeout=5)
        assert not os.path.exists(socket_dir)  # the orphaned worker removed the host's sockets
    finally:
        host.kill()
        host.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_protocol_mismatch_is_refused_at_start_with_what_differs(py_v1, monkeypatch):
    from mvbridge.core import protocol

    monkeypatch.setattr(protocol, "PROTOCOL_VERSION", 99)
    env = mvbridge.Env("mismatch", interpreter=py_v1)
    with pytest.raises(mvbridge.WorkerStartError, match="host speaks protocol 99"):
        env.start()


def test_interpreter_that_does_not_run_is_a_start_error(tmp_path):
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(mvbridge.WorkerStartError, match="does not run"):
        mvbridge.Env("broken", interpreter=str(broken)).start()


def test_malformed_control_messages_do_not_kill_the_worker(fresh_env):
    import zmq

    from mvbridge.bridge.client import context
    from mvbridge.core import protocol

    demo = fresh_env.import_module("mvb_demo")
    pid = demo.pid()
    socket = context().socket(zmq.DEALER)
    socket.connect(fresh_env.info.address)
    try:
        for frames in ([b"\xc1 not msgpack"], [b"a", b"b", b"c"], [protocol.pack([1, 2])]):
            socket.send_multipart(frames)
            assert socket.poll(5000), "the worker did not answer a malformed message"
            kind, _, reason = protocol.unpack(socket.recv())
            assert kind == protocol.FAIL
            assert reason
    finally:
        socket.close(linger=0)
    assert demo.pid() == pid
    assert demo.add(1, 2) == 3
