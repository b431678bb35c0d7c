"""A real legacy data layer: SQLAlchemy 1.4's reflected rows, used from a host without it (#16).

SQLAlchemy names reflected columns with ``quoted_name``, a str subclass; the rows' keys must
work as the plain strings they equal.
"""

from __future__ import annotations

import json
import sys

import pytest

import mvbridge
from tests.helpers import install_fixture_package, make_venv

LEGACY = '''
import sqlalchemy as sa


def reflected_rows():
    """The rows of a table SQLAlchemy reflected from an in-memory sqlite database."""
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO users VALUES (1, 'ann'), (2, 'bob')"))
    users = sa.Table("users", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(users)).fetchall()
    return [{column.name: row[column.name] for column in users.c} for row in rows]


def key_types():
    """The key types as SQLAlchemy hands them out here."""
    return sorted({type(key).__name__ for row in reflected_rows() for key in row})
'''


@pytest.fixture(scope="module")
def legacy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sqla")
    interpreter = make_venv(folder / "v", sys.executable, ["sqlalchemy==1.4.*"])
    install_fixture_package(interpreter, "mvb_legacy", "1.0", LEGACY)
    with mvbridge.Env("sqla14", interpreter=interpreter) as env:
        yield env.import_module("mvb_legacy")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_reflected_rows_have_keys_that_work_as_plain_strings(legacy):
    with pytest.raises(ImportError):
        import sqlalchemy  # noqa: F401  # the host really lacks it
    assert legacy.key_types() == ["quoted_name"]  # what SQLAlchemy 1.4 really returns
    rows = legacy.reflected_rows()
    assert rows == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
    first = rows[0]
    assert first["name"] == "ann"
    assert "id" in first
    assert {type(key) for key in first} == {str}
    assert json.loads(json.dumps(rows)) == rows
    assert sorted(first) == ["id", "name"]
