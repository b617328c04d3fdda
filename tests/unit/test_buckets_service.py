"""The buckets service on a real store and a real data dir: atomic puts, overlays of held
effects, listing with prefixes, delimiters and cursors, files unlinked after their commit."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from squall.engine.buckets.service import Buckets
from squall.engine.effects import Effects
from squall.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from squall.model.buckets import BucketConfig
from squall.model.cloudevent import CloudEvent
from squall.storage import open_store
from squall.storage.sqlite.store import SqliteStore


class Events:
    def __init__(self) -> None:
        self.made: list[CloudEvent] = []
        self.landed: list[str] = []

    def __call__(self, events: Sequence[CloudEvent]) -> tuple[list[Any], Any]:
        self.made.extend(events)
        return [], lambda: self.landed.extend(e.type for e in events)


@pytest.fixture
async def store(tmp_path: Path, store_url: str) -> AsyncIterator[SqliteStore]:
    store = await open_store(store_url)
    yield store
    await store.close()


@pytest.fixture
async def events() -> Events:
    return Events()


@pytest.fixture
async def buckets(store: SqliteStore, tmp_path: Path, events: Events) -> Buckets:
    service = Buckets(
        store, tmp_path, [BucketConfig(name="uploads", max_object_bytes=1000)], events, "t"
    )
    await service.load()
    return service


def files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "buckets" / "objects").rglob("*") if p.is_file())


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_put_streams_to_one_file_per_version_and_an_overwrite_unlinks_the_old(
    buckets: Buckets, tmp_path: Path, events: Events
) -> None:
    first = await buckets.put(
        "uploads",
        "a/b.txt",
        chunks(b"hel", b"lo"),
        content_type="text/plain",
        metadata={"Owner": "ann"},
    )
    assert first.size == 5 and first.etag == hashlib.md5(b"hello").hexdigest()
    assert first.metadata == {"owner": "ann"} and first.content_type == "text/plain"
    [old] = files(tmp_path)
    second = await buckets.put("uploads", "a/b.txt", b"bye")
    assert second.version != first.version
    await buckets.sweep()
    [new] = files(tmp_path)
    assert new != old and new.read_bytes() == b"bye"
    stored, data = await buckets.read("uploads", "a/b.txt", 1, 2)
    assert data == b"ye" and stored.info.version == second.version
    assert [e.type for e in events.made] == ["squall.object.created"] * 2
    assert events.landed == ["squall.object.created"] * 2
    assert events.made[0].data["key"] == "a/b.txt" and events.made[0].subject == "a/b.txt"
    assert await buckets.delete_object("uploads", "a/b.txt")
    assert not await buckets.delete_object("uploads", "a/b.txt")  # nothing there: no event
    await buckets.sweep()
    assert files(tmp_path) == []
    assert [e.type for e in events.made][-1] == "squall.object.removed"
    assert len(events.made) == 3


async def test_too_large_is_413_with_both_sizes_and_leaves_nothing(
    buckets: Buckets, tmp_path: Path
) -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        await buckets.put("uploads", "big", chunks(b"x" * 600, b"x" * 600))
    assert caught.value.details["limit"] == 1000 and caught.value.details["size"] == 1200
    with pytest.raises(PayloadTooLarge):
        await buckets.put("uploads", "big", b"", declared_size=5000)
    assert list((tmp_path / "buckets" / "staging").iterdir()) == []
    assert files(tmp_path) == []
    with pytest.raises(NotFound):
        await buckets.head("uploads", "big")


@pytest.mark.parametrize(
    "key", ["", "a/../b", "..", "./x", "a/.", "nul\x00", "k" * 1025, "é" * 513]
)
async def test_bad_keys_are_refused_naming_the_key(buckets: Buckets, key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await buckets.put("uploads", key, b"x")
    assert caught.value.field == "key"


async def test_unknown_bucket_is_not_found(buckets: Buckets) -> None:
    with pytest.raises(NotFound) as caught:
        await buckets.put("nope", "k", b"x")
    assert caught.value.field == "bucket"


async def test_held_puts_and_deletes_are_seen_by_their_invocation_only_until_committed(
    buckets: Buckets, store: SqliteStore, tmp_path: Path, events: Events
) -> None:
    await buckets.put("uploads", "keep", b"kept")
    effects = Effects()
    await buckets.put("uploads", "new", b"pending", effects=effects)
    assert await buckets.delete_object("uploads", "keep", effects=effects)
    # The invocation sees its own writes; everyone else sees the store.
    assert (await buckets.read("uploads", "new", effects=effects))[1] == b"pending"
    with pytest.raises(NotFound):
        await buckets.head("uploads", "keep", effects=effects)
    with pytest.raises(NotFound):
        await buckets.head("uploads", "new")
    assert (await buckets.read("uploads", "keep"))[1] == b"kept"
    page = await buckets.list_objects("uploads", effects=effects)
    assert [o.key for o in page.objects] == ["new"]
    assert events.landed == ["squall.object.created"]
    await store.commit(effects.ops())
    effects.committed()
    await buckets.sweep()
    assert (await buckets.read("uploads", "new"))[1] == b"pending"
    with pytest.raises(NotFound):
        await buckets.head("uploads", "keep")
    assert [f.read_bytes() for f in files(tmp_path)] == [b"pending"]
    assert events.landed[1:] == ["squall.object.created", "squall.object.removed"]


async def test_discarded_effects_unlink_what_they_wrote_and_change_nothing(
    buckets: Buckets, tmp_path: Path, events: Events
) -> None:
    await buckets.put("uploads", "keep", b"kept")
    effects = Effects()
    await buckets.put("uploads", "keep", b"overwritten", effects=effects)
    await buckets.copy("uploads", "keep", "uploads", "copy", effects=effects)
    effects.ops()
    effects.discarded()
    assert (await buckets.read("uploads", "keep"))[1] == b"kept"
    with pytest.raises(NotFound):
        await buckets.head("uploads", "copy")
    assert [f.read_bytes() for f in files(tmp_path)] == [b"kept"]
    assert events.landed == ["squall.object.created"]


async def test_listing_pages_prefixes_and_delimiters(buckets: Buckets) -> None:
    keys = ["a.txt", "photos/1.jpg", "photos/2.jpg", "photos/x/3.jpg", "videos/1.mp4", "z"]
    for key in keys:
        await buckets.put("uploads", key, key.encode())
    seen: list[str] = []
    cursor = None
    while True:
        page = await buckets.list_objects("uploads", cursor=cursor, limit=2)
        seen += [o.key for o in page.objects]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == keys
    page = await buckets.list_objects("uploads", prefix="photos/")
    assert [o.key for o in page.objects] == keys[1:4] and page.next_cursor is None
    page = await buckets.list_objects("uploads", delimiter="/")
    assert [o.key for o in page.objects] == ["a.txt", "z"]
    assert page.prefixes == ["photos/", "videos/"]
    page = await buckets.list_objects("uploads", prefix="photos/", delimiter="/", limit=2)
    assert [o.key for o in page.objects] == ["photos/1.jpg", "photos/2.jpg"]
    assert page.next_cursor is not None
    rest = await buckets.list_objects(
        "uploads", prefix="photos/", delimiter="/", cursor=page.next_cursor
    )
    assert rest.objects == [] and rest.prefixes == ["photos/x/"] and rest.next_cursor is None


async def test_start_removes_staging_leftovers_and_unreferenced_files(
    store: SqliteStore, tmp_path: Path, events: Events, buckets: Buckets
) -> None:
    await buckets.put("uploads", "keep", b"kept")
    (tmp_path / "buckets" / "staging" / "half").write_bytes(b"half a put")
    orphan = tmp_path / "buckets" / "objects" / "uploads" / "ff" / "00000000000000ff"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"renamed, never committed")
    again = Buckets(store, tmp_path, [BucketConfig(name="uploads")], events, "t")
    await again.load()
    assert list((tmp_path / "buckets" / "staging").iterdir()) == []
    assert [f.read_bytes() for f in files(tmp_path)] == [b"kept"]


async def test_buckets_made_and_deleted(
    buckets: Buckets, store: SqliteStore, tmp_path: Path, events: Events
) -> None:
    await buckets.create("made-here", 10)
    await buckets.put("made-here", "k", b"x")
    with pytest.raises(Exception, match="holds 1 objects"):
        await buckets.delete("made-here")
    await buckets.delete_object("made-here", "k")
    await buckets.delete("made-here")
    with pytest.raises(NotFound):
        buckets.get("made-here")
    with pytest.raises(InvalidInput) as caught:
        await buckets.create("Bad_Name")
    assert caught.value.field == "name"
    await buckets.create("kept-one")
    again = Buckets(store, tmp_path, [], events, "t")
    await again.load()
    assert [b.name for b in again.all()] == ["kept-one"]


async def test_a_write_after_its_invocation_ended_is_refused(
    buckets: Buckets, tmp_path: Path
) -> None:
    effects = Effects()
    effects.ops()
    effects.committed()
    with pytest.raises(Conflict):
        await buckets.put("uploads", "late", b"late", effects=effects)
    assert files(tmp_path) == []


async def test_metadata_values_are_printable_ascii(buckets: Buckets) -> None:
    with pytest.raises(InvalidInput) as caught:
        await buckets.put("uploads", "k", b"x", metadata={"price": "5 \u20ac"})
    assert caught.value.field == "metadata.price"


async def test_object_events_carry_what_a_consumer_needs(buckets: Buckets, events: Events) -> None:
    info = await buckets.put(
        "uploads", "photos/a.jpg", b"jpeg", content_type="image/jpeg", metadata={"k": "v"}
    )
    await buckets.delete_object("uploads", "photos/a.jpg")
    created, removed = events.made
    assert created.type == "squall.object.created" and removed.type == "squall.object.removed"
    assert created.source == "squall://t/buckets/uploads" and created.subject == "photos/a.jpg"
    assert created.data == {
        "bucket": "uploads",
        "key": "photos/a.jpg",
        "version": info.version,
        "sequencer": info.version,
        "size": 4,
        "etag": info.etag,
        "content_type": "image/jpeg",
        "metadata": {"k": "v"},
    }
    assert removed.data["version"] == info.version and removed.data["size"] == 4
    assert removed.data["sequencer"] > created.data["sequencer"]
