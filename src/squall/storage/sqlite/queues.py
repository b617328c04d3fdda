"""The embedded backend's user queues: messages, dedup ids and queues made through the API.

A message is visible when ``available_at <= now``. Receiving sets a fresh receipt and moves
``available_at`` past the visibility timeout; a message is in flight while it holds a receipt
and is invisible. Sends and receives run inside the group commit (``Database.call``), so a
dedup check and its insert, or a pick and its lease, are one step.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from squall.model.queues import QueueConfig, QueueMessage, QueueStats, SendOutcome
from squall.storage.protocols import (
    DeleteMessages,
    DropQueue,
    ExpireMessages,
    PurgeQueue,
    PutQueue,
    QueueOp,
    SendMessages,
    SendViaOutbox,
)
from squall.storage.sqlite.db import Database
from squall.storage.sqlite.outbox import put_outbox_row
from squall.storage.sqlite.turns import take_turn

QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    queue TEXT NOT NULL,
    body BLOB NOT NULL,
    attributes BLOB,
    group_id TEXT,
    dedup_id TEXT,
    sent_at REAL NOT NULL,
    available_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL,
    receipt TEXT,
    source TEXT,  -- the queue a dead-lettered message came from
    traceparent TEXT  -- W3C trace context of the span that sent it
);
CREATE INDEX IF NOT EXISTS queue_messages_due ON queue_messages (queue, available_at);
CREATE UNIQUE INDEX IF NOT EXISTS queue_messages_receipt ON queue_messages (receipt)
    WHERE receipt IS NOT NULL;
-- FIFO picks walk the groups through this index, not the messages.
CREATE INDEX IF NOT EXISTS queue_messages_groups ON queue_messages (queue, group_id, seq)
    WHERE group_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS queue_dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    config BLOB NOT NULL
);
"""

# Columns added after the first release: an older database gets them at open.
QUEUE_COLUMNS = {"traceparent": "TEXT"}

# Applied after the engine's and the catalog's ops, in this order.
QUEUE_RANK: dict[type, int] = {
    DeleteMessages: 40,
    ExpireMessages: 41,
    PurgeQueue: 42,
    DropQueue: 43,
    PutQueue: 44,
    SendMessages: 45,
    SendViaOutbox: 46,
}

_COLUMNS = (
    "seq, id, queue, body, attributes, group_id, dedup_id, sent_at, available_at,"
    " receive_count, first_received_at, receipt, traceparent"
)
_pack_attributes = msgspec.msgpack.encode
_unpack_attributes = msgspec.msgpack.Decoder(dict[str, str]).decode
_decode_queue = msgspec.json.Decoder(QueueConfig).decode


def apply_queues(conn: sqlite3.Connection, kind: type, ops: Sequence[QueueOp]) -> None:
    """Apply a batch of queue ops of one ``kind``."""
    if kind is DeleteMessages:
        conn.executemany(
            "DELETE FROM queue_messages WHERE receipt = ? AND queue = ?",
            [(r, op.queue) for op in ops if isinstance(op, DeleteMessages) for r in op.receipts],
        )
        return
    for op in ops:
        if isinstance(op, ExpireMessages):
            conn.execute(
                "DELETE FROM queue_messages WHERE queue = ? AND sent_at < ?", (op.queue, op.before)
            )
            conn.execute(
                "DELETE FROM queue_dedup WHERE queue = ? AND expires_at <= ?", (op.queue, op.now)
            )
        elif isinstance(op, PurgeQueue):
            conn.execute("DELETE FROM queue_messages WHERE queue = ?", (op.name,))
        elif isinstance(op, DropQueue):
            conn.execute("DELETE FROM queue_messages WHERE queue = ?", (op.name,))
            conn.execute("DELETE FROM queue_dedup WHERE queue = ?", (op.name,))
            conn.execute("DELETE FROM queues WHERE name = ?", (op.name,))
        elif isinstance(op, PutQueue):
            conn.execute(
                "INSERT INTO queues (name, config) VALUES (?, ?)",
                (op.queue.name, msgspec.json.encode(op.queue)),
            )
        elif isinstance(op, SendMessages):
            _send(conn, op.messages, op.dedup_window_s)
        elif isinstance(op, SendViaOutbox):
            send_via_outbox(conn, op)


