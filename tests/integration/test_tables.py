"""Tables on a real platform: functions read and write through ctx.tables, their writes land
with their success, change triggers get each key's changes in commit order, TTL, permissions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import pytest

from squall.errors import ConditionFailed, InvalidInput, NotFound, PayloadTooLarge

APP = """
import squall

app = squall.App("tables")
app.table("orders", partition_key="id", indexes={"by_customer": {"partition_key": "customer",
          "sort_key": "created"}}, key_types={"created": "N"}, ttl_attribute="expires_at",
          stream="new_and_old")
app.table("stock", partition_key="sku", key_types={"sku": "S"})


@app.function(permissions=["table:orders", "table:stock"])
def place(event, ctx):
    orders = ctx.tables["orders"]
    put = orders.put(event["order"], if_not_exists=event.get("if_not_exists", False))
    seen = orders.get({"id": event["order"]["id"]})
    page = orders.query(event["order"]["customer"], index="by_customer")
    if event.get("fail"):
        raise RuntimeError("after writing")
    return {"put": put, "seen": seen, "page": page}


@app.function(permissions=["table:orders", "table:stock"])
def buy(event, ctx):
    try:
        return ctx.tables.transact([
            {"op": "put", "table": "orders", "item": {"id": event["id"], "customer": "c",
             "created": 1}, "if_not_exists": True},
            {"op": "update", "table": "stock", "key": {"sku": "pen"}, "add": {"n": -1},
             "condition": {"n": {"gte": 1}}},
        ])
    except squall.ConditionFailed as exc:
        return {"failed": exc.to_dict()}


@app.function(permissions=["table.read:orders"])
def reader(event, ctx):
    got = ctx.tables["orders"].get({"id": "o-1"})
    try:
        ctx.tables["orders"].put({"id": "o-2"})
    except squall.AccessDenied as exc:
        return {"got": got, "denied": exc.details}
    return None


@app.function()
def stranger(event, ctx):
    try:
        ctx.tables["orders"].get({"id": "o-1"})
    except squall.AccessDenied as exc:
        return exc.details
    return None


@app.on_change("orders", batch_size=50)
def changes(event, ctx):
    return [[r["eventName"], r["keys"]["id"], r["version"], r["sequence"],
             (r.get("new") or {}).get("n"), r.get("userIdentity")] for r in event["records"]]


@app.on_change("orders", images="keys", pattern={"eventName": ["REMOVE"]})
def removals(event, ctx):
    return event["records"]
