"""One docs page run as a reader would: a fresh project folder, each block in order.

Commands run in bash, python blocks in one interpreter for the page (tests/doc_python.py),
services in the background until the page ends. The rules are in tests/test_doc_pages.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.doc_blocks import (
    ROOT,
    Block,
    BlockError,
    Command,
    Page,
    commands,
    expects_failure,
    missing_lines,
    mvbridge_command_lines,
)
from tests.helpers import free_port, wait_until

COMMAND_TIMEOUT = 600.0  # an env build on a cold cache; every other step takes seconds
SHELLS = {"console", "bash", "sh", "shell"}
LOOPBACK = {"127.0.0.1", "localhost"}
_ADDRESS = re.compile(r"tcp://([\w.\-]+):(\d+)")


class Session:
    """The run of one page in ``folder``: ``folder/project`` is the reader's project.

    Use as a context manager: ``run()`` runs every block and raises BlockError for the first
    that fails; leaving the block stops whatever the page started.
    """

    def __init__(self, page: Page, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.project = folder / "project"
        self.cwd = self.project  # `$ cd DIR` moves it
        self.venv: Path | None = None  # made by the page's first `pip install`
        self.ports: dict[str, int] = {}  # a port the page names -> the free one used instead
        self.services: list[tuple[str, subprocess.Popen, Path]] = []
        self.python: PythonBlocks | None = None
        self.output: str | None = None  # what the last block that ran something printed

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self) -> None:
        if self.page.project:
            source = ROOT / self.page.project
            if not source.is_dir():
                raise BlockError(f"{self.page.path}: project folder {source} does not exist")
            ignore = shutil.ignore_patterns(
                ".mvbridge", "mvbridge.lock", "__pycache__", "build", "*.egg-info", "keys"
            )
            shutil.copytree(source, self.project, ignore=ignore)
        self.project.mkdir(parents=True, exist_ok=True)
        if shutil.which("git"):  # a project folder is a git repository, as a reader's is
            subprocess.run(["git", "init", "-q", str(self.project)], check=True, timeout=30)
        for block in self.page.blocks:
            self.run_block(block)
        self.finish()

    def run_block(self, block: Block) -> None:
        output, self.output = self.output, None
        if block.marker == "skip":
            check_command_lines(block)
        elif block.marker == "shows":
            self._check_shown_file(block)
        elif block.lang == "text" and block.file is None:
            if output is None:
                raise block.fail(
                    "a text block shows the output of the block before it, and there is none; "
                    "mark it <!-- docs-test: skip: REASON --> if it is an illustration"
                )
            _compare(block, block.text, output, "the block before printed")
        elif block.file is not None:
            self._write_file(block)
        elif block.lang == "toml":
            load_config_text(block, block.text, self.folder / "configs" / str(block.line))
        elif block.lang in SHELLS:
            text = self._addresses(block)
            for command in commands(dataclasses.replace(block, text=text)):
                self.output = self._run_command(block, command)
        elif block.lang == "python":
            self._run_python(block)
        else:
            raise block.fail(
                f"the docs test cannot run a ```{block.lang or '(no language)'} block; mark it "
                "<!-- docs-test: skip: REASON --> if it cannot run here"
            )

    # -- files ---------------------------------------------------------------------------
    def _write_file(self, block: Block) -> None:
        path = self._inside(block, self.project / str(block.file))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self._addresses(block) + "\n", encoding="utf-8")
        if is_config(path):
            load_config_file(block, path)

    def _check_shown_file(self, block: Block) -> None:
        path = self._inside(block, self.project / block.argument)
        if not path.is_file():
            raise block.fail(f"it shows {block.argument}, which the blocks before did not write")
        _compare(block, block.text, path.read_text(encoding="utf-8"), f"{block.argument} has", True)
        if is_config(path):
            load_config_file(block, path)

    def _inside(self, block: Block, path: Path) -> Path:
        if not path.resolve().is_relative_to(self.folder.resolve()):
            raise block.fail(f"{path} is outside the page's folder")
        return path

    def _addresses(self, block: Block) -> str:
        """The block's text with each ``tcp://HOST:PORT`` on 127.0.0.1 and a free port (one
        per port the page names). Another host than loopback needs the ``loopback`` marker."""
        moved = []

        def local(match: re.Match) -> str:
            host, port = match.groups()
            if host not in LOOPBACK:
                if block.marker != "loopback":
                    raise block.fail(
                        f"tcp://{host}:{port} is not a loopback address; mark the block "
                        "<!-- docs-test: loopback --> to run it on 127.0.0.1, or skip it"
                    )
                moved.append(host)
            self.ports.setdefault(port, free_port())
            return f"tcp://127.0.0.1:{self.ports[port]}"

        text = _ADDRESS.sub(local, block.text)
        if block.marker == "loopback" and not moved:
            raise block.fail("marked loopback, yet it has no address other than loopback")
        return text

    # -- commands ------------------------------------------------------------------------
    def _run_command(self, block: Block, command: Command) -> str:
        line = command.line
        cd = re.fullmatch(r"cd\s+(\S+)", line)
        if cd:
            self.cwd = self._inside(block, (self.cwd / cd.group(1)).resolve())
            if not self.cwd.is_dir():
                raise block.fail(f"`{line}`: no such folder")
            return ""
        if re.search(r"\bpip install\b", line):
            line = self._pip_install(line)
        if any(args[:1] == ["spawn"] for args in mvbridge_command_lines(_shell_block(line))):
            return self._start_service(block, command, line)
        returncode, output = self._shell(block, line)
        if (returncode != 0) != expects_failure(command.shown):
            expected = "fail, as its output shows" if returncode == 0 else "succeed"
            raise block.fail(
                f"`{command.line}` exited with {returncode}; it should {expected}", output
            )
        _compare(block, command.shown, output, f"`{command.line}` printed")
        return output

    def _shell(self, block: Block, line: str) -> tuple[int, str]:
        process = subprocess.Popen(
            ["bash", "-c", line],
            cwd=self.cwd,
            env=self.environ(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so that a timeout ends its children too
        )
        try:
            output, _ = process.communicate(timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise block.fail(f"`{line}` did not end in {COMMAND_TIMEOUT} s", output) from None
        return process.returncode, output

    def _pip_install(self, line: str) -> str:
        """A page that installs packages gets a virtualenv of its own, made before its first
        install; its later commands run in it. ``mvbridge`` is installed from this checkout."""
        if self.venv is None:
            self.venv = self.folder / "venv"
            subprocess.run(
                [sys.executable, "-m", "virtualenv", "-q", str(self.venv)], check=True, timeout=120
            )
        words = shlex.split(line)
        if "mvbridge" not in words:
            return line
        return shlex.join(str(ROOT) if word == "mvbridge" else word for word in words)

    def _start_service(self, block: Block, command: Command, line: str) -> str:
        """`mvbridge spawn` runs in the foreground: start it, wait until it serves."""
        log = self.folder / f"service-{len(self.services)}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", "exec " + line],
                cwd=self.cwd,
                env=self.environ(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.services.append((command.line, process, log))
        wait_until(
            lambda: "serving env" in log.read_text() or process.poll() is not None,
            timeout=COMMAND_TIMEOUT,
        )
        output = log.read_text()
        if process.poll() is not None:
            raise block.fail(f"`{command.line}` exited with {process.returncode}", output)
        _compare(block, command.shown, output, f"`{command.line}` printed")
        return output

    def environ(self) -> dict[str, str]:
        """The environment of the page's commands: its python and mvbridge first on PATH,
        stubs kept in the session, no config named."""
        environ = dict(os.environ)
        environ.pop("MVBRIDGE_CONFIG", None)
        environ.pop("VIRTUAL_ENV", None)
        if self.venv is not None:
            environ["VIRTUAL_ENV"] = str(self.venv)
            first = self.venv / "bin"
        else:
            first = self._host_bin()
        environ["PATH"] = f"{first}{os.pathsep}{environ.get('PATH', '')}"
        environ["MVBRIDGE_STUBS_DIR"] = str(self.folder / "stubs")
        return environ

    def _host_bin(self) -> Path:
        """``python`` and ``mvbridge`` of the interpreter running the tests, as scripts: a
        symlink to a venv's python would not be in the venv."""
        folder = self.folder / "bin"
        if not folder.is_dir():
            folder.mkdir()
            python = shlex.quote(sys.executable)
            for name, command in (("python", python), ("mvbridge", f"{python} -m mvbridge")):
                (folder / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
                (folder / name).chmod(0o755)
        return folder

    # -- python blocks -------------------------------------------------------------------
    def _run_python(self, block: Block) -> None:
        if self.python is None:
            python = str(self.venv / "bin" / "python") if self.venv else sys.executable
            self.python = PythonBlocks(python, self.environ(), self.folder / "python.log")
        path = self.folder / "python" / f"{self.page.path.stem}-line{block.line}.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(self._addresses(block) + "\n", encoding="utf-8")
        ok, output = self.python.run(path, self.cwd)
        if not ok:
            raise block.fail("the block raised", output)
        self.output = output

    # -- the end -------------------------------------------------------------------------
    def finish(self) -> None:
        """End the page's python blocks' interpreter, then stop its services as its reader
        would (SIGTERM drains: exit 0); raise if one of them did not end well."""
        problems = []
        if self.python is not None and self.python.close() != 0:
            problems.append(f"the page's python exited with {self.python.process.returncode}")
        for line, process, log in self.services:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            if process.returncode != 0:
                problems.append(f"`{line}` exited with {process.returncode}:\n{log.read_text()}")
        if problems:
            raise BlockError(f"{self.page.path}: " + "\n".join(problems))

    def close(self) -> None:
        """End whatever is still running (after a failure)."""
        if self.python is not None:
            self.python.close()
        for _, process, _ in self.services:
            if process.poll() is None:
                process.kill()
                process.wait(10)


class PythonBlocks:
    """The one interpreter that runs a page's python blocks (tests/doc_python.py)."""

    def __init__(self, python: str, environ: dict[str, str], log: Path) -> None:
        read_end, write_end = os.pipe()
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [python, str(Path(__file__).with_name("doc_python.py")), str(write_end)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=environ,
                pass_fds=(write_end,),
                text=True,
            )
        os.close(write_end)
        self.replies = os.fdopen(read_end)

    def run(self, path: Path, cwd: Path) -> tuple[bool, str]:
        """Run the block in ``path``: (it did not raise, what it printed)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"path": str(path), "cwd": str(cwd)}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.replies], [], [], COMMAND_TIMEOUT)
        line = self.replies.readline() if ready else ""
        if not line:
            problem = "did not answer in time" if not ready else "died"
            return False, f"the page's python {problem}:\n{self.log.read_text()}"
        reply = json.loads(line)
        return reply["ok"], reply["output"]

    def close(self) -> int | None:
        """End it (its workers stop with it); its exit code."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.replies.close()
        return self.process.returncode


# -- checks without running --------------------------------------------------------------
def check_command_lines(block: Block) -> None:
    """Every ``mvbridge`` command line of a block that is not run is one mvbridge accepts."""
    import contextlib
    import io

    from mvbridge.cli import _parser

    for args in mvbridge_command_lines(block):
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                parsed = _parser().parse_args(args)
        except SystemExit:
            problem = f"`mvbridge {shlex.join(args)}` does not parse"
            raise block.fail(problem, errors.getvalue()) from None
        if not hasattr(parsed, "run"):
            raise block.fail(f"`mvbridge {shlex.join(args)}` names no command")


def is_config(path: Path) -> bool:
    """An mvbridge config: ``mvbridge.toml``, or a ``pyproject.toml`` with [tool.mvbridge]."""
    import tomllib

    if path.name == "mvbridge.toml":
        return True
    if path.name != "pyproject.toml":
        return False
    return "mvbridge" in tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})


