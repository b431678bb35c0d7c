"""The worker's control loop: sessions, channels, statistics, shutdown; the worker's entry point.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

A *local* worker binds its control ROUTER (the host connects to it) and a socket per channel. A
*service* worker (``--service``) connects one control DEALER and every channel to the service's
router instead, which authenticates clients and routes their sessions here. Control messages are
``[session key, frame]`` either way, so one loop serves both.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, Callable

import msgpack
import zmq

from ..core import dists, hidden, logs, sharedmem
from ..core import protocol as P
from ..core.memory import release_freed_memory
from ..errors import MVBridgeError, ProtocolError
from . import records
from .channels import Wiring, WorkerChannel, WorkerSession


class Server:
    """Serves sessions on one control socket until SHUTDOWN or the parent's death.

    Args:
        control: the bound ROUTER (local) or connected DEALER (service) control messages come on.
        wiring: where channel sockets go.
        find_class: unpickling hook for our hidden cloudpickle.
    """

    def __init__(
        self,
        context: zmq.Context,
        control: zmq.Socket,
        wiring: Wiring,
        find_class: Callable[..., Any] | None,
    ) -> None:
        self.context = context
        self.control = control
        self.wiring = wiring
        self.find_class = find_class
        self.sessions: dict[bytes, WorkerSession] = {}
        self._next_channel = 1
        self._cid_lock = threading.Lock()
        self.stopping = False

    def next_cid(self) -> int:
        with self._cid_lock:
            cid = self._next_channel
            self._next_channel += 1
            return cid

    def facts(self) -> dict[str, Any]:
        return {
            "protocol": P.PROTOCOL_VERSION,
            "python": "%d.%d.%d" % sys.version_info[:3],
            "python_minor": dists.PYTHON_VERSION,
            "implementation": sys.implementation.name,
            "executable": sys.executable,
            "prefix": sys.prefix,
            "pid": os.getpid(),
            "runtime": {
                "msgpack": ".".join(map(str, msgpack.version)),
                "pyzmq": zmq.__version__,
                "libzmq": zmq.zmq_version(),
                "cloudpickle": hidden.cloudpickle_version(),
            },
        }

    def serve(self) -> None:
        control = self.control
        while not self.stopping:
            frames = control.recv_multipart()
            key = frames[0]
            try:
                if len(frames) != 2:
                    raise ProtocolError("a control message has 1 frame, not %d" % (len(frames) - 1))
                kind, rid, payload = P.unpack(frames[1])
                reply_kind, reply = self.handle(key, kind, payload)
            except Exception as exc:
                logs.logger(__name__).warning("refused a control message: %s", exc)
                rid, reply_kind, reply = 0, P.FAIL, "%s: %s" % (type(exc).__name__, exc)
            control.send_multipart([key, P.pack([reply_kind, rid, reply])])

    def handle(self, key: bytes, kind: int, payload: Any) -> Any:
        if kind == P.OPEN:
            return P.OK, self.open_channel(key)
        if kind == P.CLOSE:
            session = self.sessions.get(key)
            channel = session.channels.pop(payload, None) if session else None
            if channel is not None:
                channel.stopped.set()
            return P.OK, None
        if kind == P.INTERRUPT:
            session = self.sessions.get(key)
            cid, rid = payload
            channel = session.channels.get(cid) if session else None
            return P.OK, channel is not None and channel.interrupts.interrupt(rid)
        if kind == P.HELLO:
            return self.hello(key, payload)
        if kind == P.PING:
            return P.OK, os.getpid()
        if kind == P.STATS:
            session = self.sessions.get(key)
            if session is None:
                return P.FAIL, "no such session"
            stats = session.table.statistics()
            return P.OK, {
                "live_objects": stats.live_objects,
                "exported": stats.exported,
                "released": stats.released,
                "channels": len(session.channels),
                "reverse_channels": session.reverse_channels(),
                "threads": threading.active_count(),
            }
        if kind == P.SERVER_STATS:
            return P.OK, self.server_stats()
        if kind == P.BYE:
            self.end_session(key)
            return P.OK, None
        if kind == P.SHUTDOWN:
            self.stopping = True
            return P.OK, None
        return P.FAIL, "unknown control message kind %r" % kind

    def server_stats(self) -> dict[str, Any]:
        """Counts over every session, for the service's health probe."""
        try:
            fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            fds = -1
        return {
            "pid": os.getpid(),
            "sessions": len(self.sessions),
            "objects": sum(s.table.statistics().live_objects for s in self.sessions.values()),
            "channels": sum(len(s.channels) for s in self.sessions.values()),
            "threads": threading.active_count(),
            "fds": fds,
        }

    def hello(self, key: bytes, payload: dict[str, Any]) -> Any:
        protocol = payload.get("protocol")
        if protocol != P.PROTOCOL_VERSION:
            return P.FAIL, (
                "protocol mismatch: the host speaks mvbridge protocol %r, this worker speaks %d"
                % (protocol, P.PROTOCOL_VERSION)
            )
        wanted = payload.get("cloudpickle")
        have = hidden.cloudpickle_version()
        if wanted and wanted != have:
            return P.FAIL, (
                "cloudpickle mismatch: the host has %s, this worker's runtime has %s"
                % (wanted, have)
            )
        self.end_session(key)
        local = self.wiring.service is None
        session = WorkerSession(
            key,
            payload["python_minor"],
            self.find_class,
            self.wiring,
            self.next_cid,
            payload.get("callbacks") if local else None,
        )
        offered = payload.get("shared_memory") if local else None
        same_machine = bool(offered) and offered == sharedmem.default_dir()
        session.use_shared_memory(offered if same_machine else None)
        self.sessions[key] = session
        return P.OK, dict(self.facts(), shared_memory=offered if same_machine else None)

    def open_channel(self, key: bytes) -> list[Any]:
        session = self.sessions.get(key)
        if session is None:
            raise MVBridgeError("OPEN before HELLO")
        cid = self.next_cid()
        socket, endpoint = self.wiring.host_channel(session, cid)
        channel = WorkerChannel(session, socket, cid)
        session.channels[cid] = channel
        channel.thread.start()
        return [cid, endpoint]

    def end_session(self, key: bytes) -> None:
        session = self.sessions.pop(key, None)
        if session is not None:
            session.close()
            release_freed_memory()

    def close(self, timeout: float = 2.0) -> None:
        channels: list[WorkerChannel] = []
        for key in list(self.sessions):
            channels.extend(self.sessions[key].channels.values())
            self.end_session(key)
        for channel in channels:
            # A call still running may finish and send its reply; an idle channel would only
            # notice its stop flag at its next poll, and the process exits without it anyway.
            if channel.serving:
                channel.thread.join(timeout)
        self.control.close(linger=0)


