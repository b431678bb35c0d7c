"""Awaited calls: channels that wait for replies on the event loop, pooled per session and loop.

Internal. An ``AsyncHostChannel`` is a ``HostChannel`` whose waits are ``await``s: it polls its
DEALER through ``zmq.asyncio`` and checks the worker's health and the call's deadline between
polls, exactly as a thread waiting in ``HostChannel.receive`` does. A ``ChannelPool`` lends at
most ``HostSession.async_pool`` such channels to the awaits of one event loop; each channel is
served by one worker thread, so the pool bounds the worker threads that awaited calls keep busy.
Opening and closing a channel are blocking control round trips: they run on ``executor()``,
never on the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import zmq
import zmq.asyncio

from ..core import protocol as P
from ..core.peer import FAILED, receive_message
from ..errors import MVBridgeError, WorkerDiedError
from .client import POLL_MS, HostChannel, HostSession, _task_deadline

EXECUTOR_THREADS = 4  # control round trips of one session take turns anyway (its control lock)

_executor_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None


def executor() -> concurrent.futures.ThreadPoolExecutor:
    """The few threads that run mvbridge's blocking steps for event loops (start-up, OPEN,
    CLOSE, shutdown), so that a loop never waits for a round trip."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                EXECUTOR_THREADS, thread_name_prefix="mvbridge-aio"
            )
        return _executor


