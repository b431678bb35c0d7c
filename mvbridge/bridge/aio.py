"""``mvbridge.aio(proxy)``: async views of module, object and attribute proxies.

Internal module; ``aio`` is public through ``mvbridge``. A view names a proxy and a path of
attribute names; building it costs nothing. Calling it, awaiting it or iterating it with
``async for`` sends the same requests the sync proxy would, through ``HostSession.arequest``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

from ..core import protocol as P
from ..core.remote import ReadAhead, RemoteAttribute, RemoteObject, read_ahead
from .aio_channel import off_loop
from .client import HostSession
from .proxy import RemoteModule


def aio(proxy: Any) -> AsyncView:
    """An async view of a module proxy, an object proxy or an attribute proxy.

    Attribute access on the view is lazy (no round trip) and gives another view; calling a view
    returns an awaitable; ``await view`` gets the attribute's value; ``async for`` iterates
    a remote iterable in batches. Results are what the sync call returns.

    ```python
    total = await mvbridge.aio(dep_a).add(1, 2)
    async for row in mvbridge.aio(table):
        ...
    ```

    Raises:
        TypeError: ``proxy`` is not an mvbridge proxy.
    """
    if isinstance(proxy, AsyncView):
        return proxy
    path: tuple[str, ...] = ()
    target = proxy
    # module.f and obj.method are lazy attributes: address their owner, so that nothing here
    # asks the env for its session on the loop (ModuleAttribute would, to start a worker).
    while isinstance(target, RemoteAttribute):
        path = (target._mvb_name, *path)
        target = target._mvb_base
    if not isinstance(target, (RemoteModule, RemoteObject)):
        raise TypeError(
            f"mvbridge.aio() takes a proxy (a module of an env, or an object or attribute that "
            f"came from one), not {type(proxy).__name__}; for a host function to run in a "
            "worker, use await env.acall(fn, ...)"
        )
    return AsyncView(target, path)


class AsyncView:
    """An awaitable view of ``target.path...``; made by ``mvbridge.aio``."""

    __slots__ = ("_mvb_path", "_mvb_target")

    _mvb_target: Any
    _mvb_path: tuple[str, ...]

    def __init__(self, target: Any, path: tuple[str, ...] = ()) -> None:
        object.__setattr__(self, "_mvb_target", target)
        object.__setattr__(self, "_mvb_path", path)

    def __getattr__(self, name: str) -> AsyncView:
        if name.startswith(("__", "_mvb_")):
            raise AttributeError(name)
        return AsyncView(self._mvb_target, (*self._mvb_path, name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("an async view is read-only; set attributes on the proxy itself")

    def __repr__(self) -> str:
        where = ".".join(self._mvb_path)
        return f"<mvbridge.aio view of {_describe(self._mvb_target)}{'.' if where else ''}{where}>"

    # -- use ---------------------------------------------------------------------------------
    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        session, holder, name = await self._mvb_resolve()
        if name is None:
            if isinstance(holder, RemoteModule):
                raise TypeError(f"{_describe(holder)} is not callable")
            return await session.arequest(P.OP_CALL, holder, list(args), kwargs)
        return await session.arequest(P.OP_CALLATTR, holder, name, list(args), kwargs)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._mvb_value().__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return AsyncBatchIterator(self)

    async def _mvb_value(self) -> Any:
        target = self._mvb_target
        if not self._mvb_path:
            return target
        session, holder, name = await self._mvb_resolve()
        assert name is not None
        # Lazy as the sync attribute is: a module's callable, an object's method.
        if holder is target:
            if isinstance(target, RemoteModule) and name in target._mvb_callables:
                return getattr(target, name)
            if isinstance(target, RemoteObject) and name in target._mvb_type.methods:
                return RemoteAttribute(session, target, name)
        return await session.arequest(P.OP_GETATTR, holder, name)

    async def _mvb_resolve(self) -> tuple[HostSession, Any, str | None]:
        """The session, the object that holds the last name of the path (lazy attributes of
        the target: no round trip), and that name (None: the target itself)."""
        target = self._mvb_target
        if isinstance(target, RemoteModule):
            session = await target._mvb_env.asession()
        else:
            session = target._mvb_session
            if (session.closed or not session.link.fast) and not await off_loop(session.usable):
                raise session.stale_error()
        path = self._mvb_path
        if not path:
            return session, target, None
        holder = target
        for name in path[:-1]:
            holder = RemoteAttribute(session, holder, name)
        return session, holder, path[-1]


class AsyncBatchIterator:
    """``async for`` over a remote iterable: items in growing batches (1, 4, 16 ... 1024)."""

    __slots__ = ("_local", "_remote", "_session", "_state", "_view")

    def __init__(self, view: AsyncView) -> None:
        self._view = view
        self._remote: Any = None
        self._session: HostSession | None = None
        self._local: Any = None  # the iterator of a value that came by value
        self._state: ReadAhead | None = None  # the remote iterator's, shared with sync readers

    def __aiter__(self) -> AsyncBatchIterator:
        return self

    async def __anext__(self) -> Any:
        if self._remote is None and self._local is None:
            await self._start()
        if self._local is not None:
            try:
                return next(self._local)
            except StopIteration:
                raise StopAsyncIteration from None
        state = self._state
        assert state is not None
        assert self._session is not None
        if not state.buffer:
            if state.done:
                raise StopAsyncIteration
            state.fill(*await self._session.arequest(P.OP_NEXT, self._remote, state.batch))
            if not state.buffer:
                raise StopAsyncIteration
        return state.buffer.pop()

    async def _start(self) -> None:
        iterable = await self._view._mvb_value()
        if isinstance(iterable, RemoteModule) or not isinstance(iterable, RemoteObject):
            self._local = iter(iterable)
            return
        view = aio(iterable)
        session, holder, _ = await view._mvb_resolve()
        remote = await session.arequest(P.OP_SPECIAL, holder, "__iter__", [])
        if isinstance(remote, RemoteObject):
            self._session, self._remote = session, remote
            self._state = read_ahead(remote)
        else:
            self._local = iter(remote)


def _describe(target: Any) -> str:
    if isinstance(target, RemoteModule):
        return f"module {target.__name__!r} of env {target._mvb_env.name!r}"
    return f"a proxy of {target._mvb_type.name}"
