"""``ctx.buckets["uploads"]``: a function's handle on a bucket, in the sandbox process.

Bytes cross the channel in parts of at most 8 MiB (frames are limited to 64 MiB): a put of
more is an upload (begin, parts, complete) the platform streams to disk; a get reads the
version it first saw, part by part.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol

import msgspec

PART_BYTES = 8 * 1024 * 1024


class _Link(Protocol):
    def call(self, op: str, args: dict[str, Any]) -> bytes | None: ...


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    """An object's metadata, and its bytes when it was read with ``get``."""

    bucket: str
    key: str
    version: str
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]
    created_at: float
    body: bytes = b""


class Bucket:
    def __init__(self, link: _Link, name: str) -> None:
        self._link = link
        self.name = name

    def _json(self, op: str, **args: Any) -> Any:
        body = self._link.call(op, {"bucket": self.name, **args})
        return None if body is None else msgspec.json.decode(body)

    def put(
        self,
        key: str,
        data: bytes | bytearray | memoryview | IO[bytes],
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Store ``data`` (bytes, or a binary file-like read in parts) at ``key``; the write
        is committed with this invocation's success."""
        if isinstance(data, bytes | bytearray | memoryview):
            if len(data) <= PART_BYTES:
                info = self._json(
                    "bucket.put",
                    key=key,
                    data=bytes(data),
                    content_type=content_type,
                    metadata=metadata,
                )
                return msgspec.convert(info, StoredObject)
            parts: Iterator[bytes] = (
                bytes(data[i : i + PART_BYTES]) for i in range(0, len(data), PART_BYTES)
            )
            size: int | None = len(data)
        else:
            stream = data
            parts = iter(lambda: stream.read(PART_BYTES), b"")
            size = None
        upload = self._json(
            "bucket.begin", key=key, content_type=content_type, metadata=metadata, size=size
        )
        try:
            for part in parts:
                self._link.call("bucket.part", {"upload": upload, "data": part})
        except BaseException:
            self._link.call("bucket.abort", {"upload": upload})
            raise
        return msgspec.convert(self._json_upload("bucket.complete", upload), StoredObject)

    def _json_upload(self, op: str, upload: str) -> Any:
        body = self._link.call(op, {"upload": upload})
        return None if body is None else msgspec.json.decode(body)

    def head(self, key: str) -> StoredObject:
        """The object's metadata (``NotFound`` when there is none)."""
        return msgspec.convert(self._json("bucket.head", key=key), StoredObject)

    def get(self, key: str, *, range: tuple[int, int] | None = None) -> StoredObject:
        """The object with its ``body``; ``range=(start, end)`` reads bytes start-end
        inclusive, as HTTP ranges do."""
        info = self.head(key)
        start, end = (0, info.size - 1) if range is None else range
        end = min(end, info.size - 1)
        chunks: list[bytes] = []
        offset = start
        while offset <= end:
            length = min(PART_BYTES, end - offset + 1)
            part = self._link.call(
                "bucket.read",
                {
                    "bucket": self.name,
                    "key": key,
                    "start": offset,
                    "length": length,
                    "version": info.version,
                },
            )
            if not part:
                break
            chunks.append(part)
            offset += len(part)
        return msgspec.structs.replace(info, body=b"".join(chunks))

    def list(
        self,
        prefix: str = "",
        *,
        delimiter: str | None = None,
        cursor: str | None = None,
        limit: int = 1000,
    ) -> dict[str, Any]:
        """``{"objects": [...], "prefixes": [...], "next_cursor"}`` in key order."""
        page: dict[str, Any] = self._json(
            "bucket.list", prefix=prefix, delimiter=delimiter, cursor=cursor, limit=limit
        )
        return page

    def copy(self, key: str, to_key: str, *, to_bucket: str | None = None) -> StoredObject:
        info = self._json("bucket.copy", key=key, to_key=to_key, to_bucket=to_bucket)
        return msgspec.convert(info, StoredObject)

    def delete(self, key: str) -> bool:
        """Remove the object; False when there was none."""
        return bool(self._json("bucket.delete", key=key))

    def presign(self, key: str, *, method: str = "GET", expires_s: int = 3600) -> str:
        """A URL anyone may GET (or PUT) the object with until it expires."""
        return str(self._json("bucket.presign", key=key, method=method, expires_s=expires_s)["url"])


class Buckets:
    def __init__(self, link: _Link) -> None:
        self._link = link

    def __getitem__(self, name: str) -> Bucket:
        return Bucket(self._link, name)