async def off_loop(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` on ``executor()``, awaited."""
    return await asyncio.get_running_loop().run_in_executor(executor(), fn, *args)


class AsyncHostChannel(HostChannel):
    """A channel whose requests are awaited on one event loop (it lives in that loop's pool)."""

    def __init__(self, pool: ChannelPool, socket: zmq.Socket, cid: int) -> None:
        super().__init__(pool.session, socket, cid)
        self.pool = pool
        self.loop_thread = threading.get_ident()
        self.asocket = zmq.asyncio.Socket.from_socket(socket)
        self.dropped = False
        self.socket_closed = False  # ours, not zmq's ``closed``: that probes a freed handle

    async def arequest(self, op: str, target: Any, operands: list[Any]) -> Any:
        session = self.session
        assert isinstance(session, HostSession)
        chosen = _task_deadline.get()
        if session.call_timeout is not None:
            own = time.monotonic() + session.call_timeout
            chosen = own if chosen is None else min(chosen, own)
        self.deadline = chosen
        self.epoch = session.link.epoch
        rid = self.outermost = self.send_request(op, target, operands)
        self.depth += 1
        try:
            while True:
                frames = await self.areceive()
                kind, value = self.examine(rid, frames)
                if kind == P.REPLY:
                    return value
                if kind == P.REQUEST:
                    await self.aserve(value, frames)
        finally:
            self.depth -= 1

    async def aserve(self, rid: int, frames: list[Any]) -> None:
        """Serve a nested request (a callback), awaiting its result if it is awaitable (the
        callback is a coroutine function of the host) before replying."""
        result = self.run_request(rid, frames)
        if result is FAILED:
            return
        if inspect.isawaitable(result):
            try:
                result = await result
            except Exception as exc:
                self.send_error(rid, exc)
                return
        self.send_reply(rid, result)

    async def areceive(self) -> list[Any]:
        session = self.session
        assert isinstance(session, HostSession)
        while True:
            left = self.time_left()
            wait = POLL_MS if left is None else max(1, min(POLL_MS, int(left * 1000) + 1))
            try:
                frames = None
                if await self.asocket.poll(wait):  # POLLIN
                    frames = receive_message(self.socket, zmq.NOBLOCK)
            except zmq.Again:
                frames = None
            except zmq.ZMQError as exc:
                self.broken = True
                raise session.unreachable(f"its connection failed ({exc})") from exc
            if frames is not None:
                return self.check_frames(frames)
            self.check_alive()

    def passed_deadline(self) -> None:
        # Not session.drop_channel: its CLOSE would block the loop.
        self.pool.drop(self, interrupt=self.outermost)

    def close_socket(self) -> None:
        # The asyncio socket has a reader on its loop: close it there.
        if self.socket_closed:
            return
        if self.pool.loop.is_closed():  # nothing reads the socket any more
            self.socket_closed = True
            self.socket.close(linger=0)
        elif threading.get_ident() == self.loop_thread:
            self._close_on_loop()
        else:
            try:
                self.pool.loop.call_soon_threadsafe(self._close_on_loop)
            except RuntimeError:  # the loop closed meanwhile
                self.socket_closed = True
                self.socket.close(linger=0)

    def _close_on_loop(self) -> None:
        if self.socket_closed:
            return
        self.socket_closed = True
        self.asocket.close(linger=0)  # drops its reader from the loop, closes the handle
        # The handle was closed through the shadow, so the DEALER object does not know: mark
        # it, or its __del__ would zmq_close the handle again after libzmq reused its memory
        # for a new socket (seen: "Socket operation on non-socket" on a later channel).
        self.socket._closed = True


class ChannelPool:
    """The async channels one event loop uses with one session: at most ``size`` at once."""

    def __init__(self, session: HostSession, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.session = session
        self.loop = loop
        self.size = size
        self.free: list[AsyncHostChannel] = []
        self.opened = 0  # channels open or opening: free, lent out, or being opened
        self._slots = asyncio.Semaphore(size)
        self._closer: Any = None

    async def request(self, op: str, target: Any, operands: list[Any]) -> Any:
        """Run one request on a channel of the pool (waiting for a free one)."""
        if self._closer is None:
            # The loop closes its async generators when it ends (asyncio.run does): this one's
            # ``finally`` closes the pool there, so its worker threads do not outlive the loop.
            self._closer = _closer(self)
            await self._closer.__anext__()
        await self._slots.acquire()
        try:
            self.check_open()
            channel = self.free.pop() if self.free else await self._open()
            try:
                result = await channel.arequest(op, target, operands)
            except Exception:
                # An error reply leaves the channel ready for the next call; a broken one goes.
                if channel.broken:
                    self.drop(channel)
                else:
                    self.free.append(channel)
                raise
            except BaseException:
                # Cancelled (asyncio.timeout too) mid-call: the worker thread may still run it.
                # It is interrupted there, as a blocking call's KeyboardInterrupt is, and the
                # channel goes, so that its late reply can reach no other call.
                self.drop(channel, interrupt=channel.outermost)
                raise
            self.free.append(channel)
            return result
        finally:
            self._slots.release()

    def check_open(self) -> None:
        """Raise ``WorkerDiedError`` once the session is gone: awaits that waited for a free
        channel of a dead session fail with the calls in flight, they start no new worker."""
        session = self.session
        if session.closed:
            raise WorkerDiedError(
                session.death or f"the session with env {session.env_name!r} has ended",
                env=session.env_name,
                pid=session.link.pid,
            )

    async def _open(self) -> AsyncHostChannel:
        self.opened += 1
        opening = executor().submit(self._open_blocking)
        try:
            cid, socket = await asyncio.shield(asyncio.wrap_future(opening))
        except BaseException:
            self.opened -= 1
            # Cancelled while the OPEN round trip ran: close what it opens, there (the loop
            # may be gone by the time it is done).
            opening.add_done_callback(self._discard)
            raise
        return self._channel(cid, socket)

    def _discard(self, opening: concurrent.futures.Future[tuple[int, zmq.Socket]]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        cid, socket = opening.result()
        socket.close(linger=0)
        session = self.session
        if not session.closed:
            with contextlib.suppress(MVBridgeError):
                session.control(P.CLOSE, cid)

    def _open_blocking(self) -> tuple[int, zmq.Socket]:
        session = self.session
        cid, endpoint = session.control(P.OPEN)
        return cid, session.link.channel_socket(cid, endpoint)

    def _channel(self, cid: int, socket: zmq.Socket) -> AsyncHostChannel:
        channel = AsyncHostChannel(self, socket, cid)
        session = self.session
        with session._channels_lock:
            session._channels.append(channel)
        return channel

    def drop(self, channel: AsyncHostChannel, interrupt: int | None = None) -> None:
        """Close ``channel`` now on the loop, and at the worker off the loop (CLOSE), after
        interrupting its request ``interrupt`` there (``INTERRUPT``) when one is running."""
        channel.broken = True
        if channel.dropped:
            return
        channel.dropped = True
        self.opened -= 1
        if channel in self.free:
            self.free.remove(channel)
        channel.close_socket()
        executor().submit(self.session.drop_channel, channel, interrupt)

    def close(self) -> None:
        """Close the idle channels (on the loop's thread); lent-out ones close as they end."""
        self.session.async_pools.pop(self.loop, None)
        for channel in list(self.free):
            self.drop(channel)


async def _closer(pool: ChannelPool) -> AsyncIterator[None]:
    try:
        yield
    finally:
        pool.close()

    def statistics(self) -> dict[str, int]:
        return {"opened": self.opened, "free": len(self.free), "size": self.size}


def pool_for(session: HostSession) -> ChannelPool:
    """The running loop's pool of channels with ``session`` (made on first use)."""
    loop = asyncio.get_running_loop()
    pool = session.async_pools.get(loop)
    if pool is None:
        pool = session.async_pools[loop] = ChannelPool(session, loop, session.async_pool)
    return pool
