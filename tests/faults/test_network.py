"""A service client whose connection is dropped mid-call (a network that fails)."""

from __future__ import annotations

from pathlib import Path

import pytest

import mvbridge
from tests.faults.conftest import ServiceTarget, started_file
from tests.faults.test_kills import Call, fails_as_died, next_call_works
from tests.helpers import TcpRelay, wait_until


class RelayedTarget(ServiceTarget):
    """A service reached through a TCP relay that can drop every connection."""

    def __init__(self, service, keys, relay: TcpRelay) -> None:
        self.relay = relay
        super().__init__(service, keys)

    def make_env(self) -> mvbridge.Env:
        return mvbridge.Env(
            "faults-relayed",
            address=f"tcp://127.0.0.1:{self.relay.port}",
            **self.keys.env_kwargs(),
        )


@pytest.mark.parametrize("cuts", [1, 3])
def test_connection_dropped_mid_call(faults_service, keys, cuts: int):
    """The call in flight fails with WorkerDiedError at once; the client reconnects, resumes
    its session (its objects live on) and the next call answers."""
    with TcpRelay(faults_service.port) as relay:
        target = RelayedTarget(faults_service, keys, relay)
        try:
            faults = target.faults()
            box = faults.Box(5)
            session = target.env.current_session()
            for cut in range(cuts):
                marker = started_file()
                call = Call(faults.sleep, 30, marker)
                wait_until(lambda m=marker: Path(m).exists())
                relay.cut()
                fails_as_died(call)
                assert "connection dropped" in str(call.error)
                wait_until(lambda c=cut: session.link.epoch == c + 1)
                next_call_works(target)
                assert box.value == 5  # the same session, resumed
            assert target.env.current_session() is session
            target.check_clean()
        finally:
            target.env.shutdown()
