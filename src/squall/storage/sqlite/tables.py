"""The embedded backend's tables: items with versions, index entries, and change records
appended to the table's internal stream in the unit that changes the item."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec

from squall.errors import WriteConflict
from squall.model.streams import shard_for
from squall.model.tables import (
    CHANGE_SHARDS,
    TTL_PRINCIPAL,
    KeyValue,
    TableConfig,
    change_stream,
)
from squall.storage.sqlite.db import Database
from squall.storage.tables import DropTable, ExpireItems, PutTable, StoredItem, TableOp, TableWrite

# Key columns have no declared type, so SQLite keeps strings and numbers as given and
# compares numbers numerically and strings by their UTF-8 bytes (code point order).
TABLES_SCHEMA = """
CREATE TABLE IF NOT EXISTS table_items (
    tbl TEXT NOT NULL,
    pk NOT NULL,
    sk NOT NULL,
    version INTEGER NOT NULL,
    keys BLOB NOT NULL,
    item BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (tbl, pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS table_items_expiry ON table_items (tbl, expires_at)
    WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS table_index (
    tbl TEXT NOT NULL,
    idx TEXT NOT NULL,
    ipk NOT NULL,
    isk NOT NULL,
    pk NOT NULL,
    sk NOT NULL,
    PRIMARY KEY (tbl, idx, ipk, isk, pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS table_index_by_item ON table_index (tbl, pk, sk);

-- Tables made through the admin API (the app's own come from its code).
CREATE TABLE IF NOT EXISTS tables (
    name TEXT PRIMARY KEY,
    config BLOB NOT NULL
);
"""

TABLES_RANK: dict[type, int] = {PutTable: 50, TableWrite: 51, ExpireItems: 52, DropTable: 53}

NO_SORT = ""  # the sort column of a table without a sort key (key strings are never empty)
_decode_table = msgspec.json.Decoder(TableConfig).decode


class KeyCodec(Protocol):
    """How a backend stores key values: SQLite as they are, PostgreSQL as sortable text."""

    def encode(self, value: KeyValue) -> Any: ...

    def decode(self, stored: Any) -> KeyValue: ...


class _AsIs:
    def encode(self, value: KeyValue) -> Any:
        return value

    def decode(self, stored: Any) -> KeyValue:
        return stored  # type: ignore[no-any-return]


AS_IS = _AsIs()


def key_codec(conn: object) -> KeyCodec:
    """The connection's key codec, if its backend has one (plain values otherwise); looked up
    once a batch, so SQLite's writes pay for it once."""
    codec: KeyCodec = getattr(conn, "key_codec", AS_IS)
    return codec


def _sk(value: KeyValue | None) -> KeyValue:
    return NO_SORT if value is None else value


def _unsk(value: KeyValue) -> KeyValue | None:
    return None if value == NO_SORT else value


def apply_tables(conn: sqlite3.Connection, kind: type, ops: Sequence[TableOp]) -> None:
    changes = _Changes(conn)
    encode = key_codec(conn).encode
    for op in ops:
        if isinstance(op, TableWrite):
            _write(conn, op, changes, encode)
        elif isinstance(op, ExpireItems):
            _expire(conn, op, changes)
        elif isinstance(op, PutTable):
            conn.execute(
                "INSERT OR REPLACE INTO tables (name, config) VALUES (?, ?)",
                (op.table.name, msgspec.json.encode(op.table)),
            )
        elif isinstance(op, DropTable):
            for sql in (
                "DELETE FROM table_items WHERE tbl = ?",
                "DELETE FROM table_index WHERE tbl = ?",
                "DELETE FROM tables WHERE name = ?",
            ):
                conn.execute(sql, (op.name,))
            stream = change_stream(op.name)
            for table in ("stream_records", "stream_heads", "stream_checkpoints"):
                conn.execute(f"DELETE FROM {table} WHERE stream = ?", (stream,))
    changes.flush()


def _write(
    conn: sqlite3.Connection, op: TableWrite, changes: _Changes, encode: Callable[[KeyValue], Any]
) -> None:
    pk, sk = encode(op.pk), encode(_sk(op.sk))
    row = conn.execute(
        "SELECT version, item, expires_at FROM table_items WHERE tbl = ? AND pk = ? AND sk = ?",
        (op.table, pk, sk),
    ).fetchone()
    now = time.time()
    live = row is not None and (row[2] is None or row[2] > now)
    found = row[0] if live else 0
    if op.expect is not None and op.expect != found:
        keys = msgspec.json.decode(op.keys)
        raise WriteConflict(
            f"table {op.table!r}: item {keys} changed before the write committed (it was at"
            f" version {op.expect or 'absent'}, it is now at {found or 'absent'})",
            field="key",
            table=op.table,
            key=keys,
            expected=op.expect,
            found=found,
        )
    if op.action == "check":
        return
    if row is not None:
        conn.execute(
            "DELETE FROM table_index WHERE tbl = ? AND pk = ? AND sk = ?", (op.table, pk, sk)
        )
    old = bytes(row[1]) if live and row is not None else None
    if op.action == "delete":
        if row is not None:
            conn.execute(
                "DELETE FROM table_items WHERE tbl = ? AND pk = ? AND sk = ?",
                (op.table, pk, sk),
            )
        if old is not None and op.stream is not None:
            changes.add(op.table, op.stream, "REMOVE", op.keys, None, old, found)
        return
    assert op.item is not None
    version = found + 1
    conn.execute(
        "INSERT OR REPLACE INTO table_items (tbl, pk, sk, version, keys, item, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (op.table, pk, sk, version, op.keys, op.item, op.expires_at),
    )
    if op.entries:
        conn.executemany(
            "INSERT OR REPLACE INTO table_index (tbl, idx, ipk, isk, pk, sk)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (op.table, idx, encode(ipk), encode(_sk(isk)), pk, sk)
                for idx, ipk, isk in op.entries
            ],
        )
    if op.stream is not None:
        event = "MODIFY" if old is not None else "INSERT"
        changes.add(op.table, op.stream, event, op.keys, op.item, old, version)


def _expire(conn: sqlite3.Connection, op: ExpireItems, changes: _Changes) -> None:
    rows = conn.execute(
        "SELECT pk, sk, version, keys, item FROM table_items WHERE tbl = ?"
        " AND expires_at IS NOT NULL"
        " AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        (op.table, op.now, op.limit),
    ).fetchall()
    for pk, sk, version, keys, item in rows:
        conn.execute(
            "DELETE FROM table_items WHERE tbl = ? AND pk = ? AND sk = ?", (op.table, pk, sk)
        )
        conn.execute(
            "DELETE FROM table_index WHERE tbl = ? AND pk = ? AND sk = ?", (op.table, pk, sk)
        )
        if op.stream is not None:
            changes.add(
                op.table, op.stream, "REMOVE", bytes(keys), None, bytes(item), version, ttl=True
            )


# Gives out ``?3`` sequences on a shard at once and returns the last. The upsert holds the
# head's row until the transaction ends, so transactions of several processes on one
# PostgreSQL schema number a shard one after the other, never the same sequence twice.
_TAKE_SEQUENCES = (
    "INSERT INTO stream_heads (stream, shard, seq) VALUES (?, ?, ?)"
    " ON CONFLICT (stream, shard) DO UPDATE SET seq = stream_heads.seq + excluded.seq"
    " RETURNING seq"
)


class _Changes:
    """Change records of one apply, numbered from each shard's head in the store when the
    apply ends (shards in sorted order, so two transactions never wait on each other)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        # Per shard, in order: the record without its sequence (partition key, the JSON
        # before and after the sequence, arrival time).
        self._pending: dict[tuple[str, int], list[tuple[str, bytes, bytes, float]]] = {}

    def add(
        self,
        table: str,
        view: str,
        event: str,
        keys: bytes,
        new: bytes | None,
        old: bytes | None,
        version: int,
        *,
        ttl: bool = False,
    ) -> None:
        stream = change_stream(table)
        key = keys.decode()
        shard = shard_for(key, CHANGE_SHARDS)
        now = time.time()
        parts = [
            b'{"eventName":"', event.encode(), b'","table":', msgspec.json.encode(table),
            b',"keys":', keys,
        ]
        if view in ("new_and_old", "new") and new is not None:
            parts += [b',"new":', new]
        if view in ("new_and_old", "old") and old is not None:
            parts += [b',"old":', old]
        parts += [b',"version":', str(version).encode(), b',"sequence":']
        tail = [b',"approximate_creation_time":', msgspec.json.encode(now)]
        if ttl:
            tail.append(
                b',"userIdentity":{"type":"Service","principalId":"' + TTL_PRINCIPAL.encode()
                + b'"}'
            )
        tail.append(b"}")
        self._pending.setdefault((stream, shard), []).append(
            (key, b"".join(parts), b"".join(tail), now)
        )

    def flush(self) -> None:
        if not self._pending:
            return
        rows: list[tuple[str, int, int, str, bytes, float]] = []
        for (stream, shard), changes in sorted(self._pending.items()):
            found = self._conn.execute(_TAKE_SEQUENCES, (stream, shard, len(changes))).fetchone()
            assert found is not None  # an upsert with RETURNING gives its row
            sequence = found[0] - len(changes)
            for key, head, tail, now in changes:
                sequence += 1
                data = head + str(sequence).encode() + tail
                rows.append((stream, shard, sequence, key, data, now))
        self._conn.executemany(
            "INSERT INTO stream_records (stream, shard, seq, partition_key, data, arrival_time)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        self._pending = {}


_SORT_SQL = {
    "eq": "{c} = ?",
    "lt": "{c} < ?",
    "lte": "{c} <= ?",
    "gt": "{c} > ?",
    "gte": "{c} >= ?",
    "between": "{c} BETWEEN ? AND ?",
}


def _rows_to_items(rows: list[Any], index: bool, codec: KeyCodec) -> list[StoredItem]:
    key = codec.decode
    if index:
        return [
            StoredItem(bytes(item), version, key(pk), _unsk(key(sk)), _unsk(key(isk)))
            for item, version, pk, sk, isk in rows
        ]
    return [
        StoredItem(bytes(item), version, key(pk), _unsk(key(sk)))
        for item, version, pk, sk in rows
    ]


class TableReads:
    """The ``TableStore`` reads, for ``SqliteStore``."""

    _db: Database[Any]
    key_codec: KeyCodec = AS_IS  # the backend's (PostgresStore's stores keys as text)

    async def list_tables(self) -> list[TableConfig]:
        rows = self._db.read("SELECT config FROM tables ORDER BY name")
        return [_decode_table(row[0]) for row in rows]

    async def get_item(
        self, table: str, pk: KeyValue, sk: KeyValue | None, now: float
    ) -> StoredItem | None:
        encode = self.key_codec.encode
        rows = self._db.read(
            "SELECT item, version FROM table_items WHERE tbl = ? AND pk = ? AND sk = ?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (table, encode(pk), encode(_sk(sk)), now),
        )
        if not rows:
            return None
        return StoredItem(bytes(rows[0][0]), rows[0][1], pk, sk)

    async def query_items(
        self,
        table: str,
        pk: KeyValue,
        *,
        index: str | None,
        sort: tuple[str, Sequence[KeyValue]] | None,
        after: Sequence[KeyValue | None] | None,
        limit: int,
        descending: bool,
        now: float,
    ) -> list[StoredItem]:
        codec = self.key_codec
        encode = codec.encode
        if index is None:
            sql = (
                "SELECT item, version, pk, sk FROM table_items t WHERE tbl = ? AND pk = ?"
                " AND (expires_at IS NULL OR expires_at > ?)"
            )
            params: list[Any] = [table, encode(pk), now]
            position = "t.sk"
            order = ["t.sk"]
        else:
            sql = (
                "SELECT t.item, t.version, t.pk, t.sk, i.isk FROM table_index i JOIN table_items t"
                " ON t.tbl = i.tbl AND t.pk = i.pk AND t.sk = i.sk WHERE i.tbl = ? AND i.idx = ?"
                " AND i.ipk = ? AND (t.expires_at IS NULL OR t.expires_at > ?)"
            )
            params = [table, index, encode(pk), now]
            position = "(i.isk, i.pk, i.sk)"
            order = ["i.isk", "i.pk", "i.sk"]
        column = "t.sk" if index is None else "i.isk"
        if sort is not None:
            op, values = sort
            if op == "begins_with":
                sql += f" AND substr({column}, 1, ?) = ?"
                prefix = encode(values[0])
                params += [len(str(prefix)), prefix]
            else:
                sql += " AND " + _SORT_SQL[op].format(c=column)
                params += [encode(v) for v in values]
        if after is not None:
            marks = ", ".join("?" * len(after))
            if len(after) > 1:
                marks = f"({marks})"
            sql += f" AND {position} {'<' if descending else '>'} {marks}"
            params += [encode(_sk(v)) for v in after]
        direction = " DESC" if descending else ""
        sql += " ORDER BY " + ", ".join(c + direction for c in order) + " LIMIT ?"
        params.append(limit)
        return _rows_to_items(self._db.read(sql, params), index is not None, codec)

    async def scan_items(
        self, table: str, *, after: Sequence[KeyValue | None] | None, limit: int, now: float
    ) -> list[StoredItem]:
        sql = (
            "SELECT item, version, pk, sk FROM table_items WHERE tbl = ?"
            " AND (expires_at IS NULL OR expires_at > ?)"
        )
        params: list[Any] = [table, now]
        codec = self.key_codec
        if after is not None:
            sql += " AND (pk, sk) > (?, ?)"
            params += [codec.encode(_sk(after[0])), codec.encode(_sk(after[1]))]
        sql += " ORDER BY pk, sk LIMIT ?"
        params.append(limit)
        return _rows_to_items(self._db.read(sql, params), False, codec)

    async def count_items(self, table: str, now: float) -> int:
        rows = self._db.read(
            "SELECT COUNT(*) FROM table_items WHERE tbl = ? AND (expires_at IS NULL"
            " OR expires_at > ?)",
            (table, now),
        )
        return int(rows[0][0])
