"""A real 2-node Ray cluster on loopback, and envs built offline from downloaded wheels.

These tests run only through ``python tests/ray/run.py``, which makes the loopback-only
network namespace and downloads the packages first; run any other way they fail and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import demo_source
from tests.helpers import build_wheel

HOW = "run them with `python tests/ray/run.py` (a loopback-only network namespace)"


def _loopback_only() -> bool:
    import socket

    # Not /sys/class/net: sysfs shows the namespace it was mounted in, not ours.
    return [name for _, name in socket.if_nameindex()] == ["lo"]


@pytest.fixture(scope="session")
def wheels() -> Path:
    """The folder of wheels the envs install from, with the mvb_demo 1.0 fixture added."""
    folder = os.environ.get("MVBRIDGE_TEST_WHEELS")
    if not folder or not _loopback_only():
        pytest.fail(f"the ray tests need a network of their own and downloaded wheels: {HOW}")
    build_wheel(
        Path(folder), "mvb_demo", "1.0", {"mvb_demo/__init__.py": demo_source("1.0", "Hello")}
    )
    return Path(folder)


@pytest.fixture(scope="session")
def offline(wheels: Path, tmp_path_factory: pytest.TempPathFactory):
    """Installers that can use only ``wheels`` (a fresh uv cache, no index), as a cluster
    without an index would be set up; the nodes inherit it."""
    settings = {
        "UV_OFFLINE": "1",
        "UV_FIND_LINKS": str(wheels),
        "UV_CACHE_DIR": str(tmp_path_factory.mktemp("uv-cache")),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheels),
        "RAY_USAGE_STATS_ENABLED": "0",
        # Ray's own cleanup of an actor's child processes off: the service must go because
        # the pipe it watches closed, which is what happens where Ray cannot clean up.
        "RAY_kill_child_processes_on_worker_exit": "false",
        "RAY_kill_child_processes_on_worker_exit_with_raylet_subreaper": "false",
    }
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


class TwoNodes:
    """A head node and node ``b`` (custom resource ``b``), ``ray.init`` connected to them."""

    def __init__(self, tmp: Path) -> None:
        import ray
        from ray.cluster_utils import Cluster

        self.tmp = tmp
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 2, "resources": {"head": 1}, **self._own_cache("head")},
        )
        self.b = self.add("b")
        ray.init(address=self.cluster.address, log_to_driver=False)

    def _own_cache(self, node: str) -> dict:
        # Each node has a cache of its own, as machines do: an env moved to another node is
        # built there anew.
        return {"env_vars": {"MVBRIDGE_CACHE_DIR": str(self.tmp / f"cache-{node}")}}

    def add(self, name: str):
        node = self.cluster.add_node(num_cpus=2, resources={"b": 1}, **self._own_cache(name))
        self.cluster.wait_for_nodes()
        return node

    def shutdown(self) -> None:
        import ray

        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="session")
def cluster(offline, tmp_path_factory: pytest.TempPathFactory):
    nodes = TwoNodes(tmp_path_factory.mktemp("ray"))
    yield nodes
    nodes.shutdown()
