"""The embedded backend's deployments, function versions, aliases and bundle archives (see
``DeployOp``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.model.deploys import Alias, Canary, Deployment, FunctionVersion
from squall.storage.deploys import (
    DeleteAlias,
    DeployOp,
    PutAlias,
    PutBundle,
    PutCanary,
    PutDeployment,
    PutVersion,
)
from squall.storage.sqlite.db import Database

DEPLOYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_versions (
    function TEXT NOT NULL,
    number INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (function, number)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS aliases (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (function, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS canaries (
    function TEXT NOT NULL,
    alias TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (function, alias)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS deployments (
    seq INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS bundles (
    hash TEXT PRIMARY KEY,
    archive BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
"""

# Versions land before the aliases that may name them.
DEPLOYS_RANK: dict[type, int] = {
    PutBundle: 99,
    PutVersion: 100,
    PutDeployment: 101,
    DeleteAlias: 102,
    PutAlias: 103,
    PutCanary: 104,
}

_pack = msgspec.json.encode
_unpack_version = msgspec.json.Decoder(FunctionVersion).decode
_unpack_alias = msgspec.json.Decoder(Alias).decode
_unpack_deployment = msgspec.json.Decoder(Deployment).decode
_unpack_canary = msgspec.json.Decoder(Canary).decode


def apply_deploys(conn: sqlite3.Connection, kind: type, ops: Sequence[DeployOp]) -> None:
    if kind is PutVersion:
        conn.executemany(
            "INSERT INTO function_versions (function, number, body) VALUES (?, ?, ?)",
            [(op.version.function, op.version.number, _pack(op.version))
             for op in ops if isinstance(op, PutVersion)],
        )
    elif kind is PutDeployment:
        conn.executemany(
            "INSERT INTO deployments (seq, body) VALUES (?, ?)",
            [(op.deployment.seq, _pack(op.deployment)) for op in ops
             if isinstance(op, PutDeployment)],
        )
    elif kind is PutAlias:
        conn.executemany(
            "INSERT OR REPLACE INTO aliases (function, name, body) VALUES (?, ?, ?)",
            [(op.alias.function, op.alias.name, _pack(op.alias)) for op in ops
             if isinstance(op, PutAlias)],
        )
    elif kind is PutCanary:
        conn.executemany(
            "INSERT OR REPLACE INTO canaries (function, alias, body) VALUES (?, ?, ?)",
            [(op.canary.function, op.canary.alias, _pack(op.canary)) for op in ops
             if isinstance(op, PutCanary)],
        )
    elif kind is DeleteAlias:
        conn.executemany(
            "DELETE FROM aliases WHERE function = ? AND name = ?",
            [(op.function, op.name) for op in ops if isinstance(op, DeleteAlias)],
        )
    elif kind is PutBundle:
        conn.executemany(
            "INSERT OR IGNORE INTO bundles (hash, archive, size, created_at) VALUES (?, ?, ?, ?)",
            [(op.hash, op.archive, len(op.archive), op.created_at) for op in ops
             if isinstance(op, PutBundle)],
        )


class DeployReads:
    """The ``DeployStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]

    async def list_versions(self, function: str | None = None) -> list[FunctionVersion]:
        if function is None:
            rows = self._db.read("SELECT body FROM function_versions ORDER BY function, number")
        else:
            rows = self._db.read(
                "SELECT body FROM function_versions WHERE function = ? ORDER BY number",
                (function,),
            )
        return [_unpack_version(row[0]) for row in rows]

    async def list_aliases(self) -> list[Alias]:
        rows = self._db.read("SELECT body FROM aliases ORDER BY function, name")
        return [_unpack_alias(row[0]) for row in rows]

    async def list_deployments(self, limit: int = 50) -> list[Deployment]:
        rows = self._db.read("SELECT body FROM deployments ORDER BY seq DESC LIMIT ?", (limit,))
        return [_unpack_deployment(row[0]) for row in rows]

    async def list_canaries(self) -> list[Canary]:
        rows = self._db.read("SELECT body FROM canaries ORDER BY function, alias")
        return [_unpack_canary(row[0]) for row in rows]

    async def has_bundle(self, content: str) -> bool:
        return bool(self._db.read("SELECT 1 FROM bundles WHERE hash = ?", (content,)))

    async def get_bundle(self, content: str) -> bytes | None:
        def fetch(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute("SELECT archive FROM bundles WHERE hash = ?", (content,)).fetchone()
            return bytes(row[0]) if row is not None else None

        found: bytes | None = await self._db.call(fetch)
        return found
