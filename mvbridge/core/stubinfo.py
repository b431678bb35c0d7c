"""What a type stub of a module needs, read from the module where it lives (``mvbridge sync``).

Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

``stub_listing`` answers plain data: for each public attribute its kind, signature, docstring,
class bases, methods, or the type of a constant, and the package's submodules. Annotations
travel as small trees, so that the host can tell which of their types it has itself:

    ["any"]  ["none"]  ["ellipsis"]  ["const", value]
    ["class", module, qualname]          a class
    ["sub", tree, [trees]]               tree[args]   (list[int], Mapping[str, Any])
    ["union", [trees]]                   a | b
    ["literal", [values]]                Literal[...]
    ["callable", [trees] or None, tree]  Callable[[args], result]  (None: Callable[..., r])

Annotations written as text (``from __future__ import annotations``) are parsed, and their
names looked up in the module that defines the function, as ``typing.get_type_hints`` would.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import sys
import types
import typing
from typing import Any

_DEPTH = 8
# Dunder methods a stub keeps: what type checkers use (len(), iteration, operators, calls).
_SKIPPED_DUNDERS = frozenset(
    [
        "__new__",
        "__init_subclass__",
        "__class_getitem__",
        "__getattr__",
        "__getattribute__",
        "__setattr__",
        "__delattr__",
        "__dir__",
        "__reduce__",
        "__reduce_ex__",
        "__getstate__",
        "__setstate__",
        "__sizeof__",
        "__subclasshook__",
        "__weakref__",
        "__dict__",
        "__module__",
        "__doc__",
        "__hash__",
        "__eq__",
        "__ne__",
        "__repr__",
        "__str__",
        "__format__",
        "__copy__",
        "__deepcopy__",
    ]
)
# Submodules no user imports through a bridge.
_SKIPPED_SUBMODULES = frozenset(["tests", "conftest", "setup", "__main__"])


def stub_listing(module_name: str) -> dict[str, Any]:
    """``{"entries": [...], "submodules": [...], "package": bool}`` for module ``module_name``.

    Each entry is a dict with ``name`` and ``kind`` ("function", "class" or "value") and, as
    the kind has them, ``signature``, ``doc``, ``bases``, ``builtin_base``, ``exception``,
    ``methods`` and ``type``. Submodules are those a package has already imported or names
    in its ``__all__``: importing every one of them could run code no user asked for.
    """
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if not isinstance(names, (list, tuple)):
        # Without __all__: what the module defines, not what it imported (pd, List, annotations).
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and not isinstance(v, types.ModuleType)
            and getattr(v, "__module__", module_name) == module_name
            and type(v).__name__ != "_Feature"
        ]
    namespace = vars(module)
    entries: list[Any] = []
    submodules: list[str] = []
    package = hasattr(module, "__path__")
    for name in names:
        if not isinstance(name, str):
            continue
        try:
            value = getattr(module, name)
        except Exception:
            continue
        if isinstance(value, types.ModuleType):
            if package and value.__name__ == "%s.%s" % (module_name, name):
                submodules.append(name)
            continue
        try:
            entries.append(_entry(name, value, namespace))
        except Exception:
            entries.append({"name": name, "kind": "value", "type": ["any"]})
    if package:
        prefix = module_name + "."
        for full in list(sys.modules):
            if full.startswith(prefix) and "." not in full[len(prefix) :]:
                short = full[len(prefix) :]
                if (
                    not short.startswith("_")
                    and short not in _SKIPPED_SUBMODULES
                    and short not in submodules
                    and isinstance(sys.modules[full], types.ModuleType)
                ):
                    submodules.append(short)
    return {"entries": entries, "submodules": sorted(submodules), "package": package}


def _entry(name: str, value: Any, namespace: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, type):
        return _class_entry(name, value)
    if callable(value):
        return {
            "name": name,
            "kind": "function",
            "signature": signature(value, _globals_of(value, namespace)),
            "doc": inspect.getdoc(value),
        }
    return {"name": name, "kind": "value", "type": tree(type(value), namespace)}


def _class_entry(name: str, cls: type) -> dict[str, Any]:
    namespace = _globals_of(cls, {})
    builtin_base = next(
        (b.__name__ for b in cls.__mro__[1:] if b.__module__ == "builtins" and b is not object),
        None,
    )
    methods = []
    for attr, member in list(vars(cls).items()):
        if isinstance(member, type):
            continue  # nested classes (e.g. pydantic's Config) are not methods
        dunder = attr.startswith("__") and attr.endswith("__")
        if dunder and (attr in _SKIPPED_DUNDERS or member is None):
            continue
        if attr.startswith("_") and not dunder:
            continue
        method = _method(attr, member, namespace)
        if method is not None:
            methods.append(method)
    return {
        "name": name,
        "kind": "class",
        "doc": inspect.getdoc(cls) if cls.__doc__ else None,
        "bases": [tree(base, namespace) for base in cls.__bases__ if base is not object],
        "builtin_base": builtin_base,
        "exception": issubclass(cls, BaseException),
        "methods": methods,
    }


def _method(attr: str, member: Any, namespace: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(member, (classmethod, staticmethod)):
        function = member.__func__
        kind = "classmethod" if isinstance(member, classmethod) else "staticmethod"
    elif isinstance(member, property):
        function = member.fget
        kind = "property"
    elif callable(member):
        function, kind = member, "method"
    else:
        return {"name": attr, "kind": "attribute", "type": tree(type(member), namespace)}
    if function is None:
        return None
    return {
        "name": attr,
        "kind": kind,
        "signature": signature(function, _globals_of(function, namespace)),
        "doc": inspect.getdoc(function) if getattr(function, "__doc__", None) else None,
    }


def _globals_of(obj: Any, default: dict[str, Any]) -> dict[str, Any]:
    found = getattr(obj, "__globals__", None)
    if isinstance(found, dict):
        return found
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    return vars(module) if module is not None else default


def signature(obj: Any, namespace: dict[str, Any]) -> list[Any] | None:
    """``[[name, kind, has_default, annotation tree or None], ...], return tree or None]``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = []
    for param in sig.parameters.values():
        params.append(
            [
                param.name,
                int(param.kind),
                param.default is not inspect.Parameter.empty,
                _annotation(param.annotation, namespace),
            ]
        )
    return [params, _annotation(sig.return_annotation, namespace)]


