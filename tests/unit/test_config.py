"""mvbridge.toml / [tool.mvbridge]: found upwards, parsed strictly, errors that say where."""

from __future__ import annotations

import re
import sys

import pytest

import mvbridge
from mvbridge.config import find_config, load_config
from mvbridge.errors import ConfigError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch):
    monkeypatch.delenv("MVBRIDGE_CONFIG", raising=False)


def test_found_from_a_subfolder_and_local_paths_made_absolute(tmp_path, monkeypatch):
    write(tmp_path / "mvbridge.toml", '[envs.a]\nrequirements = ["./src/a", "six==1.16.0"]\n')
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    config = load_config()
    assert config.path == (tmp_path / "mvbridge.toml").resolve()
    assert config.envs["a"].requirements == (str((tmp_path / "src" / "a").resolve()), "six==1.16.0")
    assert config.state_dir == tmp_path.resolve() / ".mvbridge"


def test_pyproject_tool_table_is_used(tmp_path):
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n[tool.mvbridge.envs.b]\nrequirements = ["six"]\npython = "3.9"\n',
    )
    config = load_config(find_config(tmp_path))
    assert config.envs["b"].python == "3.9"


def test_pyproject_without_the_table_is_skipped(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    found = find_config(tmp_path)
    assert found is None or found.parent != tmp_path


def test_relative_python_path_is_relative_to_the_config(tmp_path, monkeypatch):
    write(
        tmp_path / "mvbridge.toml", '[envs.a]\nrequirements = ["six"]\npython = "./py/bin/python"\n'
    )
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(tmp_path / "mvbridge.toml")
    assert config.envs["a"].python == str((tmp_path / "py" / "bin" / "python").resolve())


def test_env_variable_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path / "elsewhere.toml", '[envs.c]\nrequirements = ["six"]\n')
    monkeypatch.setenv("MVBRIDGE_CONFIG", str(path))
    assert set(load_config().envs) == {"c"}
    monkeypatch.setenv("MVBRIDGE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="MVBRIDGE_CONFIG"):
        load_config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[envs.a\n", "not valid TOML"),
        ("[other]\n", "unknown key"),
        ('[envs.a]\nrequirements = "six"\n', "'requirements' must be a list of strings"),
        ("[envs.a]\n", "give either 'requirements'"),
        (
            '[envs.a]\nrequirements = ["six"]\npyhton = "3.9"\n',
            r"unknown key\(s\) \['pyhton'\]; valid keys",
        ),
        ('[envs.a]\nrequirements = ["six"]\npython = 3.9\n', "'python' must be a version"),
        (
            '[envs.a]\nrequirements = ["six"]\nmodules = ["not-an-identifier"]\n',
            "'modules' must be a list of top-level import names",
        ),
        ('[envs.a]\naddress = "localhost"\n', "'address' must look like"),
        (
            '[envs.a]\nrequirements = ["six"]\ncall_timeout = -1\n',
            "'call_timeout' must be a positive",
        ),
        ('[envs."bad name"]\nrequirements = ["six"]\n', "names use letters"),
        ('[envs.a]\nrequirements = ["six"]\npython = "3.7"\n', "need Python 3.8 or newer"),
        ('[envs.a]\nrequirements = ["six"]\npython = "3.9.18"\n', "major.minor only"),
        ('[envs.a]\nrequirements = ["six"]\nmodules = ["a.b"]\n', "top-level import names"),
        ('[envs.a]\nrequirements = ["six"]\naddress = "tcp://127.0.0.1:5555"\n', "not both"),
    ],
)
def test_invalid_config_names_file_env_and_key(tmp_path, text, message):
    path = write(tmp_path / "mvbridge.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_service_env_keys_are_made_absolute_and_timeouts_read(tmp_path):
    write(
        tmp_path / "mvbridge.toml",
        '[envs.svc]\naddress = "tcp://10.0.0.7:7710"\nserver_key = "keys/server.key"\n'
        'client_key = "../app.key_secret"\nconnect_timeout = 3\nheartbeat_timeout = 2.5\n',
    )
    spec = load_config(tmp_path / "mvbridge.toml").envs["svc"]
    assert spec.address == "tcp://10.0.0.7:7710"
    assert spec.server_key == str((tmp_path / "keys" / "server.key").resolve())
    assert spec.client_key == str((tmp_path.parent / "app.key_secret").resolve())
    assert (spec.connect_timeout, spec.heartbeat_timeout) == (3.0, 2.5)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('address = "10.0.0.7:7710"', "must look like"),
        ('address = "tcp://host"', "must look like"),
        ('address = "ipc:///tmp/x"', "must look like"),
        ('requirements = ["six"]\nserver_key = "k"', "apply only to an env with an 'address'"),
        ('address = "tcp://h:1"\nheartbeat_timeout = 0', "'heartbeat_timeout' must be a positive"),
        ('address = "tcp://h:1"\nclient_key = ""', "'client_key' must be the path of a key file"),
    ],
)
def test_service_env_mistakes_are_refused(tmp_path, table, message):
    write(tmp_path / "mvbridge.toml", f"[envs.svc]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "mvbridge.toml")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('requirements = ["six"]\nbackend = "slurm"', "'backend' must be one of 'local', 'ray'"),
        ('requirements = ["six"]\nreplicas = 2', 'apply only with backend = "ray"'),
        ('address = "tcp://h:1"\nbackend = "ray"', "choose one"),
        ('requirements = ["six"]\nbackend = "ray"\nreplicas = 0', "'replicas' must be a whole"),
        ('requirements = ["six"]\nbackend = "ray"\nnum_cpus = -1', "'num_cpus' must be a number"),
        ('requirements = ["six"]\nbackend = "ray"\nresources = {a = 0}', "'resources' must be"),
        ('requirements = ["six"]\nbackend = "ray"\ndetached = 1', "'detached' must be true"),
    ],
)
def test_ray_env_mistakes_are_refused(tmp_path, table, message):
    write(tmp_path / "mvbridge.toml", f"[envs.a]\n{table}\n")
    with pytest.raises(ConfigError, match=f"env 'a'.*{message}"):
        load_config(tmp_path / "mvbridge.toml")


def test_ray_env_without_ray_installed_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: find_spec says None
    write(tmp_path / "mvbridge.toml", '[envs.a]\nrequirements = ["six"]\nbackend = "ray"\n')
    with pytest.raises(ConfigError, match=re.escape('pip install "mvbridge[ray]"')):
        load_config(tmp_path / "mvbridge.toml")
    with pytest.raises(ConfigError, match=re.escape('pip install "mvbridge[ray]"')):
        mvbridge.Env("a", requirements=["six"], backend="ray")


def test_ray_options_without_backend_ray_are_refused():
    with pytest.raises(ConfigError, match='apply only with backend="ray"'):
        mvbridge.Env("a", requirements=["six"], replicas=2)
    with pytest.raises(ConfigError, match="from requirements"):
        mvbridge.Env("a", interpreter=sys.executable, backend="ray")


def test_importing_mvbridge_does_not_import_ray(tmp_path):
    from tests.helpers import run_python

    done = run_python(
        "import sys, mvbridge; mvbridge.Env; import mvbridge.bridge.env; "
        "print('ray' in sys.modules)",
        tmp_path,
    )
    assert done.stdout.strip() == "False", done.stderr
