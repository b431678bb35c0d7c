"""The worker's receive loop: sessions, one execution thread per host thread, shutdown.

Internal. Runs inside env interpreters: Python 3.8+, stdlib + msgpack, pyzmq, cloudpickle only.

The control ROUTER answers HELLO/OPEN/CLOSE/BYE/SHUTDOWN/PING/STATS. Every OPEN binds a new
channel socket served by its own thread, so calls from one host thread always run on one worker
thread and a channel's replies go straight back without passing through another thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from typing import Any, Callable

import msgpack
import zmq

from ..core import dists, hidden, sharedmem
from ..core import protocol as P
from ..core.peer import Channel, Session, receive_message
from ..errors import MVBridgeError, ProtocolError

logger = logging.getLogger(__name__)

POLL_MS = 100  # how often idle channel threads look at their stop flag


class _Stopped(Exception):
    """The host closed a channel while its thread waited for a reply."""


class WorkerSession(Session):
    """The worker's side of one host session."""

    exports_modules = True

    def __init__(self, sid: bytes, peer_python: str, find_class: Any) -> None:
        super().__init__(peer_python, find_class)
        self.sid = sid
        self.channels: dict[int, WorkerChannel] = {}
        self._local = threading.local()

    def channel(self) -> Channel:
        channel = getattr(self._local, "channel", None)
        if channel is None:
            raise MVBridgeError(
                "a host object was used from a worker thread that is not serving a host call; "
                "host objects (callbacks) can only be used from the thread that runs the call "
                "that received them"
            )
        return channel

    def peer_description(self) -> str:
        return "the host (Python %s)" % self.peer_python

    def bind_thread(self, channel: WorkerChannel) -> None:
        self._local.channel = channel


class WorkerChannel(Channel):
    """A channel served by its own worker thread until the host closes it."""

    def __init__(self, session: WorkerSession, socket: zmq.Socket, cid: int) -> None:
        super().__init__(session, socket)
        self.cid = cid
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self.run, name="mvbridge-channel-%d" % cid, daemon=True
        )

    def run(self) -> None:
        assert isinstance(self.session, WorkerSession)
        self.session.bind_thread(self)
        try:
            while not self.stopped.is_set():
                frames = self.receive()
                if frames is not None:
                    try:
                        self.serve_one(frames)
                    except (_Stopped, zmq.ZMQError):
                        raise
                    except Exception:  # a bug of ours must not silence the channel for good
                        logger.exception("mvbridge worker: a channel message failed")
        except (_Stopped, zmq.ZMQError):
            pass
        finally:
            self.socket.close(linger=0)

    def receive(self) -> Any:
        socket = self.socket
        while not socket.poll(POLL_MS):
            if self.stopped.is_set():
                if self.depth:
                    raise _Stopped()
                return None
        return receive_message(socket)


