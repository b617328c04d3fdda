"""``ctx.buckets[...]`` calls from a sandbox: ``bucket.<op>`` on the channel.

Frames are limited to 64 MiB, so bytes travel in parts of at most ``PART_BYTES``: a small put
is one ``bucket.put``; a larger one an upload (``bucket.begin``, ``bucket.part`` …,
``bucket.complete``) streamed into a staging file here; a get is ``bucket.head`` then
``bucket.read`` of parts of the version it saw. ``bucket.read`` answers with the raw bytes,
every other op with JSON. Writes need ``bucket:<name>``, reads ``bucket.read:<name>`` or
``bucket:<name>``. What a function writes is held in its invocation's ``effects`` (committed
with its success) when it has one, else committed at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from squall.engine.buckets.uploads import Upload, Uploads
from squall.engine.effects import Effects
from squall.errors import Conflict, InvalidInput
from squall.model.buckets import check_content_type, check_key, check_metadata
from squall.model.config import FunctionConfig

if TYPE_CHECKING:
    from squall.engine.platform import Platform

PART_BYTES = 8 * 1024 * 1024


def allow(caller: FunctionConfig | None, function: str, bucket: str, *, write: bool) -> None:
    if caller is not None and (
        caller.allows("bucket", bucket) or (not write and caller.allows("bucket.read", bucket))
    ):
        return
    from squall.engine.calls import require  # engine.calls delegates bucket.* here

    require(caller, function, "bucket" if write else "bucket.read", bucket)


async def answer(
    platform: Platform,
    caller: FunctionConfig | None,
    function: str,
    op: str,
    args: dict[str, Any],
    effects: Effects | None,
    *,
    hops: int | None = None,
) -> bytes:
    """Carry out ``op`` for ``function``; the reply's value (JSON, or raw bytes for a read)."""
    buckets = platform.buckets
    uploads: Uploads = buckets.uploads
    if op in ("bucket.part", "bucket.complete", "bucket.abort"):
        upload = uploads.get(args, function)
        if op == "bucket.part":
            data = _data(args)
            try:
                upload.staged.write(data)
            except BaseException:
                uploads.close(args)
                raise
            return msgspec.json.encode(upload.staged.size)
        uploads.close(args)
        if op == "bucket.abort":
            upload.staged.abort()
            return b"null"
        info = await buckets.complete(
            upload.bucket,
            upload.key,
            upload.staged,
            content_type=upload.content_type,
            metadata=upload.metadata,
            effects=effects,
            hops=hops,
        )
        return msgspec.json.encode(info.public())
    bucket = str(args.get("bucket") or "")
    write = op in ("bucket.put", "bucket.begin", "bucket.copy", "bucket.delete")
    allow(caller, function, bucket, write=write)
    if op == "bucket.copy":
        allow(caller, function, str(args.get("to_bucket") or bucket), write=True)
        if str(args.get("to_bucket") or bucket) != bucket:
            allow(caller, function, bucket, write=False)
    buckets.get(bucket)
    key = args.get("key")
    if op == "bucket.put":
        info = await buckets.put(
            bucket,
            check_key(key),
            _data(args),
            content_type=args.get("content_type"),
            metadata=args.get("metadata"),
            effects=effects,
            hops=hops,
        )
        return msgspec.json.encode(info.public())
    if op == "bucket.begin":
        content_type = check_content_type(args.get("content_type"))
        metadata = check_metadata(args.get("metadata"))
        size = args.get("size")
        staged = buckets.stage(bucket, check_key(key), size if isinstance(size, int) else None)
        upload = Upload(function, bucket, str(key), content_type, metadata, staged)
        return msgspec.json.encode(uploads.begin(upload))
    if op == "bucket.head":
        stored = await buckets.head(bucket, check_key(key), effects=effects)
        return msgspec.json.encode(stored.info.public())
    if op == "bucket.read":
        start, length = int(args.get("start") or 0), int(args.get("length") or PART_BYTES)
        if length > PART_BYTES:
            raise InvalidInput(f"a read part is at most {PART_BYTES} bytes", field="length")
        stored, data = await buckets.read(bucket, check_key(key), start, length, effects=effects)
        if args.get("version") and stored.info.version != args["version"]:
            raise Conflict(
                f"object {key!r} was replaced while it was read", field="key", key=str(key)
            )
        return data
    if op == "bucket.list":
        limit = args.get("limit")
        page = await buckets.list_objects(
            bucket,
            prefix=str(args.get("prefix") or ""),
            delimiter=args.get("delimiter"),
            cursor=args.get("cursor"),
            limit=1000 if limit is None else limit,
            effects=effects,
        )
        return msgspec.json.encode(
            {
                "objects": [info.public() for info in page.objects],
                "prefixes": page.prefixes,
                "next_cursor": page.next_cursor,
            }
        )
    if op == "bucket.copy":
        info = await buckets.copy(
            bucket,
            check_key(key),
            str(args.get("to_bucket") or bucket),
            check_key(args.get("to_key"), "to_key"),
            effects=effects,
            hops=hops,
        )
        return msgspec.json.encode(info.public())
    if op == "bucket.delete":
        deleted = await buckets.delete_object(bucket, check_key(key), effects=effects, hops=hops)
        return msgspec.json.encode(deleted)
    if op == "bucket.presign":
        expires = args.get("expires_s", 3600)
        path, expires_at = buckets.presign(bucket, check_key(key), str(args.get("method")), expires)
        return msgspec.json.encode({"url": buckets.base_url + path, "expires_at": expires_at})
    raise InvalidInput(f"unknown platform call {op!r}", field="op")


def _data(args: dict[str, Any]) -> bytes:
    data = args.get("data")
    if not isinstance(data, bytes):
        raise InvalidInput("data must be bytes", field="data")
    if len(data) > PART_BYTES:
        raise InvalidInput(f"a part is at most {PART_BYTES} bytes", field="data")
    return data
