"""The benchmarked systems, in table order; each module holds one behind ``base.System``."""

from __future__ import annotations

from .base import System
from .inprocess import InProcess
from .mp_pipe import MpPipe
from .mvbridge_local import MvbridgeLocal
from .mvbridge_spawn import MvbridgeSpawn
from .peer_execnet import Execnet
from .peer_pyro5 import Pyro5System
from .peer_rpyc import Rpyc
from .peer_zerorpc import Zerorpc
from .ray_placed import MvbridgeRay, RayActor
from .shared_memory import SharedMem
from .zmq_raw import RawZmq, RawZmqCurve, RawZmqZeroCopy

ALL: list[type[System]] = [
    InProcess,
    RawZmq,
    RawZmqZeroCopy,
    RawZmqCurve,
    MpPipe,
    SharedMem,
    MvbridgeLocal,
    MvbridgeSpawn,
    MvbridgeRay,
    RayActor,
    Execnet,
    Rpyc,
    Pyro5System,
    Zerorpc,
]
BASELINE = "zmq"
BASELINE_ZERO_COPY = "zmq_zc"
PEERS = ["execnet", "rpyc", "pyro5", "zerorpc"]
