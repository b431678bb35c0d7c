"""What a configured service exposes: asked of the service once, recorded beside built envs.

Internal. An env with ``address`` and no ``modules`` learns its modules from the service
(``mvbridge ping``'s facts), at ``mvbridge sync`` or on the first ``from mvbridge import X``.
The answer is kept in ``.mvbridge/envs/NAME/mvbridge-service.json``, so later imports need
no network.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import EnvSpec
from ..errors import MVBridgeError, WorkerStartError
from .keys import client_keys

RECORD_NAME = "mvbridge-service.json"
ASK_TIMEOUT = 10.0


@dataclass(frozen=True)
class ServiceRecord:
    """What a service said about itself.

    Attributes:
        address: where it was asked.
        env: the env name the service serves.
        python: its workers' Python version.
        modules: the import names it exposes.
        versions: key distributions and their versions.
    """

    address: str
    env: str
    python: str
    modules: list[str]
    versions: dict[str, str]


def read_service_record(location: Path) -> ServiceRecord | None:
    try:
        return ServiceRecord(**json.loads((location / RECORD_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def ask_service(spec: EnvSpec, location: Path) -> ServiceRecord:
    """Ask the service of ``spec`` what it exposes, record the answer, return it.

    Raises:
        WorkerStartError: the service is down, unreachable or refused us.
    """
    from ..service.ping import ping

    assert spec.address is not None
    server_key = spec.server_key or os.environ.get("MVBRIDGE_SERVER_KEY") or None
    client_key = spec.client_key or os.environ.get("MVBRIDGE_CLIENT_KEY") or None
    try:
        facts = ping(spec.address, client_keys(server_key, client_key), ASK_TIMEOUT)
    except MVBridgeError as exc:
        raise WorkerStartError(
            f"env {spec.name!r}: could not ask the service what it exposes: {exc}; set "
            "'modules' for this env in the config, or start the service",
            env=spec.name,
            exit_code=None,
            stderr_tail="",
        ) from exc
    record = ServiceRecord(
        address=spec.address,
        env=str(facts.get("env", "")),
        python=str(facts.get("python", "")),
        modules=sorted(str(m) for m in facts.get("modules", [])),
        versions={str(k): str(v) for k, v in facts.get("versions", {}).items()},
    )
    write_service_record(location, record)
    return record


def write_service_record(location: Path, record: ServiceRecord) -> None:
    """Keep ``record`` in ``location`` (replaced whole, so readers never see half of it)."""
    location.mkdir(parents=True, exist_ok=True)
    tmp = location / f"{RECORD_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n")
    os.replace(tmp, location / RECORD_NAME)
