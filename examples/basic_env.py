"""Use a module from another virtualenv through mvbridge (the core bridge, no config file).

Creates a throwaway virtualenv with nothing installed, starts a worker in it, calls its
standard library, ships a host function there, and passes a host callback.
Run: python examples/basic_env.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import mvbridge


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run(
            [sys.executable, "-m", "virtualenv", "-q", "--no-seed", str(venv)], check=True
        )
        with mvbridge.Env("example", interpreter=str(venv / "bin" / "python")) as env:
            remote_sys = env.import_module("sys")
            print("worker prefix is the venv:", remote_sys.prefix == str(venv))
            statistics = env.import_module("statistics")
            print("mean in the worker:", statistics.mean([1, 2, 3, 4]))

            def describe(values):
                return {"n": len(values), "max": max(values)}

            print("host function run there:", env.call(describe, (3, 9, 4)))
            print(
                "host callback:", env.import_module("builtins").sorted([3, 1, 2], key=lambda x: -x)
            )


if __name__ == "__main__":
    main()
