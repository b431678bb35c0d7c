"""Building envs: reuse, rebuild on change, failures, concurrency, discovery, imports."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from mvbridge.bridge.envs import ensure_env, read_record
from mvbridge.config import EnvSpec
from mvbridge.errors import EnvBuildError
from tests.helpers import (
    build_wheel,
    own_site_dirs,
    require_python,
    run_cli,
    run_python,
    write_config,
)

pytestmark = pytest.mark.timeout(300)

THING_V1 = "def version():\n    return 'thing 1'\n\ndef add(a, b=1):\n    return a + b\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheels")
    return {
        "thing1": build_wheel(
            folder / "1", "mvb-thing", "1.0", {"mvb_thing/__init__.py": THING_V1}
        ),
        "thing2": build_wheel(
            folder / "2",
            "mvb-thing",
            "2.0",
            {"mvb_thing/__init__.py": "def version():\n    return 'thing 2'\n"},
        ),
        "odd": build_wheel(
            folder / "odd",
            "Odd-Name-Dist",
            "0.1",
            {"oddmod/__init__.py": "X = 1\n", "oddmod/sub.py": "def where():\n    return 'sub'\n"},
        ),
        "clash": build_wheel(
            folder / "clash", "mvb-clash", "0.1", {"config/__init__.py": "X = 1\n"}
        ),
    }


def test_build_reuse_and_rebuild_on_change(tmp_path, wheels):
    location = tmp_path / "env"
    spec = EnvSpec("e", requirements=(str(wheels["thing1"]),))
    first = ensure_env(spec, location)
    assert first.modules == ["mvb_thing"]
    assert first.distributions["mvb-thing"] == "1.0"
    again = ensure_env(spec, location)
    assert again == first  # nothing rebuilt: the same record, build time included
    changed = EnvSpec("e", requirements=(str(wheels["thing2"]),))
    rebuilt = ensure_env(changed, location)
    assert rebuilt.spec_hash != first.spec_hash
    assert rebuilt.distributions["mvb-thing"] == "2.0"


@pytest.mark.parametrize("no_bytecode", ["1", ""])
def test_an_env_gets_bytecode_where_workers_cannot_write_it(
    tmp_path, wheels, monkeypatch, no_bytecode
):
    # Workers inherit PYTHONDONTWRITEBYTECODE and uv writes none: the build imports the exposed
    # modules once with writes allowed. Without the variable, imports write it themselves.
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", no_bytecode)
    record = ensure_env(
        EnvSpec("compiled", requirements=(str(wheels["thing1"]),)), tmp_path / "env"
    )
    cached = list((tmp_path / "env").rglob("mvb_thing/__pycache__/__init__.*.pyc"))
    assert bool(cached) == bool(no_bytecode), cached
    assert record.modules == ["mvb_thing"]


def test_failed_build_leaves_nothing_and_a_retry_succeeds(tmp_path, wheels):
    location = tmp_path / "env"
    bad = EnvSpec("broken", requirements=("mvb-surely-not-a-real-package==9.9.9",))
    with pytest.raises(EnvBuildError) as info:
        ensure_env(bad, location)
    message = str(info.value)
    assert "env 'broken'" in message
    assert "mvb-surely-not-a-real-package" in message  # the installer's own explanation
    assert info.value.env == "broken"
    assert not location.exists()
    assert [p.name for p in tmp_path.iterdir() if "build" in p.name] == []
    good = EnvSpec("broken", requirements=(str(wheels["thing1"]),))
    assert ensure_env(good, location).modules == ["mvb_thing"]


def test_pip_installer_builds_the_same_env(tmp_path, wheels):
    record = ensure_env(
        EnvSpec("viapip", requirements=(str(wheels["thing1"]),)), tmp_path / "env", installer="pip"
    )
    assert record.installer == "pip"
    assert record.modules == ["mvb_thing"]


def test_discovery_uses_metadata_not_the_distribution_name(tmp_path, wheels):
    spec = EnvSpec("odd", requirements=(str(wheels["odd"]), "PyYAML"))
    record = ensure_env(spec, tmp_path / "env")
    assert record.modules == ["oddmod", "yaml"]  # not "odd_name_dist" nor "pyyaml"


@pytest.mark.parametrize("installer", ["uv", "pip"])
@pytest.mark.parametrize("minor", ["3.8", "3.9"])
def test_env_on_another_python_minor_version(tmp_path, wheels, installer, minor):
    require_python(minor)
    write_config(
        tmp_path, f'[envs.old]\nrequirements = ["{wheels["thing1"]}"]\npython = "{minor}"\n'
    )
    done = run_cli(["sync", "--no-stubs"], tmp_path, MVBRIDGE_INSTALLER=installer)
    assert done.returncode == 0, done.stderr
    code = "from mvbridge import mvb_thing\nimport mvbridge\nprint(mvb_thing.add(2), mvbridge.env('old').info.python)"
    ran = run_python(code, tmp_path)
    assert ran.returncode == 0, ran.stderr
    result, python = ran.stdout.split()
    assert result == "3"
    assert python.startswith(minor + ".")
    assert f"with {installer}" in done.stderr


def test_two_processes_syncing_one_env_build_it_once(tmp_path, wheels):
    write_config(tmp_path, f'[envs.shared]\nrequirements = ["{wheels["thing1"]}", "six"]\n')
    command = [sys.executable, "-m", "mvbridge", "sync", "--no-stubs"]
    procs = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    creations = sum(err.count("creating a Python") for _, err in outputs)
    assert creations == 1
    assert read_record(tmp_path / ".mvbridge" / "envs" / "shared") is not None


def test_imports_of_modules_and_submodules(tmp_path, wheels):
    write_config(tmp_path, f'[envs.odd]\nrequirements = ["{wheels["odd"]}"]\n')
    code = (
        "import sys\n"
        "from mvbridge import oddmod\n"
        "import mvbridge.oddmod.sub\n"
        "print(oddmod.X, mvbridge.oddmod.sub.where(), 'oddmod' in sys.modules)\n"
    )
    ran = run_python(code, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["1", "sub", "False"]  # the host never imported oddmod
    assert "env 'odd': creating" in ran.stderr  # built on first use, with progress


def test_module_exposed_by_two_envs_is_an_import_error_naming_both(tmp_path, wheels):
    write_config(
        tmp_path,
        f'[envs.one]\nrequirements = ["{wheels["thing1"]}"]\n'
        f'[envs.two]\nrequirements = ["{wheels["thing2"]}"]\n',
    )
    assert run_cli(["sync", "--no-stubs"], tmp_path).returncode == 0
    ran = run_python("from mvbridge import mvb_thing", tmp_path)
    assert "ImportError" in ran.stderr
    assert "one, two" in ran.stderr
    assert "mvbridge.env('one').import_module('mvb_thing')" in ran.stderr
    explicit = run_python(
        "import mvbridge\nprint(mvbridge.env('two').import_module('mvb_thing').version())", tmp_path
    )
    assert explicit.stdout.strip() == "thing 2", explicit.stderr


def test_unknown_module_is_module_not_found_with_the_envs_listed(tmp_path, wheels):
    write_config(tmp_path, f'[envs.one]\nrequirements = ["{wheels["thing1"]}"]\n')
    ran = run_python("from mvbridge import nothing_like_this", tmp_path)
    assert "ModuleNotFoundError" in ran.stderr
    assert "one: mvb_thing" in ran.stderr
    probe = run_python("import mvbridge\nprint(hasattr(mvbridge, 'nothing_like_this'))", tmp_path)
    assert probe.stdout.strip() == "False", probe.stderr


def test_console_script_and_python_agree_on_the_env(tmp_path, wheels):
    script = shutil.which("mvbridge")
    if script is None:
        pytest.skip("the mvbridge console script is not on PATH")
    write_config(tmp_path, f'[envs.one]\nrequirements = ["{wheels["thing1"]}"]\n')
    done = subprocess.run(
        [script, "sync", "--no-stubs"], cwd=tmp_path, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr
    ran = run_python("from mvbridge import mvb_thing\nprint(mvb_thing.version())", tmp_path)
    assert ran.stdout.strip() == "thing 1", ran.stderr
    assert "creating" not in ran.stderr  # the env synced by the script is the one imports use


def test_name_clashing_with_mvbridge_is_reported_at_sync(tmp_path, wheels):
    write_config(tmp_path, f'[envs.c]\nrequirements = ["{wheels["clash"]}"]\n')
    done = run_cli(["sync", "--no-stubs"], tmp_path)
    assert done.returncode == 1
    assert "clashes with mvbridge's own 'mvbridge.config'" in done.stderr


def test_adhoc_env_from_requirements_is_built_in_the_cache(wheels):
    import mvbridge

    with mvbridge.Env("adhoc", requirements=[str(wheels["thing2"])]) as env:
        assert env.import_module("mvb_thing").version() == "thing 2"
        assert env.record is not None
        assert str(env.location).startswith(str(mvbridge.bridge.runtime.cache_dir()))


def test_locked_sync_installs_exactly_the_locked_versions(tmp_path):
    write_config(tmp_path, '[envs.pinned]\nrequirements = ["six"]\n')
    assert run_cli(["sync", "--no-stubs"], tmp_path).returncode == 0
    lock = tmp_path / "mvbridge.lock"
    text = lock.read_text()
    assert "six = " in text
    # Pin an older release by hand: --locked must install exactly what the lock says.
    lines = [
        line if not line.startswith("six = ") else 'six = "1.15.0"' for line in text.splitlines()
    ]
    lock.write_text("\n".join(lines) + "\n")
    done = run_cli(["sync", "--locked", "--no-stubs"], tmp_path)
    assert done.returncode == 0, done.stderr
    record = read_record(tmp_path / ".mvbridge" / "envs" / "pinned")
    assert record.distributions["six"] == "1.15.0"
    assert lock.read_text().count('six = "1.15.0"') == 1  # --locked never rewrites the lock
    # An import afterwards uses the locked env as it is: no rebuild without the pins.
    ran = run_python(
        "import mvbridge\nprint(mvbridge.env('pinned').import_module('six').__version__)", tmp_path
    )
    assert ran.stdout.strip() == "1.15.0", ran.stderr
    assert "creating" not in ran.stderr
    # The lock names local paths relative to the project: it holds where the project moves.
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns(".mvbridge"))
    assert run_cli(["sync", "--locked", "--no-stubs"], moved).returncode == 0
    write_config(tmp_path, '[envs.pinned]\nrequirements = ["six", "PyYAML"]\n')
    changed = run_cli(["sync", "--locked", "--no-stubs"], tmp_path)
    assert changed.returncode == 1
    assert "changed since" in changed.stderr


def test_envs_and_remove_commands(tmp_path, wheels):
    write_config(tmp_path, f'[envs.one]\nrequirements = ["{wheels["thing1"]}"]\n')
    listing = run_cli(["envs"], tmp_path)
    assert "not built" in listing.stdout
    assert run_cli(["sync", "--no-stubs"], tmp_path).returncode == 0
    listing = run_cli(["envs"], tmp_path)
    assert "built" in listing.stdout
    assert "mvb-thing==1.0" in listing.stdout
    assert run_cli(["remove", "one"], tmp_path).returncode == 0
    assert not (tmp_path / ".mvbridge" / "envs" / "one").exists()
    assert run_cli(["remove", "nope"], tmp_path).returncode == 1


def test_stubs_are_seen_by_mypy(tmp_path, wheels):
    stubs = tmp_path / "stubs"
    write_config(tmp_path, f'[envs.one]\nrequirements = ["{wheels["thing1"]}"]\n')
    done = run_cli(["sync"], tmp_path, MVBRIDGE_STUBS_DIR=str(stubs))
    assert done.returncode == 0, done.stderr
    stub = (stubs / "mvbridge-stubs" / "mvb_thing.pyi").read_text()
    assert "def add(a: Any, b: Any = ...) -> Any" in stub
    assert (stubs / "mvbridge-stubs" / "py.typed").read_text() == "partial\n"
    (tmp_path / "use.py").write_text("from mvbridge import mvb_thing\nmvb_thing.add(1, 2, 3)\n")
    # mypy reads PEP 561 packages from the target interpreter's search path: the stub folder
    # stands in for site-packages here (by default sync writes into the real site-packages).
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "use.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(stubs)},
    )
    assert 'Too many arguments for "add"' in checked.stdout, checked.stdout + checked.stderr


def test_config_in_pyproject_works_like_mvbridge_toml(tmp_path, wheels):
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "app"\n[tool.mvbridge.envs.one]\nrequirements = ["{wheels["thing1"]}"]\n'
    )
    ran = run_python("from mvbridge import mvb_thing\nprint(mvb_thing.version())", tmp_path)
    assert ran.stdout.strip() == "thing 1", ran.stderr
    assert json.loads((tmp_path / ".mvbridge" / "envs" / "one" / "mvbridge-env.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_pip_path_works_when_the_hosts_pip_has_dropped_the_envs_python(tmp_path, wheels):
    """pip 26 supports Python 3.10 and newer only; a 3.8 env must still build without uv."""
    require_python("3.8")
    host = tmp_path / "host"
    subprocess.run([sys.executable, "-m", "venv", str(host)], check=True, timeout=120)
    python = str(host / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "pip>=26"],
        check=True,
        timeout=240,
    )
    # mvbridge and its dependencies from the test's own environment; the newer pip comes first.
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    repo = pathlib.Path(__file__).resolve().parents[2]
    lines = [str(repo), *own_site_dirs()]
    pathlib.Path(site, "mvbridge-tests.pth").write_text("".join(line + "\n" for line in lines))
    project = tmp_path / "project"
    write_config(project, f'[envs.old]\nrequirements = ["{wheels["thing1"]}"]\npython = "3.8"\n')
    done = subprocess.run(
        [python, "-m", "mvbridge", "sync", "--no-stubs"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "MVBRIDGE_INSTALLER": "pip"},
    )
    assert done.returncode == 0, done.stderr
    assert "with pip" in done.stderr
    pip_version = subprocess.run(
        [python, "-m", "pip", "--version"], capture_output=True, text=True, timeout=60
    ).stdout
    assert int(pip_version.split()[1].split(".")[0]) >= 26
