"""``squall.Aggregate`` through the sandbox's ``ctx.events_store`` client, answered by a real
event store on SQLite (running on its own loop thread, as the platform would): folding,
saving at the loaded version, conflicts, snapshots and upcasters."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

import squall
from squall.aggregate import Upcaster
from squall.engine.event_store.service import EventStoreService
from squall.errors import SquallError
from squall.runtime.events_store_client import EventsStore
from squall.storage.sqlite.store import SqliteStore


class Link:
    """The sandbox link's contract (call → JSON bytes or a raised SquallError)."""

    def __init__(self, es: EventStoreService, loop: asyncio.AbstractEventLoop) -> None:
        self.es, self.loop = es, loop
        self.calls: list[str] = []

    def call(self, op: str, args: dict[str, Any]) -> bytes | None:
        self.calls.append(op)
        future = asyncio.run_coroutine_threadsafe(self._answer(op, args), self.loop)
        try:
            return msgspec.json.encode(future.result(10))
        except SquallError as exc:
            raise SquallError.from_dict(exc.to_dict()) from None

    async def _answer(self, op: str, args: dict[str, Any]) -> Any:
        es = self.es
        if op == "es.append":
            return await es.append(args["stream"], args["events"], args["expected"])
        if op == "es.read":
            return await es.read(args["stream"], start=args["start"], limit=args["limit"],
                                 backward=args["backward"])
        if op == "es.snapshot":
            return await es.snapshot(args["stream"])
        assert op == "es.put_snapshot"
        await es.put_snapshot(args["stream"], args["version"], args["state"])
        return None


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    store = asyncio.run_coroutine_threadsafe(SqliteStore.open(tmp_path / "s.db"), loop).result()
    yield Link(EventStoreService(store, lambda events: ([], lambda: None), lambda: None), loop)
    asyncio.run_coroutine_threadsafe(store.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


class Counter(squall.Aggregate):
    snapshot_every = 5
    upcasters: ClassVar[dict[tuple[str, int], Upcaster]] = {
        ("Added", 1): lambda data: {"amount": data["n"]},  # v1 called it "n"
    }

    def __init__(self) -> None:
        self.total = 0

    def add(self, amount: int) -> None:
        if amount <= 0:
            raise ValueError("add a positive amount")
        self.record("Added", {"amount": amount}, schema_version=2)

    def apply_Added(self, data: dict[str, Any]) -> None:
        self.total += data["amount"]


def test_commands_fold_and_save_at_the_loaded_version(link: Link) -> None:
    store = EventsStore(link)
    counter = Counter.load(store, "1")
    assert (counter.stream, counter.version, counter.total) == ("counter-1", 0, 0)
    counter.add(3)
    counter.add(4)
    assert counter.save(store) == {"stream": "counter-1", "version": 2, "first_version": 1,
                                   "ids": counter_ids(store, "counter-1")}
    assert counter.save(store) is None  # nothing recorded since
    again = Counter.load(store, "1")
    assert (again.version, again.total) == (2, 7)


def counter_ids(store: EventsStore, stream: str) -> list[str]:
    return [e["id"] for e in store.events(stream)]


def test_two_commands_from_one_version_conflict(link: Link) -> None:
    store = EventsStore(link)
    first, second = Counter.load(store, "2"), Counter.load(store, "2")
    first.add(1)
    second.add(2)
    first.save(store)
    with pytest.raises(squall.WrongExpectedVersion) as raised:
        second.save(store)
    assert raised.value.details == {"stream": "counter-2", "expected": 0, "current": 1}
    assert Counter.load(store, "2").total == 1


def test_snapshots_shorten_loading_and_old_versions_are_upcast(link: Link) -> None:
    store = EventsStore(link)
    store.append("counter-3", [{"type": "Added", "data": {"n": 10}, "schema_version": 1}])
    counter = Counter.load(store, "3")
    assert counter.total == 10
    for _ in range(6):
        counter.add(1)
    counter.save(store)  # version 7: past a multiple of 5, so a snapshot at 7
    snapshot = store.snapshot("counter-3")
    assert snapshot is not None and (snapshot["version"], snapshot["state"]) == (7, {"total": 16})
    link.calls.clear()
    loaded = Counter.load(store, "3")
    assert (loaded.version, loaded.total) == (7, 16)
    assert link.calls == ["es.snapshot", "es.read"]


def test_an_event_without_an_apply_method_is_named() -> None:
    class Bare(squall.Aggregate):
        pass

    bare = Bare.create("x")
    with pytest.raises(TypeError, match="no apply_Odd method"):
        bare.record("Odd", {})
