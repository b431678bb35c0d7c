"""Every example runs: scripts in examples/, and folders with an mvbridge.toml and an app.py."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

from tests.helpers import run_cli

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
PROJECTS = sorted(p.parent for p in EXAMPLES.glob("*/mvbridge.toml"))
EXPECTED = {
    "two_pandas": ["dep_a: pandas 2.2.0", "dep_b: pandas 2.0.3"],
    "pydantic_v1_v2": ["1.10."],
}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_example_script_runs(script):
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_example_project_syncs_and_runs(project, tmp_path):
    copy = tmp_path / project.name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".mvbridge", "mvbridge.lock"))
    synced = run_cli(["sync", "--no-stubs"], copy, timeout=540)
    assert synced.returncode == 0, synced.stderr
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for expected in EXPECTED.get(project.name, []):
        assert expected in done.stdout


@pytest.mark.timeout(600)
def test_demo_command_runs_from_anywhere(tmp_path):
    done = run_cli(["demo"], tmp_path, timeout=540)
    assert done.returncode == 0, done.stderr
    assert "dep_a: pandas 2.2.0, has Series.case_when: True" in done.stdout
    assert "dep_b: pandas 2.0.3, has Series.case_when: False" in done.stdout


# -- examples/service: a real spawn of its server side, and its deployment files ---------------
SERVICE = EXAMPLES / "service"


def _parses(argv: list[str]) -> None:
    """``argv`` (without the program name) is a valid mvbridge command line."""
    from mvbridge.cli import _parser

    args = _parser().parse_args(argv)
    assert hasattr(args, "run"), argv


@pytest.mark.timeout(300)
def test_service_example_client_runs_against_a_real_spawn(keys, tmp_path):
    from tests.helpers import Spawn

    copy = tmp_path / "service"
    shutil.copytree(SERVICE, copy, ignore=shutil.ignore_patterns(".mvbridge", "__pycache__"))
    client_keys = copy / "client" / "keys"
    client_keys.mkdir()
    (client_keys / "server.key").write_bytes(keys.server_public.read_bytes())
    (client_keys / "app.key_secret").write_bytes(keys.client_secret.read_bytes())
    spawned = Spawn(str(copy / "server" / "mvbridge.toml"), tmp_path, keys, env_name="legacy")
    try:
        config = copy / "client" / "mvbridge.toml"
        config.write_text(config.read_text().replace("tcp://127.0.0.1:7710", spawned.address))
        done = subprocess.run(
            [sys.executable, "app.py"],
            cwd=copy / "client",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr + spawned.log
        for expected in ("total: 10", "transform: [10, 20, 30]", "callback: done in the background",
                         "error crossed as TypeError"):  # fmt: skip
            assert expected in done.stdout
        assert f"served by pid {spawned.ping()['pids'][0]}" in done.stdout
    finally:
        assert spawned.stop() == 0, spawned.log


def test_systemd_unit_runs_existing_commands():
    lines = (SERVICE / "mvbridge-legacy.service").read_text().splitlines()
    commands = [line.split("=", 1)[1].split() for line in lines if line.startswith("Exec")]
    mvbridge_commands = [c for c in commands if c[0].endswith("/mvbridge")]
    assert len(mvbridge_commands) == 2  # sync, then spawn
    for command in mvbridge_commands:
        _parses(command[1:])
    grace = float(next(c for c in mvbridge_commands if c[1] == "spawn")[-3])
    stop = next(line for line in lines if line.startswith("TimeoutStopSec="))
    assert grace < float(stop.split("=")[1])  # systemd waits longer than the drain
    assert "KillMode=mixed" in lines


def test_dockerfile_command_is_a_valid_spawn():
    import json

    text = (SERVICE / "Dockerfile").read_text()
    cmd = next(line for line in text.splitlines() if line.startswith("CMD "))
    argv = json.loads(cmd[len("CMD ") :])
    assert argv[:2] == ["mvbridge", "spawn"]
    _parses(argv[1:])
    assert "EXPOSE 7710" in text
    root = EXAMPLES.parent  # the build context is the repository root
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (root / source).exists(), source
    ignored = (SERVICE / "Dockerfile.dockerignore").read_text()
    assert "**/keys" in ignored
    assert "**/*.key_secret" in ignored


def test_kubernetes_manifest_parses_and_uses_existing_flags():
    import yaml

    docs = list(yaml.safe_load_all((SERVICE / "kubernetes.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in docs}
    assert set(kinds) == {"Secret", "Deployment", "Service"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    _parses(container["args"][1:])
    probe = container["readinessProbe"]["exec"]["command"]
    assert probe[:2] == ["mvbridge", "ping"]
    _parses(probe[1:])
    secret_keys = set(kinds["Secret"]["stringData"])
    mounted = {item["key"] for volume in pod["volumes"] for item in volume["secret"]["items"]}
    assert mounted <= secret_keys
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    args = container["args"]
    assert args[args.index("--key") + 1].startswith(mounts["server-key"])
    assert args[args.index("--allow") + 1] == mounts["client-keys"]
    assert container["ports"][0]["containerPort"] == kinds["Service"]["spec"]["ports"][0]["port"]
