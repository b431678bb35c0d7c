"""Host proxies for whole modules; they survive worker restarts.

Internal. A ``RemoteModule`` names its module, not an object id: every use asks the env for its
current worker, which imports the module again after a restart. So ``from mvbridge import dep_a``
at the top of a long-running program keeps working when a worker dies.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import protocol as P
from ..core.codec import module_reference
from ..core.remote import _LOCAL_MISSING, _REMOTE_DOC, RemoteAttribute, display_probe
from ..errors import StaleReferenceError

if TYPE_CHECKING:  # pragma: no cover
    from .env import Env

# Asked by the import system, pickle and tools; answered locally so no worker starts for them.
_MODULE_LOCAL = _LOCAL_MISSING | {
    "__path__",
    "__file__",
    "__cached__",
    "__builtins__",
    "__loader__",
    "__spec__",
    "__getattr__",
    "__origin__",
    "__mro_entries__",
}


class SessionEnded(StaleReferenceError):
    """A request of ``session`` refused before anything was sent, because the session had
    ended. A caller that follows its env (a module proxy) sends it to the env's next session."""

    def __init__(self, message: str, session: Any) -> None:
        super().__init__(message)
        self.session = session


def follow_env(env: Env, send: Callable[[Any], Any]) -> Any:
    """``send(env.session())``, again on the env's next session if the one it got ended before
    the request went out (a shutdown or a worker's death in between)."""
    session = env.session()
    try:
        return send(session)
    except SessionEnded as exc:
        if exc.session is not session:  # another session's, or one that crossed: not ours to retry
            raise
    return send(env.session())


class RemoteModule(types.ModuleType):
    """A module of an env's worker, used as if it were imported here."""

    _mvb_remote = True  # names.find: not this side's module

    def __init__(self, env: Env, name: str, listing: dict[str, Any]) -> None:
        super().__init__(name, listing.get("doc"))
        state = self.__dict__
        state["_mvb_env"] = env
        state["_mvb_wire"] = module_reference(name)  # how its own worker finds it, packed once
        self._mvb_listed(listing)
        state["_mvb_attrs"] = {}

    def _mvb_listed(self, listing: dict[str, Any]) -> None:
        """Take in the module's listing (again after a restart)."""
        state = self.__dict__
        state["_mvb_callables"] = frozenset(listing.get("callables", ()))
        state["_mvb_exceptions"] = frozenset(listing.get("exceptions", ()))

    def __getattr__(self, name: str) -> Any:
        if name in _MODULE_LOCAL or name.startswith("_mvb_"):
            raise AttributeError(name)
        state = self.__dict__
        if name in state["_mvb_callables"]:
            attr = state["_mvb_attrs"].get(name)
            if attr is None:
                attr = state["_mvb_attrs"][name] = ModuleAttribute(self, name)
            return attr
        if name in state["_mvb_exceptions"]:
            # A real class (core/exceptions.py), the same one every time and across restarts,
            # so `except module.Error` works and costs a round trip only once.
            attr = state["_mvb_attrs"].get(name)
            if attr is None:
                attr = state["_mvb_attrs"][name] = self._mvb_env.request(P.OP_GETATTR, self, name)
            return attr
        if display_probe(name):  # IPython's, of a module it shows: modules have none
            raise AttributeError(name)
        return self._mvb_env.request(P.OP_GETATTR, self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        # The import system sets dunders, and a submodule's proxy on its parent's proxy.
        if (name.startswith("__") and name.endswith("__")) or isinstance(value, RemoteModule):
            super().__setattr__(name, value)
        else:
            self._mvb_env.request(P.OP_SETATTR, self, name, value)

    def __delattr__(self, name: str) -> None:
        self._mvb_env.request(P.OP_DELATTR, self, name)

    def __dir__(self) -> list[str]:
        return list(self._mvb_env.request(P.OP_SPECIAL, self, "__dir__", []))

    def __repr__(self) -> str:
        return f"<remote module {self.__name__!r} in env {self._mvb_env.name!r}>"

    def __reduce__(self) -> Any:
        return (_module_of, (self._mvb_env.name, self.__name__))


def _module_of(env_name: str, module: str) -> Any:
    from .env import env

    return env(env_name).import_module(module)


class ModuleAttribute(RemoteAttribute):
    # ``module.name`` for a callable: follows the env to its current worker, like the module.
    __doc__ = _REMOTE_DOC  # type: ignore[assignment]

    __slots__ = ()

    def __init__(self, module: RemoteModule, name: str) -> None:
        from ..core.remote import _ATTRIBUTE_TYPE

        object.__setattr__(self, "_mvb_oid", None)
        object.__setattr__(self, "_mvb_count", 1)
        object.__setattr__(self, "_mvb_type", _ATTRIBUTE_TYPE)
        object.__setattr__(self, "_mvb_base", module)
        object.__setattr__(self, "_mvb_name", name)

    @property  # type: ignore[override]
    def _mvb_session(self) -> Any:
        return self._mvb_base._mvb_env.session()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The hot path of `module.f(x)`: the module goes as its reference packed once, not
        # through the encoder's hook (it is always the current session's own module).
        module = self._mvb_base
        wire, name = module._mvb_wire, self._mvb_name
        return follow_env(module._mvb_env, lambda s: s.call_attr(wire, name, args, kwargs))
