"""Shared fixtures: venvs built once per run, envs on them, and leak guards."""

from __future__ import annotations

import os
import string
import sys
from pathlib import Path

import pytest

import mvbridge
from tests.helpers import Keys, Spawn, install_fixture_package, make_venv, require_python

FIXTURES = Path(__file__).parent / "fixtures"
HOST_MINOR = "%d.%d" % sys.version_info[:2]


def demo_source(version: str, greeting: str) -> str:
    template = string.Template((FIXTURES / "pkgs" / "mvb_demo.py.tmpl").read_text())
    return template.substitute(VERSION=version, GREETING=greeting)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the worker runtimes of this run apart from the user's cache, unless told otherwise."""
    if not os.environ.get("MVBRIDGE_CACHE_DIR"):
        os.environ["MVBRIDGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("venvs")


@pytest.fixture(scope="session")
def py_v1(venvs: Path) -> str:
    """A venv on the host's Python with nothing installed but mvb_demo 1.0."""
    interpreter = make_venv(venvs / "v1", sys.executable)
    install_fixture_package(interpreter, "mvb_demo", "1.0", demo_source("1.0", "Hello"))
    return interpreter


@pytest.fixture(scope="session")
def py_v2(venvs: Path) -> str:
    """A venv on CPython 3.8 with mvb_demo 2.0: another version and another Python."""
    interpreter = make_venv(venvs / "v2", require_python("3.8"))
    install_fixture_package(interpreter, "mvb_demo", "2.0", demo_source("2.0", "Howdy"))
    return interpreter


@pytest.fixture(scope="session")
def py_pinned(venvs: Path) -> str:
    """CPython 3.9 with msgpack 0.6.2 and cloudpickle 1.6.0 pinned by the user."""
    interpreter = make_venv(
        venvs / "pinned", require_python("3.9"), ["msgpack==0.6.2", "cloudpickle==1.6.0"]
    )
    install_fixture_package(interpreter, "mvb_demo", "1.0", demo_source("1.0", "Hello"))
    return interpreter


@pytest.fixture(scope="session")
def py_numpy1(venvs: Path) -> str:
    """The host's Python with numpy 1.x (the host has numpy 2.x), mvb_demo and mvb_arrays."""
    interpreter = make_venv(venvs / "numpy1", sys.executable, ["numpy<2"])
    install_fixture_package(interpreter, "mvb_demo", "1.0", demo_source("1.0", "Hello"))
    install_fixture_package(
        interpreter, "mvb_arrays", "1.0", (FIXTURES / "pkgs" / "mvb_arrays.py").read_text()
    )
    return interpreter


@pytest.fixture(scope="session")
def py_numpy2(venvs: Path) -> str:
    """The host's Python with the host's own numpy 2.x and the mvb_arrays fixture module."""
    import numpy

    interpreter = make_venv(venvs / "numpy2", sys.executable, [f"numpy=={numpy.__version__}"])
    install_fixture_package(
        interpreter, "mvb_arrays", "1.0", (FIXTURES / "pkgs" / "mvb_arrays.py").read_text()
    )
    return interpreter


@pytest.fixture(scope="session")
def py_numpy1_py38(venvs: Path) -> str:
    """CPython 3.8 with numpy 1.x and the mvb_arrays fixture module."""
    interpreter = make_venv(venvs / "numpy1-py38", require_python("3.8"), ["numpy<2"])
    install_fixture_package(
        interpreter, "mvb_arrays", "1.0", (FIXTURES / "pkgs" / "mvb_arrays.py").read_text()
    )
    return interpreter


@pytest.fixture(scope="session", params=["host-python", "3.8"])
def py_names(venvs: Path, request: pytest.FixtureRequest) -> str:
    """mvb_names 1.0 on the host's Python, then on CPython 3.8."""
    python = sys.executable if request.param == "host-python" else require_python("3.8")
    interpreter = make_venv(venvs / f"names-{request.param}", python)
    source = (FIXTURES / "pkgs" / "mvb_names.py").read_text()
    install_fixture_package(interpreter, "mvb_names", "1.0", source)
    return interpreter


@pytest.fixture(scope="session")
def py_pandas(venvs: Path) -> str:
    """The host's Python with pandas (the host has none), for probes by a real library."""
    return make_venv(venvs / "pandas", sys.executable, ["pandas==2.2.*"])


@pytest.fixture(scope="module")
def env_v1(py_v1: str):
    with mvbridge.Env("v1", interpreter=py_v1) as env:
        yield env


@pytest.fixture(scope="module")
def env_v2(py_v2: str):
    with mvbridge.Env("v2", interpreter=py_v2) as env:
        yield env


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """CurveZMQ keys: the server's, an allowed client's and a stranger's."""
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def service(py_v1: str, keys: Keys, tmp_path_factory: pytest.TempPathFactory):
    """A real `mvbridge spawn` of the v1 venv on a free loopback port, with CurveZMQ."""
    spawned = Spawn(py_v1, tmp_path_factory.mktemp("spawn"), keys)
    yield spawned
    assert spawned.stop() == 0, spawned.log


@pytest.fixture(scope="module", params=["v1", "v2", "service"])
def any_env(request: pytest.FixtureRequest):
    """The same test body on a local worker of the host's Python, one on CPython 3.8, and a
    `mvbridge spawn` service (TCP + CurveZMQ)."""
    if request.param == "service":
        spawned = request.getfixturevalue("service")
        keys = request.getfixturevalue("keys")
        env = mvbridge.Env("any-service", address=spawned.address, **keys.env_kwargs())
    else:
        interpreter = request.getfixturevalue("py_" + request.param)
        env = mvbridge.Env("any-" + request.param, interpreter=interpreter)
    with env:
        yield env


@pytest.fixture
def demo(any_env):
    return any_env.import_module("mvb_demo")


@pytest.fixture
def fresh_env(py_v1: str):
    """An env of its own, for tests that kill or stop its worker."""
    with mvbridge.Env("fresh", interpreter=py_v1) as env:
        yield env


@pytest.fixture(scope="session", autouse=True)
def _no_workers_left_behind():
    yield
    from mvbridge.bridge import env as env_module

    mvbridge.shutdown()
    left = [
        e.name
        for e in env_module._registry.envs()
        if e.current_session() is not None
        and e.current_session().process is not None
        and e.current_session().process.exit_code() is None
    ]
    assert not left, f"workers still running after shutdown: {left}"
    running = [spawned.address for spawned in Spawn.started if spawned.process.poll() is None]
    for spawned in Spawn.started:
        spawned.stop()
    assert not running, f"mvbridge spawn processes left running by tests: {running}"
