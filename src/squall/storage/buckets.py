"""Object metadata: buckets made through the admin API, one row per object, and the files
that no row references any more.

The bytes live in files the engine writes (``engine/buckets/files.py``); a row makes an
object visible. A ``WriteObject`` that replaces or removes a row moves the file it pointed at
to the garbage list in the same transaction, so a file is unlinked only after the commit that
let go of it, and a crash in between leaves it listed, to be unlinked at the next start.

Where the bytes live beside a shared store (a cluster's JetStream object store), a file is
claimed (``ClaimUpload``) before its bytes are written, and the unit that makes a row
reference it settles the claim (``SettleUpload``) in the same transaction. A claim no unit
settled is garbage once it expires (``ExpireUploads``) or its put gave up (``DiscardUpload``);
a put whose claim expired first fails to commit, so no row ever points at swept bytes.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from squall.model.buckets import BucketConfig, ObjectInfo


class PutBucket(msgspec.Struct, frozen=True):
    """Create a bucket made through the admin API (the app's own come from its code)."""

    bucket: BucketConfig


class DropBucket(msgspec.Struct, frozen=True):
    """Remove a bucket with its objects (their files go to the garbage list)."""

    name: str


class WriteObject(msgspec.Struct, frozen=True):
    """Put ``info`` (its bytes in ``file``, relative to the buckets dir) at (bucket, key),
    or remove what is there when ``info`` is None. One kind of op for both, so a unit's puts
    and deletes of one key apply in the order they were made."""

    bucket: str
    key: str
    info: ObjectInfo | None = None
    file: str | None = None


class ForgetGarbage(msgspec.Struct, frozen=True):
    """Files unlinked from disk: drop them from the garbage list."""

    files: list[str]


class ClaimUpload(msgspec.Struct, frozen=True):
    """``file``'s bytes are about to be written; until ``expires_at`` (epoch s) the put that
    writes them may still commit a row referencing it, so the sweep leaves them alone."""

    file: str
    expires_at: float


class SettleUpload(msgspec.Struct, frozen=True):
    """In the unit whose ``WriteObject`` references ``file``: drop its claim. The unit fails
    (Conflict) when the claim is gone, i.e. expired and handed to the sweep."""

    file: str


class DiscardUpload(msgspec.Struct, frozen=True):
    """The put of ``file`` will not commit: its claim becomes garbage now."""

    file: str


class ExpireUploads(msgspec.Struct, frozen=True):
    """Claims that expired before ``before`` (epoch s) become garbage."""

    before: float
    limit: int = 1000


UploadOp = ClaimUpload | SettleUpload | DiscardUpload | ExpireUploads
BucketOp = PutBucket | DropBucket | WriteObject | ForgetGarbage | UploadOp


class StoredObject(msgspec.Struct, frozen=True):
    info: ObjectInfo
    file: str


class BucketStore(Protocol):
    async def list_buckets(self) -> list[BucketConfig]:
        """The buckets made through the admin API, by name."""
        ...

    async def get_object(self, bucket: str, key: str) -> StoredObject | None: ...

    async def list_objects(
        self, bucket: str, prefix: str, after: str, limit: int
    ) -> list[StoredObject]:
        """Up to ``limit`` objects whose key starts with ``prefix`` and sorts after ``after``,
        in key order (UTF-8 byte order)."""
        ...

    async def bucket_usage(self, bucket: str) -> tuple[int, int]:
        """How many objects ``bucket`` holds and their bytes."""
        ...

    async def object_files(self) -> set[str]:
        """Every file a row references."""
        ...

    async def garbage(self, limit: int) -> list[str]:
        """Files let go of by committed units, not yet unlinked."""
        ...

    async def upload_claims(self) -> dict[str, float]:
        """The claims not settled yet: file -> when it expires."""
        ...
