"""The buckets of a platform: their objects put, read, listed, copied and deleted.

Every change is one unit of work: the object's metadata row (``WriteObject``) and the
``squall.object.created``/``removed`` event's deliveries, so an event is published exactly when
its change becomes visible. With ``effects`` (a running invocation) the unit is held for the
invocation's outcome; reads in that invocation see its own pending writes through an overlay.
A file let go of (replaced, deleted, or written for a change that was discarded) is unlinked
after the commit that let go of it (see ``storage/buckets.py``). The bytes live where the
store's kind says (``objects.py``): files in the data dir, or a cluster's JetStream object
store; in a cluster the sweep runs on the coordinator.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Callable, Sequence
from pathlib import Path
from typing import Any

from squall.engine.buckets.files import CHUNK, ObjectFiles, StagedFile
from squall.engine.buckets.objects import ObjectBytes, object_bytes
from squall.engine.buckets.uploads import Uploads
from squall.engine.effects import Effects, commit_or_hold
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.buckets import (
    CREATED,
    DEFAULT_CONTENT_TYPE,
    MAX_LIST,
    REMOVED,
    BucketConfig,
    ObjectInfo,
    ObjectPage,
    check_bucket_name,
    check_content_type,
    check_key,
    check_metadata,
    object_too_large,
)
from squall.model.cloudevent import CloudEvent
from squall.model.ids import new_id
from squall.security.presign import Presigner
from squall.storage.buckets import DropBucket, ForgetGarbage, PutBucket, StoredObject, WriteObject
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.buckets")

Hook = Callable[[], None]
# Ops that publish events in the caller's unit, and what to run once they landed.
EventOps = Callable[[Sequence[CloudEvent]], tuple[list[Op], Hook]]
Overlay = dict[tuple[str, str], StoredObject | None]
SWEEP_BATCH = 1000
UPLOADS_CHECK_S = 60.0
# Hash and write put blocks off the event loop, overlapping the next block's arrival.
_WRITERS = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="squall-objects")


class Buckets:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        declared: Sequence[BucketConfig],
        event_ops: EventOps,
        app: str,
    ) -> None:
        self._store = store
        self.files: ObjectBytes = object_bytes(store, data_dir / "buckets")
        self._declared = {bucket.name: bucket for bucket in declared}
        self._made: dict[str, BucketConfig] = {}
        self._changing: set[str] = set()  # made or deleted here, the commit not back yet
        self._event_ops = event_ops
        self._app = app
        self._data_dir = data_dir
        self.presigner: Presigner | None = None
        self.base_url = ""  # where the gateway listens, for ctx.presign's full URLs
        self._sweep = asyncio.Event()
        self.uploads = Uploads()  # ctx.buckets puts in parts, open now

    # --- lifecycle -----------------------------------------------------------------------

    async def load(self) -> None:
        """Read buckets made through the API; remove staging leftovers and files no row
        references (a put killed between its rename and its commit)."""
        self.presigner = Presigner.load(self._data_dir)
        self._made = {b.name: b for b in await self._store.list_buckets()}
        if not self._store.exclusive:
            # A cluster: an object no row references yet may be another node's put between
            # its upload and its commit (its claim says so, see ``jetstream.py``). Staging
            # is this node's own, unless the nodes share a bucket volume (files).
            if isinstance(self.files, ObjectFiles):
                self.files.make_dirs()
            else:
                self.files.prepare()
            await self.sweep()
            return
        staged = self.files.prepare()
        await self._store.commit(())
        referenced = await self._store.object_files()
        orphans = await self.files.names() - referenced
        await self.files.remove(sorted(orphans))
        if staged or orphans:
            log.info("removed %d staged and %d unreferenced object files", staged, len(orphans))
        await self.sweep()

    async def refresh(self) -> None:
        """Take up the buckets other nodes of a cluster made or deleted through the API
        (one this node is making or deleting right now is left as it is)."""
        stored = {b.name: b for b in await self._store.list_buckets()}
        for name in [n for n in self._made if n not in stored and n not in self._changing]:
            del self._made[name]
        for name, config in stored.items():
            if name not in self._changing:
                self._made.setdefault(name, config)

    async def sweep(self) -> int:
        """Unlink the files committed units let go of; returns how many."""
        await self.files.expire()
        done = 0
        while True:
            garbage = await self._store.garbage(SWEEP_BATCH)
            if not garbage:
                return done
            await self.files.remove(garbage)
            await self._store.commit([ForgetGarbage(garbage)])
            done += len(garbage)

    async def sweep_forever(self) -> None:
        """Unlink let-go files after each commit that lets some go; drop uploads abandoned by
        their sandboxes once a minute."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep.wait(), UPLOADS_CHECK_S)
            self._sweep.clear()
            self.uploads.expire()
            try:
                await self.sweep()
            except Exception:
                log.exception("sweeping unreferenced object files failed")

    def _wake_sweeper(self) -> None:
        self._sweep.set()

    # --- buckets -------------------------------------------------------------------------

    def all(self) -> list[BucketConfig]:
        return sorted([*self._declared.values(), *self._made.values()], key=lambda b: b.name)

    def get(self, name: str) -> BucketConfig:
        found = self._declared.get(name) or self._made.get(name)
        if found is None:
            raise NotFound(f"bucket {name!r} does not exist", field="bucket", bucket=name)
        return found

    def declared_by(self, name: str) -> str:
        return "app" if name in self._declared else "api"

    async def describe(self, name: str) -> dict[str, Any]:
        config = self.get(name)
        await self._store.commit(())
        objects, size = await self._store.bucket_usage(name)
        return {
            "name": config.name,
            "max_object_bytes": config.max_object_bytes,
            "declared_by": self.declared_by(name),
            "objects": objects,
            "bytes": size,
        }

    async def create(self, name: object, max_object_bytes: object = None) -> BucketConfig:
        check_bucket_name(name, "name")
        assert isinstance(name, str)
        config = (
            BucketConfig(name=name)
            if max_object_bytes is None
            else BucketConfig(
                name=name,
                max_object_bytes=max_object_bytes,  # type: ignore[arg-type]
            )
        )
        config.validate()
        if name in self._declared or name in self._made:
            raise Conflict(f"bucket {name!r} already exists", field="name", bucket=name)
        self._made[name] = config  # taken before the commit: a second create is a 409
        self._changing.add(name)
        try:
            await self._store.commit([PutBucket(config)])
        except BaseException:
            self._made.pop(name, None)
            raise
        finally:
            self._changing.discard(name)
        return config

    async def delete(self, name: str) -> None:
        """Delete an empty bucket made through the API."""
        self.get(name)
        if name in self._declared:
            raise Conflict(
                f"bucket {name!r} is declared by the app and cannot be deleted here",
                field="bucket",
                bucket=name,
            )
        await self._store.commit(())
        objects, _ = await self._store.bucket_usage(name)
        if objects:
            raise Conflict(
                f"bucket {name!r} holds {objects} objects: delete them first",
                field="bucket",
                bucket=name,
                objects=objects,
            )
        config = self._made.pop(name)
        self._changing.add(name)
        try:
            await self._store.commit([DropBucket(name)])
        except BaseException:
            self._made[name] = config
            raise
        finally:
            self._changing.discard(name)
        self._wake_sweeper()

    # --- writing -------------------------------------------------------------------------

    def stage(self, bucket: str, key: str, declared_size: int | None = None) -> StagedFile:
        """A staging file for a put of ``key`` in ``bucket``, refused at once if the size it
        declares is over the bucket's limit."""
        limit = self.get(bucket).max_object_bytes
        check_key(key)
        if declared_size is not None and declared_size > limit:
            raise object_too_large(declared_size, limit)
        return self.files.stage(limit)

    async def put(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterable[bytes] | bytes,
        *,
        content_type: object = None,
        metadata: object = None,
        declared_size: int | None = None,
        effects: Effects | None = None,
        hops: int | None = None,
    ) -> ObjectInfo:
        """Stream ``chunks`` to a staging file, then make it the object at ``key``."""
        content_type = check_content_type(content_type)
        metadata = check_metadata(metadata)
        staged = self.stage(bucket, key, declared_size)
        try:
            if isinstance(chunks, bytes | bytearray | memoryview):
                for start in range(0, len(chunks), CHUNK):
                    staged.write(chunks[start : start + CHUNK])
            else:
                await _stream_into(staged, chunks)
        except BaseException:
            staged.abort()
            raise
        return await self.complete(
            bucket,
            key,
            staged,
            content_type=content_type,
            metadata=metadata,
            effects=effects,
            hops=hops,
        )

    async def complete(
        self,
        bucket: str,
        key: str,
        staged: StagedFile,
        *,
        content_type: str,
        metadata: dict[str, str],
        effects: Effects | None,
        hops: int | None = None,
    ) -> ObjectInfo:
        """Make a fully written staging file the object at ``key`` (or hold that)."""
        try:
            etag = await asyncio.to_thread(staged.finish)
            self.get(bucket)  # deleted while the body streamed in
        except BaseException:
            staged.abort()
            raise
        version = new_id()
        name = self.files.final_name(bucket, version)
        try:
            await self.files.publish(staged.path, name)
        except BaseException:
            staged.abort()
            raise
        info = ObjectInfo(
            bucket=bucket,
            key=key,
            version=version,
            size=staged.size,
            etag=etag,
            content_type=content_type,
            metadata=metadata,
            created_at=time.time(),
        )
        await self._write(bucket, key, StoredObject(info, name), effects, hops)
        return info

    async def copy(
        self,
        bucket: str,
        key: str,
        to_bucket: str,
        to_key: str,
        *,
        effects: Effects | None = None,
        hops: int | None = None,
    ) -> ObjectInfo:
        source = await self.head(bucket, key, effects=effects)
        config = self.get(to_bucket)
        check_key(to_key, "to_key")
        if source.info.size > config.max_object_bytes:
            raise object_too_large(source.info.size, config.max_object_bytes)
        version = new_id()
        name = self.files.final_name(to_bucket, version)
        await self.files.link(source.file, name)
        info = ObjectInfo(
            bucket=to_bucket,
            key=to_key,
            version=version,
            size=source.info.size,
            etag=source.info.etag,
            content_type=source.info.content_type,
            metadata=dict(source.info.metadata),
            created_at=time.time(),
        )
        await self._write(to_bucket, to_key, StoredObject(info, name), effects, hops)
        return info

    async def delete_object(
        self, bucket: str, key: str, *, effects: Effects | None = None, hops: int | None = None
    ) -> bool:
        """Remove the object at ``key``; False when there was none (and no event)."""
        try:
            existing = await self.head(bucket, key, effects=effects)
        except NotFound:
            if isinstance(self._bucket_or_none(bucket), BucketConfig):
                return False
            raise
        await self._write(bucket, key, None, effects, hops, removed=existing.info)
        return True

    def _bucket_or_none(self, bucket: str) -> BucketConfig | None:
        return self._declared.get(bucket) or self._made.get(bucket)

    async def _write(
        self,
        bucket: str,
        key: str,
        stored: StoredObject | None,
        effects: Effects | None,
        hops: int | None,
        *,
        removed: ObjectInfo | None = None,
    ) -> None:
        if effects is not None and effects.closed:  # a call that outlived its invocation
            if stored is not None:
                self.files.discard(stored.file)
            raise Conflict(
                f"the invocation that wrote {key!r} has ended: its writes are settled",
                field="key",
                key=key,
            )
        if stored is not None:
            event = self._event(CREATED, stored.info.public(), bucket, key, hops)
        else:
            assert removed is not None
            data = {
                "bucket": bucket,
                "key": key,
                "version": removed.version,
                "sequencer": new_id(),
                "size": removed.size,
                "etag": removed.etag,
            }
            event = self._event(REMOVED, data, bucket, key, hops)
        try:
            event_ops, landed = self._event_ops([event])
        except BaseException:
            if stored is not None:
                self.files.discard(stored.file)
            raise
        ops: list[Op] = [
            WriteObject(
                bucket,
                key,
                None if stored is None else stored.info,
                None if stored is None else stored.file,
            ),
            *(() if stored is None else self.files.settle(stored.file)),
            *event_ops,
        ]

        def after() -> None:
            landed()
            self._wake_sweeper()

        def discard() -> None:
            if stored is not None:
                self.files.discard(stored.file)

        await commit_or_hold(self._store, effects, ops, after=after, discard=discard)
        if effects is not None:
            _overlay(effects)[(bucket, key)] = stored

    def _event(
        self, kind: str, data: dict[str, Any], bucket: str, key: str, hops: int | None
    ) -> CloudEvent:
        if kind == CREATED:
            data = {**data, "sequencer": data["version"]}
            data.pop("created_at", None)
        return CloudEvent.create(
            kind,
            data,
            source=f"squall://{self._app}/buckets/{bucket}",
            subject=key,
            hops=hops,
        )

    # --- reading -------------------------------------------------------------------------

    async def head(self, bucket: str, key: str, *, effects: Effects | None = None) -> StoredObject:
        self.get(bucket)
        check_key(key)
        if effects is not None:
            pending = _overlay(effects)
            if (bucket, key) in pending:
                found = pending[(bucket, key)]
                if found is None:
                    raise _no_object(bucket, key)
                return found
        await self._store.commit(())
        stored = await self._store.get_object(bucket, key)
        if stored is None:
            raise _no_object(bucket, key)
        return stored

    async def open(self, stored: StoredObject) -> Any:
        """The object's file, open for reading (it never changes: read it at leisure)."""
        try:
            return await self.files.open(stored.file)
        except FileNotFoundError:  # replaced and swept between the head and the open
            raise _no_object(stored.info.bucket, stored.info.key) from None

    async def read(
        self,
        bucket: str,
        key: str,
        start: int = 0,
        length: int | None = None,
        *,
        effects: Effects | None = None,
    ) -> tuple[StoredObject, bytes]:
        stored = await self.head(bucket, key, effects=effects)
        if start < 0 or (length is not None and length < 0):
            raise InvalidInput("range must not be negative", field="range")
        with await self.open(stored) as file:
            file.seek(start)
            data = await asyncio.to_thread(file.read, -1 if length is None else length)
        return stored, data

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        cursor: str | None = None,
        limit: int = MAX_LIST,
        effects: Effects | None = None,
    ) -> ObjectPage:
        """Objects whose key starts with ``prefix``, in key order, after ``cursor`` (the
        ``next_cursor`` of the page before). With a ``delimiter``, keys holding it past the
        prefix are rolled up into ``prefixes`` (each counted once, like an object)."""
        self.get(bucket)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidInput(
                f"limit={limit!r} is out of range (allowed 1-{MAX_LIST})", field="limit"
            )
        pending = {
            key: stored
            for (b, key), stored in (_overlay(effects).items() if effects is not None else ())
            if b == bucket and key.startswith(prefix)
        }
        await self._store.commit(())
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        after = cursor or ""
        exhausted = False
        while not exhausted and len(objects) + len(prefixes) < limit:
            want = limit - len(objects) - len(prefixes)
            found, exhausted = await self._next(bucket, prefix, after, pending, want)
            for key, stored in found:
                if len(objects) + len(prefixes) >= limit:
                    break
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if cut >= 0 and delimiter:
                    prefixes.append(key[: cut + len(delimiter)])
                    after = prefixes[-1] + "\U0010ffff"  # past every key under it
                    exhausted = False
                    break  # query afresh from past the common prefix
                objects.append(stored.info)
                after = key
        more = bool((await self._next(bucket, prefix, after, pending, 1))[0])
        return ObjectPage(objects=objects, prefixes=prefixes, next_cursor=after if more else None)

    async def _next(
        self,
        bucket: str,
        prefix: str,
        after: str,
        pending: dict[str, StoredObject | None],
        want: int,
    ) -> tuple[list[tuple[str, StoredObject]], bool]:
        """Up to ``want`` objects after ``after`` (the store's, overlaid with pending
        writes), and whether there is nothing past them."""
        while True:
            rows = await self._store.list_objects(bucket, prefix, after, want)
            horizon = rows[-1].info.key if len(rows) == want else None
            merged: dict[str, StoredObject | None] = {row.info.key: row for row in rows}
            for key, stored in pending.items():
                if key > after and (horizon is None or key <= horizon):
                    merged[key] = stored
            found = [(key, merged[key]) for key in sorted(merged)]
            live = [(key, stored) for key, stored in found if stored is not None]
            if live or horizon is None:
                return live[:want], horizon is None and len(live) <= want
            after = horizon  # everything in this batch was deleted by the invocation

    def presign(self, bucket: str, key: str, method: str, expires_s: int) -> tuple[str, int]:
        self.get(bucket)
        check_key(key)
        assert self.presigner is not None, "Buckets.load() first"
        return self.presigner.url(method, bucket, key, expires_s)


