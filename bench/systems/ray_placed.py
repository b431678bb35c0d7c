"""Ray rows: mvbridge's worker placed by Ray (``backend="ray"``), and a plain Ray actor method.

Both run only where Ray is installed in the bench's host venv (``bench/.venv-host/bin/pip
install "ray>=2.9"``); elsewhere they are n/a. They share one local Ray instance. The placed
worker serves the same bench functions as the other rows, from a wheel of them the Ray actor
installs into the env it builds (with numpy at the worker venv's version); calls go from this
process straight to that worker over TCP + CurveZMQ, as with ``mvbridge_spawn`` (its baseline
is the same: raw pyzmq with CURVE). The actor row is what Ray itself costs per call: a method
of an actor, ``ray.get(actor.f.remote(x))``, arrays through Ray's object store.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from .. import envs
from .base import SMALL_ARGS, Call, NotAvailable, System
from .mvbridge_local import MvbridgeLocal

OBJECT_STORE_BYTES = 1_500_000_000  # 100 MB arrays, both ways, a few in flight
_ray_lock = threading.Lock()
_ray_users = 0


def _ray_missing() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return f"Ray is not installed in {sys.prefix} (pip install 'ray>=2.9' there)"
    return None


def _ray_up() -> None:
    global _ray_users
    import ray

    with _ray_lock:
        if _ray_users == 0 and not ray.is_initialized():
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                object_store_memory=OBJECT_STORE_BYTES,
            )
        _ray_users += 1


def _ray_down() -> None:
    global _ray_users
    import ray

    with _ray_lock:
        _ray_users -= 1
        if _ray_users == 0:
            ray.shutdown()


def _bench_wheel(folder: Path) -> Path:
    """A wheel of the bench functions (``bench/workers/benchfuncs*.py``), for the placed env."""
    info = "mvb_benchfuncs-1.0.dist-info"
    files = {name: (envs.BENCH_DIR / "workers" / name).read_text() for name in envs.WORKER_FILES}
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: mvb-benchfuncs\nVersion: 1.0\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    wheel = folder / "mvb_benchfuncs-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


class MvbridgeRay(MvbridgeLocal):
    key = "mvbridge_ray"
    label = "mvbridge placed by Ray"
    notes = "Env(backend='ray'): local Ray, env built by the actor; calls over TCP + CurveZMQ"
    baseline = "zmq_curve"

    def __init__(self) -> None:
        super().__init__()
        self._dir = Path()

    def cannot_run(self) -> str | None:
        return _ray_missing() or super().cannot_run()

    def start(self) -> None:
        import mvbridge

        _ray_up()
        self._dir = Path(tempfile.mkdtemp(prefix="mvb-bench-ray-"))
        wheel = _bench_wheel(self._dir)
        self.use(mvbridge.Env("bench-ray", requirements=[str(wheel), envs.NUMPY], backend="ray"))

    def stop(self) -> None:
        if self.env is not None:
            self.env.shutdown()
            self.env = None
            _ray_down()
        if self._dir != Path():
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = Path()

    def cold_start(self, numpy: bool) -> float:
        raise NotAvailable("placed once; the env build and actor start are Ray's and uv's")

    def startup(self) -> tuple[float, float]:
        raise NotAvailable("measured for the local row")

    def import_time(self) -> float:
        raise NotAvailable("measured for the local row")

    def demo_sync(self) -> Any:
        raise NotAvailable("measured for the local row")


class _Echo:
    """The Ray actor of the ``ray_actor`` row."""

    def noop(self) -> None:
        return None

    def echo(self, value: Any) -> Any:
        return value

    def echo_args(self, *args: Any) -> tuple[Any, ...]:
        return args


class RayActor(System):
    key = "ray_actor"
    label = "Ray actor method"
    notes = "ray.get(actor.f.remote(x)) on a local Ray; arrays through its object store"

    def __init__(self) -> None:
        self.actor: Any = None

    def cannot_run(self) -> str | None:
        return _ray_missing()

    def start(self) -> None:
        import ray
        import ray.cloudpickle

        _ray_up()
        # By value: Ray's workers need not import the bench package.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        self.actor = ray.remote(_Echo).remote()
        ray.get(self.actor.noop.remote(), timeout=60)

    def stop(self) -> None:
        if self.actor is not None:
            import ray

            ray.kill(self.actor)
            self.actor = None
            _ray_down()

    def _call(self, method: str, *args: Any) -> Call:
        import ray

        remote = getattr(self.actor, method).remote
        return lambda: ray.get(remote(*args))

    def noop(self) -> Call:
        return self._call("noop")

    def small_args(self) -> Call:
        return self._call("echo_args", *SMALL_ARGS)

    def echo_bytes(self, payload: bytes) -> Call:
        return self._call("echo", payload)

    def echo_array(self, array: Any) -> Call:
        return self._call("echo", array)

    def thread_caller(self) -> Call:
        return self.noop()
