"""The master key that encrypts secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

It comes from ``SQUALL_MASTER_KEY`` (a Fernet key: 32 bytes, URL-safe base64) or, when that
is unset, from ``<data_dir>/master.key``, created on first use readable by its owner only.
Losing the key file loses the secrets; it belongs in backups apart from the database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from squall.errors import ConfigError

MASTER_KEY_ENV = "SQUALL_MASTER_KEY"
KEY_FILE = "master.key"

__all__ = ["KEY_FILE", "MASTER_KEY_ENV", "InvalidToken", "load_cipher"]


def load_cipher(data_dir: Path, env: Mapping[str, str] | None = None) -> Fernet:
    env = os.environ if env is None else env
    configured = env.get(MASTER_KEY_ENV)
    if configured:
        return _fernet(configured.strip().encode(), MASTER_KEY_ENV)
    path = data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    try:
        material = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the master key file {path}: {exc.strerror}", field=MASTER_KEY_ENV
        ) from None
    return _fernet(material, f"master key file {path}")


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes racing to create it cannot both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as out:
        out.write(Fernet.generate_key() + b"\n")
    os.chmod(path, 0o600)  # exactly owner read/write, whatever the umask


def _fernet(material: bytes, source: str) -> Fernet:
    try:
        return Fernet(material)
    except ValueError:
        raise ConfigError(
            f"{source} is not a Fernet key (32 bytes, URL-safe base64; make one with"
            " `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`)",
            field=MASTER_KEY_ENV,
        ) from None
