"""The fenced code blocks of a docs page, their docs-test markers, and loose output matching.

Used by tests/test_doc_pages.py, whose docstring says what a page's blocks must be. A marker is
an HTML comment, invisible in the built site, on the line before a block (blank lines between
are fine), or anywhere in the page for ``project``::

    <!-- docs-test: skip: needs systemd -->      the block is not run; a reason is required
    <!-- docs-test: shows: mvbridge.lock -->     the block shows that file, as a command above wrote it
    <!-- docs-test: loopback -->                its tcp:// addresses are moved to 127.0.0.1
    <!-- docs-test: project: examples/two_pandas -->   the page starts in a copy of that folder
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK_MARKERS = {"skip", "shows", "loopback"}
PAGE_MARKERS = {"project"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<body>.*?)\s*-->\s*$")
_SNIPPET = re.compile(r'^\s*--8<--\s+"(?P<path>[^"]+)"\s*$')
# "# app.py", "# client/mvbridge.toml": the first line of a block that is a file to write.
_FILE_HEADER = re.compile(r"^#\s+(?P<path>(?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.\w+)\s*$")


class BlockError(AssertionError):
    """A docs block that is wrong, or that the docs test cannot run and is not marked."""


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page.

    Attributes:
        page: the Markdown file.
        line: the line number of the opening fence.
        lang: the fence's language (``python``, ``console``, ...), "" when it has none.
        text: the content, unindented, with ``--8<--`` snippets expanded as mkdocs does.
        marker: the docs-test marker before it (``skip``, ``shows``, ``loopback``), or None.
        argument: the marker's argument: a skip's reason, the file a block shows.
    """

    page: Path
    line: int
    lang: str
    text: str
    marker: str | None = None
    argument: str = ""

    @property
    def where(self) -> str:
        try:
            page = self.page.relative_to(ROOT)
        except ValueError:
            page = self.page
        return f"{page}:{self.line}"

    @property
    def file(self) -> str | None:
        """The path a block names on its first line (``# app.py``): it is that file's text."""
        match = _FILE_HEADER.match(self.text.split("\n", 1)[0])
        return match.group("path") if match else None

    def fail(self, problem: str, output: str = "") -> BlockError:
        """The error for this block: where it is, what is wrong, the block, and output."""
        message = f"{self.where}: {problem}\n--- the ```{self.lang} block ---\n{self.text}"
        if output:
            message += f"\n--- output ---\n{output[-6000:]}"
        return BlockError(message)


@dataclass(frozen=True)
class Page:
    """A page's blocks in order, and its ``project`` folder (relative to the repository)."""

    path: Path
    blocks: list[Block]
    project: str | None


def parse_page(path: Path) -> Page:
    """The blocks and markers of ``path``.

    Raises:
        BlockError: a marker is unknown, lacks its argument, or stands before no block.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    project = None
    pending: tuple[int, str, str] | None = None  # a block marker waiting for its block
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        marker = _MARKER.match(line)
        if marker:
            if pending:
                raise _marker_error(path, pending[0], "two markers in a row")
            kind, argument = _marker(path, number, marker.group("body"))
            if kind == "project":
                project = argument
            else:
                pending = (number, kind, argument)
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip() and pending:
                raise _marker_error(
                    path, pending[0], "a block marker must come right before a block"
                )
            continue
        start = number
        indent, closing = fence.group("indent"), fence.group("fence")
        content = []
        while number < len(lines) and lines[number].strip() != closing:
            content.append(_unindent(lines[number], indent))
            number += 1
        number += 1  # the closing fence
        kind, argument = pending[1:] if pending else (None, "")
        text = _expand_snippets("\n".join(content))
        blocks.append(Block(path, start, fence.group("lang"), text, kind, argument))
        pending = None
    if pending:
        raise _marker_error(path, pending[0], "a block marker must come right before a block")
    return Page(path, blocks, project)


def _marker(path: Path, line: int, body: str) -> tuple[str, str]:
    kind, _, argument = (part.strip() for part in body.partition(":"))
    if kind not in BLOCK_MARKERS | PAGE_MARKERS:
        known = ", ".join(sorted(BLOCK_MARKERS | PAGE_MARKERS))
        raise _marker_error(path, line, f"unknown marker {kind!r} (known: {known})")
    if kind == "loopback":
        if argument:
            raise _marker_error(path, line, "'loopback' takes no argument")
    elif not argument:
        what = {"skip": "a reason", "shows": "a file", "project": "a folder"}[kind]
        raise _marker_error(path, line, f"'{kind}' needs {what}: <!-- docs-test: {kind}: ... -->")
    return kind, argument


def _marker_error(path: Path, line: int, problem: str) -> BlockError:
    return BlockError(f"{path}:{line}: docs-test marker: {problem}")


def _unindent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _expand_snippets(text: str) -> str:
    """``--8<-- "examples/x.py"`` lines replaced by that file, as pymdownx.snippets does."""
    out = []
    for line in text.split("\n"):
        snippet = _SNIPPET.match(line)
        out.append((ROOT / snippet.group("path")).read_text().rstrip("\n") if snippet else line)
    return "\n".join(out)


# -- console blocks --------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One command of a console block and the output the page shows for it ("" if none)."""

    line: str
    shown: str


