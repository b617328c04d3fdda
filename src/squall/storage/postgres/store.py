"""The PostgreSQL store: ``SqliteStore``'s reads and ops, over translated SQL.

Only connecting and the schema differ. The group commit is the embedded backend's (one
writer thread, one transaction per batch, a savepoint per unit on failure) with its writer
and reader on psycopg connections; each statement of the SQLite modules is rewritten once
by ``dialect``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import cast

import psycopg

from squall.errors import ConfigError
from squall.storage.postgres.connection import PgConnection
from squall.storage.postgres.dialect import Keys, schema_keys, translate_schema
from squall.storage.postgres.url import PgUrl, parse_url, redacted
from squall.storage.protocols import Op
from squall.storage.sqlite.db import Database
from squall.storage.sqlite.schema import LATE_INDEXES
from squall.storage.sqlite.store import ALL_SCHEMA, LATE_COLUMNS, SqliteStore, apply_ops

KEYS: Keys = schema_keys(ALL_SCHEMA)


class PostgresDatabase(Database[Op]):
    def __init__(self, url: PgUrl, keys: Keys) -> None:
        # The adapter speaks the subset of sqlite3.Connection that the SQL modules use.
        writer = cast(sqlite3.Connection, PgConnection(url.conninfo, keys))
        try:
            reader = cast(sqlite3.Connection, PgConnection(url.conninfo, keys))
        except BaseException:
            writer.close()
            raise
        self._start(writer, reader, apply_ops)


class PostgresStore(SqliteStore):
    key_codec = PgConnection.key_codec  # table keys as sortable text, in reads and writes
    # One platform per schema (``_hold_the_schema``), so a lease a dead process left is
    # taken over at once; the nodes of a cluster share a schema (``BrokeredStore``).
    exclusive = True

    @classmethod
    async def connect(cls, url: str, *, shared: bool = False) -> PostgresStore:
        """Open the schema; ``shared`` lets the nodes of a cluster open it together."""
        parsed = parse_url(url)
        with refused(url):
            prepare_schema(parsed, ALL_SCHEMA, LATE_COLUMNS, LATE_INDEXES)
            db = PostgresDatabase(parsed, KEYS)
        try:
            if not shared:
                _hold_the_schema(db, url)
        except BaseException:
            await db.close()
            raise
        return cls(db)


@contextlib.contextmanager
def refused(url: str) -> Iterator[None]:
    """Connecting or making the tables failed: a ConfigError naming the store (password
    left out), not a driver traceback."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"store {redacted(url)}: cannot connect to PostgreSQL: {' '.join(str(exc).split())}",
            field="store",
        ) from None
    except psycopg.Error as exc:  # e.g. the role may not create the schema or its tables
        raise ConfigError(
            f"store {redacted(url)}: cannot prepare the tables: {' '.join(str(exc).split())}",
            field="store",
        ) from None


def _hold_the_schema(db: PostgresDatabase, url: str) -> None:
    """One platform per schema, as one per data dir: a session lock on the writer's
    connection, let go when it closes (or the platform's process dies)."""
    row = db.conn.execute(
        "SELECT pg_try_advisory_lock(hashtext('squall:' || current_schema()))"
    ).fetchone()
    if row is None or not row[0]:
        raise ConfigError(
            f"store {redacted(url)}: another platform is serving this schema (stop it, or"
            " give this one its own with ?schema=name)",
            field="store",
        )


def prepare_schema(
    url: PgUrl, ddl: str, late: dict[str, dict[str, str]], late_indexes: str = ""
) -> None:
    """Create the schema (if named), the tables, columns added since (``late``) and the
    indexes on them, on a connection of its own.

    An advisory lock serialises platforms starting at once on one database: PostgreSQL's
    ``CREATE TABLE IF NOT EXISTS`` can still clash on a table made by another session.
    """
    with psycopg.connect(url.conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7107)")
        if url.schema is not None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {url.schema}".encode())
        conn.execute(translate_schema(ddl).encode())
        for table, columns in late.items():
            for name, decl in columns.items():
                conn.execute(
                    f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name}"
                    f" {translate_schema(decl)}".encode()
                )
        if late_indexes:
            conn.execute(translate_schema(late_indexes).encode())


def drop_schema(url: str) -> None:
    """Drop the URL's schema and everything in it (how the test suite cleans up)."""
    parsed = parse_url(url)
    if parsed.schema is None:
        raise ConfigError("store URL names no schema to drop", field="store")
    with psycopg.connect(parsed.conninfo, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {parsed.schema} CASCADE".encode())
