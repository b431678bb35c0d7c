"""The command line's own manners (#12, point 6): version, usage errors, an empty config."""

from __future__ import annotations

import mvbridge
from tests.helpers import run_cli, write_config


def test_version(tmp_path):
    done = run_cli(["--version"], tmp_path, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"mvbridge {mvbridge.__version__}"


def test_a_usage_error_shows_that_subcommands_usage(tmp_path):
    done = run_cli(["sync", "--no-such-option"], tmp_path, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: mvbridge sync")
    assert "mvbridge sync: error: unrecognized arguments: --no-such-option" in done.stderr


def test_every_subcommand_and_argument_has_help():
    from mvbridge.cli import _parser

    parser = _parser()
    commands = next(a for a in parser._actions if a.dest == "==SUPPRESS==" or a.choices)
    for choice in commands._choices_actions:
        assert choice.help, choice.dest
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.dest not in ("help", "command_parser"):
                assert action.help, f"mvbridge {name}: {action.dest} has no help"


def test_a_config_without_envs_warns(tmp_path):
    write_config(tmp_path, "# envs come later\n")
    done = run_cli(["sync"], tmp_path, timeout=60)
    assert done.returncode == 0
    assert "declares no envs" in done.stderr
    assert "mvbridge plan --write" in done.stderr