async def _stream_into(staged: StagedFile, chunks: AsyncIterable[bytes]) -> None:
    """Append ``chunks`` in blocks of ``CHUNK``, each hashed and written on a worker thread
    while the next one arrives (both release the GIL), refused as soon as the bytes received
    pass the limit. At most one block is being written at a time, and none is once this
    returns or raises (the caller may then close the file)."""
    in_thread: concurrent.futures.Future[None] | None = None
    block = bytearray()
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > staged.limit:
                raise object_too_large(received, staged.limit, complete=False)
            block += chunk
            if len(block) >= CHUNK:
                if in_thread is not None:
                    await asyncio.wrap_future(in_thread)
                in_thread = _WRITERS.submit(staged.write, bytes(block))
                block.clear()
        if in_thread is not None:
            await asyncio.wrap_future(in_thread)
        if block:
            staged.write(bytes(block))
    finally:
        if in_thread is not None and not in_thread.done():
            concurrent.futures.wait([in_thread])  # one block at most: then the file is ours


def _overlay(effects: Effects) -> Overlay:
    return effects.state("buckets", dict)


def _no_object(bucket: str, key: str) -> NotFound:
    return NotFound(
        f"object {key!r} does not exist in bucket {bucket!r}", field="key", bucket=bucket, key=key
    )


__all__ = ["DEFAULT_CONTENT_TYPE", "Buckets"]
