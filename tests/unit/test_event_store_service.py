"""The event store against a real SQLite store: expected versions at the call and at
commit, concurrent writers, reads both ways, read-all in global order, metadata, soft
delete, snapshots, an invocation's own pending appends, and bad input changing nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from squall.engine.effects import Effects
from squall.engine.event_store.service import EventStoreService
from squall.errors import Conflict, InvalidInput, NotFound, WrongExpectedVersion
from squall.model.cloudevent import CloudEvent
from squall.model.event_store import ExpectedVersion
from squall.storage.protocols import Op
from squall.storage.sqlite.store import SqliteStore


class Published:
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.landed = 0

    def __call__(self, events: Sequence[CloudEvent]) -> tuple[list[Op], Any]:
        made = list(events)

        def landed() -> None:
            self.events.extend(made)
            self.landed += 1

        return [], landed


@pytest.fixture
def published() -> Published:
    return Published()


@pytest.fixture
def es(store: SqliteStore, published: Published) -> EventStoreService:
    return EventStoreService(store, published, lambda: None)


def placed(n: int = 1) -> list[dict[str, Any]]:
    return [{"type": "OrderPlaced", "data": {"n": i}} for i in range(n)]


async def test_appends_number_events_and_check_the_expected_version(
    es: EventStoreService, published: Published
) -> None:
    first = await es.append("order-1", placed(2), "no_stream")
    assert (first["version"], first["first_version"]) == (2, 1)
    await es.append("order-1", placed(1), ExpectedVersion.exact(2))
    with pytest.raises(WrongExpectedVersion) as raised:
        await es.append("order-1", placed(1), 2)
    assert raised.value.details == {"stream": "order-1", "expected": 2, "current": 3}
    with pytest.raises(WrongExpectedVersion):
        await es.append("order-1", placed(1), "no_stream")
    page = await es.read("order-1")
    assert [e["version"] for e in page["events"]] == [1, 2, 3]
    assert page["version"] == 3
    assert [e.subject for e in published.events] == ["order-1"] * 3
    assert {e.type for e in published.events} == {"OrderPlaced"}
    assert [e.id for e in published.events] == [e["id"] for e in page["events"]]
    assert str(published.events[0].source) == "squall.es"


async def test_concurrent_writers_on_one_stream_one_wins_per_version(
    es: EventStoreService, store: SqliteStore
) -> None:
    await es.append("acct-1", placed(1), "no_stream")
    # Every writer saw version 1; their held appends all reach the store in one batch.
    holders = [Effects() for _ in range(8)]
    for effects in holders:
        await es.append("acct-1", placed(1), 1, effects)
    results = await asyncio.gather(
        *(store.commit(effects.ops()) for effects in holders), return_exceptions=True
    )
    won = [r for r in results if r is None]
    lost = [r for r in results if isinstance(r, WrongExpectedVersion)]
    assert (len(won), len(lost)) == (1, 7)
    page = await es.read("acct-1")
    assert [e["version"] for e in page["events"]] == [1, 2]


async def test_an_invocation_reads_its_own_pending_appends(es: EventStoreService) -> None:
    await es.append("order-2", placed(1))
    effects = Effects()
    await es.append("order-2", placed(2), 1, effects)
    with pytest.raises(WrongExpectedVersion):
        await es.append("order-2", placed(1), 1, effects)
    mine = await es.read("order-2", effects=effects)
    assert [e["version"] for e in mine["events"]] == [1, 2, 3]
    assert mine["events"][2]["position"] is None
    back = await es.read("order-2", backward=True, limit=2, effects=effects)
    assert [e["version"] for e in back["events"]] == [3, 2]
    assert [e["version"] for e in (await es.read("order-2"))["events"]] == [1]


async def test_read_backward_from_a_version_and_read_all_in_global_order(
    es: EventStoreService,
) -> None:
    await es.append("order-1", placed(3))
    await es.append("user-1", placed(1))
    await es.append("order-2", placed(1))
    back = await es.read("order-1", start=2, backward=True)
    assert [e["version"] for e in back["events"]] == [2, 1]
    everything = await es.read_all(after=0, limit=10)
    assert [e["position"] for e in everything["events"]] == [1, 2, 3, 4, 5]
    assert everything["head"] == 5
    orders = await es.read_all(after=1, limit=10, prefixes=["order-"])
    assert [(e["stream"], e["version"]) for e in orders["events"]] == [
        ("order-1", 2), ("order-1", 3), ("order-2", 1)
    ]
    assert orders["checkpoint"] == 5


async def test_metadata_limits_reads_and_soft_delete_refuses_appends(
    es: EventStoreService,
) -> None:
    await es.append("order-9", placed(5))
    described = await es.set_metadata("order-9", {"max_count": 2})
    assert described["metadata"] == {"max_count": 2}
    assert [e["version"] for e in (await es.read("order-9"))["events"]] == [4, 5]
    await es.delete("order-9")
    with pytest.raises(Conflict, match="deleted"):
        await es.append("order-9", placed(1))
    with pytest.raises(Conflict, match="deleted"):
        await es.read("order-9")
    # Read-all keeps the events of a deleted stream: projections rebuild the same.
    assert len((await es.read_all())["events"]) == 5
    with pytest.raises(NotFound):
        await es.delete("order-nope")


async def test_bad_input_is_refused_and_nothing_is_appended(
    es: EventStoreService, published: Published
) -> None:
    cases: list[tuple[str, Any, Any, str]] = [
        ("bad name!", placed(1), "any", "stream"),
        ("", placed(1), "any", "stream"),
        ("order-1", placed(1), -1, "expected_version"),
        ("order-1", placed(1), "latest", "expected_version"),
        ("order-1", [], "any", "events"),
        ("order-1", [{"type": "9bad", "data": 1}], "any", "events[0].type"),
        ("order-1", [{"type": "A", "data": object()}], "any", "events[0].data"),
        ("order-1", [{"type": "A", "data": b"{no"}], "any", "events[0].data"),
        ("order-1", [{"type": "A", "data": 1, "extra": 1}], "any", "events[0].extra"),
        ("order-1", [{"type": "A", "data": 1, "metadata": [1]}], "any",
         "events[0].metadata"),
    ]
    for stream, events, expected, field in cases:
        with pytest.raises(InvalidInput) as raised:
            await es.append(stream, events, expected)
        assert raised.value.field == field, (stream, events, expected)
    assert (await es.read_all())["events"] == []
    assert published.events == []
    with pytest.raises(InvalidInput, match="positive"):
        await es.set_metadata("order-1", {"max_count": 0})


async def test_an_event_id_is_stored_once(es: EventStoreService) -> None:
    await es.append("order-1", [{"type": "A", "data": 1, "id": "e-1"}])
    with pytest.raises(Conflict, match="already stored"):
        await es.append("order-2", [{"type": "A", "data": 1, "id": "e-1"}])
    with pytest.raises(InvalidInput, match="given twice"):
        await es.append("order-2", [{"type": "A", "id": "e-2"}, {"type": "B", "id": "e-2"}])
    assert (await es.read_all())["head"] == 1
    assert (await es.read("order-2"))["version"] == 0


async def test_snapshots_keep_the_latest_version(es: EventStoreService) -> None:
    assert await es.snapshot("order-1") is None
    await es.put_snapshot("order-1", 5, {"total": 5})
    await es.put_snapshot("order-1", 3, {"total": 3})  # older: ignored
    found = await es.snapshot("order-1")
    assert found is not None
    assert (found["version"], found["state"]) == (5, {"total": 5})
