"""The embedded backend: work queue and state in one SQLite database."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from squall.errors import Conflict
from squall.model.invocation import DeadLetter, InvocationRecord, LogEntry, LogRow
from squall.model.rules import RuleConfig
from squall.storage.protocols import (
    Ack,
    AppendLogs,
    Bury,
    DeleteRule,
    Delivery,
    Enqueue,
    ExpireLogs,
    Op,
    PutFunctionSettings,
    PutIdempotency,
    PutInvocation,
    PutRule,
    RememberEvent,
    Retry,
    TakeDeadLetter,
)
from squall.storage.sqlite.buckets import (
    BUCKET_RANK,
    BUCKETS_SCHEMA,
    BucketReads,
    apply_buckets,
)
from squall.storage.sqlite.catalog import (
    CATALOG_RANK,
    CATALOG_SCHEMA,
    CatalogReads,
    apply_catalog,
)
from squall.storage.sqlite.db import Database
from squall.storage.sqlite.deliveries import ENQUEUE_SQL, delivery_row
from squall.storage.sqlite.deploys import (
    DEPLOYS_RANK,
    DEPLOYS_SCHEMA,
    DeployReads,
    apply_deploys,
)
from squall.storage.sqlite.event_store import (
    EVENT_STORE_RANK,
    EVENT_STORE_SCHEMA,
    EventStoreReads,
    apply_event_store,
)
from squall.storage.sqlite.leases import LEASES_SCHEMA, LeaseReads
from squall.storage.sqlite.logs import LOG_RANK, LOG_SCHEMA, LogReads, apply_log
from squall.storage.sqlite.migrate import add_missing_columns
from squall.storage.sqlite.outbox import (
    OUTBOX_COLUMNS,
    OUTBOX_RANK,
    OUTBOX_SCHEMA,
    OutboxReads,
    apply_outbox,
)
from squall.storage.sqlite.queues import (
    QUEUE_COLUMNS,
    QUEUE_RANK,
    QUEUE_SCHEMA,
    QueueReads,
    apply_queues,
)
from squall.storage.sqlite.schedules import (
    SCHEDULE_RANK,
    SCHEDULES_SCHEMA,
    ScheduleReads,
    apply_schedules,
)
from squall.storage.sqlite.schema import LATE_INDEXES, LOG_COLUMNS, SCHEMA
from squall.storage.sqlite.tables import TABLES_RANK, TABLES_SCHEMA, TableReads, apply_tables
from squall.storage.sqlite.traces import TRACE_RANK, TRACES_SCHEMA, TraceReads, apply_traces
from squall.storage.sqlite.turns import take_turn
from squall.storage.sqlite.usage import UsageReads
from squall.storage.sqlite.workflows import (
    WORKFLOW_RANK,
    WORKFLOW_SCHEMA,
    WorkflowReads,
    apply_workflows,
)

_pack = msgspec.msgpack.encode
_unpack_record = msgspec.msgpack.Decoder(InvocationRecord).decode
_unpack_headers = msgspec.msgpack.Decoder(dict[str, str]).decode
_unpack_error = msgspec.msgpack.Decoder(dict[str, Any]).decode
_pack_fields = msgspec.json.encode
_unpack_fields = msgspec.json.Decoder(dict[str, Any]).decode
_decode_rule = msgspec.json.Decoder(RuleConfig).decode

LEVELS = ("debug", "info", "warning", "error", "critical")


# The order ops of different kinds are applied in. Every unit the engine builds is
# correct in this order, so the ops of a whole batch can be sorted into it and
# applied with one executemany per kind.
_RANK: dict[type, int] = {
    TakeDeadLetter: 0,
    Ack: 1,
    Retry: 1,
    Bury: 2,
    Enqueue: 3,
    PutInvocation: 4,
    AppendLogs: 5,
    PutIdempotency: 6,
    RememberEvent: 7,
    DeleteRule: 14,
    PutRule: 15,
    PutFunctionSettings: 16,
    **CATALOG_RANK,
    **LOG_RANK,
    **SCHEDULE_RANK,
    **QUEUE_RANK,
    **BUCKET_RANK,
    **TABLES_RANK,
    **WORKFLOW_RANK,
    **EVENT_STORE_RANK,
    **TRACE_RANK,
    ExpireLogs: 92,
    **DEPLOYS_RANK,
    **OUTBOX_RANK,
}

# Every table of the store; a backend that speaks another dialect translates this text.
ALL_SCHEMA = (
    SCHEMA + CATALOG_SCHEMA + LOG_SCHEMA + SCHEDULES_SCHEMA + QUEUE_SCHEMA + BUCKETS_SCHEMA
    + TABLES_SCHEMA + WORKFLOW_SCHEMA + EVENT_STORE_SCHEMA + TRACES_SCHEMA + DEPLOYS_SCHEMA
    + LEASES_SCHEMA + OUTBOX_SCHEMA
)
LATE_COLUMNS = {"logs": LOG_COLUMNS, "queue_messages": QUEUE_COLUMNS, "outbox": OUTBOX_COLUMNS}

_SQL: dict[type, str] = {
    RememberEvent: "INSERT OR REPLACE INTO event_ids (source, id, expires_at) VALUES (?, ?, ?)",
    PutInvocation: "INSERT OR REPLACE INTO invocations (id, function, status, created_at, record)"
    " VALUES (?, ?, ?, ?, ?)",
    Ack: "DELETE FROM deliveries WHERE id = ?",
    Enqueue: ENQUEUE_SQL,
    AppendLogs: "INSERT INTO logs (time, level, stream, message, function, invocation_id,"
    " request_id, version, trace_id, span_id, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ExpireLogs: "DELETE FROM logs WHERE time < ?",
    Retry: "UPDATE deliveries SET available_at = ?, leased = 0 WHERE id = ?",
    PutIdempotency: "INSERT OR REPLACE INTO idempotency (function, key, invocation_id,"
    " expires_at) VALUES (?, ?, ?, ?)",
    PutRule: "INSERT OR REPLACE INTO rules (name, rule) VALUES (?, ?)",
    DeleteRule: "DELETE FROM rules WHERE name = ?",
    PutFunctionSettings: "INSERT OR REPLACE INTO function_settings (function, changes)"
    " VALUES (?, ?)",
}
_BURY_DELETE = "DELETE FROM deliveries WHERE id = ?"
_BURY_INSERT = (
    "INSERT OR REPLACE INTO dead_letters (id, function, invocation_id, payload, error,"
    " attempts, enqueued_at, failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _rows(kind: type, ops: list[Any]) -> list[tuple[Any, ...]]:
    if kind is PutInvocation:
        rows = []
        for op in ops:
            record = op.record
            if record.logs:  # lines live in the logs table; copy, the loop may be reading it
                record = msgspec.structs.replace(record, logs=[])
            rows.append(
                (record.id, record.function, record.status, record.created_at, _pack(record))
            )
        return rows
    if kind is Ack:
        return [(op.delivery_id,) for op in ops]
    if kind is Enqueue:
        return [delivery_row(op.delivery, op.dedup_key) for op in ops]
    if kind is AppendLogs:
        return [
            (
                line.time,
                line.level,
                line.stream,
                line.message,
                op.function,
                op.invocation_id,
                op.request_id,
                op.version,
                line.trace_id,
                line.span_id,
                _pack_fields(line.fields) if line.fields else None,
            )
            for op in ops
            for line in op.lines
        ]
    if kind is ExpireLogs:
        return [(op.before,) for op in ops]
    if kind is Retry:
        return [(op.available_at, op.delivery_id) for op in ops]
    if kind is RememberEvent:
        return [(op.source, op.event_id, op.expires_at) for op in ops]
    if kind is PutIdempotency:
        return [(op.function, op.key, op.invocation_id, op.expires_at) for op in ops]
    if kind is PutRule:
        return [(op.rule.name, msgspec.json.encode(op.rule)) for op in ops]
    if kind is DeleteRule:
        return [(op.name,) for op in ops]
    if kind is PutFunctionSettings:
        return [(op.function, op.changes) for op in ops]
    raise TypeError(f"no rows for {kind.__name__}")  # pragma: no cover


def apply_ops(conn: sqlite3.Connection, ops: Sequence[Op]) -> None:
    ordered = sorted(ops, key=lambda op: _RANK[type(op)])
    for kind, group in itertools.groupby(ordered, key=type):
        batch = list(group)
        if kind is TakeDeadLetter:
            for op in batch:
                assert isinstance(op, TakeDeadLetter)
                cursor = conn.execute("DELETE FROM dead_letters WHERE id = ?", (op.letter_id,))
                if cursor.rowcount == 0:
                    raise Conflict(f"dead letter {op.letter_id!r} is already gone", id=op.letter_id)
        elif kind is Bury:
            buried = [op for op in batch if isinstance(op, Bury)]
            conn.executemany(_BURY_DELETE, [(op.delivery_id,) for op in buried])
            conn.executemany(
                _BURY_INSERT,
                [
                    (x.id, x.function, x.invocation_id, x.payload, _pack(x.error), x.attempts,
                     x.enqueued_at, x.failed_at)
                    for x in (op.letter for op in buried)
                ],
            )
        elif kind in CATALOG_RANK:
            apply_catalog(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in LOG_RANK:
            apply_log(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in SCHEDULE_RANK:
            apply_schedules(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in QUEUE_RANK:
            apply_queues(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in BUCKET_RANK:
            apply_buckets(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in TABLES_RANK:
            apply_tables(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in WORKFLOW_RANK:
            apply_workflows(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in EVENT_STORE_RANK:
            apply_event_store(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in TRACE_RANK:
            apply_traces(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in DEPLOYS_RANK:
            apply_deploys(conn, kind, batch)  # type: ignore[arg-type]
        elif kind in OUTBOX_RANK:
            apply_outbox(conn, kind, batch)  # type: ignore[arg-type]
        else:
            conn.executemany(_SQL[kind], _rows(kind, batch))


def _lease(conn: sqlite3.Connection, queue: str, limit: int, visibility_s: float) -> list[Delivery]:
    if not take_turn(conn, f"deliveries:{queue}"):
        return []
    now = time.time()
    rows = conn.execute(
        "UPDATE deliveries SET available_at = ?, leased = 1, attempts = attempts + 1"
        " WHERE seq IN (SELECT seq FROM deliveries WHERE queue = ? AND available_at <= ?"
        " ORDER BY available_at, seq LIMIT ?)"
        " RETURNING seq, id, payload, invocation_id, attempts, enqueued_at, headers",
        (now + visibility_s, queue, now, limit),
    ).fetchall()
    rows.sort(key=lambda row: row[0])
    return [
        Delivery(
            id=row[1],
            queue=queue,
            payload=row[2],
            invocation_id=row[3],
            attempts=row[4],
            enqueued_at=row[5],
            available_at=now,
            headers=_unpack_headers(row[6]),
        )
        for row in rows
    ]


class SqliteStore(
    CatalogReads,
    LogReads,
    ScheduleReads,
    QueueReads,
    BucketReads,
    TableReads,
    UsageReads,
    WorkflowReads,
    EventStoreReads,
    TraceReads,
    DeployReads,
    LeaseReads,
    OutboxReads,
):
    # Only this process can open the file (the data dir lock): a lease left by a process
    # that died is taken over at once instead of after it expires.
    exclusive = True

    def __init__(self, db: Database[Op]) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        db: Database[Op] = Database(path, apply_ops)
        db.conn.executescript(ALL_SCHEMA)
        for table, columns in LATE_COLUMNS.items():
            add_missing_columns(db.conn, table, columns)
        db.conn.executescript(LATE_INDEXES)
        return cls(db)

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None:
        await self._db.commit(ops, within_s)

    def submit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> asyncio.Future[None]:
        return self._db.commit(ops, within_s)

    def commit_soon(self, ops: Sequence[Op]) -> None:
        self._db.commit_lazy(ops)

    async def close(self) -> None:
        await self._db.close()

    # --- work queue ------------------------------------------------------------------------

    async def lease(self, queue: str, limit: int, visibility_s: float) -> list[Delivery]:
        result: list[Delivery] = await self._db.call(
            lambda conn: _lease(conn, queue, limit, visibility_s)
        )
        return result

    async def recover(self) -> int:
        def release(conn: sqlite3.Connection) -> int:
            # A lease held when the process died is not the function's fault: give the
            # attempt back, so a crash of the platform never eats into retries.
            cursor = conn.execute(
                "UPDATE deliveries SET available_at = ?, leased = 0,"
                " attempts = MAX(attempts - 1, 0) WHERE leased = 1",
                (time.time(),),
            )
            return cursor.rowcount

        count: int = await self._db.call(release)
        return count

    async def next_due(self, queue: str) -> float | None:
        rows = self._db.read("SELECT MIN(available_at) FROM deliveries WHERE queue = ?", (queue,))
        return rows[0][0] if rows else None

    async def depth(self, queue: str | None = None) -> int:
        if queue is None:
            rows = self._db.read("SELECT COUNT(*) FROM deliveries")
        else:
            rows = self._db.read("SELECT COUNT(*) FROM deliveries WHERE queue = ?", (queue,))
        return int(rows[0][0])

    # --- state -----------------------------------------------------------------------------

    async def get_invocation(self, invocation_id: str) -> InvocationRecord | None:
        rows = self._db.read("SELECT record FROM invocations WHERE id = ?", (invocation_id,))
        if not rows:
            return None
        record = _unpack_record(rows[0][0])
        logs = await self.list_logs(
            function=None,
            invocation_id=invocation_id,
            since=None,
            after=None,
            level=None,
            limit=10_000,
        )
        record.logs = [_entry(row) for row in logs]
        return record

    async def list_invocations(
        self, *, function: str | None, status: str | None, limit: int, before: str | None
    ) -> list[InvocationRecord]:
        clauses, params = _where(function=function, status=status)
        if before is not None:
            clauses.append("id < ?")
            params.append(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.read(
            f"SELECT record FROM invocations {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [_unpack_record(row[0]) for row in rows]

    async def find_idempotent(self, function: str, key: str, now: float) -> str | None:
        rows = self._db.read(
            "SELECT invocation_id FROM idempotency WHERE function = ? AND key = ?"
            " AND expires_at > ?",
            (function, key, now),
        )
        return rows[0][0] if rows else None

    async def seen_events(
        self, keys: Sequence[tuple[str, str]], now: float
    ) -> set[tuple[str, str]]:
        seen: set[tuple[str, str]] = set()
        for source, event_id in keys:
            rows = self._db.read(
                "SELECT 1 FROM event_ids WHERE source = ? AND id = ? AND expires_at > ?",
                (source, event_id, now),
            )
            if rows:
                seen.add((source, event_id))
        return seen

    async def list_logs(
        self,
        *,
        function: str | None,
        invocation_id: str | None,
        since: float | None,
        after: int | None,
        level: str | None,
        limit: int,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> list[LogRow]:
        clauses, params = _where(
            function=function,
            invocation_id=invocation_id,
            request_id=request_id,
            trace_id=trace_id,
        )
        if since is not None:
            clauses.append("time >= ?")
            params.append(since)
        if after is not None:
            clauses.append("seq > ?")
            params.append(after)
        if level is not None and level in LEVELS:
            allowed = LEVELS[LEVELS.index(level) :]
            clauses.append(f"level IN ({', '.join('?' * len(allowed))})")
            params.extend(allowed)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.read(
            "SELECT seq, time, level, stream, message, function, invocation_id, request_id,"
            f" version, trace_id, span_id, fields FROM logs {where} ORDER BY seq LIMIT ?",
            (*params, limit),
        )
        return [
            LogRow(
                seq=row[0],
                time=row[1],
                level=row[2],
                stream=row[3],
                message=row[4],
                function=row[5],
                invocation_id=row[6],
                request_id=row[7],
                version=row[8],
                trace_id=row[9],
                span_id=row[10],
                fields=_unpack_fields(row[11]) if row[11] is not None else None,
            )
            for row in rows
        ]

    async def list_dead_letters(
        self, *, function: str | None, ids: Sequence[str] | None, limit: int
    ) -> list[DeadLetter]:
        clauses, params = _where(function=function)
        if ids is not None:
            clauses.append(f"id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.read(
            "SELECT id, function, invocation_id, payload, error, attempts, enqueued_at, failed_at"
            f" FROM dead_letters {where} ORDER BY failed_at LIMIT ?",
            (*params, limit),
        )
        return [
            DeadLetter(
                id=row[0],
                function=row[1],
                invocation_id=row[2],
                payload=row[3],
                error=_unpack_error(row[4]),
                attempts=row[5],
                enqueued_at=row[6],
                failed_at=row[7],
            )
            for row in rows
        ]

    async def list_rules(self) -> list[RuleConfig]:
        rows = self._db.read("SELECT rule FROM rules ORDER BY name")
        return [_decode_rule(row[0]) for row in rows]

    async def function_settings(self) -> dict[str, bytes]:
        rows = self._db.read("SELECT function, changes FROM function_settings")
        return {function: bytes(changes) for function, changes in rows}


def _where(**equals: str | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in equals.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return clauses, params


def _entry(row: LogRow) -> LogEntry:
    return LogEntry(
        row.time, row.level, row.stream, row.message, row.fields, row.trace_id, row.span_id
    )