def _send(
    conn: sqlite3.Connection,
    messages: Sequence[QueueMessage],
    window_s: float,
    write: Callable[[int, QueueMessage], None] | None = None,
) -> list[SendOutcome]:
    """Record each message's dedup id, then ``write`` it (by default: into queue_messages);
    one whose id its queue saw within the window is answered with the first message."""
    outcomes: list[SendOutcome] = []
    now = time.time()
    for index, m in enumerate(messages):
        if m.dedup_id is not None:
            row = conn.execute(
                "SELECT message_id FROM queue_dedup WHERE queue = ? AND dedup_id = ?"
                " AND expires_at > ?",
                (m.queue, m.dedup_id, now),
            ).fetchone()
            if row is not None:
                outcomes.append(SendOutcome(row[0], True))
                continue
            conn.execute(
                "INSERT OR REPLACE INTO queue_dedup (queue, dedup_id, message_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (m.queue, m.dedup_id, m.id, now + window_s),
            )
        if write is None:
            _insert(conn, m)
        else:
            write(index, m)
        outcomes.append(SendOutcome(m.id, False))
    return outcomes


def _insert(conn: sqlite3.Connection, m: QueueMessage) -> None:
    conn.execute(
        "INSERT INTO queue_messages (id, queue, body, attributes, group_id, dedup_id,"
        " sent_at, available_at, traceparent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.id,
            m.queue,
            m.body,
            _pack_attributes(m.attributes) if m.attributes else None,
            m.group_id,
            m.dedup_id,
            m.sent_at,
            m.available_at,
            m.traceparent,
        ),
    )


def send_via_outbox(conn: sqlite3.Connection, op: SendViaOutbox) -> list[SendOutcome]:
    """The distributed store's send: dedup here, the message itself an outbox row."""
    op.sent.clear()  # the op may apply again, after its batch's transaction failed

    def write(index: int, m: QueueMessage) -> None:
        put_outbox_row(conn, op.deliveries[index])
        op.sent.append(index)

    return _send(conn, op.messages, op.dedup_window_s, write)


def _pick(
    conn: sqlite3.Connection, queue: str, limit: int, fifo: bool, per_group: int | None, now: float
) -> list[Any]:
    if not fifo:
        return conn.execute(
            "SELECT seq, receive_count FROM queue_messages WHERE queue = ? AND available_at <= ?"
            " ORDER BY available_at, seq LIMIT ?",
            (queue, now, limit),
        ).fetchall()
    # A group with a message in flight or delayed waits: its order must hold.
    blocked = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT group_id FROM queue_messages WHERE queue = ? AND available_at > ?",
            (queue, now),
        )
    }
    # Each other group's head, oldest first; then up to per_group messages of each.
    heads = sorted((seq, group) for group, seq in _heads(conn, queue) if group not in blocked)
    picked: list[Any] = []
    for _, group in heads:
        take = min(per_group or limit, limit - len(picked))
        picked += [(seq, count) for seq, count in conn.execute(_RUN, (queue, group, take))]
        if len(picked) >= limit:
            break
    return picked


_RUN = (
    "SELECT seq, receive_count FROM queue_messages WHERE queue = ? AND group_id = ?"
    " ORDER BY seq LIMIT ?"
)


def _heads(conn: sqlite3.Connection, queue: str) -> list[tuple[str, int]]:
    """Every message group of the queue and its first message's seq: a skip scan, two index
    probes per group, in one statement."""
    rows: list[tuple[str, int]] = conn.execute(
        "WITH RECURSIVE g(id) AS ("
        " SELECT MIN(group_id) FROM queue_messages WHERE queue = ?1 AND group_id IS NOT NULL"
        " UNION ALL SELECT (SELECT MIN(group_id) FROM queue_messages"
        " WHERE queue = ?1 AND group_id > g.id) FROM g WHERE g.id IS NOT NULL"
        ") SELECT id, (SELECT MIN(seq) FROM queue_messages WHERE queue = ?1 AND group_id = g.id)"
        " FROM g WHERE id IS NOT NULL",
        (queue,),
    ).fetchall()
    return rows


