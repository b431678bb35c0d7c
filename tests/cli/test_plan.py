"""`mvbridge plan` on real packages from the registry: conflicts found, groups verified, written.

The packages are small pure-Python ones whose real metadata conflicts: pins of six and idna;
requests 2.25.1 needs idna<3; anyio 4.0.0 needs exceptiongroup>=1.0.2 only below Python 3.11.
"""

from __future__ import annotations

import json

import pytest

from mvbridge.bridge.envs import read_record
from mvbridge.config import load_config
from mvbridge.plan.answers import AnswerCache
from mvbridge.plan.planner import make_plan
from mvbridge.plan.resolvers import UvResolver, find_target
from tests.helpers import run_cli, write_config

pytestmark = pytest.mark.timeout(300)

TWO_PAIRS = ["six==1.15.0", "six==1.16.0", "idna==3.4", "idna==3.6", "attrs", "packaging"]


def plan_json(tmp_path, *args: str):
    done = run_cli(["plan", "--json", *args], tmp_path, timeout=240)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout), done


def test_two_conflicting_pairs_and_free_requirements_give_exactly_two_groups(tmp_path):
    plan, done = plan_json(tmp_path, *TWO_PAIRS)
    assert done.returncode == 0
    assert plan["python"] == "3.11"
    groups = {g["name"]: g for g in plan["groups"]}
    assert len(groups) == 2
    for group in groups.values():  # one six and one idna in each, each pin really resolved
        pins = [r for r in group["requirements"] if "==" in r]
        assert sorted(p.split("==")[0] for p in pins) == ["idna", "six"]
        assert all(group["resolved"][p.split("==")[0]] == p.split("==")[1] for p in pins)
    largest = max(groups.values(), key=lambda g: len(g["requirements"]))
    assert {"attrs", "packaging"} <= set(largest["requirements"])
    assert sorted(sorted(c["requirements"]) for c in plan["conflicts"]) == [
        ["idna==3.4", "idna==3.6"],
        ["six==1.15.0", "six==1.16.0"],
    ]
    assert "mvbridge: plan: conflict: six==1.15.0 + six==1.16.0" in done.stderr  # progress


def test_a_three_way_conflict_gives_three_groups(tmp_path):
    plan, _ = plan_json(tmp_path, "six==1.14.0", "six==1.15.0", "six==1.16.0")
    assert sorted(g["requirements"] for g in plan["groups"]) == [
        ["six==1.14.0"],
        ["six==1.15.0"],
        ["six==1.16.0"],
    ]
    assert len(plan["conflicts"]) == 3


def test_a_conflict_of_three_whose_pairs_all_resolve_is_found(tmp_path):
    # >=3.5 and <3.7: 3.5 or 3.6; >=3.5 without 3.5, 3.6: 3.7+; <3.7 without them: 3.4.
    plan, _ = plan_json(tmp_path, "idna>=3.5", "idna<3.7", "idna!=3.5,!=3.6")
    assert len(plan["groups"]) == 2
    assert [sorted(c["requirements"]) for c in plan["conflicts"]] == [
        ["idna!=3.5,!=3.6", "idna<3.7", "idna>=3.5"]
    ]


def test_a_conflict_only_through_a_transitive_dependency_is_found_and_explained(tmp_path):
    plan, _ = plan_json(tmp_path, "requests==2.25.1", "idna==3.4", "attrs")
    assert sorted(sorted(g["requirements"]) for g in plan["groups"]) == [
        ["attrs", "requests==2.25.1"],
        ["idna==3.4"],
    ]
    (conflict,) = plan["conflicts"]
    assert conflict["reason"] == (
        "requests==2.25.1 needs idna>=2.5,<3; idna==3.4 is required (Python 3.11)"
    )


def test_a_conflict_only_through_a_python_version_marker_is_found_on_that_python(tmp_path):
    requirements = [
        "anyio==4.0.0",  # needs exceptiongroup>=1.0.2 only on Python < 3.11
        "exceptiongroup==1.0.0",
        'six==1.15.0; python_version < "3.12"',
        "six==1.16.0",
    ]
    on_310, _ = plan_json(tmp_path, *requirements, "--python", "3.10")
    on_311, _ = plan_json(tmp_path, *requirements, "--python", "3.11")
    on_312, _ = plan_json(tmp_path, *requirements, "--python", "3.12")
    assert (on_310["python"], len(on_310["groups"]), len(on_310["conflicts"])) == ("3.10", 2, 2)
    assert (len(on_311["groups"]), len(on_311["conflicts"])) == (2, 1)
    assert (len(on_312["groups"]), on_312["conflicts"]) == (1, [])
    anyio = next(c for c in on_310["conflicts"] if "anyio==4.0.0" in c["requirements"])
    assert "python_full_version < '3.11'" in anyio["reason"]
    assert anyio["reason"].endswith("(Python 3.10)")


def test_a_list_without_conflict_is_one_group_and_a_second_plan_comes_from_the_cache(tmp_path):
    target, _ = find_target(None)
    cache = AnswerCache(tmp_path / "answers")
    first = make_plan(["attrs", "six", "idna"], target, UvResolver(), cache=cache)
    assert [g.requirements for g in first.groups] == [["attrs", "six", "idna"]]
    assert first.conflicts == []
    assert first.exact
    assert (first.statistics.resolved, first.statistics.from_disk) == (1, 0)
    second = make_plan(["idna", "six", "attrs"], target, UvResolver(), cache=cache)
    assert (second.statistics.resolved, second.statistics.from_disk) == (0, 1)
    assert second.groups[0].resolved == first.groups[0].resolved