class Server:
    """Serves sessions on a control endpoint until SHUTDOWN or the parent's death."""

    def __init__(
        self, control: str, channel_prefix: str, find_class: Callable[..., Any] | None
    ) -> None:
        self.context = zmq.Context()
        self.context.setsockopt(zmq.LINGER, 0)
        self.control = self.context.socket(zmq.ROUTER)
        self.control.bind(control)
        self.channel_prefix = channel_prefix
        self.find_class = find_class
        self.sessions: dict[bytes, WorkerSession] = {}
        self.next_channel = 1
        self.stopping = False

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
            identity = frames[0]
            try:
                if len(frames) != 2:
                    raise ProtocolError("a control message has 1 frame, not %d" % (len(frames) - 1))
                kind, rid, payload = P.unpack(frames[1])
                reply_kind, reply = self.handle(identity, kind, payload)
            except Exception as exc:
                logger.warning("refused a control message: %s", exc)
                rid, reply_kind, reply = 0, P.FAIL, "%s: %s" % (type(exc).__name__, exc)
            control.send_multipart([identity, P.pack([reply_kind, rid, reply])])

    def handle(self, identity: bytes, kind: int, payload: Any) -> Any:
        if kind == P.OPEN:
            return P.OK, self.open_channel(identity)
        if kind == P.CLOSE:
            session = self.sessions.get(identity)
            channel = session.channels.pop(payload, None) if session else None
            if channel is not None:
                channel.stopped.set()
            return P.OK, None
        if kind == P.HELLO:
            return self.hello(identity, payload)
        if kind == P.PING:
            return P.OK, os.getpid()
        if kind == P.STATS:
            session = self.sessions.get(identity)
            if session is None:
                return P.FAIL, "no such session"
            stats = session.table.statistics()
            return P.OK, {
                "live_objects": stats.live_objects,
                "exported": stats.exported,
                "released": stats.released,
                "channels": len(session.channels),
                "threads": threading.active_count(),
            }
        if kind == P.BYE:
            self.end_session(identity)
            return P.OK, None
        if kind == P.SHUTDOWN:
            self.stopping = True
            return P.OK, None
        return P.FAIL, "unknown control message kind %r" % kind

    def hello(self, identity: bytes, payload: dict[str, Any]) -> Any:
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
        self.end_session(identity)
        session = WorkerSession(identity, payload["python_minor"], self.find_class)
        offered = payload.get("shared_memory")
        same_machine = bool(offered) and offered == sharedmem.default_dir()
        session.use_shared_memory(offered if same_machine else None)
        self.sessions[identity] = session
        return P.OK, dict(self.facts(), shared_memory=offered if same_machine else None)

    def open_channel(self, identity: bytes) -> str:
        session = self.sessions.get(identity)
        if session is None:
            raise MVBridgeError("OPEN before HELLO")
        cid = self.next_channel
        self.next_channel += 1
        socket = self.context.socket(zmq.DEALER)
        endpoint = "%s-%d" % (self.channel_prefix, cid)
        if endpoint.startswith("tcp://"):
            port = socket.bind_to_random_port(self.channel_prefix)
            endpoint = "%s:%d" % (self.channel_prefix, port)
        else:
            socket.bind(endpoint)
        channel = WorkerChannel(session, socket, cid)
        session.channels[cid] = channel
        channel.thread.start()
        return [cid, endpoint]

    def end_session(self, identity: bytes) -> None:
        session = self.sessions.pop(identity, None)
        if session is None:
            return
        for channel in session.channels.values():
            channel.stopped.set()
        session.close()

    def close(self, timeout: float = 2.0) -> None:
        channels: list[WorkerChannel] = []
        for identity in list(self.sessions):
            channels.extend(self.sessions[identity].channels.values())
            self.end_session(identity)
        for channel in channels:
            channel.thread.join(timeout)
        self.control.close(linger=0)


def watch_parent(fd: int | None, parent_pid: int | None, cleanup: Callable[[], None]) -> None:
    """Exit the process when the host dies: its pipe reaches EOF or our parent changes.

    A host killed outright cannot remove its socket folder or its shared-memory segments:
    ``cleanup`` does that for it first.
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


def _private_socket_dir(endpoint: str) -> str | None:
    """The host's private ipc folder (``.../mvb-XXXX``) of ``endpoint``, if it is one."""
    if not endpoint.startswith("ipc://"):
        return None
    folder = os.path.dirname(endpoint[len("ipc://") :])
    return folder if os.path.basename(folder).startswith("mvb-") else None


def run(argv: list[str]) -> int:
    """Parse ``argv``, serve until told to stop, return the exit code."""
    args = _parse(argv)
    if args.get("protocol", str(P.PROTOCOL_VERSION)) != str(P.PROTOCOL_VERSION):
        sys.stderr.write(
            "mvbridge worker refused to start: the host speaks protocol %s, this runtime "
            "speaks %d\n" % (args["protocol"], P.PROTOCOL_VERSION)
        )
        return P.EXIT_REFUSED
    watch_fd = int(args["watch-fd"]) if "watch-fd" in args else None
    parent_pid = int(args["parent-pid"]) if "parent-pid" in args else None
    server = Server(args["control"], args["channels"], hidden.find_class)
    if watch_fd is not None or parent_pid is not None:
        leftovers = _private_socket_dir(args["control"])

        def cleanup() -> None:
            for session in list(server.sessions.values()):
                if session.segments is not None:
                    session.segments.close()
            if leftovers:
                import shutil

                shutil.rmtree(leftovers, ignore_errors=True)

        watch_parent(watch_fd, parent_pid, cleanup)
    try:
        server.serve()
    finally:
        server.close()
    return 0


def _parse(argv: list[str]) -> dict[str, str]:
    """``--name value`` pairs (argparse costs a worker's start-up more than it gives here)."""
    usage = (
        "usage: python -m mvbridge.workers --control ENDPOINT --channels PREFIX "
        "[--protocol N] [--watch-fd FD] [--parent-pid PID]"
    )
    if len(argv) % 2 or not all(a.startswith("--") for a in argv[::2]):
        raise SystemExit(usage)
    args = {name[2:]: value for name, value in zip(argv[::2], argv[1::2])}
    unknown = set(args) - {"control", "channels", "protocol", "watch-fd", "parent-pid"}
    if unknown or "control" not in args or "channels" not in args:
        raise SystemExit(usage)
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
