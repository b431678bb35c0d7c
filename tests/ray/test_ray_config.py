"""``backend = "ray"`` in mvbridge.toml: its keys read into the env's placement, and a
declared ray env's modules importable as ``from mvbridge import X``."""

from __future__ import annotations

import pytest

from mvbridge.config import RayPlacement, load_config
from tests.helpers import run_python, write_config

pytestmark = [pytest.mark.ray, pytest.mark.timeout(180)]


def test_ray_keys_are_read(tmp_path):
    path = write_config(
        tmp_path,
        '[envs.a]\nrequirements = ["six"]\nbackend = "ray"\nray_address = "auto"\n'
        "replicas = 3\nnum_cpus = 0.5\nresources = {gpu_node = 1}\ndetached = true\n",
    )
    spec = load_config(path).envs["a"]
    assert spec.backend == "ray"
    assert spec.ray == RayPlacement(
        address="auto", replicas=3, num_cpus=0.5, resources=(("gpu_node", 1.0),), detached=True
    )


def test_a_declared_ray_env_is_imported_from_mvbridge(cluster, tmp_path):
    import ray

    write_config(tmp_path, '[envs.placed]\nrequirements = ["mvb_demo==1.0"]\nbackend = "ray"\n')
    done = run_python(
        "from mvbridge import mvb_demo\n"
        "import mvbridge\n"
        "print(mvb_demo.greet('toml'), mvbridge.env('placed').info.address)\n",
        tmp_path,
        RAY_ADDRESS=ray.get_runtime_context().gcs_address,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    greeting, address = done.stdout.split("\n")[-2].rsplit(" ", 1)
    assert greeting == "Hello, toml"
    assert address.startswith("tcp://127.0.0.1:")
