"""Type stubs keep types, and mypy and pyright accept them (issue 12, point 5)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mvbridge
from mvbridge.bridge import stubs
from tests.helpers import make_venv, own_site_dirs, run_cli, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EXAMPLE = Path(__file__).parents[2] / "examples" / "two_pandas"
CHECK_TIMEOUT = 120


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory, py_numpy1):
    """Stubs of the demo's two modules and of a numpy 1 env (numpy, mvb_demo, mvb_arrays)."""
    folder = tmp_path_factory.mktemp("stubs")
    demo = make_venv(tmp_path_factory.mktemp("venv") / "demo", sys.executable, ["pandas==2.2.*"])
    from uv import find_uv_bin

    # dep_b pins pandas 2.0.3: its module is what matters here, on the pandas of the other env.
    subprocess.run(
        [
            find_uv_bin(),
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--python",
            demo,
            str(EXAMPLE / "src" / "dep_a"),
            str(EXAMPLE / "src" / "dep_b"),
        ],
        check=True,
        timeout=120,
    )
    old = os.environ.get("MVBRIDGE_STUBS_DIR")
    os.environ["MVBRIDGE_STUBS_DIR"] = str(folder)
    try:
        for name, interpreter, modules in [
            ("demo", demo, ["dep_a", "dep_b"]),
            ("np1", py_numpy1, ["numpy", "mvb_demo", "mvb_arrays"]),
        ]:
            with mvbridge.Env(f"stubs-{name}", interpreter=interpreter) as env:
                notes: list[str] = []
                assert stubs.write_env_stubs(env, name, modules, notes.append) == modules, notes
    finally:
        if old is None:
            os.environ.pop("MVBRIDGE_STUBS_DIR")
        else:
            os.environ["MVBRIDGE_STUBS_DIR"] = old
    return folder / stubs.PACKAGE


def test_stubs_keep_annotations_bases_and_constants(stub_dir):
    demo = stubs._stub_path(stub_dir, "mvb_demo").read_text()
    assert "import datetime" in demo
    assert "import threading" in demo
    assert (
        "def typed(count: int, when: datetime.date, names: list[str], pick: str | None = ..., "
        "*rest: bytes, flag: bool = ..., **extra: Any) -> dict[str, int]: ..."
    ) in demo
    # A type the host lacks is Any; one of the module itself keeps its name.
    assert "def opaque(value: Any, shape: Shape | None) -> Shape: ..." in demo
    assert "def make_thread() -> threading.Thread: ..." in demo
    assert "class StubError(ValueError):" in demo
    assert "class DeeperError(StubError):" in demo
    assert "class DemoError(Exception):" in demo
    assert "class Square(Shape):" in demo
    assert "    def __init__(self, name: str) -> None: ..." in demo
    assert "    @property\n    def label(self) -> str: ..." in demo
    assert "    @classmethod\n    def named(cls, name: str) -> Shape: ..." in demo
    assert "    @staticmethod\n    def unit() -> int: ..." in demo
    assert "LIMIT: int" in demo
    assert "RATIO: float" in demo
    assert "GREETING: str" in demo
    # A package's submodules have stubs of their own, and the package names them.
    numpy = (stub_dir / "numpy" / "__init__.pyi").read_text()
    assert "from . import linalg as linalg" in numpy
    assert (stub_dir / "numpy" / "linalg.pyi").is_file()
    assert "class ndarray:" in numpy
    assert "pi: float" in numpy
    # The demo's dep_a returns a pandas Series: the host has no pandas, so Any.
    assert "def get_data() -> Any:" in (stub_dir / "dep_a.pyi").read_text()
    assert "def describe() -> str: ..." in (stub_dir / "dep_a.pyi").read_text()


USE = """\
import mvbridge.numpy
import mvbridge.numpy.linalg
from mvbridge import dep_a, dep_b, mvb_arrays, mvb_demo

text: str = dep_a.describe()
count: int = mvb_demo.LIMIT
shape: mvb_demo.Shape = mvb_demo.Square("sq")
area: float = shape.area(2.0)
norm = mvbridge.numpy.linalg.norm
try:
    mvb_demo.typed(1, __import__("datetime").date.today(), ["a"])
except mvb_demo.StubError as exc:
    error: ValueError = exc
wrong: str = mvb_demo.LIMIT  # the one error: proof that the stubs are read
"""


@pytest.fixture(scope="module")
def checker_venv(stub_dir, tmp_path_factory):
    """A venv whose site-packages reach the stubs and mvbridge itself (as a user's would)."""
    folder = tmp_path_factory.mktemp("checker") / "venv"
    python = make_venv(folder, sys.executable)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    package_parent = Path(mvbridge.__file__).parents[1]
    lines = [str(stub_dir.parent), *own_site_dirs(), str(package_parent)]
    Path(site, "mvbridge-test.pth").write_text("".join(line + "\n" for line in lines))
    project = folder.parent / "project"
    project.mkdir()
    (project / "use.py").write_text(USE)
    return python, project


def _run(command, cwd):
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False
    )