def load_config_text(block: Block, text: str, folder: Path) -> None:
    """A toml block that is a config example: it loads as ``mvbridge.toml``, or as a
    ``pyproject.toml`` when it is a ``[tool.mvbridge...]`` table."""
    name = "pyproject.toml" if re.search(r"^\[tool\.mvbridge\b", text, re.M) else "mvbridge.toml"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text + "\n", encoding="utf-8")
    load_config_file(block, folder / name)


def load_config_file(block: Block, path: Path) -> None:
    from mvbridge.config import load_config
    from mvbridge.errors import ConfigError

    try:
        config = load_config(path)
    except ConfigError as exc:
        raise block.fail(
            f"it does not load as an mvbridge config ({exc}); if it is not one, give its file "
            "as its first line (# NAME) or mark it <!-- docs-test: shows: FILE -->"
        ) from None
    if config is None or not config.envs:
        raise block.fail("it declares no env, so it is no mvbridge config")


def _compare(block: Block, shown: str, actual: str, what: str, ordered: bool = False) -> None:
    missing = missing_lines(shown, actual, ordered)
    if missing:
        raise block.fail(
            f"{what} no line like these the page shows (normalised):\n  " + "\n  ".join(missing),
            actual,
        )


def _shell_block(line: str) -> Block:
    return Block(Path("command"), 0, "console", "$ " + line)
