"""Type stubs (.pyi) for the modules envs expose, so editors and type checkers see their API.

Internal. ``mvbridge sync`` writes a PEP 561 *partial* stub package, ``mvbridge-stubs``, into
the host's site-packages (or ``MVBRIDGE_STUBS_DIR``): type checkers then read
``mvbridge/dep_a.pyi`` (a package: ``mvbridge/dep_a/__init__.pyi`` and one file per submodule)
from it and everything else from mvbridge itself. The worker reads the module
(``core/stubinfo.py``); this side renders it:

* signatures keep names, kinds, defaults (as ``...``) and annotations; a type in an annotation
  is written by its name where the host has that type (a builtin, a class of the host's
  standard library or installed packages, a class of the stubbed module itself), ``Any``
  otherwise, so the stub never names what a type checker here cannot find;
* classes keep their bases where the host has them; an exception class derives at least from
  its nearest builtin base (``Exception``, ``ValueError`` ...), so ``except`` type-checks;
* module constants keep their types; a package's submodules get stubs of their own.

``stubs.json`` in the package says which project and env each stub came from: a sync removes
the stubs of envs its config no longer declares (and of modules an env no longer exposes).
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import inspect
import json
import keyword
import os
import shutil
import sys
import sysconfig
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Config
from ..core.ops import BINARY_OPERATORS
from .envs import EnvRecord
from .importer import OWN_NAMES, configured_env
from .stub_listings import listings

PACKAGE = "mvbridge-stubs"
MANIFEST = "stubs.json"
_lock = threading.Lock()  # sync writes the stubs of several envs side by side
# Builtin generics, written with their parameters (``dict[Any, Any]``) where the source has none.
_GENERIC_ARITY = {"list": 1, "set": 1, "frozenset": 1, "dict": 2, "type": 1, "tuple": -1}
# Typing forms a subscript may keep: the host has them, whatever the env's Python.
_SUBSCRIPTABLE_MODULES = ("builtins", "collections.abc", "typing", "collections")


def stubs_root() -> Path:
    """Where the stub package goes: ``MVBRIDGE_STUBS_DIR`` or the host's site-packages."""
    return Path(os.environ.get("MVBRIDGE_STUBS_DIR") or sysconfig.get_paths()["purelib"])


def _stub_path(package: Path, module: str) -> Path | None:
    for path in (package / f"{module}.pyi", package / module / "__init__.pyi"):
        if path.is_file():
            return path
    return None


def stubs_present(record: EnvRecord) -> bool:
    """True when every exposed module of ``record`` has its stub file."""
    package = stubs_root() / PACKAGE
    return all(_stub_path(package, m) is not None for m in record.modules if m not in OWN_NAMES)


def write_stubs(
    config: Config, records: dict[str, EnvRecord], progress: Callable[[str], None]
) -> Path | None:
    """Write a stub per exposed top-level module (and its submodules); return the package."""
    package = stubs_root() / PACKAGE
    written = 0
    for name, record in records.items():
        env = configured_env(name, config)
        if env is None:
            continue
        try:
            modules = write_env_stubs(env, name, record.modules, progress, record)
        finally:
            env.shutdown()
        if modules is None:
            return None
        with _lock:
            _record_env(package, config, name, modules)
        written += len(modules)
    return package if written else None


def write_env_stubs(
    env: Any,
    env_name: str,
    modules: list[str],
    progress: Callable[[str], None],
    record: EnvRecord | None = None,
) -> list[str] | None:
    """Write the stubs of ``modules`` of ``env``; the modules written, or None when the stub
    package cannot be written at all. With the env's ``record``, listings cached for what it
    holds are used, and ``env`` starts only for the others (``stub_listings.py``)."""
    package = stubs_root() / PACKAGE
    done = []
    for module in modules:
        if module in OWN_NAMES:
            continue
        try:
            files = _module_stubs(env, module, env_name, record)
        except Exception as exc:
            progress(f"no stub for {module!r} of env {env_name!r}: {type(exc).__name__}: {exc}")
            continue
        try:
            with _lock:
                package.mkdir(parents=True, exist_ok=True)
                _remove_module(package, module)
                for relative, text in files.items():
                    path = package / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
                (package / "py.typed").write_text("partial\n")
        except OSError as exc:
            progress(f"cannot write stubs to {package}: {exc}; set MVBRIDGE_STUBS_DIR")
            return None
        done.append(module)
    return done


