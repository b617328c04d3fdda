"""The control plane's own state: API keys and secrets.

Low volume and read-mostly, so it is a separate small contract from the event store. Keys
are looked up on every authenticated request, so a backend serves ``authenticate`` from
memory; secrets are encrypted before they reach the backend's tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from squall.security.keys import ApiKey


class SecretInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What may be shown about a secret: never its value."""

    name: str
    created_at: float
    updated_at: float


class ControlStore(Protocol):
    async def has_keys(self) -> bool:
        """Whether any key was ever created (revoked ones count)."""
        ...

    async def create_key(
        self, name: str, scopes: Sequence[str], *, key: str | None = None
    ) -> tuple[ApiKey, str]:
        """Store a new key (generated unless ``key`` is given); return it and its text."""
        ...

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke for good; raises ``NotFound`` for an unknown id. Revoking twice is a no-op."""
        ...

    async def authenticate(self, key: str) -> ApiKey | None:
        """The unrevoked key with this text, or None; records when it was last used."""
        ...

    async def set_secret(self, name: str, value: str) -> SecretInfo: ...

    async def list_secrets(self) -> list[SecretInfo]: ...

    async def delete_secret(self, name: str) -> None:
        """Raises ``NotFound`` for an unknown name."""
        ...

    async def secret_values(self, names: Sequence[str]) -> dict[str, str]:
        """Decrypted values of those of ``names`` that exist (missing names are left out)."""
        ...

    async def close(self) -> None: ...


async def open_control_store(path: Path, store_url: str | None = None) -> ControlStore:
    """The control store: in PostgreSQL when ``store_url`` is a PostgreSQL URL, else in the
    SQLite file at ``path`` (the platform's database).

    The master key for secrets is ``SQUALL_MASTER_KEY`` or ``master.key`` beside ``path``.
    """
    from squall.security.cipher import load_cipher
    from squall.storage import is_postgres, require_psycopg

    cipher = load_cipher(path.parent)
    if store_url is not None and is_postgres(store_url):
        require_psycopg()
        from squall.storage.postgres.control import open_postgres_control

        return open_postgres_control(store_url, cipher)
    from squall.storage.sqlite.control import SqliteControlStore

    return SqliteControlStore.open(path, cipher)
