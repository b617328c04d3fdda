"""API keys and secrets in the platform's SQLite file, on a connection of their own.

Low volume: plain synchronous calls inside the async methods. Unrevoked keys are held in
memory by hash, so authenticating a request touches no disk; ``last_used_at`` is written
back at most once a minute per key (and on close).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from cryptography.fernet import Fernet, InvalidToken

from squall.errors import Conflict, InvalidInput, NotFound, SquallError
from squall.model.config import SECRET_NAME_RE
from squall.security.keys import (
    ApiKey,
    check_key_name,
    generate_key,
    hash_key,
    new_key_id,
    parse_scopes,
    visible_prefix,
)
from squall.storage.control import SecretInfo

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    last_used_at REAL
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""
KEY_COLUMNS = "id, name, prefix, scopes, created_at, revoked_at, last_used_at"
TOUCH_EVERY_S = 60.0
MAX_SECRET_BYTES = 64 * 1024

_Row = tuple[str, str, str, str, float, float | None, float | None]


class SqliteControlStore:
    def __init__(self, conn: sqlite3.Connection, cipher: Fernet) -> None:
        self._conn = conn
        self._cipher = cipher
        self._active: dict[str, ApiKey] = {}  # hash -> unrevoked key
        self._touched: dict[str, float] = {}  # key id -> last_used_at not yet written
        self._written: dict[str, float] = {}  # key id -> when last_used_at was last written
        for digest, *row in conn.execute(f"SELECT hash, {KEY_COLUMNS} FROM api_keys"):
            key = _key(tuple(row))
            if not key.revoked:
                self._active[digest] = key

    @classmethod
    def open(cls, path: Path, cipher: Fernet) -> SqliteControlStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
            return cls(conn, cipher)
        except BaseException:
            conn.close()
            raise

    # keys

    async def has_keys(self) -> bool:
        return self._conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    async def create_key(
        self, name: str, scopes: Sequence[str], *, key: str | None = None
    ) -> tuple[ApiKey, str]:
        text = key if key is not None else generate_key()
        record = ApiKey(
            id=new_key_id(),
            name=check_key_name(name),
            prefix=visible_prefix(text),
            scopes=parse_scopes(list(scopes)),
            created_at=time.time(),
        )
        digest = hash_key(text)
        try:
            self._conn.execute(
                "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.name,
                    record.prefix,
                    digest,
                    ",".join(record.scopes),
                    record.created_at,
                ),
            )
        except sqlite3.IntegrityError:
            raise Conflict("that key already exists", field="key") from None
        self._active[digest] = record
        return record, text

    async def list_keys(self) -> list[ApiKey]:
        self._flush_touches(force=True)
        rows = self._conn.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: str) -> ApiKey:
        self._flush_touches(force=True)
        self._conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (time.time(), key_id),
        )
        row = self._conn.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"API key {key_id!r} does not exist", field="id", id=key_id)
        for digest, active in list(self._active.items()):
            if active.id == key_id:
                del self._active[digest]
        return _key(row)

    async def authenticate(self, key: str) -> ApiKey | None:
        found = self._active.get(hash_key(key))
        if found is not None:
            now = time.time()
            self._touched[found.id] = now
            if now - self._written.get(found.id, 0.0) >= TOUCH_EVERY_S:
                self._flush_touches(force=False)
        return found

    def _flush_touches(self, *, force: bool) -> None:
        if not self._touched:
            return
        now = time.time()
        due = [
            (at, key_id)
            for key_id, at in self._touched.items()
            if force or now - self._written.get(key_id, 0.0) >= TOUCH_EVERY_S
        ]
        self._conn.executemany("UPDATE api_keys SET last_used_at = ? WHERE id = ?", due)
        for _, key_id in due:
            self._written[key_id] = now
            del self._touched[key_id]

    # secrets

    async def set_secret(self, name: str, value: str) -> SecretInfo:
        _check_secret_name(name)
        if not isinstance(value, str):
            raise InvalidInput("a secret's value must be a string", field="value")
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise InvalidInput(
                f"secret {name!r} is over {MAX_SECRET_BYTES} bytes", field="value"
            )
        # The name is sealed in with the value, so a token copied onto another row is refused.
        token = self._cipher.encrypt(msgspec.json.encode([name, value]))
        now = time.time()
        self._conn.execute(
            "INSERT INTO secrets (name, value, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (name, token, now, now),
        )
        row = self._conn.execute(
            "SELECT name, created_at, updated_at FROM secrets WHERE name = ?", (name,)
        ).fetchone()
        return SecretInfo(name=row[0], created_at=row[1], updated_at=row[2])

    async def list_secrets(self) -> list[SecretInfo]:
        rows = self._conn.execute("SELECT name, created_at, updated_at FROM secrets ORDER BY name")
        return [SecretInfo(name=n, created_at=c, updated_at=u) for n, c, u in rows]

    async def delete_secret(self, name: str) -> None:
        _check_secret_name(name)
        if self._conn.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount == 0:
            raise NotFound(f"secret {name!r} does not exist", field="name", name=name)

    async def secret_values(self, names: Sequence[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        query = f"SELECT name, value FROM secrets WHERE name IN ({marks})"
        rows = self._conn.execute(query, wanted)
        return {name: self._open(name, token) for name, token in rows}

    def _open(self, name: str, token: bytes) -> str:
        try:
            sealed_name, value = msgspec.json.decode(self._cipher.decrypt(token))
        except (InvalidToken, msgspec.DecodeError, ValueError, TypeError):
            sealed_name, value = None, None
        if sealed_name != name or not isinstance(value, str):
            raise SquallError(
                f"secret {name!r} cannot be decrypted with the current master key"
                " (SQUALL_MASTER_KEY or master.key changed?)",
                field="name",
                name=name,
            )
        return value

    async def close(self) -> None:
        try:
            self._flush_touches(force=True)
        finally:
            self._conn.close()


def _key(row: _Row) -> ApiKey:
    key_id, name, prefix, scopes, created_at, revoked_at, last_used_at = row
    return ApiKey(
        id=key_id,
        name=name,
        prefix=prefix,
        scopes=tuple(scopes.split(",")),
        created_at=created_at,
        revoked_at=revoked_at,
        last_used_at=last_used_at,
    )


def _check_secret_name(name: str) -> None:
    if not isinstance(name, str) or not SECRET_NAME_RE.match(name):
        raise InvalidInput(
            f"secret name {name!r} is invalid: 1-128 letters, digits and '_',"
            " starting with a letter",
            field="name",
        )
