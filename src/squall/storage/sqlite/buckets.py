"""The embedded backend's object metadata: buckets, objects and the garbage list of files
(with the claims of uploads in flight, which only a shared store's object store uses)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.errors import Conflict
from squall.model.buckets import BucketConfig, ObjectInfo
from squall.storage.buckets import (
    BucketOp,
    ClaimUpload,
    DiscardUpload,
    DropBucket,
    ExpireUploads,
    ForgetGarbage,
    PutBucket,
    SettleUpload,
    StoredObject,
    UploadOp,
    WriteObject,
)
from squall.storage.sqlite.db import Database

BUCKETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    config BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS bucket_objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    info BLOB NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_garbage (
    file TEXT PRIMARY KEY
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bucket_uploads (
    file TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""

# After the tables' ops (50-59). WriteObject is one rank for puts and deletes alike: the
# sort is stable, so a unit's writes of one key keep their order.
BUCKET_RANK: dict[type, int] = {
    PutBucket: 60,
    WriteObject: 61,
    DropBucket: 62,
    ForgetGarbage: 63,
    ClaimUpload: 64,
    SettleUpload: 65,
    DiscardUpload: 66,
    ExpireUploads: 67,
}

_pack = msgspec.msgpack.encode
_unpack_info = msgspec.msgpack.Decoder(ObjectInfo).decode
_decode_bucket = msgspec.json.Decoder(BucketConfig).decode
_LET_GO = "INSERT OR IGNORE INTO bucket_garbage (file) SELECT file FROM bucket_objects"


def apply_buckets(conn: sqlite3.Connection, kind: type, ops: Sequence[BucketOp]) -> None:
    """Apply a batch of bucket ops of one ``kind``, in order."""
    for op in ops:
        if isinstance(op, WriteObject):
            conn.execute(f"{_LET_GO} WHERE bucket = ? AND key = ?", (op.bucket, op.key))
            if op.info is None:
                conn.execute(
                    "DELETE FROM bucket_objects WHERE bucket = ? AND key = ?", (op.bucket, op.key)
                )
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO bucket_objects (bucket, key, file, size, info)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (op.bucket, op.key, op.file, op.info.size, _pack(op.info)),
                )
                # The new file is referenced now (a put that reuses a let-go name cannot
                # happen, names are unique, but never unlink a referenced file).
                conn.execute("DELETE FROM bucket_garbage WHERE file = ?", (op.file,))
        elif isinstance(op, PutBucket):
            conn.execute(
                "INSERT INTO buckets (name, config) VALUES (?, ?)",
                (op.bucket.name, msgspec.json.encode(op.bucket)),
            )
        elif isinstance(op, DropBucket):
            conn.execute(f"{_LET_GO} WHERE bucket = ?", (op.name,))
            conn.execute("DELETE FROM bucket_objects WHERE bucket = ?", (op.name,))
            conn.execute("DELETE FROM buckets WHERE name = ?", (op.name,))
        elif isinstance(op, ForgetGarbage):
            conn.executemany("DELETE FROM bucket_garbage WHERE file = ?", [(f,) for f in op.files])
        else:
            _apply_upload(conn, op)


_UNCLAIM = "DELETE FROM bucket_uploads WHERE file = ?"
_TO_GARBAGE = "INSERT OR IGNORE INTO bucket_garbage (file) VALUES (?)"


def _apply_upload(conn: sqlite3.Connection, op: UploadOp) -> None:
    """Claims: a claim's row and the garbage row it may become are one row's fate at a time
    (each statement deletes the claim first and acts only if it deleted it), so a put's
    settle and the sweep's expiry racing on other nodes cannot both win."""
    if isinstance(op, ClaimUpload):
        conn.execute(
            "INSERT INTO bucket_uploads (file, expires_at) VALUES (?, ?)", (op.file, op.expires_at)
        )
    elif isinstance(op, SettleUpload):
        if conn.execute(_UNCLAIM, (op.file,)).rowcount == 0:
            raise Conflict(
                f"the upload of {op.file!r} outlived its claim: its bytes were let go of",
                field="key",
            )
    elif isinstance(op, DiscardUpload):
        if conn.execute(_UNCLAIM, (op.file,)).rowcount:
            conn.execute(_TO_GARBAGE, (op.file,))
    else:
        expired = conn.execute(
            "SELECT file FROM bucket_uploads WHERE expires_at < ? ORDER BY file LIMIT ?",
            (op.before, op.limit),
        ).fetchall()
        for (file,) in expired:
            if conn.execute(f"{_UNCLAIM} AND expires_at < ?", (file, op.before)).rowcount:
                conn.execute(_TO_GARBAGE, (file,))


class BucketReads:
    _db: Database[Any]

    async def list_buckets(self) -> list[BucketConfig]:
        rows = self._db.read("SELECT config FROM buckets ORDER BY name")
        return [_decode_bucket(row[0]) for row in rows]

    async def get_object(self, bucket: str, key: str) -> StoredObject | None:
        rows = self._db.read(
            "SELECT info, file FROM bucket_objects WHERE bucket = ? AND key = ?", (bucket, key)
        )
        return StoredObject(_unpack_info(rows[0][0]), rows[0][1]) if rows else None

    async def list_objects(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> list[StoredObject]:
        start = max(prefix, after)
        op = ">" if after >= prefix and after else ">="
        rows = self._db.read(
            f"SELECT key, info, file FROM bucket_objects WHERE bucket = ? AND key {op} ?"
            " ORDER BY key LIMIT ?",
            (bucket, start, limit),
        )
        return [
            StoredObject(_unpack_info(info), file)
            for key, info, file in rows
            if key.startswith(prefix)
        ]

    async def bucket_usage(self, bucket: str) -> tuple[int, int]:
        rows = self._db.read(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM bucket_objects WHERE bucket = ?",
            (bucket,),
        )
        return int(rows[0][0]), int(rows[0][1])

    async def object_files(self) -> set[str]:
        return {row[0] for row in self._db.read("SELECT file FROM bucket_objects")}

    async def garbage(self, limit: int) -> list[str]:
        rows = self._db.read("SELECT file FROM bucket_garbage LIMIT ?", (limit,))
        return [row[0] for row in rows]

    async def upload_claims(self) -> dict[str, float]:
        rows = self._db.read("SELECT file, expires_at FROM bucket_uploads")
        return {row[0]: float(row[1]) for row in rows}
