"""Finds a library's doctests and runs them natively: run by the env's own interpreter.

``python native_doctests.py PACKAGE [PACKAGE ...]`` prints one JSON document on stdout: each
docstring test found by ``doctest.DocTestFinder`` in every importable module of the packages,
as plain data (module, name, line, examples with their options), the module globals its
examples name, and the outcome of each example run natively by ``doctest.DocTestRunner``. The
host, which cannot import the library, rebuilds the same tests from this data and runs them
through proxies (``bridged.py``). Standard library only.
"""

from __future__ import annotations

import doctest
import importlib
import io
import json
import keyword
import pkgutil
import sys
import tokenize
import traceback
import warnings

# The same flags for both runs, so that the bridged run is held to what passes natively.
OPTIONFLAGS = doctest.ELLIPSIS
# Test suites that ship inside the packages: their docstrings are not the library's examples.
SKIPPED_PARTS = frozenset(["test", "tests", "testing", "conftest"])
FLAG_NAMES = {value: name for name, value in doctest.OPTIONFLAGS_BY_NAME.items()}


def module_names(package: str) -> list[str]:
    """``package`` and its submodules, tests left out."""
    root = importlib.import_module(package)
    names = [package]
    path = getattr(root, "__path__", None)
    if path is not None:
        for info in pkgutil.walk_packages(path, package + ".", onerror=lambda name: None):
            if not SKIPPED_PARTS.intersection(info.name.split(".")):
                names.append(info.name)
    return names


def names_used(source: str) -> set[str]:
    """Names an example's source reads (not attribute names after a dot)."""
    found = set()
    previous = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if (
                token.type == tokenize.NAME
                and previous != "."
                and not keyword.iskeyword(token.string)
            ):
                found.add(token.string)
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
                previous = token.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return found


def example_data(example: doctest.Example) -> dict:
    return {
        "source": example.source,
        "want": example.want,
        "exc_msg": example.exc_msg,
        "lineno": example.lineno,
        "indent": example.indent,
        "options": {FLAG_NAMES[flag]: on for flag, on in example.options.items()},
    }


class RecordingRunner(doctest.DocTestRunner):
    """Records each example's outcome (by its index in its test) instead of printing it."""

    def run(self, test, compileflags=None, out=None, clear_globs=True):
        self.outcomes = {}
        self._index = {id(example): index for index, example in enumerate(test.examples)}
        return super().run(test, compileflags, lambda text: None, clear_globs)

    def report_start(self, out, test, example):
        pass

    def report_success(self, out, test, example, got):
        self.outcomes[self._index[id(example)]] = ["passed", got]

    def report_failure(self, out, test, example, got):
        self.outcomes[self._index[id(example)]] = ["failed", got]

    def report_unexpected_exception(self, out, test, example, exc_info):
        text = "".join(traceback.format_exception_only(*exc_info[:2]))
        self.outcomes[self._index[id(example)]] = ["error", text]


def collect(package: str) -> dict:
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = RecordingRunner(optionflags=OPTIONFLAGS)
    tests = []
    unimportable = {}
    for name in module_names(package):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = importlib.import_module(name)
        except Exception as exc:  # e.g. dateutil.tz.win off Windows
            unimportable[name] = "%s: %s" % (type(exc).__name__, exc)
            continue
        for test in finder.find(module, name):
            used = set()
            for example in test.examples:
                used |= names_used(example.source)
            needed = sorted(used & set(test.globs) - {"__builtins__"})
            data = {
                "module": name,
                "name": test.name,
                "lineno": test.lineno,
                "globals": needed,
                "examples": [example_data(example) for example in test.examples],
            }
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runner.run(test)
            data["native"] = [
                runner.outcomes.get(i, ["not run", ""]) for i in range(len(test.examples))
            ]
            tests.append(data)
    return {"package": package, "tests": tests, "unimportable": unimportable}


def main(argv: list[str]) -> int:
    json.dump({"python": sys.version, "packages": [collect(p) for p in argv]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
