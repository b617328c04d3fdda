"""Objects' bytes in a JetStream object store: one per bus prefix, ``<PREFIX>_OBJECTS``
(its stream is ``OBJ_<PREFIX>_OBJECTS``), on file storage unless the bus says memory, with
the bus's replicas.

The layout is JetStream's object store (ADR-20), so nats-py's ``ObjectStore.get`` and the
``nats object`` CLI read what is written here: an object's bytes are chunk messages on
``$O.<store>.C.<nuid>``, then one meta message (JSON ``ObjectInfo``: size, chunk count,
SHA-256 digest) on ``$O.<store>.M.<base64 name>`` makes it whole. We write and read the
messages ourselves, for two reasons nats-py's ``put``/``get`` cannot serve: the chunk subject
is derived from the name (a put killed midway leaves chunks its name still finds, so the
sweep removes them), and a read fetches chunks one direct get at a time, each with a
timeout (an object deleted mid-read is an error, not a wait for chunks that never come).
Names are never reused, so an object never changes once its meta is written.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO

import msgspec

from squall.storage.nats.subjects import stream_name

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from squall.storage.nats.queue import JetStreamConfig

CHUNK_BYTES = 512 * 1024  # under NATS's default 1 MiB max_payload
IN_FLIGHT = 8  # chunk publishes awaiting their acks at once
DIGEST = "SHA-256="


class _Meta(msgspec.Struct):
    """What a read needs of an object's meta message (the rest is ignored)."""

    nuid: str = ""
    size: int = 0
    chunks: int = 0
    digest: str = ""
    deleted: bool = False


_decode_meta = msgspec.json.Decoder(_Meta).decode


class ObjectMissing(LookupError):
    """No whole object of that name is in the store (never written, or deleted)."""


class JetStreamObjects:
    """Open with ``JetStreamObjects.open(nc, bus)``; the connection is the caller's."""

    def __init__(self, js: JetStreamContext, bucket: str) -> None:
        self._js = js
        self.bucket = bucket
        self.stream = f"OBJ_{bucket}"

    @classmethod
    async def open(cls, nc: Client, bus: JetStreamConfig) -> JetStreamObjects:
        """The bus prefix's object store, made if missing (an existing one is used as it is:
        its storage and replicas are not changed here)."""
        from nats.js.api import ObjectStoreConfig, StorageType
        from nats.js.errors import BadRequestError, BucketNotFoundError

        js = nc.jetstream()
        bucket = stream_name(bus.prefix, "objects")
        try:
            await js.object_store(bucket)
        except BucketNotFoundError:
            config = ObjectStoreConfig(
                description="squall bucket objects",
                storage=StorageType.MEMORY if bus.memory else StorageType.FILE,
                replicas=bus.replicas,
            )
            try:
                await js.create_object_store(bucket, config)
            except BadRequestError:  # another node made it meanwhile
                await js.object_store(bucket)
        return cls(js, bucket)

    def _chunks_subject(self, name: str) -> str:
        nuid = hashlib.sha256(name.encode()).hexdigest()[:32]
        return f"$O.{self.bucket}.C.{nuid}"

    def _meta_subject(self, name: str) -> str:
        return f"$O.{self.bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"

    async def put(self, name: str, source: BinaryIO) -> int:
        """Write ``source``'s bytes (read from where it stands) as ``name``; returns the
        size. Until the meta message is acked nothing of it is readable."""
        from nats.js.api import Header, ObjectInfo, ObjectMetaOptions

        subject = self._chunks_subject(name)
        digest = hashlib.sha256()
        size = chunks = 0
        acks: list[asyncio.Future[object]] = []
        try:
            while True:
                block = await asyncio.to_thread(source.read, CHUNK_BYTES)
                if not block:
                    break
                digest.update(block)
                # Publishes leave in call order on one connection: the chunks are in order.
                acks.append(asyncio.ensure_future(self._js.publish(subject, block)))
                size += len(block)
                chunks += 1
                if len(acks) >= IN_FLIGHT:
                    await acks.pop(0)
            await _all(acks)
        except BaseException:
            await _settle(acks)
            raise
        info = ObjectInfo(
            name=name,
            bucket=self.bucket,
            nuid=subject.rsplit(".", 1)[1],
            size=size,
            chunks=chunks,
            mtime=datetime.now(UTC).isoformat(),
            digest=DIGEST + base64.urlsafe_b64encode(digest.digest()).decode(),
            options=ObjectMetaOptions(max_chunk_size=CHUNK_BYTES),
        )
        await self._js.publish(
            self._meta_subject(name),
            json.dumps(info.as_dict()).encode(),
            headers={Header.ROLLUP: "sub"},
        )
        return size

    async def fetch(self, name: str, into: BinaryIO) -> int:
        """Write ``name``'s bytes to ``into``, checking their digest; returns the size.
        Raises ObjectMissing when there is no such object (or it is deleted meanwhile)."""
        from nats.js.errors import NotFoundError

        info = await self._info(name)
        subject = f"$O.{self.bucket}.C.{info.nuid}"
        digest = hashlib.sha256()
        size = 0
        seq = 1
        for _ in range(info.chunks):
            try:
                message = await self._js.get_msg(
                    self.stream, seq, subject=subject, direct=True, next=True
                )
            except NotFoundError:
                raise ObjectMissing(name) from None
            data = message.data or b""
            digest.update(data)
            await asyncio.to_thread(into.write, data)
            size += len(data)
            seq = (message.seq or seq) + 1
        got = DIGEST + base64.urlsafe_b64encode(digest.digest()).decode()
        if size != info.size or got.rstrip("=") != info.digest.rstrip("="):
            raise ObjectMissing(f"{name}: its bytes do not match their digest")
        return size

    async def _info(self, name: str) -> _Meta:
        from nats.js.errors import NotFoundError

        try:
            message = await self._js.get_msg(
                self.stream, subject=self._meta_subject(name), direct=True
            )
        except NotFoundError:
            raise ObjectMissing(name) from None
        try:
            info = _decode_meta(message.data or b"{}")
        except msgspec.DecodeError:
            raise ObjectMissing(f"{name}: its meta is not an object's") from None
        if info.deleted or not info.nuid:
            raise ObjectMissing(name)
        return info

    async def delete(self, name: str) -> None:
        """Purge ``name``'s chunks, then its meta (a delete cut short between the two leaves a
        meta whose next delete finishes the job); nothing to do when it is not there."""
        await self._js.purge_stream(self.stream, subject=self._chunks_subject(name))
        await self._js.purge_stream(self.stream, subject=self._meta_subject(name))

    async def names(self) -> set[str]:
        """Every object written whole (from the metas' subjects)."""
        info = await self._js.stream_info(self.stream, subjects_filter=f"$O.{self.bucket}.M.>")
        subjects = info.state.subjects or {}
        return {
            base64.urlsafe_b64decode(subject.rsplit(".", 1)[1]).decode() for subject in subjects
        }

    async def remove_store(self) -> None:
        """Delete the whole object store (tests, decommissioning)."""
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await self._js.delete_object_store(self.bucket)


async def _all(acks: list[asyncio.Future[object]]) -> None:
    while acks:
        await acks.pop(0)


async def _settle(acks: Sequence[Awaitable[object]]) -> None:
    """Wait out publishes still in flight (their errors are the failure's, not ours)."""
    await asyncio.gather(*acks, return_exceptions=True)