def test_mypy_accepts_the_stubs(checker_venv):
    python, project = checker_venv
    mypy = [sys.executable, "-m", "mypy", "--no-incremental", "--python-executable", python]
    packages = ["mvbridge.dep_a", "mvbridge.dep_b", "mvbridge.numpy"]
    packages += ["mvbridge.mvb_demo", "mvbridge.mvb_arrays"]
    checked = _run([*mypy, *(a for p in packages for a in ("-p", p))], project)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    used = _run([*mypy, "use.py"], project)
    errors = [line for line in used.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, used.stdout + used.stderr
    assert "use.py:14:" in errors[0]
    assert '"int"' in errors[0]


def _pyright() -> str | None:
    found = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which(
        "pyright"
    )
    if found is None:
        return None
    try:
        done = _run([found, "--version"], None)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if done.returncode == 0 else None


def test_pyright_accepts_the_stubs(checker_venv):
    pyright = _pyright()
    if pyright is None:
        # The pyright package fetches its node runtime on first use: no network, no pyright.
        if os.environ.get("CI"):
            pytest.fail("pyright cannot run here")
        pytest.skip("pyright cannot run here (it fetches its node runtime on first use)")
    python, project = checker_venv
    (project / "pyrightconfig.json").write_text(
        '{"include": ["use.py"], "venvPath": "%s", "venv": "%s", '
        '"reportMissingModuleSource": false}' % (Path(python).parents[1].parent, "venv")
    )
    checked = _run([pyright, "--outputjson"], project)
    import json

    report = json.loads(checked.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["range"]["start"]["line"] == 13  # 0-based: use.py line 14


def test_sync_removes_stubs_of_envs_no_longer_declared(tmp_path, monkeypatch):
    from mvbridge.config import load_config

    monkeypatch.setenv("MVBRIDGE_STUBS_DIR", str(tmp_path / "site"))
    package = tmp_path / "site" / stubs.PACKAGE
    (package / "gone_mod").mkdir(parents=True)
    (package / "gone_mod" / "__init__.pyi").write_text("X: int\n")
    (package / "kept_mod.pyi").write_text("Y: int\n")
    (package / "old_mod.pyi").write_text("Z: int\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "mvbridge.toml").write_text('[envs.kept]\nrequirements = ["six"]\n')
    config = load_config(project / "mvbridge.toml")
    other = tmp_path / "other-project"
    # What earlier syncs recorded: this project's envs, and another project's.
    stubs._write_manifest(
        package,
        {
            str(config.root): {"kept": ["kept_mod", "old_mod"], "gone": ["gone_mod"]},
            str(other): {"theirs": ["theirs_mod"]},
        },
    )
    notes: list[str] = []
    assert stubs.prune_stubs(config, notes.append) == ["gone_mod"]
    assert not (package / "gone_mod").exists()
    assert (package / "kept_mod.pyi").is_file()
    assert notes == ["env 'gone' is no longer declared: its type stubs were removed"]
    # An env that exposes fewer modules than before loses the others' stubs.
    stubs._record_env(package, config, "kept", ["kept_mod"])
    assert not (package / "old_mod.pyi").exists()
    manifest = stubs._read_manifest(package)
    assert manifest[str(config.root)] == {"kept": ["kept_mod"]}
    assert manifest[str(other)] == {"theirs": ["theirs_mod"]}


COUNTED = """
import os

with open(os.environ["MVB_IMPORT_LOG"], "a") as log:
    log.write("imported\\n")


def first(x: int) -> int:
    return x
"""


def _counted_project(folder: Path, source: str) -> Path:
    package = folder / "src" / "mvb_counted"
    (package / "mvb_counted").mkdir(parents=True, exist_ok=True)
    (package / "mvb_counted" / "__init__.py").write_text(source)
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mvb_counted"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["mvb_counted"]\n'
    )
    write_config(folder, '[envs.counted]\nrequirements = ["./src/mvb_counted"]\n')
    return folder


def test_a_cold_sync_of_unchanged_envs_writes_stubs_without_importing(tmp_path):
    """Listings are cached by what the env holds: a cold sync of the same contents renders the
    same stubs without a worker importing the module; a changed local source is read anew."""
    project = _counted_project(tmp_path / "project", COUNTED)
    log = tmp_path / "imports.log"
    site = tmp_path / "site"
    environ = {
        "MVB_IMPORT_LOG": str(log),
        "MVBRIDGE_STUBS_DIR": str(site),
        "PYTHONDONTWRITEBYTECODE": "",  # else the build imports the module to warm bytecode
    }

    def cold_sync() -> str:
        shutil.rmtree(project / ".mvbridge", ignore_errors=True)
        (project / "mvbridge.lock").unlink(missing_ok=True)
        done = run_cli(["sync"], project, timeout=180, **environ)
        assert done.returncode == 0, done.stderr
        return (site / stubs.PACKAGE / "mvb_counted.pyi").read_text()

    first = cold_sync()
    assert "def first(x: int) -> int: ..." in first
    assert log.read_text() == "imported\n"
    assert cold_sync() == first
    assert log.read_text() == "imported\n"  # the second sync started no worker for it
    _counted_project(project, COUNTED + "\n\ndef second(y: str) -> str:\n    return y\n")
    changed = cold_sync()
    assert "def second(y: str) -> str: ..." in changed
    assert log.read_text() == "imported\n" * 2
