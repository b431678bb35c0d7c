"""Runs doctests found in an env (``native_doctests.py``) in the host, through proxies.

``python -m tests.transparency.bridged ENV_PYTHON TOPS INPUT`` runs, in a host venv that has
mvbridge and nothing of the library (``dists.version_of`` of each top-level name is reported,
so the test can check), the packages in the JSON file INPUT as ``native_doctests`` found them,
and prints the outcomes as JSON. A fresh host of its own, because the test's own interpreter
may have the very version of a library installed (CI's does: hypothesis brings
sortedcontainers), and then its objects would cross by value and not test the proxies.

The host cannot import the library: each test's globals are the proxies of the module's own
globals that its examples name, and ``import toolz`` / ``from dateutil import tz`` inside an
example find the env's module proxies (``ProxyImports``), as ``from mvbridge import toolz``
would. The examples, their options and their expected output are the native ones, unchanged.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib.abc
import importlib.machinery
import json
import sys
import traceback
from typing import Any

import mvbridge
from mvbridge.core import dists

from .native_doctests import OPTIONFLAGS


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One example: where it is, its source, and how it did natively and bridged."""

    test: str
    index: int
    source: str
    want: str
    native: str  # passed, failed, error, or not run (+SKIP)
    native_got: str  # the native output (or exception)
    bridged: str
    got: str  # the bridged output (or exception)


class _Loader(importlib.abc.Loader):
    def __init__(self, env: mvbridge.Env) -> None:
        self.env = env

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.env.import_module(spec.name)

    def exec_module(self, module: Any) -> None:
        pass  # the worker ran it


class ProxyImports(importlib.abc.MetaPathFinder):
    """While active, ``import NAME[.sub]`` for the env's top-level ``names`` gives proxies."""

    def __init__(self, env: mvbridge.Env, names: list[str]) -> None:
        self.env = env
        self.names = frozenset(names)
        self._saved: dict[str, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.partition(".")[0] not in self.names:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(self.env), is_package=True)

    def _ours(self, name: str) -> bool:
        return name.partition(".")[0] in self.names

    def __enter__(self) -> ProxyImports:
        # The host may have a copy of its own (mkdocs brings python-dateutil): set it aside.
        self._saved = {name: mod for name, mod in sys.modules.items() if self._ours(name)}
        for name in self._saved:
            del sys.modules[name]
        sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.meta_path.remove(self)
        for name in [name for name in sys.modules if self._ours(name)]:
            del sys.modules[name]
        sys.modules.update(self._saved)


class _RecordingRunner(doctest.DocTestRunner):
    def run(self, test, compileflags=None, out=None, clear_globs=True):
        self.outcomes: dict[int, tuple[str, str]] = {}
        self._index = {id(example): index for index, example in enumerate(test.examples)}
        return super().run(test, compileflags, lambda text: None, clear_globs)

    def report_start(self, out, test, example):
        pass

    def report_success(self, out, test, example, got):
        self.outcomes[self._index[id(example)]] = ("passed", got)

    def report_failure(self, out, test, example, got):
        self.outcomes[self._index[id(example)]] = ("failed", got)

    def report_unexpected_exception(self, out, test, example, exc_info):
        text = "".join(traceback.format_exception_only(*exc_info[:2]))
        self.outcomes[self._index[id(example)]] = ("error", text)


def _example(data: dict[str, Any]) -> doctest.Example:
    options = {doctest.OPTIONFLAGS_BY_NAME[name]: on for name, on in data["options"].items()}
    return doctest.Example(
        data["source"], data["want"], data["exc_msg"], data["lineno"], data["indent"], options
    )


def _globs(env: mvbridge.Env, test: dict[str, Any]) -> dict[str, Any]:
    module = env.import_module(test["module"])
    globs: dict[str, Any] = {"__name__": test["module"]}
    for name in test["globals"]:
        if name.startswith("__") and name != "__name__":
            continue
        try:
            globs[name] = getattr(module, name)
        except AttributeError:
            pass  # then the example's NameError says so
    return globs


def run_package(env: mvbridge.Env, package: dict[str, Any], tops: list[str]) -> list[Outcome]:
    """Every example of ``package`` (as ``native_doctests.collect`` found it), run bridged."""
    runner = _RecordingRunner(optionflags=OPTIONFLAGS)
    outcomes = []
    with ProxyImports(env, tops):
        for data in package["tests"]:
            examples = [_example(example) for example in data["examples"]]
            test = doctest.DocTest(
                examples, _globs(env, data), data["name"], None, data["lineno"], None
            )
            runner.run(test)
            for index, (example, native) in enumerate(zip(examples, data["native"], strict=True)):
                status, got = runner.outcomes.get(index, ("not run", ""))
                outcomes.append(
                    Outcome(data["name"], index, example.source, example.want, *native, status, got)
                )
    return outcomes


def main(argv: list[str]) -> None:
    interpreter, tops, source = argv[0], argv[1].split(","), argv[2]
    with open(source) as file:
        packages = json.load(file)
    versions = {top: dists.version_of(top) for top in tops}
    outcomes = []
    with mvbridge.Env("transparency", interpreter=interpreter) as env:
        for package in packages:
            outcomes += run_package(env, package, tops)
    json.dump(
        {"versions": versions, "outcomes": [dataclasses.asdict(o) for o in outcomes]}, sys.stdout
    )


if __name__ == "__main__":
    main(sys.argv[1:])
