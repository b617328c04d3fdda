"""API keys: generation, hashing, scopes, and the bootstrap admin key.

A key is ``sq_`` followed by 43 URL-safe characters (256 random bits). The platform stores
only its SHA-256 hash and a short visible prefix; the key itself is shown once, when created.

Scopes: ``read`` (GET anything), ``invoke`` (run functions), ``publish`` (put events),
``admin`` (keys, secrets, configuration, dead-letter redrive and purge). ``admin`` implies
every other scope.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from squall.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from squall.storage.control import ControlStore

SCOPES = ("invoke", "publish", "read", "admin")
KEY_PREFIX = "sq_"
VISIBLE_CHARS = 10  # "sq_" and 7 characters of the key: enough to tell keys apart in a list
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 256
ADMIN_KEY_ENV = "SQUALL_ADMIN_KEY"
BOOTSTRAP_NAME = "bootstrap-admin"


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A stored key: everything but the key itself (its hash never leaves the store)."""

    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def public(self) -> dict[str, object]:
        return msgspec.structs.asdict(self)


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def new_key_id() -> str:
    return "key_" + secrets.token_hex(6)


def visible_prefix(key: str) -> str:
    return key[:VISIBLE_CHARS]


def check_key_text(key: str, source: str) -> str:
    """A caller-chosen key (``SQUALL_ADMIN_KEY``) must be long and plain enough to be one."""
    if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH or not all(
        "!" <= ch <= "~" for ch in key
    ):
        raise ConfigError(
            f"{source} must be {MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} printable ASCII characters"
            f" without spaces (got {len(key)} characters)",
            field=source,
        )
    return key


def parse_scopes(value: object, field: str = "scopes") -> tuple[str, ...]:
    """Scopes from a list (API) or a comma-separated string (CLI); unknown ones are errors."""
    items: Iterable[object]
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise InvalidInput(f"'{field}' must be a list of scopes ({', '.join(SCOPES)})", field=field)
    scopes: list[str] = []
    for item in items:
        if not isinstance(item, str) or item not in SCOPES:
            raise InvalidInput(
                f"scope {item!r} is unknown (allowed: {', '.join(SCOPES)})", field=field
            )
        if item not in scopes:
            scopes.append(item)
    if not scopes:
        raise InvalidInput(
            f"'{field}' must name at least one scope ({', '.join(SCOPES)})", field=field
        )
    return tuple(scopes)


def check_key_name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.isprintable():
        raise InvalidInput("'name' must be 1-64 printable characters", field="name")
    return value


async def bootstrap_admin_key(
    store: ControlStore, env: Mapping[str, str] | None = None
) -> str | None:
    """On a platform's first start, create its admin key.

    ``SQUALL_ADMIN_KEY`` becomes that key when set (nothing to show: the operator chose it);
    otherwise a fresh key is generated and returned, for ``squall up`` to print once. Once any
    key exists (even revoked ones) this does nothing and returns None.
    """
    env = os.environ if env is None else env
    if await store.has_keys():
        return None
    chosen = env.get(ADMIN_KEY_ENV) or None
    if chosen is not None:
        check_key_text(chosen, ADMIN_KEY_ENV)
    _, key = await store.create_key(BOOTSTRAP_NAME, SCOPES, key=chosen)
    return None if chosen is not None else key


async def open_control(
    data_dir: Path, store_url: str | None = None
) -> tuple[ControlStore, str | None]:
    """Open the control store (under ``data_dir``, or in the PostgreSQL store at
    ``store_url``) and bootstrap its admin key.

    Returns the store and the generated admin key, if this start created one.
    """
    from squall.storage.control import open_control_store

    control = await open_control_store(data_dir / "squall.db", store_url)
    try:
        return control, await bootstrap_admin_key(control)
    except BaseException:
        await control.close()
        raise