def _annotation(annotation: Any, namespace: dict[str, Any]) -> list[Any] | None:
    if annotation is inspect.Parameter.empty or annotation is inspect.Signature.empty:
        return None
    try:
        return tree(annotation, namespace)
    except Exception:
        return ["any"]


def tree(annotation: Any, namespace: dict[str, Any], depth: int = 0) -> list[Any]:
    """The tree of one annotation (see the module's docstring)."""
    if depth > _DEPTH:
        return ["any"]
    if annotation is None or annotation is type(None):
        return ["none"]
    if annotation is Ellipsis:
        return ["ellipsis"]
    if isinstance(annotation, str):
        try:
            node = ast.parse(annotation.strip(), mode="eval").body
        except SyntaxError:
            return ["any"]
        return _node(node, namespace, depth + 1)
    forward = getattr(annotation, "__forward_arg__", None)
    if isinstance(forward, str):
        return tree(forward, namespace, depth + 1)
    if annotation is typing.Any:
        return ["any"]
    origin = getattr(typing, "get_origin", lambda a: None)(annotation)
    if origin is not None:
        args = typing.get_args(annotation)
        if origin is typing.Union or (
            getattr(types, "UnionType", None) is not None and origin is types.UnionType
        ):
            return ["union", [tree(a, namespace, depth + 1) for a in args]]
        if origin is getattr(typing, "Literal", None):
            return ["literal", [a for a in args if isinstance(a, (str, int, bool, type(None)))]]
        import collections.abc

        if origin is collections.abc.Callable and len(args) == 2:
            params, result = args
            return [
                "callable",
                None if params is Ellipsis else [tree(a, namespace, depth + 1) for a in params],
                tree(result, namespace, depth + 1),
            ]
        if isinstance(origin, type):
            return ["sub", _class(origin), [tree(a, namespace, depth + 1) for a in args]]
        return ["any"]
    if isinstance(annotation, type):
        return _class(annotation)
    return ["any"]


def _class(cls: type) -> list[Any]:
    module = cls.__module__ if isinstance(cls.__module__, str) else "?"
    return ["class", module, cls.__qualname__]


def _node(node: ast.AST, namespace: dict[str, Any], depth: int) -> list[Any]:
    if depth > _DEPTH:
        return ["any"]
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ["none"]
        if node.value is Ellipsis:
            return ["ellipsis"]
        if isinstance(node.value, str):
            return tree(node.value, namespace, depth + 1)
        return ["const", node.value] if isinstance(node.value, (int, bool)) else ["any"]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [
            "union",
            [_node(node.left, namespace, depth + 1), _node(node.right, namespace, depth + 1)],
        ]
    if isinstance(node, ast.List):
        return ["list", [_node(e, namespace, depth + 1) for e in node.elts]]
    if isinstance(node, (ast.Name, ast.Attribute)):
        found = _resolve(node, namespace)
        if found is _UNRESOLVED:
            return ["any"]
        return tree(found, namespace, depth + 1)
    if isinstance(node, ast.Subscript):
        base = _resolve(node.value, namespace)
        inner = node.slice
        if sys.version_info < (3, 9) and isinstance(inner, ast.Index):  # pragma: no cover
            inner = inner.value  # type: ignore[attr-defined]
        parts = inner.elts if isinstance(inner, ast.Tuple) else [inner]
        if base is getattr(typing, "Literal", None):
            values = [p.value for p in parts if isinstance(p, ast.Constant)]
            return ["literal", [v for v in values if isinstance(v, (str, int, bool, type(None)))]]
        if base is typing.Optional and len(parts) == 1:
            return ["union", [_node(parts[0], namespace, depth + 1), ["none"]]]
        if base is typing.Union:
            return ["union", [_node(p, namespace, depth + 1) for p in parts]]
        import collections.abc

        if base in (typing.Callable, collections.abc.Callable) and len(parts) == 2:
            params = _node(parts[0], namespace, depth + 1)
            return [
                "callable",
                params[1] if params[0] == "list" else None,
                _node(parts[1], namespace, depth + 1),
            ]
        if base is _UNRESOLVED:
            return ["any"]
        origin = getattr(typing, "get_origin", lambda a: None)(base) or base
        if not isinstance(origin, type):
            return ["any"]
        return ["sub", _class(origin), [_node(p, namespace, depth + 1) for p in parts]]
    return ["any"]


_UNRESOLVED = object()


def _resolve(node: ast.AST, namespace: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        if node.id in namespace:
            return namespace[node.id]
        return getattr(builtins, node.id, _UNRESOLVED)
    if isinstance(node, ast.Attribute):
        base = _resolve(node.value, namespace)
        if base is _UNRESOLVED:
            return _UNRESOLVED
        return getattr(base, node.attr, _UNRESOLVED)
    return _UNRESOLVED