"""


async def _batches(p: Any, function: str) -> list[Any]:
    runs = await p.list_invocations(function=function, limit=1000)
    runs = sorted((r for r in runs if r.status == "succeeded"), key=lambda r: r.start or 0)
    return [msgspec.json.decode(r.result) for r in runs if r.result]


async def test_a_function_reads_its_own_writes_and_they_land_with_its_success(
    platform: Any,
) -> None:
    p = await platform(APP)
    order = {"id": "o-1", "customer": "c-1", "created": 10, "total": 5}
    record = await p.invoke("place", msgspec.json.encode({"order": order}))
    assert record.error is None, record.error
    result = msgspec.json.decode(record.result or b"")
    assert result["put"] == {**order, "_version": 1}
    assert result["seen"] == {**order, "_version": 1}
    assert result["page"]["items"] == [{**order, "_version": 1}]
    assert await p.tables.get_item("orders", {"id": "o-1"}) == {**order, "_version": 1}
    record = await p.invoke(
        "place", msgspec.json.encode({"order": order, "if_not_exists": True})
    )
    assert record.error is not None and "ConditionFailed" in record.error["message"]


async def test_a_failed_invocation_leaves_no_writes(platform: Any) -> None:
    p = await platform(APP)
    failed = {"id": "o-9", "customer": "c-1", "created": 11}
    record = await p.invoke("place", msgspec.json.encode({"order": failed, "fail": True}))
    assert record.error is not None
    assert await p.tables.get_item("orders", {"id": "o-9"}) is None


async def test_transactions_are_all_or_nothing(platform: Any) -> None:
    p = await platform(APP)
    await p.tables.put("stock", {"sku": "pen", "n": 1})
    first = await p.invoke("buy", b'{"id": "b-1"}')
    assert first.error is None
    assert msgspec.json.decode(first.result or b"")[1]["n"] == 0
    second = await p.invoke("buy", b'{"id": "b-2"}')
    failed = msgspec.json.decode(second.result or b"")["failed"]
    assert failed["type"] == "ConditionFailed"
    assert failed["table"] == "stock" and failed["key"] == {"sku": "pen"}
    assert "n gte 1" in failed["message"]
    assert await p.tables.get_item("orders", {"id": "b-2"}) is None
    assert (await p.tables.get_item("stock", {"sku": "pen"}) or {})["n"] == 0


async def test_permissions_read_only_and_none(platform: Any) -> None:
    p = await platform(APP)
    await p.tables.put("orders", {"id": "o-1"})
    result = msgspec.json.decode((await p.invoke("reader", b"{}")).result or b"")
    assert result["got"] == {"id": "o-1", "_version": 1}
    assert result["denied"] == {"function": "reader", "action": "table", "resource": "orders"}
    denied = msgspec.json.decode((await p.invoke("stranger", b"{}")).result or b"")
    assert denied == {"function": "stranger", "action": "table.read", "resource": "orders"}


async def test_changes_of_each_key_arrive_in_commit_order_under_concurrent_writers(
    platform: Any, eventually: Any
) -> None:
    p = await platform(APP)
    keys = [f"k-{i}" for i in range(6)]

    async def writer(key: str) -> None:
        for n in range(15):
            await p.tables.update("orders", {"id": key}, set={"n": n})

    await asyncio.gather(*(writer(key) for key in keys), *(writer(key) for key in keys[:2]))

    async def seen() -> list[Any] | None:
        rows = [row for batch in await _batches(p, "changes") for row in batch]
        return rows if len(rows) >= 6 * 15 + 2 * 15 else None

    rows = await eventually(seen, timeout=30)
    for key in keys:
        versions = [version for _, k, version, _, _, _ in rows if k == key]
        assert versions == list(range(1, len(versions) + 1)), key
    assert {event for event, *_ in rows} == {"INSERT", "MODIFY"}
    assert await _batches(p, "removals") == []


async def test_ttl_hides_expired_items_and_the_sweep_removes_them_as_ttl(
    platform: Any, eventually: Any
) -> None:
    p = await platform(APP)
    now = time.time()
    await p.tables.put("orders", {"id": "gone", "customer": "c", "created": 1,
                                  "expires_at": now + 0.5})
    await p.tables.put("orders", {"id": "kept", "customer": "c", "created": 2,
                                  "expires_at": now + 3600})
    assert (await p.tables.get_item("orders", {"id": "gone"})) is not None
    await asyncio.sleep(0.6)
    assert await p.tables.get_item("orders", {"id": "gone"}) is None
    page = await p.tables.query("orders", "c", index="by_customer")
    assert [item["id"] for item in page["items"]] == ["kept"]

    async def removed() -> list[Any] | None:
        batches = await _batches(p, "removals")
        return batches or None

    [[record]] = await eventually(removed, timeout=10)
    assert record["eventName"] == "REMOVE" and record["keys"] == {"id": "gone"}
    assert record["userIdentity"] == {"type": "Service", "principalId": "squall.ttl"}
    assert "old" not in record and "new" not in record  # images="keys"


async def test_bad_input_names_the_field_and_stores_nothing(platform: Any) -> None:
    p = await platform(APP)
    with pytest.raises(NotFound) as missing:
        await p.tables.get_item("nope", {"id": "x"})
    assert missing.value.field == "table"
    with pytest.raises(InvalidInput) as no_key:
        await p.tables.put("orders", {"total": 1})
    assert no_key.value.field == "item.id" and "string" in no_key.value.message
    with pytest.raises(InvalidInput) as wrong_type:
        await p.tables.put("orders", {"id": 5})
    assert wrong_type.value.field == "item.id"
    with pytest.raises(InvalidInput) as index_type:
        await p.tables.put("orders", {"id": "x", "customer": "c", "created": "yesterday"})
    assert index_type.value.field == "item.created"
    with pytest.raises(PayloadTooLarge) as big:
        await p.tables.put("orders", {"id": "x", "blob": "a" * 410_000})
    assert str(410_000 + 20)[:3] in big.value.message and "409600" in big.value.message
    with pytest.raises(ConditionFailed) as cond:
        await p.tables.put("orders", {"id": "x"}, condition={"status": {"eq": "open"}})
    assert cond.value.details["key"] == {"id": "x"}
    assert cond.value.field == "condition"
    assert (await p.tables.scan("orders"))["items"] == []


FRAGILE = """
import squall

app = squall.App("fragile")
app.table("jobs", partition_key="id", stream="new")


@app.on_change("jobs", batch_size=10, batch_window_s=0.3, max_retries=0, bisect_on_error=True,
               on_failure="report", starting_position="trim_horizon")
def work(event, ctx):
    if any(r["new"].get("bad") for r in event["records"]):
        raise ValueError("a bad job")
    return [r["keys"]["id"] for r in event["records"]]


@app.function()
def report(event, ctx):
    return event["streamBatchInfo"]
"""


async def test_a_failing_change_is_isolated_by_bisection_and_reported(
    platform: Any, eventually: Any
) -> None:
    p = await platform(FRAGILE)
    await p.tables.transact([
        {"op": "put", "table": "jobs", "item": {"id": f"j{n}", "bad": n == 3}} for n in range(6)
    ])

    async def reported() -> list[Any] | None:
        return await _batches(p, "report") or None

    [info] = await eventually(reported, timeout=30)
    assert info["stream"] == "table:jobs" and info["batchSize"] == 1
    await p.wait_idle(30)
    done = sorted(key for batch in await _batches(p, "work") for key in batch)
    assert done == ["j0", "j1", "j2", "j4", "j5"]
