"""CurveZMQ key files: ``NAME.key`` (public) and ``NAME.key_secret`` (secret, mode 0600).

Internal. The files are in the format of ``zmq.auth.create_certificates``, so pyzmq's own tools
read them and ``--allow`` folders work with ``zmq.auth``'s authenticator as they are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


@dataclass(frozen=True)
class ClientKeys:
    """What a client needs to talk CurveZMQ to one service.

    Attributes:
        server_public: the service's public key (z85).
        public: this client's public key (z85).
        secret: this client's secret key (z85).
    """

    server_public: bytes
    public: bytes
    secret: bytes


def _load(path: Path, what: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.is_file():
        raise ConfigError(
            f"{what} {path} does not exist; make a key pair with `mvbridge keygen NAME`"
        )
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {what} {path}: {exc.strerror or exc} (running as uid {os.getuid()})"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"{what} {path} is not a key file of `mvbridge keygen`: {exc}") from exc
    if need_secret and secret is None:
        raise ConfigError(
            f"{what} {path} holds only a public key; name the secret file "
            f"({path.with_suffix('.key_secret').name}) instead"
        )
    return public, secret


def client_keys(server_key: str | Path | None, client_key: str | Path | None) -> ClientKeys | None:
    """The keys for a connection, or None for an insecure one (neither given).

    Raises:
        ConfigError: only one was given, or a file is missing or not a key file.
    """
    if server_key is None and client_key is None:
        return None
    if server_key is None or client_key is None:
        missing = "server_key" if server_key is None else "client_key"
        raise ConfigError(
            f"a CurveZMQ connection needs both server_key (the service's NAME.key) and "
            f"client_key (this client's NAME.key_secret); {missing} is missing"
        )
    server_public, server_secret = _load(Path(server_key), "server_key", need_secret=False)
    if server_secret is not None:
        raise ConfigError(
            f"server_key {server_key} is the service's secret key; give its public NAME.key "
            "(the secret stays with the service only)"
        )
    public, secret = _load(Path(client_key), "client_key", need_secret=True)
    assert secret is not None
    return ClientKeys(server_public, public, secret)


def server_keys(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) of a service's ``NAME.key_secret``.

    Raises:
        ConfigError: the file is missing, public only, or not a key file.
    """
    public, secret = _load(Path(path), "--key", need_secret=True)
    assert secret is not None
    return public, secret


def generate(name: str, folder: Path, force: bool = False) -> tuple[Path, Path]:
    """Write ``folder/NAME.key`` and ``folder/NAME.key_secret`` (0600); return both paths.

    Raises:
        ConfigError: the files exist (and ``force`` is off), or ``name`` is not a plain name.
    """
    import zmq.auth

    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r}: use a plain file name such as 'server' or 'app1'")
    public = folder / f"{name}.key"
    secret = folder / f"{name}.key_secret"
    existing = [str(p) for p in (public, secret) if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{' and '.join(existing)} {'exists' if len(existing) == 1 else 'exist'} already; "
            "pass --force to replace the key pair"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for path in (public, secret):
        path.unlink(missing_ok=True)
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        zmq.auth.create_certificates(folder, name)
    finally:
        os.umask(old)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public, secret