def prune_stubs(config: Config, progress: Callable[[str], None]) -> list[str]:
    """Remove the stubs of this project's envs that its config no longer declares, and of
    modules those envs no longer expose; return the modules removed."""
    package = stubs_root() / PACKAGE
    removed: list[str] = []
    with _lock:
        manifest = _read_manifest(package)
        project = manifest.get(str(config.root), {})
        for env_name in list(project):
            if env_name in config.envs:
                continue
            for module in project.pop(env_name):
                if _owner(manifest, module) is None:
                    _remove_module(package, module)
                    removed.append(module)
            progress(f"env {env_name!r} is no longer declared: its type stubs were removed")
        if project:
            manifest[str(config.root)] = project
        else:
            manifest.pop(str(config.root), None)
        _write_manifest(package, manifest)
    return removed


def _record_env(package: Path, config: Config, env_name: str, modules: list[str]) -> None:
    manifest = _read_manifest(package)
    project = manifest.setdefault(str(config.root), {})
    before = set(project.get(env_name, ()))
    project[env_name] = sorted(modules)
    for module in before - set(modules):  # no longer exposed by this env
        if _owner(manifest, module) is None:
            _remove_module(package, module)
    if package.is_dir():
        _write_manifest(package, manifest)


def _owner(manifest: dict[str, Any], module: str) -> tuple[str, str] | None:
    for root, envs in manifest.items():
        for env_name, modules in envs.items():
            if module in modules:
                return root, env_name
    return None


