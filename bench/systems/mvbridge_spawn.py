"""mvbridge through a ``mvbridge spawn`` service: TCP loopback with CurveZMQ, as users run it.

The service serves the same worker venv as the local row (``--interpreter``); the host uses
``mvbridge.Env(address=..., server_key=..., client_key=...)``. Its ratios are taken against raw
pyzmq over TCP with CURVE in the same round (``zmq_curve``), not the ipc baseline.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import envs
from .base import Call, NotAvailable
from .mvbridge_local import MvbridgeLocal

READY_TIMEOUT = 60.0
POOL_BURN = 200_000  # benchfuncs.burn's loop: a few ms of pure Python per call
POOL_JOIN_SLACK = 60.0


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class MvbridgeSpawn(MvbridgeLocal):
    key = "mvbridge_spawn"
    label = "mvbridge via spawn (service)"
    notes = (
        "mvbridge spawn --workers 1, TCP loopback + CurveZMQ; Env(address=...); arrays in frames"
    )
    baseline = "zmq_curve"

    def __init__(self) -> None:
        super().__init__()
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = Path()
        self.address = ""
        self._clients: dict[int, int] = {}  # caller id -> its client group
        self._groups: dict[int, Any] = {}  # client group -> its Env
        self._callers = 0
        self._clients_lock = threading.Lock()

    def start(self) -> None:
        import mvbridge

        self._dir = Path(tempfile.mkdtemp(prefix="mvb-bench-spawn-"))
        self._make_keys()
        self.process, self.address = self._launch(workers=1, log_name="spawn.log")
        self.env = mvbridge.Env("bench-spawn", address=self.address, **self._keys())
        self.env.start()
        self.funcs = self.env.import_module("benchfuncs")
        self.funcs_np = self.env.import_module("benchfuncs_np")

    def _make_keys(self) -> None:
        from mvbridge.bridge.keys import generate

        server_public, self._server_secret = generate("server", self._dir)
        client_public, self._client_secret = generate("client", self._dir / "clients")
        self._allow = self._dir / "allow"
        self._allow.mkdir()
        (self._allow / "client.key").write_bytes(client_public.read_bytes())
        self._server_public = server_public

    def _launch(self, workers: int, log_name: str) -> tuple[subprocess.Popen[bytes], str]:
        """A ``mvbridge spawn`` of the bench env with ``workers`` workers, once it answers."""
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        address = f"tcp://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "mvbridge", "spawn", "--env", "bench",
            "--interpreter", str(envs.WORKER_PYTHON), "--address", address,
            "--key", str(self._server_secret), "--allow", str(self._allow),
            "--log-level", "warning", "--workers", str(workers),
        ]  # fmt: skip
        log = open(self._dir / log_name, "wb")  # noqa: SIM115 - the process owns it
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready(process, address, self._dir / log_name)
        return process, address

    def _keys(self) -> dict[str, str]:
        return {"server_key": str(self._server_public), "client_key": str(self._client_secret)}

    def _wait_ready(self, process: subprocess.Popen[bytes], address: str, log: Path) -> None:
        from mvbridge.bridge.keys import client_keys
        from mvbridge.errors import MVBridgeError
        from mvbridge.service.ping import ping

        keys = client_keys(self._server_public, self._client_secret)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                text = log.read_text(errors="replace")
                raise RuntimeError(f"mvbridge spawn exited: {text[-2000:]}")
            try:
                ping(address, keys, 1.0)
                return
            except MVBridgeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.env is not None:
            self.env.shutdown()
            self.env = None
        if self.process is not None:
            _terminate(self.process)
            self.process = None
        if self._dir != Path():
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = Path()

    def client_caller(self) -> Call:
        # Threads come in fours per client: one Env (one connection) each four callers, whose
        # threads get a channel each over it, as an application's threads would.
        import mvbridge

        from ..measures import CLIENT_THREADS

        with self._clients_lock:
            index = self._callers
            self._callers += 1
            group = index // CLIENT_THREADS
            env = self._groups.get(group)
            if env is None:
                env = self._groups[group] = mvbridge.Env(
                    f"bench-client-{group}", address=self.address, **self._keys()
                )
        module = env.import_module("benchfuncs")

        def noop() -> Any:
            return module.noop()

        self._clients[id(noop)] = group
        return noop

    def close_client_caller(self, caller: Call) -> None:
        with self._clients_lock:
            group = self._clients.pop(id(caller), None)
            if group is None or group in self._clients.values():
                return
            env = self._groups.pop(group, None)
        if env is not None:
            env.shutdown()

    def pool_rate(self, workers: int, seconds: float) -> float:
        """Aggregate calls/s of CPU-bound calls (``benchfuncs.burn``) from ``2 * workers``
        clients, each a session of its own, through a service of ``workers`` workers."""
        import mvbridge

        process, address = self._launch(workers, f"pool-{workers}.log")
        clients = [
            mvbridge.Env(f"bench-pool-{workers}-{i}", address=address, **self._keys())
            for i in range(2 * workers)
        ]
        try:
            burns = [env.import_module("benchfuncs").burn for env in clients]
            for burn in burns:  # every session is open before the clock starts
                burn(1)
            counts = [0] * len(burns)
            start = threading.Barrier(len(burns) + 1)
            stop_at: list[float] = []

            def run(index: int) -> None:
                burn = burns[index]
                start.wait()
                while time.perf_counter() < stop_at[0]:
                    burn(POOL_BURN)
                    counts[index] += 1

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(burns))]
            for thread in threads:
                thread.start()
            began = time.perf_counter()
            stop_at.append(began + seconds)
            start.wait()
            for thread in threads:
                thread.join(seconds + POOL_JOIN_SLACK)
                if thread.is_alive():
                    raise RuntimeError("a pool client did not finish its calls")
            return sum(counts) / (time.perf_counter() - began)
        finally:
            for env in clients:
                env.shutdown()
            _terminate(process)

    def cold_start(self, numpy: bool) -> float:
        raise NotAvailable("a service starts once; its clients connect (see the service rows)")

    def import_time(self) -> float:
        raise NotAvailable("measured for the local row")

    def demo_sync(self) -> Any:
        raise NotAvailable("measured for the local row")
