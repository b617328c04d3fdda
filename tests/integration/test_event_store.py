"""The event store from functions: appends held with the invocation and published in its
unit, WrongExpectedVersion raised in user code, permissions, a projection's read model
queried by an HTTP function, and a rebuild that ends with the same read model."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
from conftest import StartPlatform, poll

from squall.engine.platform import Platform
from squall.errors import NotFound
from squall.model.invocation import InvocationStatus

APP = """
import squall

app = squall.App("es")

@app.function(permissions=["events_store:order-*"])
def place(event, ctx):
    es = ctx.events_store
    es.append(event["stream"], [{"type": "OrderPlaced", "data": event["data"]}],
              expected_version=event.get("expected", "any"))
    mine = es.read(event["stream"])
    if event.get("fail"):
        raise RuntimeError("after the append")
    return mine["version"]

@app.function(permissions=["events_store:order-*"])
def conflict(event, ctx):
    try:
        ctx.events_store.append("order-1", [{"type": "X", "data": 1}], expected_version=99)
    except squall.WrongExpectedVersion as exc:
        return exc.details
    return None

@app.function(permissions=["events_store:order-*"])
def unserializable(event, ctx):
    try:
        ctx.events_store.append("order-1", [{"type": "X", "data": object()}])
    except squall.InvalidInput as exc:
        return exc.field
    return None

@app.function()
def sneaky(event, ctx):
    ctx.events_store.append("order-1", [{"type": "X", "data": 1}])

@app.on("OrderPlaced")
def react(event, ctx):
    print("reacted", event["subject"], event["data"]["total"])

@app.projection("totals", from_streams=["order-"], partition_key="customer",
                key_types={"customer": "S"})
def totals(event, table, ctx):
    data = event["data"]
    current = table.get({"customer": data["customer"]}) or {"customer": data["customer"],
                                                             "total": 0, "orders": 0}
    current["total"] += data["total"]
    current["orders"] += 1
    current.pop("_version", None)
    table.put(current)

@app.http("GET /totals/{customer}", permissions=["table.read:totals"])
def query(request, ctx):
    item = ctx.tables["totals"].get({"customer": request.path_params["customer"]})
    return squall.Response(item or {}, status=200 if item else 404)
