"""`mvbridge keygen`, and what a worker refuses to listen on."""

from __future__ import annotations

import stat
import subprocess
import sys

import zmq.auth

from tests.helpers import run_cli


def test_keygen_writes_a_zmq_auth_key_pair_with_a_private_secret(tmp_path):
    done = run_cli(["keygen", "app", "--dir", str(tmp_path / "keys")], tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    public, secret = tmp_path / "keys" / "app.key", tmp_path / "keys" / "app.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert zmq.auth.load_certificate(public)[1] is None  # the public file holds no secret
    pub, sec = zmq.auth.load_certificate(secret)
    assert pub == zmq.auth.load_certificate(public)[0]
    assert zmq.curve_public(sec) == pub


def test_keygen_keeps_an_existing_pair_unless_forced(tmp_path):
    assert run_cli(["keygen", "app"], tmp_path, timeout=60).returncode == 0
    first = (tmp_path / "app.key").read_bytes()
    again = run_cli(["keygen", "app"], tmp_path, timeout=60)
    assert again.returncode == 1
    assert "--force" in again.stderr
    assert (tmp_path / "app.key").read_bytes() == first
    assert run_cli(["keygen", "app", "--force"], tmp_path, timeout=60).returncode == 0
    assert (tmp_path / "app.key").read_bytes() != first


def test_a_worker_refuses_to_listen_on_tcp(py_v1, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mvbridge.workers", "--control", "tcp://127.0.0.1:7799",
         "--channels", f"ipc://{tmp_path}/ch"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "not an ipc:// endpoint" in done.stderr
    assert "mvbridge spawn" in done.stderr