def test_a_requirement_that_resolves_nowhere_is_reported_and_fails_the_command(tmp_path):
    write_config(tmp_path, "")
    plan, done = plan_json(tmp_path, "six==99", "attrs", "mvbridge-no-such-dist-zq", "--write")
    assert done.returncode == 1
    assert [g["requirements"] for g in plan["groups"]] == [["attrs"]]
    reasons = {c["requirements"][0]: c["reason"] for c in plan["conflicts"]}
    assert reasons["six==99"] == "resolves nowhere: no release matches six==99 (Python 3.11)"
    assert reasons["mvbridge-no-such-dist-zq"].startswith("resolves nowhere: ")
    assert "nothing written" in done.stderr
    assert (tmp_path / "mvbridge.toml").read_text() == ""


def test_requirements_files_are_read_with_comments_and_nested_files(tmp_path):
    (tmp_path / "base.txt").write_text("# pinned\nsix==1.15.0  # old\n")
    (tmp_path / "req.txt").write_text("-r base.txt\n\nsix==1.16.0 \\\n  ; python_version >= '3'\n")
    plan, done = plan_json(tmp_path, "-r", str(tmp_path / "req.txt"))
    assert done.returncode == 0, done.stderr
    assert sorted(r for g in plan["groups"] for r in g["requirements"]) == [
        "six==1.15.0",
        "six==1.16.0 ; python_version >= '3'",
    ]
    bad = run_cli(["plan", "-r", "req.txt", "--index-url", "x"], tmp_path, timeout=60)
    assert bad.returncode == 2  # not an option of plan
    (tmp_path / "opt.txt").write_text("--index-url https://example.org/simple\nsix\n")
    refused = run_cli(["plan", "-r", "opt.txt"], tmp_path, timeout=60)
    assert refused.returncode == 1
    assert "opt.txt:1: option '--index-url'" in refused.stderr


PYPROJECT = """\
# The app's own comment, kept.
[project]
name = "app"
version = "0.1"
dependencies = [
    "six==1.15.0",  # the host's
    "six==1.16.0",
    "idna==3.4",
    "idna==3.6",
]

[tool.ruff]
line-length = 100   # aligned on purpose
"""


@pytest.mark.slow
def test_plan_write_into_pyproject_keeps_its_text_and_sync_builds_exactly_those_envs(tmp_path):
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    done = run_cli(["plan", "--write", "--host", "six==1.15.0"], tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "pyproject.toml").read_text()
    assert text.startswith(PYPROJECT)  # formatting and comments as they were
    assert "[tool.mvbridge.envs.six]\n# mvbridge plan (Python 3.11)" in text
    config = load_config(tmp_path / "pyproject.toml")
    assert list(config.envs) == ["six"]  # the host's group is not an env
    assert sorted(config.envs["six"].requirements) == ["idna==3.6", "six==1.16.0"]
    again = run_cli(["plan", "--write", "--host", "six==1.15.0"], tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr
    assert "already declared as planned: six" in again.stderr
    assert (tmp_path / "pyproject.toml").read_text() == text
    synced = run_cli(["sync", "--no-stubs"], tmp_path)
    assert synced.returncode == 0, synced.stderr
    built = sorted(p.name for p in (tmp_path / ".mvbridge" / "envs").iterdir() if p.is_dir())
    assert built == ["six"]
    record = read_record(tmp_path / ".mvbridge" / "envs" / "six")
    assert (record.distributions["six"], record.distributions["idna"]) == ("1.16.0", "3.6")


@pytest.mark.slow
def test_plan_write_into_mvbridge_toml_never_replaces_an_env_without_being_told(tmp_path):
    existing = '# ours\n[envs.six-old]\nrequirements = ["six"]\n\n[envs.six_1_16_0]\nrequirements = ["six==1.16.0", "attrs"]  # hand-made\n'
    config = write_config(tmp_path, existing)
    args = ["plan", "--write", "six==1.15.0", "six==1.16.0"]
    refused = run_cli(args, tmp_path, timeout=240)
    assert refused.returncode == 1
    assert "already declares 'six_1_16_0'" in refused.stderr
    assert "--replace" in refused.stderr
    assert config.read_text() == existing
    replaced = run_cli([*args, "--replace"], tmp_path, timeout=240)
    assert replaced.returncode == 0, replaced.stderr
    assert "env 'six_1_16_0' replaced" in replaced.stderr
    assert "env 'six-old' of" in replaced.stderr  # declared, not planned: said so
    envs = load_config(config).envs
    assert envs["six_1_16_0"].requirements == ("six==1.16.0",)
    assert envs["six_1_15_0"].requirements == ("six==1.15.0",)
    assert config.read_text().startswith("# ours\n[envs.six-old]\n")
    for name in ("six_1_15_0", "six_1_16_0"):  # every written group resolves on its own
        alone = run_cli(["plan", "--json", *envs[name].requirements], tmp_path, timeout=120)
        assert json.loads(alone.stdout)["conflicts"] == []


@pytest.mark.slow
def test_pip_is_a_working_fallback_resolver(tmp_path):
    plan, done = plan_json(tmp_path, "--resolver", "pip", "six==1.15.0", "six==1.16.0", "attrs")
    assert done.returncode == 0, done.stderr
    assert "with pip" in done.stderr
    assert sorted(sorted(g["requirements"]) for g in plan["groups"]) == [
        ["attrs", "six==1.15.0"],
        ["six==1.16.0"],
    ]
    assert plan["conflicts"][0]["reason"] == (
        "six==1.15.0 and six==1.16.0 are both required (Python 3.11)"
    )
