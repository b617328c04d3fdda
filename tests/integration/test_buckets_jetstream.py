"""Bucket objects on the distributed store, against real PostgreSQL and NATS: bytes in the
JetStream object store, visible only once their row commits, read back whole and in
ranges, copied, and removed by the sweep once let go of, or once a put that died midway
lets its claim expire; nothing a row may still reference is ever swept."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from nats_service import NATS_URL, jetstreams

from squall.engine.buckets.jetstream import ObjectsOnJetStream
from squall.engine.buckets.service import Buckets
from squall.engine.effects import Effects
from squall.errors import Conflict, NotFound
from squall.model.buckets import BucketConfig
from squall.model.cloudevent import CloudEvent
from squall.storage.buckets import ClaimUpload
from squall.storage.nats import ConnectOptions, JetStreamConfig
from squall.storage.nats.brokered import BrokeredStore
from squall.storage.nats.objects import CHUNK_BYTES, JetStreamObjects, ObjectMissing
from squall.storage.nats.subjects import stream_name


def no_events(events: Sequence[CloudEvent]) -> tuple[list[Any], Any]:
    return [], lambda: None


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[BrokeredStore]:
    async with jetstreams() as js:
        opened = await BrokeredStore.connect_brokered(pg_url, js.config(move_delays=False))
        try:
            yield opened
        finally:
            await opened.objects.remove_store()
            await opened.broker.delete_streams()
            await opened.close()


@pytest.fixture
async def buckets(store: BrokeredStore, tmp_path: Path) -> Buckets:
    service = Buckets(store, tmp_path, [BucketConfig(name="uploads")], no_events, "t")
    await service.load()
    assert isinstance(service.files, ObjectsOnJetStream)
    return service


def other_node(buckets: Buckets, store: BrokeredStore, tmp_path: Path) -> Buckets:
    """A second node's service on the same store: its own (empty) read cache."""
    node = Buckets(store, tmp_path / "other", [BucketConfig(name="uploads")], no_events, "t")
    node.files.prepare()
    return node


async def stored(store: BrokeredStore) -> set[str]:
    return await store.objects.names()


BIG = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 100)  # three chunks, the last short


async def test_bytes_written_here_are_what_nats_object_store_reads(
    store: BrokeredStore,
) -> None:
    await store.objects.put("uploads/v1", io.BytesIO(BIG))
    out = io.BytesIO()
    assert await store.objects.fetch("uploads/v1", out) == len(BIG)
    assert out.getvalue() == BIG
    nats_store = await store.broker.connection.jetstream().object_store(store.objects.bucket)
    assert (await nats_store.get("uploads/v1")).data == BIG  # the standard layout
    await store.objects.delete("uploads/v1")
    with pytest.raises(ObjectMissing):
        await store.objects.fetch("uploads/v1", io.BytesIO())
    assert await stored(store) == set()


async def test_put_read_ranges_and_copy_through_another_node(
    buckets: Buckets, store: BrokeredStore, tmp_path: Path
) -> None:
    info = await buckets.put("uploads", "big.bin", BIG, content_type="application/x-test")
    other = other_node(buckets, store, tmp_path)
    head = await other.head("uploads", "big.bin")
    assert head.info == info and head.file == f"uploads/{info.version}"
    assert (await other.read("uploads", "big.bin"))[1] == BIG
    start = CHUNK_BYTES - 10  # across a chunk boundary
    assert (await other.read("uploads", "big.bin", start, 30))[1] == BIG[start : start + 30]
    copied = await other.copy("uploads", "big.bin", "uploads", "copy.bin")
    assert copied.etag == info.etag and copied.size == len(BIG)
    assert (await buckets.read("uploads", "copy.bin"))[1] == BIG
    assert await stored(store) == {head.file, f"uploads/{copied.version}"}


async def test_replaced_and_deleted_objects_bytes_are_swept(
    buckets: Buckets, store: BrokeredStore
) -> None:
    first = await buckets.put("uploads", "k", b"one")
    second = await buckets.put("uploads", "k", b"two")
    assert await buckets.delete_object("uploads", "k") is True
    assert await stored(store) == {f"uploads/{first.version}", f"uploads/{second.version}"}
    assert await buckets.sweep() == 2
    assert await stored(store) == set()
    assert await store.garbage(10) == []


async def test_a_put_whose_unit_fails_is_never_visible_and_its_bytes_are_swept(
    buckets: Buckets, store: BrokeredStore
) -> None:
    effects = Effects()
    await buckets.put("uploads", "held", b"pending", effects=effects)
    assert len(await stored(store)) == 1  # uploaded, not yet referenced
    with pytest.raises(NotFound):
        await buckets.head("uploads", "held")
    effects.ops()
    effects.discarded()  # the invocation failed
    await buckets.sweep()
    assert await stored(store) == set()
    assert await store.upload_claims() == {}


async def test_a_put_killed_before_its_commit_is_swept_once_its_claim_expires(
    buckets: Buckets, store: BrokeredStore
) -> None:
    # What a node that died between the upload and the commit leaves: a claim, the bytes.
    await store.commit([ClaimUpload("uploads/dead", time.time() + 0.5)])
    await store.objects.put("uploads/dead", io.BytesIO(b"half"))
    await buckets.sweep()
    assert await stored(store) == {"uploads/dead"}  # its put might still commit
    await asyncio.sleep(0.6)
    await buckets.sweep()
    assert await stored(store) == set()
    assert await store.upload_claims() == {}


async def test_a_commit_after_its_claim_expired_fails_instead_of_pointing_at_swept_bytes(
    buckets: Buckets, store: BrokeredStore
) -> None:
    assert isinstance(buckets.files, ObjectsOnJetStream)
    buckets.files.claim_s = 0.0  # the put takes longer than its claim allows
    effects = Effects()
    await buckets.put("uploads", "slow", b"late", effects=effects)
    await buckets.sweep()  # another node's sweep would do the same
    assert await stored(store) == set()
    with pytest.raises(Conflict, match="outlived its claim"):
        await store.commit(effects.ops())
    with pytest.raises(NotFound):
        await buckets.head("uploads", "slow")


async def test_an_object_swept_before_its_read_is_not_found(
    buckets: Buckets, store: BrokeredStore, tmp_path: Path
) -> None:
    await buckets.put("uploads", "gone", b"bytes")
    row = await buckets.head("uploads", "gone")
    await buckets.delete_object("uploads", "gone")
    await buckets.sweep()
    with pytest.raises(NotFound):
        await other_node(buckets, store, tmp_path).open(row)


async def test_a_second_opening_uses_the_existing_object_store(store: BrokeredStore) -> None:
    await store.objects.put("uploads/kept", io.BytesIO(b"x"))
    bus = JetStreamConfig(
        connect=ConnectOptions(url=NATS_URL, attempts=1),
        prefix=store.broker.prefix,
        memory=True,
    )
    again = await JetStreamObjects.open(store.broker.connection, bus)
    assert again.bucket == stream_name(store.broker.prefix, "objects")
    assert await again.names() == {"uploads/kept"}
