"""Every code block of the tutorial and the how-to pages runs, as a reader following the page
would run it (issue #12, point 7).

Each page is one session (tests/doc_session.py) in a fresh project folder, a copy of the
repository folder its ``project`` marker names, if any; its blocks run in order:

- A block whose first line names a file (``# app.py``, ``# client/mvbridge.toml``) is written
  there, relative to the project folder; an mvbridge config among them must load.
- Any other ``toml`` block is a config example: it must load with mvbridge's config loader (as
  ``pyproject.toml`` when it is a ``[tool.mvbridge...]`` table, else as ``mvbridge.toml``).
- ``console`` blocks: each ``$ `` line runs in bash, in the project folder (``$ cd DIR`` moves
  it), with the test's Python first on PATH as ``python`` and ``mvbridge``. The lines after a
  command are its output as the page shows it; the real output must have each of them. A
  command exits with 0, unless its shown output has an error line (``ERROR:``, ``error:``), then
  it must fail. ``bash``/``sh`` blocks: every line is a command, no output shown.
- The first ``pip install`` makes a virtualenv for the page, and later commands run in it;
  ``pip install mvbridge`` installs this checkout.
- ``mvbridge spawn`` runs in the background until the page ends; the page goes on once it
  serves, and its end sends SIGTERM, which must drain it to exit 0.
- ``python`` blocks run in one interpreter per page that keeps their names (top-level
  ``await`` works, and a last expression is printed, as in a notebook: tests/doc_python.py).
- A ``text`` block is the output of the block before it and is compared with it.
- Output is compared loosely: times, paths, pids, addresses, sizes, hashes and versions are
  normalised, spacing does not matter, nor order (parallel builds interleave; a file's lines
  must come in order), and ``...`` stands for lines left out.
- Anything else fails the test. Markers in the Markdown, HTML comments the site does not show,
  say what to do instead (tests/doc_blocks.py parses them):

  ``<!-- docs-test: skip: REASON -->`` before a block that cannot run here (systemd, docker, an
  error message quoted for reference). The reason is required. The ``mvbridge`` command lines
  in a skipped block (``$ mvbridge ...``, ``ExecStart=``, ``CMD [...]``, YAML ``args``) must
  still parse with mvbridge's own argument parser.
  ``<!-- docs-test: loopback -->`` before a block with addresses of other machines: it runs with
  every ``tcp://HOST:PORT`` moved to 127.0.0.1. Every port a page names becomes a free one.
  ``<!-- docs-test: shows: FILE -->`` before a block that shows a file a command wrote (a lock):
  the file must have each of its lines.
  ``<!-- docs-test: project: examples/NAME -->`` anywhere in a page: the project to start from.

Built envs are shared between pages where they can be: ad hoc envs and worker runtimes through
the run's MVBRIDGE_CACHE_DIR (tests/conftest.py), packages through uv's own cache.
"""

from __future__ import annotations

import pytest

from tests.doc_blocks import (
    ROOT,
    BlockError,
    missing_lines,
    mvbridge_command_lines,
    normalise,
    parse_page,
)
from tests.doc_session import Session

DOCS = ROOT / "docs"
PAGES = [DOCS / "tutorial.md", *sorted((DOCS / "how-to").glob("*.md"))]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_block_of_the_page_runs(page, tmp_path):
    with Session(parse_page(page), tmp_path) as session:
        session.run()


# -- the docs test itself can fail -----------------------------------------------------------
def _run_page(tmp_path, markdown: str) -> None:
    path = tmp_path / "page.md"
    path.write_text(markdown)
    with Session(parse_page(path), tmp_path / "session") as session:
        session.run()


def page(lang: str, text: str, marker: str = "") -> str:
    """A page of one block, with ``marker`` before it."""
    return (f"<!-- docs-test: {marker} -->\n" if marker else "") + f"```{lang}\n{text}\n```\n"


