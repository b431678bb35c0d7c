"""Type stubs (.pyi) for the modules envs expose, so editors and mypy see their signatures.

Internal. ``mvbridge sync`` writes a PEP 561 *partial* stub package, ``mvbridge-stubs``, into
the host's site-packages (or ``MVBRIDGE_STUBS_DIR``): type checkers then read
``mvbridge/dep_a.pyi`` from it and everything else from mvbridge itself. Parameters keep their
names, kinds and defaults; types are ``Any``, since the env's types do not exist in the host.
"""

from __future__ import annotations

import inspect
import keyword
import os
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from .envs import EnvRecord
from .importer import OWN_NAMES, configured_env

PACKAGE = "mvbridge-stubs"


def stubs_root() -> Path:
    """Where the stub package goes: ``MVBRIDGE_STUBS_DIR`` or the host's site-packages."""
    return Path(os.environ.get("MVBRIDGE_STUBS_DIR") or sysconfig.get_paths()["purelib"])


def stubs_present(record: EnvRecord) -> bool:
    """True when every exposed module of ``record`` has its stub file."""
    package = stubs_root() / PACKAGE
    return all((package / f"{m}.pyi").is_file() for m in record.modules if m not in OWN_NAMES)


def write_stubs(
    config: Config, records: dict[str, EnvRecord], progress: Callable[[str], None]
) -> Path | None:
    """Write a stub per exposed top-level module; return the stub package folder."""
    package = stubs_root() / PACKAGE
    written = 0
    for name, record in records.items():
        env = configured_env(name, config)
        if env is None:
            continue
        for module in record.modules:
            if module in OWN_NAMES:
                continue
            try:
                listing = env.import_module("mvbridge.core.ops").stub_listing(module)
            except Exception as exc:
                progress(f"no stub for {module!r} of env {name!r}: {type(exc).__name__}: {exc}")
                continue
            try:
                package.mkdir(parents=True, exist_ok=True)
                (package / f"{module}.pyi").write_text(render_stub(module, name, listing))
            except OSError as exc:
                progress(f"cannot write stubs to {package}: {exc}; set MVBRIDGE_STUBS_DIR")
                env.shutdown()
                return None
            written += 1
        env.shutdown()
    if not written:
        return None
    (package / "py.typed").write_text("partial\n")
    return package


def render_stub(module: str, env_name: str, listing: list[Any]) -> str:
    """The text of ``module.pyi`` from ``ops.stub_listing``'s answer."""
    lines = [
        f'"""Stub of module {module!r} of env {env_name!r}, written by `mvbridge sync`."""',
        "",
        "from typing import Any",
        "",
    ]
    for name, kind, params, doc, methods in listing:
        if not name.isidentifier() or keyword.iskeyword(name):
            continue
        if kind == "function":
            lines += [*_function(name, params, doc, ""), ""]
        elif kind == "class":
            lines.append(f"class {name}:")
            if doc:
                lines.append(f"    {_docstring(doc)}")
            body = []
            for method, method_params, method_doc in methods:
                if method.isidentifier() and not keyword.iskeyword(method):
                    body += _function(method, method_params, method_doc, "    ")
            lines += [*(body or ["    ..."]), ""]
        elif kind == "value":
            lines += [f"{name}: Any", ""]
    return "\n".join(lines).rstrip() + "\n"


def _function(name: str, params: Any, doc: str | None, indent: str) -> list[str]:
    signature = _parameters(params) if params is not None else "*args: Any, **kwargs: Any"
    head = f"{indent}def {name}({signature}) -> Any:"
    if doc:
        return [head, f"{indent}    {_docstring(doc)}"]
    return [head + " ..."]


def _parameters(desc: Any) -> str:
    params, _ = desc
    parts = []
    saw_star = False
    last_positional_only = None
    for i, param in enumerate(params):
        if param[1] == inspect.Parameter.POSITIONAL_ONLY:
            last_positional_only = i
    for i, (name, kind, has_default, _default, _annotation) in enumerate(params):
        default = " = ..." if has_default else ""
        if kind == inspect.Parameter.VAR_POSITIONAL:
            parts.append(f"*{name}: Any")
            saw_star = True
        elif kind == inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{name}: Any")
        elif kind == inspect.Parameter.KEYWORD_ONLY:
            if not saw_star:
                parts.append("*")
                saw_star = True
            parts.append(f"{name}: Any{default}")
        elif name in ("self", "cls") and i == 0:
            parts.append(name)
        else:
            parts.append(f"{name}: Any{default}")
        if last_positional_only is not None and i == last_positional_only:
            parts.append("/")
    return ", ".join(parts)


def _docstring(doc: str) -> str:
    text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return f'"""{text}"""'