def _receive(
    conn: sqlite3.Connection,
    queue: str,
    limit: int,
    visibility_s: float,
    fifo: bool,
    max_receive: int | None,
    dead_letter: str | None,
    per_group: int | None = None,
) -> list[QueueMessage]:
    if not take_turn(conn, f"queue:{queue}"):
        return []
    now = time.time()
    picked = _pick(conn, queue, limit, fifo, per_group, now)
    spent = [seq for seq, count in picked if max_receive is not None and count >= max_receive]
    if spent:
        if dead_letter is None:
            conn.executemany("DELETE FROM queue_messages WHERE seq = ?", [(s,) for s in spent])
        else:
            conn.executemany(
                "UPDATE queue_messages SET queue = ?, source = ?, receive_count = 0,"
                " receipt = NULL, first_received_at = NULL, available_at = ? WHERE seq = ?",
                [(dead_letter, queue, now, s) for s in spent],
            )
    taken = [seq for seq, count in picked if max_receive is None or count < max_receive]
    if not taken:
        return []
    conn.executemany(
        "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?,"
        " available_at = ?, first_received_at = COALESCE(first_received_at, ?) WHERE seq = ?",
        [(f"{seq}.{secrets.token_urlsafe(12)}", now + visibility_s, now, seq) for seq in taken],
    )
    marks = ", ".join("?" * len(taken))
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM queue_messages WHERE seq IN ({marks}) ORDER BY seq", taken
    ).fetchall()
    return [_message(row) for row in rows]


def _message(row: Any) -> QueueMessage:
    return QueueMessage(
        id=row[1],
        queue=row[2],
        body=bytes(row[3]),
        attributes=_unpack_attributes(row[4]) if row[4] is not None else {},
        group_id=row[5],
        dedup_id=row[6],
        sent_at=row[7],
        available_at=row[8],
        receive_count=row[9],
        first_received_at=row[10],
        receipt=row[11],
        traceparent=row[12],
    )


class QueueReads:
    """The ``QueueStore`` methods, for ``SqliteStore``."""

    _db: Database[Any]

    async def list_queues(self) -> list[QueueConfig]:
        return [_decode_queue(row[0]) for row in self._db.read("SELECT config FROM queues")]

    async def send_messages(
        self, messages: Sequence[QueueMessage], dedup_window_s: float
    ) -> list[SendOutcome]:
        result: list[SendOutcome] = await self._db.call(
            lambda conn: _send(conn, messages, dedup_window_s)
        )
        return result

    async def receive_messages(
        self,
        queue: str,
        limit: int,
        visibility_s: float,
        *,
        fifo: bool,
        max_receive: int | None = None,
        dead_letter: str | None = None,
        per_group: int | None = None,
    ) -> list[QueueMessage]:
        result: list[QueueMessage] = await self._db.call(
            lambda conn: _receive(
                conn, queue, limit, visibility_s, fifo, max_receive, dead_letter, per_group
            )
        )
        return result

    async def delete_message(self, queue: str, receipt: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM queue_messages WHERE receipt = ? AND queue = ?", (receipt, queue)
            )
            return cursor.rowcount > 0

        deleted: bool = await self._db.call(delete)
        return deleted

    async def change_visibility(self, queue: str, receipt: str, visibility_s: float) -> bool:
        def change(conn: sqlite3.Connection) -> bool:
            now = time.time()
            cursor = conn.execute(
                "UPDATE queue_messages SET available_at = ? WHERE receipt = ? AND queue = ?"
                " AND available_at > ?",
                (now + visibility_s, receipt, queue, now),
            )
            return cursor.rowcount > 0

        changed: bool = await self._db.call(change)
        return changed

    async def redrive_messages(self, dead_letter: str) -> dict[str, int]:
        def redrive(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "UPDATE queue_messages SET queue = source, source = NULL, receive_count = 0,"
                " receipt = NULL, first_received_at = NULL, available_at = ?"
                " WHERE queue = ? AND source IS NOT NULL RETURNING queue",
                (time.time(), dead_letter),
            ).fetchall()
            counts: dict[str, int] = {}
            for (queue,) in rows:
                counts[queue] = counts.get(queue, 0) + 1
            return counts

        counts: dict[str, int] = await self._db.call(redrive)
        return counts

    async def queue_stats(self, queue: str) -> QueueStats:
        now = time.time()
        rows = self._db.read(
            "SELECT COUNT(*) FILTER (WHERE available_at <= ?),"
            " COUNT(*) FILTER (WHERE available_at > ? AND receipt IS NOT NULL),"
            " COUNT(*) FILTER (WHERE available_at > ? AND receipt IS NULL), MIN(sent_at)"
            " FROM queue_messages WHERE queue = ?",
            (now, now, now, queue),
        )
        visible, in_flight, delayed, oldest = rows[0]
        return QueueStats(
            visible=int(visible),
            in_flight=int(in_flight),
            delayed=int(delayed),
            oldest_sent_at=oldest,
        )

    async def next_visible(self, queue: str) -> float | None:
        rows = self._db.read(
            "SELECT MIN(available_at) FROM queue_messages WHERE queue = ? AND available_at > ?",
            (queue, time.time()),
        )
        return rows[0][0] if rows else None