def _read_manifest(package: Path) -> dict[str, Any]:
    try:
        found = json.loads((package / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write_manifest(package: Path, manifest: dict[str, Any]) -> None:
    if package.is_dir():
        (package / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _remove_module(package: Path, module: str) -> None:
    (package / f"{module}.pyi").unlink(missing_ok=True)
    if (package / module).is_dir():
        shutil.rmtree(package / module, ignore_errors=True)


def _module_stubs(
    env: Any, module: str, env_name: str, record: EnvRecord | None = None
) -> dict[str, str]:
    """The stub files of ``module`` (relative path -> text), its submodules included."""
    found = listings(env, module, record)
    listing = found["module"]
    if not listing["package"]:
        return {f"{module}.pyi": render_stub(module, env_name, listing)}
    files = {}
    subs = []
    # A submodule's classes derive from the package's (numpy.core's from numpy's): named
    # through the package's stub, never by the host's own version of that package.
    package_classes = {
        e["name"]: bool(e.get("exception")) for e in listing["entries"] if e["kind"] == "class"
    }
    for sub in listing["submodules"]:
        if sub not in found["submodules"]:  # not readable, or not a name to import
            continue
        sub_listing = dict(found["submodules"][sub])
        sub_listing["submodules"] = []  # one level: deeper ones are rarely imported by path
        files[f"{module}/{sub}.pyi"] = render_stub(
            f"{module}.{sub}", env_name, sub_listing, package=(module, package_classes)
        )
        subs.append(sub)
    listing = {**listing, "submodules": subs}
    if not subs:  # a package without submodules to show: one file, as for a module
        return {f"{module}.pyi": render_stub(module, env_name, listing)}
    files[f"{module}/__init__.pyi"] = render_stub(module, env_name, listing)
    return files


class _Renderer:
    """Renders annotation trees (``core/stubinfo.py``) for one stub file."""

    def __init__(self, module: str, local_names: set[str], local_classes: set[str]) -> None:
        self.module = module
        self.local_names = local_names
        self.local_classes = local_classes
        self.imports: set[str] = set()
        # A submodule's package, and its classes (True: an exception class).
        self.package: tuple[str, dict[str, bool]] = ("", {})
        self.exceptions: set[str] = set()  # this module's exception classes
        self.members: dict[str, set[str]] = {}  # this module's classes: their members' names
        self.bases: dict[str, list[str]] = {}  # and their bases, as rendered

    def annotation(self, tree: Any) -> str:
        text = self._render(tree)
        return "None" if text == "none" else text

    def _render(self, tree: Any) -> str:
        if not isinstance(tree, list) or not tree:
            return "Any"
        kind = tree[0]
        if kind == "none":
            return "None"
        if kind == "ellipsis":
            return "..."
        if kind == "class":
            return self.class_name(tree[1], tree[2], bare_generic=True) or "Any"
        if kind == "union":
            parts = []
            for part in tree[1]:
                text = self._render(part)
                if text == "Any":
                    return "Any"
                if text not in parts:
                    parts.append(text)
            return " | ".join(parts) if parts else "Any"
        if kind == "literal":
            values = [repr(v) for v in tree[1] if isinstance(v, (str, int, bool, type(None)))]
            if not values:
                return "Any"
            self.imports.add("typing")
            return f"typing.Literal[{', '.join(values)}]"
        if kind == "callable":
            result = self._render(tree[2])
            params = "..." if tree[1] is None else f"[{', '.join(map(self._render, tree[1]))}]"
            self.imports.add("collections.abc")
            return f"collections.abc.Callable[{params}, {result}]"
        if kind == "sub":
            base = tree[1]
            name = self.class_name(base[1], base[2], bare_generic=False)
            if name is None:
                return "Any"
            if base[1] not in _SUBSCRIPTABLE_MODULES:
                return name  # whether the host's class takes parameters is not known here
            args = [self._render(a) for a in tree[2]]
            if not args:
                return self.class_name(base[1], base[2], bare_generic=True) or "Any"
            if "..." in args and not (base[2] == "tuple" and args[-1] == "..."):
                return name
            return f"{name}[{', '.join(args)}]"
        return "Any"

    def class_name(self, module: str, qualname: str, bare_generic: bool) -> str | None:
        """How this stub names class ``module.qualname``, or None where the host lacks it."""
        if module == "builtins":
            if qualname == "NoneType":
                return "None"
            if not isinstance(getattr(builtins, qualname, None), type):
                return None
            name = qualname
            if qualname in self.local_names:
                self.imports.add("builtins")
                name = f"builtins.{qualname}"
            arity = _GENERIC_ARITY.get(qualname)
            if bare_generic and arity:
                name += "[Any, ...]" if arity < 0 else f"[{', '.join(['Any'] * arity)}]"
            return name
        if module == self.module and qualname in self.local_classes:
            return qualname
        top = module.partition(".")[0]
        if top == self.module.partition(".")[0]:
            # The env's own package: the stub's classes, not the host's version of them.
            package, classes = self.package
            if module == package and qualname in classes:
                self.imports.add(f"mvbridge.{package}")
                return f"mvbridge.{package}.{qualname}"
            return None
        if not _host_has(module, qualname):
            return None
        if top in self.local_names or top == "Any":
            return None  # the stub's own name would shadow the module
        self.imports.add(module)
        return f"{module}.{qualname}"


_host_cache: dict[tuple[str, str], bool] = {}


def _host_has(module: str, qualname: str) -> bool:
    """True when this interpreter has class ``qualname`` in ``module`` (imported to see)."""
    key = (module, qualname)
    if key not in _host_cache:
        _host_cache[key] = _look_up(module, qualname)
    return _host_cache[key]


def _look_up(module: str, qualname: str) -> bool:
    if module.startswith("mvbridge") or "<" in qualname:
        return False
    if any(part.startswith("_") for part in qualname.split(".")):
        return False  # private: type checkers' stubs of that module need not have it
    found: Any = sys.modules.get(module)
    if found is None:
        try:
            if importlib.util.find_spec(module.partition(".")[0]) is None:
                return False
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. numpy 2's numpy.core: deprecated
                found = importlib.import_module(module)
        except Exception:
            return False
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return isinstance(found, type)


def render_stub(
    module: str,
    env_name: str,
    listing: dict[str, Any],
    package: tuple[str, dict[str, bool]] | None = None,
) -> str:
    """The text of a module's stub from ``stubinfo.stub_listing``'s answer (``package``: the
    name and class names of the package a submodule belongs to)."""
    entries = []
    seen = set()
    for entry in listing["entries"]:
        name = entry["name"]
        usable = name.isidentifier() and not keyword.iskeyword(name) and name != "Any"
        if usable and name not in seen:  # __all__ may name one twice
            seen.add(name)
            entries.append(entry)
    submodules = listing.get("submodules", [])
    local_names = {e["name"] for e in entries} | set(submodules)
    local_classes = {e["name"] for e in entries if e["kind"] == "class"}
    renderer = _Renderer(module, local_names, local_classes)
    if package is not None:
        renderer.package = package
    renderer.exceptions = {e["name"] for e in entries if e["kind"] == "class" and e["exception"]}
    renderer.members = {
        e["name"]: {m["name"] for m in e.get("methods", [])}
        for e in entries
        if e["kind"] == "class"
    }
    body: list[str] = []
    for sub in submodules:
        body.append(f"from . import {sub} as {sub}")
    if submodules:
        body.append("")
    for entry in entries:
        name = entry["name"]
        if entry["kind"] == "function":
            body += [*_function(renderer, name, entry.get("signature"), entry.get("doc"), ""), ""]
        elif entry["kind"] == "class":
            body += [*_class(renderer, entry), ""]
        else:
            body += [f"{name}: {renderer.annotation(entry.get('type'))}", ""]
    head = [
        f'"""Stub of module {module!r} of env {env_name!r}, written by `mvbridge sync`."""',
        "",
        *[f"import {m}" for m in sorted(renderer.imports)],
        "from typing import Any",
        "",
    ]
    return "\n".join(head + body).rstrip() + "\n"


def _class(renderer: _Renderer, entry: dict[str, Any]) -> list[str]:
    name = entry["name"]
    bases = []
    for base in entry.get("bases", []):
        if base and base[0] == "class" and base[2] != name:
            text = renderer.class_name(base[1], base[2], bare_generic=True)
            if text is not None and text not in bases:
                bases.append(text)
    own = [b for b in bases if b in renderer.local_classes or b.startswith("mvbridge.")]
    if own:
        # Mixed with a host class (numpy's float64 is a floating and a float), their members
        # would disagree in the stub, which knows the one's only roughly: keep the env's.
        bases = own
    if entry.get("exception") and not any(_is_exception(renderer, b) for b in bases):
        bases = [*own, entry.get("builtin_base") or "Exception"]
    renderer.bases[name] = bases
    inherited = _inherited_names(renderer, bases)
    head = f"class {name}({', '.join(bases)}):" if bases else f"class {name}:"
    lines = [head]
    if entry.get("doc"):
        lines.append(f"    {_docstring(entry['doc'])}")
    for method in entry.get("methods", []):
        attr = method["name"]
        if not attr.isidentifier() or keyword.iskeyword(attr):
            continue
        kind = method["kind"]
        if kind in ("attribute", "property") and attr in inherited:
            continue  # a base has it already; a stub cannot tell an override's kind apart
        if kind == "attribute":
            lines.append(f"    {attr}: {renderer.annotation(method.get('type'))}")
            continue
        decorator = {"classmethod": "@classmethod", "staticmethod": "@staticmethod"}.get(
            kind, "@property" if kind == "property" else None
        )
        if decorator:
            lines.append(f"    {decorator}")
        signature = method.get("signature")
        if attr in _OPERATORS or (attr in inherited and attr != "__init__"):
            # An override must accept what its base's version accepts, and the operators'
            # pairs (__pow__, __ipow__) each other's: the loosest signature always does.
            signature = None
        lines += _function(
            renderer,
            attr,
            signature,
            method.get("doc"),
            "    ",
            bound=kind != "staticmethod",
            result="None" if attr == "__init__" else None,
        )
    if len(lines) == 1:
        lines.append("    ...")
    return lines


_UNARY_AND_COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne", "neg", "pos", "abs", "invert")
_OPERATORS = frozenset(
    "__%s%s__" % (prefix, op) for op in (*BINARY_OPERATORS, "divmod") for prefix in ("", "r", "i")
) | frozenset("__%s__" % op for op in _UNARY_AND_COMPARISONS)


def _inherited_names(renderer: _Renderer, bases: list[str]) -> set[str]:
    """The member names ``bases`` (as rendered) have: this module's classes' as listed, the
    host's classes' as they are here."""
    found: set[str] = set()
    for base in bases:
        if base in renderer.members:
            found |= renderer.members[base]
            found |= _inherited_names(renderer, renderer.bases.get(base, []))
            continue
        owner: Any = builtins
        name = base.partition("[")[0]
        if "." in name:
            module, _, name = name.rpartition(".")
            owner = sys.modules.get(module)
        cls = getattr(owner, name, None)
        if isinstance(cls, type):
            found |= set(dir(cls))
    return found


def _is_exception(renderer: _Renderer, base: str) -> bool:
    """True when base ``base`` (as rendered) is an exception class."""
    if base in renderer.local_classes:
        return base in renderer.exceptions
    package, classes = renderer.package
    if base.startswith(f"mvbridge.{package}."):
        return classes.get(base.rpartition(".")[2], False)
    found: Any = builtins
    if "." in base:
        module, _, qualname = base.rpartition(".")
        found = sys.modules.get(module)
        base = qualname
    cls = getattr(found, base, None)
    return isinstance(cls, type) and issubclass(cls, BaseException)


def _function(
    renderer: _Renderer,
    name: str,
    signature: Any,
    doc: str | None,
    indent: str,
    bound: bool = False,
    result: str | None = None,
) -> list[str]:
    if signature is None:
        params = "self, *args: Any, **kwargs: Any" if bound else "*args: Any, **kwargs: Any"
        result = result or "Any"
    else:
        params = _parameters(renderer, signature[0], bound)
        if result is None:
            result = renderer.annotation(signature[1]) if signature[1] is not None else "Any"
    head = f"{indent}def {name}({params}) -> {result}:"
    if doc:
        return [head, f"{indent}    {_docstring(doc)}"]
    return [head + " ..."]


def _parameters(renderer: _Renderer, params: list[Any], bound: bool) -> str:
    parts = []
    saw_star = False
    last_positional_only = None
    for i, param in enumerate(params):
        if param[1] == inspect.Parameter.POSITIONAL_ONLY:
            last_positional_only = i
    for i, (name, kind, has_default, annotation) in enumerate(params):
        if not name.isidentifier() or keyword.iskeyword(name):
            name = f"arg{i}"
        default = " = ..." if has_default else ""
        type_text = renderer.annotation(annotation) if annotation is not None else "Any"
        if kind == inspect.Parameter.VAR_POSITIONAL:
            parts.append(f"*{name}: {type_text}")
            saw_star = True
        elif kind == inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{name}: {type_text}")
        elif kind == inspect.Parameter.KEYWORD_ONLY:
            if not saw_star:
                parts.append("*")
                saw_star = True
            parts.append(f"{name}: {type_text}{default}")
        elif bound and i == 0:
            parts.append(name)  # self, cls: the type checker knows their type
        else:
            parts.append(f"{name}: {type_text}{default}")
        if last_positional_only is not None and i == last_positional_only:
            parts.append("/")
    return ", ".join(parts)


def _docstring(doc: str) -> str:
    text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text.endswith('"'):
        text = text[:-1] + '\\"'  # four quotes in a row would end the string early
    return f'"""{text}"""'
