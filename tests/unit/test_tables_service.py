"""Tables against a real SQLite store: an invocation's overlay of pending writes, optimistic
concurrency at commit, conditions, pagination over indexes, change records, TTL."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from squall.engine.effects import Effects
from squall.engine.tables.service import Tables
from squall.errors import ConditionFailed, Conflict, InvalidInput, NotFound, WriteConflict
from squall.model.tables import IndexConfig, TableConfig, change_stream
from squall.storage.sqlite.store import SqliteStore

ORDERS = TableConfig(
    name="orders",
    partition_key="customer",
    sort_key="n",
    key_types={"n": "N", "total": "N"},
    indexes=(IndexConfig(name="by_status", partition_key="status", sort_key="total"),),
    ttl_attribute="expires_at",
    stream="new_and_old",
)
PLAIN = TableConfig(name="plain", partition_key="id")


@pytest.fixture
def woken() -> list[str]:
    return []


@pytest.fixture
def tables(store: SqliteStore, woken: list[str]) -> Tables:
    return Tables(store, [ORDERS, PLAIN], woken.append)


async def commit(store: SqliteStore, effects: Effects) -> None:
    await store.commit(effects.ops())
    effects.committed()


async def changes(store: SqliteStore, table: str = "orders") -> list[dict[str, Any]]:
    found = []
    for shard in range(4):
        for record in await store.read_records(change_stream(table), shard, 0, 1000):
            found.append(msgspec.json.decode(record.data))
    return sorted(found, key=lambda c: c["approximate_creation_time"])


async def test_pending_writes_are_seen_by_their_invocation_only_until_commit(
    tables: Tables, store: SqliteStore, woken: list[str]
) -> None:
    await tables.put("orders", {"customer": "c", "n": 1, "v": "stored"})
    effects = Effects()
    await tables.put("orders", {"customer": "c", "n": 2, "v": "pending"}, effects=effects)
    await tables.update("orders", {"customer": "c", "n": 1}, set={"v": "changed"},
                        effects=effects)
    await tables.delete_item("orders", {"customer": "c", "n": 1}, effects=effects)
    assert await tables.get_item("orders", {"customer": "c", "n": 2}, effects) is not None
    assert await tables.get_item("orders", {"customer": "c", "n": 1}, effects) is None
    page = await tables.query("orders", "c", effects=effects)
    assert [item["v"] for item in page["items"]] == ["pending"]
    # Nobody else sees them, and nothing is committed yet.
    assert await tables.get_item("orders", {"customer": "c", "n": 2}) is None
    assert [i["v"] for i in (await tables.query("orders", "c"))["items"]] == ["stored"]
    woken.clear()
    await commit(store, effects)
    assert woken == ["orders"]
    assert [i["v"] for i in (await tables.query("orders", "c"))["items"]] == ["pending"]
    events = [(c["eventName"], c["keys"]["n"], c["version"]) for c in await changes(store)]
    assert events == [("INSERT", 1, 1), ("INSERT", 2, 1), ("MODIFY", 1, 2), ("REMOVE", 1, 2)]


async def test_a_write_whose_item_changed_before_commit_fails_the_whole_unit(
    tables: Tables, store: SqliteStore
) -> None:
    await tables.put("orders", {"customer": "c", "n": 1, "stock": 3})
    effects = Effects()
    seen = await tables.get_item("orders", {"customer": "c", "n": 1}, effects)
    assert seen is not None and seen["_version"] == 1
    await tables.update("orders", {"customer": "c", "n": 1}, add={"stock": -1}, effects=effects)
    await tables.put("plain", {"id": "other"}, effects=effects)
    await tables.update("orders", {"customer": "c", "n": 1}, add={"stock": -2})  # a rival
    with pytest.raises(WriteConflict) as conflict:
        await store.commit(effects.ops())
    effects.discarded()
    assert conflict.value.details["table"] == "orders"
    assert conflict.value.details["key"] == {"customer": "c", "n": 1}
    assert await tables.get_item("plain", {"id": "other"}) is None  # rolled back with it
    item = await tables.get_item("orders", {"customer": "c", "n": 1})
    assert item is not None and item["stock"] == 1 and item["_version"] == 2


async def test_an_insert_conflicts_with_a_rival_insert_of_the_same_key(
    tables: Tables, store: SqliteStore
) -> None:
    first, second = Effects(), Effects()
    await tables.put("plain", {"id": "k", "by": 1}, effects=first)
    await tables.put("plain", {"id": "k", "by": 2}, if_not_exists=True, effects=second)
    await commit(store, first)
    with pytest.raises(WriteConflict):
        await store.commit(second.ops())
    assert (await tables.get_item("plain", {"id": "k"})) == {"id": "k", "by": 1, "_version": 1}


async def test_blind_puts_are_last_writer_wins_and_a_read_item_is_protected(
    tables: Tables, store: SqliteStore
) -> None:
    first, second = Effects(), Effects()
    await tables.put("plain", {"id": "k", "by": 1}, effects=first)
    await tables.put("plain", {"id": "k", "by": 2}, effects=second)  # never read it
    await commit(store, first)
    await commit(store, second)
    assert (await tables.get_item("plain", {"id": "k"})) == {"id": "k", "by": 2, "_version": 2}
    reader, rival = Effects(), Effects()
    seen = await tables.get_item("plain", {"id": "k"}, effects=reader)
    assert seen is not None
    await tables.put("plain", {**seen, "by": seen["by"] + 1}, effects=reader)
    await tables.put("plain", {"id": "k", "by": 9}, effects=rival)
    await commit(store, rival)
    with pytest.raises(WriteConflict):  # it read version 2: no lost update
        await store.commit(reader.ops())
    assert (await tables.get_item("plain", {"id": "k"})) == {"id": "k", "by": 9, "_version": 3}


async def test_conditions_fail_at_call_time_naming_table_key_and_condition(
    tables: Tables,
) -> None:
    await tables.put("orders", {"customer": "c", "n": 1, "status": "open", "stock": 0})
    key = {"customer": "c", "n": 1}
    with pytest.raises(ConditionFailed) as exists:
        await tables.put("orders", {**key}, if_not_exists=True)
    assert exists.value.field == "if_not_exists"
    with pytest.raises(ConditionFailed) as version:
        await tables.update("orders", key, set={"x": 1}, if_version=7)
    assert version.value.field == "if_version" and "expected version 7" in version.value.message
    with pytest.raises(ConditionFailed) as attribute:
        await tables.update(
            "orders", key, add={"stock": -1},
            condition={"status": {"eq": "open"}, "stock": {"gte": 1}},
        )
    assert attribute.value.details["table"] == "orders"
    assert attribute.value.details["key"] == key
    assert "stock gte 1 (found 0)" in attribute.value.message
    with pytest.raises(ConditionFailed):
        await tables.delete_item("orders", key, condition={"status": {"exists": False}})
    ok = await tables.update("orders", key, set={"status": "shut"}, if_version=1,
                             condition={"gone": {"exists": False}, "status": {"in": ["open"]}})
    assert ok["_version"] == 2 and ok["status"] == "shut"
    assert (await tables.put("plain", {"id": "new"}, if_version=0))["_version"] == 1


async def test_transactions_are_all_or_nothing_with_conditions_on_every_item(
    tables: Tables, store: SqliteStore
) -> None:
    await tables.put("plain", {"id": "stock", "n": 1})
    ops = [
        {"op": "put", "table": "orders", "item": {"customer": "c", "n": 1}},
        {"op": "update", "table": "plain", "key": {"id": "stock"}, "add": {"n": -1},
         "condition": {"n": {"gte": 1}}},
        {"op": "check", "table": "plain", "key": {"id": "flag"}, "if_version": 0},
    ]
    results = await tables.transact(ops)
    assert results[1]["n"] == 0 and results[2] is None
    ops[0]["item"] = {"customer": "c", "n": 2}
    with pytest.raises(ConditionFailed) as failed:
        await tables.transact(ops)
    assert failed.value.field == "ops[1].condition"
    assert await tables.get_item("orders", {"customer": "c", "n": 2}) is None
    effects = Effects()
    await tables.transact(
        [{"op": "check", "table": "plain", "key": {"id": "stock"}, "if_version": 2},
         {"op": "put", "table": "plain", "item": {"id": "x"}}],
        effects,
    )
    await tables.update("plain", {"id": "stock"}, set={"touched": True})
    with pytest.raises(WriteConflict):  # the checked item moved: nothing lands
        await store.commit(effects.ops())
    assert await tables.get_item("plain", {"id": "x"}) is None
    with pytest.raises(InvalidInput) as twice:
        await tables.transact([{"op": "put", "table": "plain", "item": {"id": "a"}},
                               {"op": "delete", "table": "plain", "key": {"id": "a"}}])
    assert twice.value.field == "ops[1].key"


async def test_query_pages_through_an_index_with_pending_writes_merged(
    tables: Tables,
) -> None:
    for n in range(10):
        await tables.put("orders", {"customer": f"c{n % 2}", "n": n, "status": "open",
                                    "total": 100 - n})
    await tables.put("orders", {"customer": "c9", "n": 0})  # no status: not in the index
    effects = Effects()
    await tables.put("orders", {"customer": "z", "n": 1, "status": "open", "total": 95.5},
                     effects=effects)
    await tables.delete_item("orders", {"customer": "c1", "n": 3}, effects=effects)
    totals: list[Any] = []
    cursor = None
    while True:
        page = await tables.query("orders", "open", index="by_status", limit=3, cursor=cursor,
                                  effects=effects)
        assert len(page["items"]) <= 3
        totals += [item["total"] for item in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert totals == sorted([100 - n for n in range(10) if n != 3] + [95.5])
    ranged = await tables.query("orders", "open", index="by_status",
                                sort=["between", 93, 96], descending=True, effects=effects)
    assert [item["total"] for item in ranged["items"]] == [96, 95.5, 95, 94, 93]
    prefix = await tables.query("orders", "c0", sort=["lt", 4])
    assert [item["n"] for item in prefix["items"]] == [0, 2]
    everything = await tables.scan("orders", limit=1000, effects=effects)
    assert len(everything["items"]) == 11


async def test_ttl_items_are_invisible_once_due_and_swept_as_ttl_removals(
    tables: Tables, store: SqliteStore
) -> None:
    now = time.time()
    await tables.put("orders", {"customer": "c", "n": 1, "expires_at": now - 1})
    await tables.put("orders", {"customer": "c", "n": 2, "expires_at": now + 3600})
    assert await tables.get_item("orders", {"customer": "c", "n": 1}) is None
    assert [i["n"] for i in (await tables.query("orders", "c"))["items"]] == [2]
    # Overwriting an expired item is an insert.
    await tables.sweep(now + 1)
    removals = [c for c in await changes(store) if c["eventName"] == "REMOVE"]
    assert len(removals) == 1
    assert removals[0]["keys"] == {"customer": "c", "n": 1}
    assert removals[0]["userIdentity"]["principalId"] == "squall.ttl"
    assert removals[0]["old"]["expires_at"] == now - 1
    assert (await tables.describe("orders"))["items"] == 1


async def test_change_records_are_numbered_at_commit_in_commit_order(
    tables: Tables, store: SqliteStore
) -> None:
    early, late = Effects(), Effects()
    await tables.put("orders", {"customer": "c", "n": 1, "by": "early"}, effects=early)
    await tables.put("plain", {"id": "x"}, effects=late)
    await tables.put("orders", {"customer": "c", "n": 2, "by": "late"}, effects=late)
    await commit(store, late)
    await commit(store, early)
    records = []
    for shard in range(4):
        records += await store.read_records(change_stream("orders"), shard, 0, 100)
    by_key = {msgspec.json.decode(r.data)["keys"]["n"]: r for r in records}
    assert msgspec.json.decode(by_key[2].data)["new"]["by"] == "late"
    if by_key[1].shard == by_key[2].shard:
        assert by_key[2].sequence < by_key[1].sequence  # committed first, numbered first


async def test_bad_input_names_the_field(tables: Tables) -> None:
    cases: list[tuple[Any, str]] = [
        (tables.put("orders", {"customer": "c"}), "item.n"),
        (tables.put("orders", {"customer": "c", "n": "1"}), "item.n"),
        (tables.put("orders", {"customer": "c", "n": 1, "status": 3}), "item.status"),
        (tables.put("orders", {"customer": "c", "n": 1, "expires_at": "soon"}),
         "item.expires_at"),
        (tables.put("orders", [1]), "item"),
        (tables.get_item("orders", {"customer": "c", "n": 1, "extra": 1}), "key.extra"),
        (tables.update("orders", {"customer": "c", "n": 1}, set={"n": 2}), "set.n"),
        (tables.update("orders", {"customer": "c", "n": 1}, add={"x": "a"}), "add.x"),
        (tables.update("orders", {"customer": "c", "n": 1}, remove="x"), "remove"),
        (tables.put("plain", {"id": "a"}, condition={"x": {"near": 1}}), "condition.x.near"),
        (tables.put("plain", {"id": "a"}, condition={"x": 1}), "condition.x"),
        (tables.put("plain", {"id": "a"}, if_version=-1), "if_version"),
        (tables.put("plain", {"id": "a"}, if_not_exists="yes"), "if_not_exists"),
        (tables.query("orders", 5), "partition"),
        (tables.query("orders", "c", sort=["near", 1]), "sort"),
        (tables.query("orders", "c", sort=["eq", "x"]), "sort"),
        (tables.query("plain", "c", sort=["eq", "x"]), "sort"),
        (tables.query("orders", "c", index="nope"), "index"),
        (tables.query("orders", "c", limit=0), "limit"),
        (tables.query("orders", "c", cursor="%%%"), "cursor"),
        (tables.scan("orders", cursor="WzFd"), "cursor"),
        (tables.transact([]), "ops"),
        (tables.transact([{"op": "explode", "table": "plain"}]), "ops[0].op"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as bad:
            await call
        assert bad.value.field == field, (field, bad.value.message)
    with pytest.raises(NotFound):
        await tables.scan("nope")


async def test_tables_made_through_the_api_are_kept_and_dropped(
    store: SqliteStore, tables: Tables
) -> None:
    made = TableConfig(name="made", partition_key="id", stream="keys")
    await tables.create(made)
    with pytest.raises(Conflict):
        await tables.create(made)
    with pytest.raises(Conflict):
        await tables.delete("orders")  # declared by the app
    await tables.put("made", {"id": "a"})
    again = Tables(store, [ORDERS], lambda table: None)
    await again.load()
    assert [c.name for c in again.all()] == ["made", "orders"]
    await again.delete("made")
    assert await store.list_tables() == []
    assert await store.heads(change_stream("made")) == {}
    with pytest.raises(InvalidInput) as bad:
        await tables.create(TableConfig(name="bad name", partition_key="id"))
    assert bad.value.field == "name"


# --- the overlay and the store agree -------------------------------------------------------

KEYS = st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 4))
WRITES = st.lists(
    st.one_of(
        st.tuples(st.just("put"), KEYS, st.integers(0, 9)),
        st.tuples(st.just("add"), KEYS, st.integers(-3, 3)),
        st.tuples(st.just("delete"), KEYS, st.just(0)),
    ),
    max_size=12,
)


async def _apply(tables: Tables, writes: list[Any], effects: Effects | None) -> None:
    for action, (customer, n), value in writes:
        key = {"customer": customer, "n": n}
        if action == "put":
            await tables.put("orders", {**key, "v": value, "status": "s", "total": value},
                             effects=effects)
        elif action == "add":
            await tables.update("orders", key, add={"v": value}, effects=effects)
        else:
            await tables.delete_item("orders", key, effects=effects)


async def _view(tables: Tables, effects: Effects | None) -> Any:
    view = []
    for customer in ("a", "b"):
        view.append((await tables.query("orders", customer, limit=2, effects=effects))["items"])
        view.append((await tables.query("orders", customer, descending=True,
                                        effects=effects))["items"])
    view.append((await tables.query("orders", "s", index="by_status", effects=effects))["items"])
    view.append((await tables.scan("orders", limit=3, effects=effects))["items"])
    return view


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(before=WRITES, pending=WRITES)
def test_the_overlay_over_the_store_equals_the_writes_applied(
    tmp_path_factory: pytest.TempPathFactory, before: list[Any], pending: list[Any]
) -> None:
    async def run() -> None:
        direct = await SqliteStore.open(tmp_path_factory.mktemp("d") / "d.db")
        held = await SqliteStore.open(tmp_path_factory.mktemp("h") / "h.db")
        try:
            plain, layered = Tables(direct, [ORDERS], str), Tables(held, [ORDERS], str)
            await _apply(plain, before + pending, None)
            await _apply(layered, before, None)
            effects = Effects()
            await _apply(layered, pending, effects)
            assert await _view(layered, effects) == await _view(plain, None)
            await commit(held, effects)
            assert await _view(layered, None) == await _view(plain, None)
        finally:
            await direct.close()
            await held.close()

    asyncio.run(run())