UNIT = "ExecStart=/opt/bin/mvbridge spawn --env a --wrokers 2"
WRONG = {  # what is wrong: (the page, what the failure says)
    "unmarked-dockerfile": (page("dockerfile", "FROM python"), "cannot run a ```dockerfile"),
    "no-language": (page("", "some text"), r"cannot run a ```\(no language\)"),
    "skip-without-reason": (page("ini", "[Unit]", "skip"), "'skip' needs a reason"),
    "skip-empty-reason": (page("ini", "[Unit]", "skip: "), "'skip' needs a reason"),
    "unknown-marker": (page("ini", "", "skp: typo"), "unknown marker 'skp'"),
    "marker-alone": ("<!-- docs-test: skip: why -->\nprose\n", "right before a block"),
    "text-after-nothing": (page("text", "an output"), "there is none"),
    "config-typo": (page("toml", "[envs.a]\nrequirement = ['x']"), r"unknown key\(s\)"),
    "toml-not-config": (page("toml", "version = 1"), "does not load as an mvbridge config"),
    "skipped-bad-option": (page("ini", UNIT, "skip: needs systemd"), "does not parse"),
    "other-host": (page("console", "$ mvbridge ping tcp://10.0.0.7:7710"), "not a loopback"),
    "stale-loopback": (page("console", "$ true", "loopback"), "no address other than"),
    "command-fails": (page("console", "$ false"), "exited with 1; it should succeed"),
    "should-fail": (page("console", "$ true\nERROR: it broke"), "it should fail"),
    "other-output": (page("console", "$ echo hello\ngoodbye"), "printed no line like"),
    "other-print": (page("python", "print('hi')") + page("text", "ho"), "printed no line"),
    "python-raises": (page("python", "1 / 0"), "the block raised"),
    "shows-no-file": (page("text", "x", "shows: out.txt"), "the blocks before did not write"),
}


@pytest.mark.parametrize(("markdown", "problem"), WRONG.values(), ids=WRONG.keys())
def test_a_block_that_is_wrong_or_unmarked_fails(tmp_path, markdown, problem):
    with pytest.raises(BlockError, match=problem):
        _run_page(tmp_path, markdown)


def test_blocks_share_names_files_and_the_folder(tmp_path):
    _run_page(
        tmp_path,
        page("text", "# data/numbers.txt\n1 2 3")
        + page("console", "$ cd data\n$ cat numbers.txt\n# data/numbers.txt\n1 2 3")
        + page("python", "with open('numbers.txt') as f:\n    numbers = f.read().split()[2:]")
        + page("python", "import asyncio\nawait asyncio.sleep(0)\nsum(map(int, numbers)) * 2")
        + page("text", "12"),
    )


def test_output_is_compared_loosely_but_not_blindly():
    shown = "env 'dep_b': ready in 1.9 s\ntcp://10.0.0.7:7710: up (pids 10136), Python 3.11.7"
    actual = (
        "noise\ntcp://127.0.0.1:50123: up (pids 9, 10),  Python 3.12.1\nenv 'dep_b': ready in 12 s"
    )
    assert missing_lines(shown, actual) == []
    assert missing_lines("env 'dep_a': ready in 1.9 s", actual) == ["env 'dep_a': ready in <time>"]
    assert missing_lines("a\n...\nb", "b\nx\na") == []
    assert missing_lines("a\nb", "b\nx\na", ordered=True) == ["b"]
    assert missing_lines("a\na", "a") == ["a"]
    assert missing_lines("protocol 2", "protocol 8") == ["protocol 2"]
    assert normalise("/path/to/my_app/src/dep_b, pandas==2.0.3") == ["<path>, pandas==<n.n>"]


def test_the_mvbridge_commands_of_skipped_deployment_files_are_found():
    """The check of skipped blocks is not vacuous: it finds the units' and images' commands."""
    found: dict[str, list[str]] = {}
    for name in ("service-systemd.md", "service-container.md", "run-a-service.md"):
        for block in parse_page(DOCS / "how-to" / name).blocks:
            if block.marker == "skip":
                found.setdefault(block.lang, []).extend(
                    args[0] for args in mvbridge_command_lines(block)
                )
    assert found["ini"] == ["sync", "spawn"]
    assert found["dockerfile"] == ["sync", "spawn"]
    assert found["yaml"] == ["spawn", "ping", "ping"]
    assert found["console"] == ["spawn", "spawn"]
