"""Archives in the store (SQLite and PostgreSQL): publish order, retention, deletion; replay's
own ids."""

from __future__ import annotations

import pytest

from squall.engine.archive import Archives
from squall.engine.bus import Buses, Published
from squall.engine.replay import refuse_replay_marks, replay_ops
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.cloudevent import CloudEvent
from squall.model.rules import RuleConfig
from squall.model.targets import BusTarget, FunctionTarget
from squall.storage.protocols import ArchiveEvent, Enqueue, PutInvocation, RememberEvent
from squall.storage.sqlite.store import SqliteStore


def events(*ids: str, type: str = "t") -> list[CloudEvent]:
    return [CloudEvent.create(type, {"n": i}, source="s", id=i) for i in ids]


async def test_events_are_kept_in_publish_order(store: SqliteStore) -> None:
    archives = Archives(store, lambda bus: bus == "default")
    await archives.create("all", "default")
    await archives.create("only-a", "default", pattern={"type": ["a"]})
    batch = events("1", type="a") + events("2", type="b") + events("3", type="a")
    outcomes = [Published(e.id) for e in batch]
    ops = archives.ops_for("default", batch, outcomes)
    assert [(op.archive, op.event_id) for op in ops if isinstance(op, ArchiveEvent)] == [
        ("all", "1"), ("only-a", "1"), ("all", "2"), ("all", "3"), ("only-a", "3")
    ]
    await store.commit(ops)
    rows = await store.archived_events(["all"], 0, 1e11, 0, 100)
    assert [r.event_id for r in rows] == ["1", "2", "3"]
    assert (await store.archive_stats("only-a"))[0] == 2
    page = await store.archived_events(["all"], 0, 1e11, rows[0].seq, 1)
    assert [r.event_id for r in page] == ["2"]


async def test_duplicates_and_replays_are_not_archived(store: SqliteStore) -> None:
    archives = Archives(store, lambda bus: True)
    await archives.create("all", "default")
    batch = events("1", "2")
    replayed = batch[1].with_extensions(squallreplay="rp_x")
    ops = archives.ops_for(
        "default", [batch[0], replayed], [Published("1", duplicate=True), Published("2")]
    )
    assert ops == []


async def test_retention_deletes_expired_events(store: SqliteStore) -> None:
    archives = Archives(store, lambda bus: True)
    await archives.create("short", "default", retention_s=60)
    await archives.create("long", "default", retention_s=3600)
    batch = events("1")
    await store.commit(archives.ops_for("default", batch, [Published("1")]))
    [row] = await store.archived_events(["short"], 0, 1e11, 0, 10)
    await archives.sweep(now=row.published_at + 59)
    assert (await store.archive_stats("short"))[0] == 1
    await archives.sweep(now=row.published_at + 61)
    assert (await store.archive_stats("short"))[0] == 0
    assert (await store.archive_stats("long"))[0] == 1


async def test_archive_definitions_are_checked_and_persisted(store: SqliteStore) -> None:
    archives = Archives(store, lambda bus: bus == "default")
    with pytest.raises(NotFound) as bus:
        await archives.create("x", "nope")
    assert bus.value.field == "bus"
    with pytest.raises(InvalidInput) as name:
        await archives.create("Bad Name", "default")
    assert name.value.field == "name"
    with pytest.raises(InvalidInput) as retention:
        await archives.create("x", "default", retention_s=5)
    assert retention.value.field == "retention_s"
    with pytest.raises(InvalidInput) as pattern:
        await archives.create("x", "default", pattern={"type": "not-a-list"})
    assert (pattern.value.field or "").startswith("pattern")
    await archives.create("x", "default", pattern={"type": ["a"]}, retention_s=120)
    with pytest.raises(Conflict):
        await archives.create("x", "default")
    reloaded = Archives(store, lambda bus: True)
    await reloaded.load()
    [config] = reloaded.all()
    assert (config.name, config.pattern, config.retention_s) == ("x", {"type": ["a"]}, 120)
    await store.commit(reloaded.ops_for("default", events("1", type="a"), [Published("1")]))
    await reloaded.delete("x")
    assert (await store.archive_stats("x"))[0] == 0
    with pytest.raises(NotFound):
        reloaded.get("x")


def test_replayed_events_get_invocation_ids_of_their_own() -> None:
    targets = (FunctionTarget(id="f", function="f"), BusTarget(id="audit", bus="audit"))
    rule = RuleConfig(name="r", pattern={"type": ["t"]}, targets=targets)
    buses = Buses([rule], "v1", lambda: {"f"})
    [event] = events("1")
    original, _, _ = buses.route("default", [event], set())
    replayed = replay_ops(original, "rp_1")
    assert not any(isinstance(op, RememberEvent) for op in replayed)
    [before] = [op for op in original if isinstance(op, PutInvocation)]
    [after] = [op for op in replayed if isinstance(op, PutInvocation)]
    invoke, forward = sorted(
        (op for op in replayed if isinstance(op, Enqueue)), key=lambda op: op.delivery.queue
    )
    assert after.record.id != before.record.id
    assert invoke.delivery.id == invoke.delivery.invocation_id == after.record.id
    # the bus target's delivery moves too: it becomes the forwarded event's id
    originals = {op.delivery.id for op in original if isinstance(op, Enqueue)}
    assert forward.delivery.queue.startswith("target:") and forward.delivery.id not in originals
    assert replay_ops(original, "rp_1") == replayed  # deterministic per replay
    [other] = [op for op in replay_ops(original, "rp_2") if isinstance(op, PutInvocation)]
    assert other.record.id != after.record.id


def test_only_the_platform_marks_replays() -> None:
    [event] = events("1")
    refuse_replay_marks([event])
    with pytest.raises(InvalidInput) as info:
        refuse_replay_marks([event.with_extensions(squallreplay="rp_forged")])
    assert info.value.field == "squallreplay"