"""


async def place(p: Platform, stream: str, customer: str, total: int, **extra: Any) -> Any:
    payload = {"stream": stream, "data": {"customer": customer, "total": total}, **extra}
    return await p.invoke("place", msgspec.json.encode(payload))


async def totals(p: Platform) -> dict[str, Any]:
    page = await p.tables.scan("totals", limit=100)
    return {i["customer"]: (i["total"], i["orders"]) for i in page["items"]}


async def caught_up(p: Platform) -> bool:
    return bool((await p.projections.status("totals"))["lag"] == 0)


async def test_appends_from_functions_publish_and_project(platform: StartPlatform) -> None:
    p = await platform(APP)
    record = await place(p, "order-1", "ann", 10, expected="no_stream")
    assert record.status == InvocationStatus.SUCCEEDED, record.error
    assert msgspec.json.decode(record.result or b"") == 1
    failed = await place(p, "order-2", "bob", 5, fail=True)
    assert failed.status == InvocationStatus.FAILED
    assert (await p.events_store.read_all())["head"] == 1  # the failed attempt left nothing
    await place(p, "order-2", "bob", 7)
    await place(p, "order-3", "ann", 1)
    await p.events_store.append("user-1", [{"type": "Joined", "data": {}}])  # not projected
    await p.wait_idle()
    await poll(lambda: caught_up(p))
    assert await totals(p) == {"ann": (11, 2), "bob": (7, 1)}
    scraped = (await p.observability.scrape()).decode()
    assert 'squall_projection_lag_events{generation="1",projection="totals",state="live"} 0.0' \
        in scraped
    logs = await p.list_logs(function="react")
    assert sorted(line.message.strip() for line in logs) == [
        "reacted order-1 10", "reacted order-2 7", "reacted order-3 1"
    ]
    denied = await p.invoke("sneaky", b"null")
    assert denied.error is not None and denied.error["type"] == "FunctionError"
    assert "AccessDenied" in denied.error["message"]
    conflicted = await p.invoke("conflict", b"null")
    assert conflicted.error is None, conflicted.error
    details = msgspec.json.decode(conflicted.result or b"")
    assert details == {"stream": "order-1", "expected": 99, "current": 1}
    field = msgspec.json.decode((await p.invoke("unserializable", b"null")).result or b"")
    assert field == "events[0].data"


async def test_concurrent_commands_on_one_stream_conflict(platform: StartPlatform) -> None:
    p = await platform(APP)
    await place(p, "order-7", "cy", 1, expected="no_stream")
    records = await asyncio.gather(
        *(place(p, "order-7", "cy", n, expected=1) for n in range(6))
    )
    won = [r for r in records if r.status == InvocationStatus.SUCCEEDED]
    assert len(won) == 1, [r.error for r in records]
    assert all(r.error is not None and "WrongExpectedVersion" in str(r.error)
               for r in records if r not in won)
    assert (await p.events_store.read("order-7"))["version"] == 2


async def test_rebuild_produces_the_same_read_model(platform: StartPlatform) -> None:
    p = await platform(APP)
    for n in range(30):
        await place(p, f"order-{n % 7}", f"c{n % 4}", n)
    await poll(lambda: caught_up(p))
    live = await totals(p)
    status = await p.projections.rebuild("totals")
    assert status["rebuild"]["generation"] == 2
    await place(p, "order-99", "c0", 1000)  # lands while the rebuild runs
    async def swapped() -> bool:
        status = await p.projections.status("totals")
        return bool(status["generation"] == 2 and status["lag"] == 0)
    await poll(swapped)
    live["c0"] = (live["c0"][0] + 1000, live["c0"][1] + 1)
    assert await totals(p) == live
    assert (await p.tables.describe("totals"))["items"] == 4


async def test_a_second_rebuild_and_only_open_generations_are_tables(
    platform: StartPlatform,
) -> None:
    p = await platform(APP)
    for n in range(6):
        await place(p, f"order-{n}", f"c{n % 2}", n)
    await poll(lambda: caught_up(p))
    live = await totals(p)
    for generation in (2, 3):
        await p.projections.rebuild("totals")

        async def swapped(generation: int = generation) -> bool:
            status = await p.projections.status("totals")
            return bool(status["generation"] == generation and status["rebuild"] is None)

        await poll(swapped)
        assert await totals(p) == live
    assert (await p.tables.describe("totals"))["name"] == "totals"
    with pytest.raises(NotFound):
        await p.tables.put("totals@2", {"customer": "x"})  # retired
    with pytest.raises(NotFound):
        await p.tables.put("totals@9", {"customer": "x"})  # never opened


SLOW_APP = APP.replace("    table.put(current)", "    table.put(current)\n    time.sleep(0.02)")
SLOW_APP = SLOW_APP.replace("import squall\n", "import time\nimport squall\n", 1).replace(
    'key_types={"customer": "S"})', 'key_types={"customer": "S"}, batch_size=5)'
)


async def test_a_rebuild_cut_off_by_a_restart_resumes(platform: StartPlatform) -> None:
    p = await platform(SLOW_APP)
    for n in range(40):
        await p.events_store.append(
            f"order-{n % 5}", [{"type": "OrderPlaced", "data": {"customer": f"c{n % 3}",
                                                                "total": n}}]
        )
    await poll(lambda: caught_up(p), timeout=30)
    live = await totals(p)
    await p.projections.rebuild("totals")

    async def started() -> int:
        fresh = (await p.projections.status("totals"))["rebuild"]
        return int(fresh["checkpoint"]) if fresh else 0

    reached = await poll(started)
    await p.stop()
    again = await platform(SLOW_APP)
    status = await again.projections.status("totals")
    assert status["generation"] == 1 and status["rebuild"]["checkpoint"] >= reached

    async def swapped() -> bool:
        status = await again.projections.status("totals")
        return bool(status["generation"] == 2 and status["rebuild"] is None)

    await poll(swapped, timeout=30)
    assert await totals(again) == live