def watch_parent(fd: int | None, parent_pid: int | None, cleanup: Callable[[], None]) -> None:
    """Exit the process when the host dies: its pipe reaches EOF or our parent changes.

    A host killed outright cannot remove its socket folder (``--cleanup-dir``) or its
    shared-memory segments: ``cleanup`` does that for it first.
    """
    import select

    def run() -> None:
        while True:
            if fd is not None:
                readable, _, _ = select.select([fd], [], [], 1.0)
                if readable and not os.read(fd, 1):
                    break
            else:
                threading.Event().wait(1.0)
            if parent_pid is not None and os.getppid() != parent_pid:
                break
        try:
            cleanup()
        finally:
            os._exit(0)

    threading.Thread(target=run, name="mvbridge-parent-watch", daemon=True).start()


def _control_socket(context: zmq.Context, args: dict[str, str]) -> tuple[zmq.Socket, Wiring]:
    if "service" in args:
        control = context.socket(zmq.DEALER)
        control.setsockopt(zmq.ROUTING_ID, b"w%d" % os.getpid())
        control.connect(args["service"])
        return control, Wiring(context, None, args["service"])
    control = context.socket(zmq.ROUTER)
    control.bind(args["control"])
    return control, Wiring(context, args["channels"], None)


def run(argv: list[str]) -> int:
    """Parse ``argv``, serve until told to stop, return the exit code."""
    args = _parse(argv)
    if args.get("protocol", str(P.PROTOCOL_VERSION)) != str(P.PROTOCOL_VERSION):
        sys.stderr.write(
            "mvbridge worker refused to start: the host speaks protocol %s, this runtime "
            "speaks %d\n" % (args["protocol"], P.PROTOCOL_VERSION)
        )
        return P.EXIT_REFUSED
    records.install()
    watch_fd = int(args["watch-fd"]) if "watch-fd" in args else None
    parent_pid = int(args["parent-pid"]) if "parent-pid" in args else None
    context = zmq.Context()
    context.setsockopt(zmq.LINGER, 0)
    control, wiring = _control_socket(context, args)
    server = Server(context, control, wiring, hidden.find_class)
    if watch_fd is not None or parent_pid is not None:
        leftovers = args.get("cleanup-dir")  # named by the host; never guessed from a path

        def cleanup() -> None:
            for session in list(server.sessions.values()):
                if session.segments is not None:
                    session.segments.close()
            if leftovers:
                import shutil

                shutil.rmtree(leftovers, ignore_errors=True)

        watch_parent(watch_fd, parent_pid, cleanup)
    if wiring.service is not None:  # tell the service this worker is up, and what it is
        control.send_multipart([b"", P.pack([P.UP, 0, server.facts()])])
    try:
        server.serve()
    finally:
        server.close()
    return 0


_USAGE = (
    "usage: python -m mvbridge.workers (--control ENDPOINT --channels PREFIX | --service "
    "ENDPOINT) [--protocol N] [--watch-fd FD] [--parent-pid PID] [--cleanup-dir DIR]"
)


def _parse(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs (argparse costs a worker's start-up more than it gives here)."""
    if len(argv) % 2 or not all(a.startswith("--") for a in argv[::2]):
        raise SystemExit(_USAGE)
    args = {name[2:]: value for name, value in zip(argv[::2], argv[1::2])}
    known = {"control", "channels", "service", "protocol", "watch-fd", "parent-pid", "cleanup-dir"}
    local = "control" in args and "channels" in args and "service" not in args
    service = "service" in args and "control" not in args and "channels" not in args
    if set(args) - known or not (local or service):
        raise SystemExit(_USAGE)
    for name in ("control", "channels", "service"):
        # A worker runs any pickle it is sent: it listens on nothing but ipc sockets in private
        # folders. The network is `mvbridge spawn`'s, which authenticates its clients.
        if name in args and not args[name].startswith("ipc://"):
            raise SystemExit(
                "mvbridge worker refused to start: --%s %s is not an ipc:// endpoint; serve "
                "an env over the network with `mvbridge spawn`" % (name, args[name])
            )
    return args


def finish(code: int) -> None:
    """Run atexit handlers, flush, and leave without waiting for stray user threads."""
    try:
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)
