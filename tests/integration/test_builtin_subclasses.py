"""Values whose types subclass builtins cross as values, never as proxies (issue 16).

Each case is a fresh host process: one without mvb_names, one with mvb_names 2.0 (the worker has
1.0), one with 1.0 itself. Each runs against a worker on its own Python and on 3.8.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.conftest import FIXTURES
from tests.helpers import run_python, write_fixture_package

SOURCE = (FIXTURES / "pkgs" / "mvb_names.py").read_text()

HOST = """\
import json, os
import mvbridge

with mvbridge.Env("names", interpreter=os.environ["NAMES_PYTHON"]) as env:
    names = env.import_module("mvb_names")
    row = names.row()
    nested = names.nested()
{checks}
print("all checks passed")
"""

# The host lacks the types, or has them at another version: plain builtin values arrive.
AS_VALUES = """
assert type(row) is dict
assert row == {"id": 1, "name": "ann"}
assert {type(key) for key in row} == {str}
assert row["id"] == 1
assert "name" in row
assert json.loads(json.dumps(row)) == {"id": 1, "name": "ann"}
assert names.names() == ["b", "a", "c"]
assert sorted(names.names()) == ["a", "b", "c"]
assert {"a": 0}[names.names()[1]] == 0
point = names.point()
assert type(point) is tuple
assert point == (1, 2)
assert nested["rows"][1]["name"] == "ann"
assert nested["levels"][1] == "low"
assert json.dumps(nested["rows"])
"""

ABSENT = """
level = names.level()
assert type(level) is int
assert level == 2
assert {2: "high"}[level] == "high"
color = names.color()  # a plain Enum: a proxy, hashed by identity (it equals itself only)
assert {color: 1}[names.color()] == 1
assert color is names.color()
"""

OTHER_VERSION = """
import mvb_names as local

assert local.VERSION == "2.0"
assert names.level() is local.Level.HIGH  # an enum member crosses by name
assert names.kind(local.Name("id", True)) == "str"  # and the other way: the host's values
assert names.lookup(local.Name("id")) == 1
assert names.kind(local.Row({local.Name("a"): 1})) == ["dict", ["str"]]
assert names.kind(local.Point(1, 2)) == ["tuple", ["int", "int"]]
assert names.contains({local.Name("a")}, "a")
assert names.kind([{"k": (local.Name("v"),)}]) == ["list", ["dict"]]
"""

SAME_VERSION = """
import mvb_names as local

assert type(row) is local.Row
assert {type(key) for key in row} == {local.Name}
assert [key.quote for key in row] == [True, None]
assert row["id"] == 1
assert type(names.point()) is local.Point
assert names.level() is local.Level.HIGH
assert names.kind(local.Name("id")) == "Name"
assert names.kind(local.Row({local.Name("a"): 1})) == ["Row", ["Name"]]
"""


def run_host(tmp_path, py_names, checks, version=None):
    path = tmp_path / "host-site"
    path.mkdir()
    if version is not None:
        source = SOURCE + f'\nVERSION = "{version}"\n'
        write_fixture_package(path, "mvb_names", version, source)
    script = HOST.format(checks=textwrap.indent(checks, "    "))
    done = run_python(script, tmp_path, NAMES_PYTHON=py_names, PYTHONPATH=str(path))
    assert done.returncode == 0, done.stderr
    assert "all checks passed" in done.stdout


@pytest.mark.timeout(120)
def test_a_host_without_the_package_gets_builtin_values(tmp_path, py_names):
    run_host(tmp_path, py_names, AS_VALUES + ABSENT)


@pytest.mark.timeout(120)
def test_a_host_at_another_version_gets_builtin_values_both_ways(tmp_path, py_names):
    run_host(tmp_path, py_names, AS_VALUES + OTHER_VERSION, version="2.0")


@pytest.mark.timeout(120)
def test_a_host_at_the_same_version_keeps_the_types(tmp_path, py_names):
    run_host(tmp_path, py_names, SAME_VERSION, version="1.0")