def commands(block: Block) -> list[Command]:
    """The commands of a ``console`` block (``$ `` lines, with their output) or of a
    ``bash``/``sh`` block (every line; no output shown). A trailing ``\\`` continues a line.

    Raises:
        BlockError: a console block has text before its first ``$ ``.
    """
    prompt = block.lang == "console"
    found: list[tuple[str, list[str]]] = []
    continued = False
    for line in block.text.split("\n"):
        if continued:
            found[-1] = (found[-1][0] + " " + line.strip().rstrip("\\").strip(), found[-1][1])
        elif prompt and not line.startswith("$ "):
            if not found:
                raise block.fail("a console block starts with its first command: '$ ...'")
            found[-1][1].append(line)
        elif prompt or (line.strip() and not line.lstrip().startswith("#")):
            command = line[2:] if prompt else line
            found.append((command.strip().rstrip("\\").strip(), []))
        continued = bool(found) and not found[-1][1] and line.rstrip().endswith("\\")
    return [Command(line, "\n".join(shown).strip("\n")) for line, shown in found]


def expects_failure(shown: str) -> bool:
    """A command whose shown output has an error line (``ERROR:``, ``error:``) must fail."""
    return re.search(r"(?i)\berror:", shown) is not None


# -- output shown vs output got --------------------------------------------------------------
_NORMALISE = [  # (pattern, replacement), in this order
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?", "<when>"),
    (r"tcp://[\w.\-]+:\d+|tcp://\[[0-9a-fA-F:]+\]:\d+", "tcp://<address>"),
    (r"(?<![\w.:/~])(?:~|\.{1,2})?/[\w.+@~-]+(?:/[\w.+@~-]*)*", "<path>"),
    (r"\bpids? \d+(?:, \d+)*|(?<=\[)\d+(?=\])", "<pid>"),
    (r"\b\d+(?:\.\d+)? ?(?:ms|s|sec|min|h)\b|\b\d+m \d+s\b", "<time>"),
    (r"\b\d+(?:\.\d+)? ?(?:B|[kKMG]i?B)\b", "<size>"),
    (r"\b[0-9a-f]{12,}\b", "<hash>"),
    # Versions (of Python, of packages) and decimals: whole numbers stay, as counts matter.
    (r"\b\d+(?:\.\d+)+(?:\.?(?:post|dev|rc|a|b)\d+)*\b", "<n.n>"),
]


def normalise(text: str) -> list[str]:
    """The lines of ``text`` with what varies between runs replaced (times, paths, pids,
    addresses, sizes, hashes, versions), runs of spaces made one, and blank lines dropped."""
    lines = []
    for line in text.split("\n"):
        for pattern, replacement in _NORMALISE:
            line = re.sub(pattern, replacement, line)
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return lines


def missing_lines(shown: str, actual: str, ordered: bool = False) -> list[str]:
    """The lines of ``shown`` (normalised) that ``actual`` lacks, each line counted once.

    Loose on purpose: ``...`` lines stand for any lines, ``actual`` may have lines ``shown``
    leaves out, and unless ``ordered`` (a file's lines), order does not matter: the lines of
    builds side by side interleave.
    """
    have = normalise(actual)
    missing = []
    start = 0
    for line in normalise(shown):
        if line == "...":
            continue
        if line in have[start:]:
            found = have.index(line, start)
            if ordered:
                start = found + 1
            else:
                del have[found]
        else:
            missing.append(line)
    return missing


# -- mvbridge command lines in blocks that are not run ---------------------------------------
def mvbridge_command_lines(block: Block) -> list[list[str]]:
    """The arguments of each ``mvbridge`` command in ``block``: of its commands (console, bash),
    ``Exec*=`` lines (systemd), ``RUN`` lines and ``CMD [...]`` (Dockerfile), YAML lists
    (Kubernetes ``args``). ``...`` (options left out) is dropped."""
    if block.lang in ("yaml", "yml"):
        import yaml

        found: list[list[str]] = []
        for document in yaml.safe_load_all(block.text):
            _yaml_commands(document, found)
        return found
    if block.lang in ("console", "bash", "sh", "shell"):
        lines = [command.line for command in commands(block)]
    elif block.lang == "ini":
        lines = re.findall(r"(?m)^Exec\w*=(.*)$", block.text)
    elif block.lang == "dockerfile":
        lines = re.findall(r"(?m)^RUN\s+(.*)$", block.text)
        for array in re.findall(r"(?m)^(?:CMD|ENTRYPOINT)\s+(\[.*\])\s*$", block.text):
            lines.append(shlex.join(json.loads(array)))
    else:
        return []
    found = []
    for line in lines:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        found.extend(_shell_commands(words))
    return found


def _shell_commands(words: list[str]) -> list[list[str]]:
    found, segment = [], []
    for word in [*words, ";"]:
        if word not in ("&&", "||", ";", "|"):
            if not re.match(r"^\d*[<>]", word):  # redirections such as 2>&1
                segment.append(word)
            continue
        while segment and (segment[0] == "sudo" or re.match(r"^\w+=", segment[0])):
            segment.pop(0)
        if segment[:2] in (["python", "-m"], ["python3", "-m"]):
            segment = segment[2:]
        if segment and Path(segment[0]).name == "mvbridge":
            found.append([a for a in segment[1:] if a != "..."])
        segment = []
    return found


def _yaml_commands(node: object, found: list[list[str]]) -> None:
    if isinstance(node, list):
        if node and node[0] == "mvbridge" and all(isinstance(a, str) for a in node):
            found.append([a for a in node[1:] if a != "..."])
            return
        for item in node:
            _yaml_commands(item, found)
    elif isinstance(node, dict):
        for value in node.values():
            _yaml_commands(value, found)
