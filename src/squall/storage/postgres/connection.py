"""A psycopg connection that speaks the part of ``sqlite3.Connection`` the storage modules use.

``execute`` / ``executemany`` / ``executescript``, cursors with ``fetchone``, ``fetchall``,
``rowcount`` and iteration, ``in_transaction`` and ``close``. Statements are translated by
``dialect`` once each and cached. A unique violation is raised as ``sqlite3.IntegrityError``,
the error the modules catch, so they need no PostgreSQL branch.

The connection is in autocommit mode: the group commit sends its own BEGIN / COMMIT and
savepoints, the same statements it sends to SQLite, and a reader sees committed state only.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import adapt, pq

from squall.storage.postgres.dialect import Keys, Statement, translate, translate_schema
from squall.storage.postgres.keys import SortableText

_BEGIN = {"BEGIN IMMEDIATE": "BEGIN"}
# Statements built with a varying number of marks (``IN (?, ?, …)``) are many: past this
# many, the cache starts over rather than grow without end.
CACHE_SIZE = 4096


class _BoolAsInt(adapt.Dumper):
    """SQLite has no booleans: the modules store True/False in INTEGER columns."""

    oid = 20  # int8

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _NumericAsNumber(adapt.Loader):
    """``SUM`` of a BIGINT is NUMERIC in PostgreSQL; SQLite gives an int (or a float)."""

    def load(self, data: Any) -> int | float:
        text = bytes(data)
        if b"." in text or b"e" in text.lower() or b"n" in text.lower():
            return float(text)
        return int(text)


class Cursor:
    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._at = self._rows[self._at :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class PgConnection:
    key_codec = SortableText()  # table keys (see storage/sqlite/tables.py)

    def __init__(self, conninfo: str, keys: Keys) -> None:
        self._conninfo = conninfo
        self._conn = _connect(conninfo)
        self._keys = keys
        self._statements: dict[str, Statement] = {}

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, made again if the server dropped it (a restart, a failover).

        Whatever transaction was open is gone with it: its batch fails, is rolled back (a
        no-op here) and re-run unit by unit on the new connection, like any failed batch.
        """
        if self._conn.broken:
            self._conn.close()
            self._conn = _connect(self._conninfo)
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def _statement(self, sql: str) -> Statement:
        found = self._statements.get(sql)
        if found is None:
            found = Statement(_BEGIN[sql]) if sql in _BEGIN else translate(sql, self._keys)
            if len(self._statements) >= CACHE_SIZE:
                self._statements.clear()
            self._statements[sql] = found
        return found

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        statement = self._statement(sql)
        idle = not self.in_transaction
        try:
            return self._execute(statement, params)
        except psycopg.OperationalError:
            # A connection dropped while idle shows only when used: a BEGIN or a read
            # changed nothing yet, so it runs again on a new connection.
            if not (idle and self._conn.broken and _repeatable(sql)):
                raise
            return self._execute(statement, params)

    def _execute(self, statement: Statement, params: Sequence[Any]) -> Cursor:
        with _errors(), self._live().cursor() as cursor:
            cursor.execute(statement.sql, statement.params(params))
            rows = cursor.fetchall() if cursor.description is not None else []
            return Cursor(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        statement = self._statement(sql)
        batch = [statement.params(row) for row in rows]
        if not batch:
            return Cursor([], 0)
        with _errors(), self._live().cursor() as cursor:
            cursor.executemany(statement.sql, batch)
            return Cursor([], cursor.rowcount)

    def try_lock(self, key: str) -> bool:
        """Take ``key``'s lock until this transaction ends, unless another session holds
        it (then False at once, so two sessions can never wait on each other)."""
        with _errors(), self._live().cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (key,))
            row = cursor.fetchone()
        return bool(row and row[0])

    def executescript(self, ddl: str) -> None:
        with _errors():
            self._live().execute(translate_schema(ddl).encode())

    def close(self) -> None:
        self._conn.close()


def _repeatable(sql: str) -> bool:
    """A statement that changes nothing by itself (``BEGIN IMMEDIATE``, a ``SELECT``)."""
    return sql.lstrip()[:6].upper() in ("BEGIN ", "SELECT")


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(conninfo, autocommit=True)
    conn.adapters.register_dumper(bool, _BoolAsInt)
    conn.adapters.register_loader("numeric", _NumericAsNumber)
    return conn


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Raise a constraint violation as ``sqlite3.IntegrityError`` (what the modules catch)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as error:  # worded as SQLite words it
        detail = error.diag.message_detail or str(error)
        raise sqlite3.IntegrityError(f"UNIQUE constraint failed: {detail}") from error
    except psycopg.errors.IntegrityError as error:
        raise sqlite3.IntegrityError(str(error)) from error
