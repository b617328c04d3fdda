"""A function's effects commit with its success: a failed attempt leaves none behind, the
retry that succeeds leaves exactly one of each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

APP = """
import json, os, time
import squall

app = squall.App("effects")
app.queue_resource("outbox")
app.stream_resource("audit")
app.table("counters", partition_key="id")
app.table("attempts", partition_key="id", stream="new")
app.bucket("files")

def note(kind, **fields):
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({{"kind": kind, **fields}}) + "\\n").encode())
    finally:
        os.close(fd)

EFFECTS = [
    "publish:default", "send:outbox", "put:audit", "invoke:follow-up", "table:attempts",
    "bucket:files",
]

def act(ctx, event):
    ctx.publish("order.noted", {{"n": event["n"], "attempt": ctx.attempt}})
    ctx.send("outbox", {{"n": event["n"]}})
    ctx.put_record("audit", {{"n": event["n"]}}, partition_key="k")
    ctx.invoke("follow-up", {{"n": event["n"]}}, async_=True)
    ctx.publish_at(time.time() + 0.2, "order.later", {{"n": event["n"]}})
    ctx.tables["attempts"].put({{"id": f"{{event['n']}}-{{ctx.attempt}}"}})
    ctx.buckets["files"].put(f"{{event['n']}}-{{ctx.attempt}}", b"made by one attempt")

@app.on_change("attempts")
def changed(event, ctx):
    for record in event["records"]:
        note("change", keys=record["keys"])

@app.on_object("files")
def stored(event, ctx):
    note("object", key=event["data"]["key"])

@app.function(permissions=EFFECTS, retries=2)
def flaky(event, ctx):
    act(ctx, event)
    note("attempt", attempt=ctx.attempt)
    if ctx.attempt < event["succeed_on"]:
        raise RuntimeError("not yet")
    return "done"

@app.function(permissions=EFFECTS, timeout_s=1)
def slow(event, ctx):
    act(ctx, event)
    time.sleep(5)

@app.function(permissions=EFFECTS)
def failing(event, ctx):
    act(ctx, event)
    raise RuntimeError("boom")

@app.function(permissions=EFFECTS)
def fine(event, ctx):
    act(ctx, event)
    return "ok"

@app.on("order.noted")
def seen(event, ctx):
    note("event", data=event["data"])

@app.on("order.later")
def later(event, ctx):
    note("later", data=event["data"])

@app.function(permissions=["table:counters"], retries=2)
def bump(event, ctx):
    counters = ctx.tables["counters"]
    seen = counters.get({{"id": "c"}})
    counters.put({{"id": "c", "value": seen["value"] + 1}})
    note("bump", attempt=ctx.attempt, value=seen["value"])
    if ctx.attempt == 1:
        time.sleep(0.6)  # someone else writes the counter before this attempt commits

@app.function()
def follow_up(event, ctx):
    note("follow-up", data=event)
"""


def notes(path: Path, kind: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [line for line in lines if line["kind"] == kind]


async def counts(platform: Any) -> dict[str, int]:
    stats = await platform.queues.stats("outbox")
    records = await platform.streams.read("audit", 0, 0, 100)
    items = (await platform.tables.scan("attempts"))["items"]
    objects = (await platform.buckets.list_objects("files")).objects
    return {
        "messages": stats.visible + stats.in_flight + stats.delayed,
        "records": len(records),
        "items": len(items),
        "objects": len(objects),
    }


async def test_a_failed_attempt_leaves_nothing_and_its_successful_retry_one_of_each(
    platform, tmp_path, eventually
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "notes.txt"
    p = await platform(APP.format(out=str(out)))
    await p.invoke_async("flaky", b'{"n": 1, "succeed_on": 3}')
    await p.wait_idle()
    await eventually(lambda: _later(out, 1))
    await asyncio.sleep(0.5)  # anything a failed attempt leaked would have landed by now
    assert [n["attempt"] for n in notes(out, "attempt")] == [1, 2, 3]
    [event] = notes(out, "event")
    assert event["data"] == {"n": 1, "attempt": 3}  # the successful attempt's event only
    assert len(notes(out, "follow-up")) == 1
    assert len(notes(out, "later")) == 1
    assert await counts(p) == {"messages": 1, "records": 1, "items": 1, "objects": 1}
    assert (await p.tables.get_item("attempts", {"id": "1-3"})) is not None
    await eventually(lambda: _noted(out, "change", 1))
    await eventually(lambda: _noted(out, "object", 1))
    await asyncio.sleep(0.3)
    assert [n["keys"] for n in notes(out, "change")] == [{"id": "1-3"}]
    assert [n["key"] for n in notes(out, "object")] == ["1-3"]


async def _noted(out: Path, kind: str, expected: int) -> bool:
    return len(notes(out, kind)) >= expected


async def _later(out: Path, expected: int) -> bool:
    return len(notes(out, "later")) >= expected


async def test_a_sync_invocation_that_raises_or_times_out_leaves_nothing(
    platform, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "notes.txt"
    p = await platform(APP.format(out=str(out)))
    failed = await p.invoke("failing", b'{"n": 2}')
    assert failed.error is not None and "boom" in failed.error["message"]
    timed_out = await p.invoke("slow", b'{"n": 3}')
    assert timed_out.error is not None and timed_out.error["type"] == "Timeout"
    await p.wait_idle()
    await asyncio.sleep(0.6)
    assert notes(out, "event") == [] and notes(out, "follow-up") == []
    assert notes(out, "later") == [] and notes(out, "object") == []
    assert notes(out, "change") == []
    assert await counts(p) == {"messages": 0, "records": 0, "items": 0, "objects": 0}
    await p.buckets.sweep()
    files = [f for f in (p.config.data_dir / "buckets").rglob("*") if f.is_file()]
    assert files == []  # the staged files of the failed attempts are gone too
    assert await p.buckets.files.names() == set()  # and nothing was kept (a cluster's store)


async def test_a_successful_sync_invocation_commits_its_effects_before_it_answers(
    platform, tmp_path, eventually
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "notes.txt"
    p = await platform(APP.format(out=str(out)))
    record = await p.invoke("fine", b'{"n": 4}')
    assert record.error is None
    assert await counts(p) == {"messages": 1, "records": 1, "items": 1, "objects": 1}
    await eventually(lambda: _later(out, 1))
    await p.wait_idle()
    assert len(notes(out, "event")) == 1 and len(notes(out, "follow-up")) == 1


async def test_stream_records_put_by_functions_are_numbered_in_commit_order(
    platform, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "notes.txt"
    p = await platform(APP.format(out=str(out)))
    await asyncio.gather(*(p.invoke("fine", json.dumps({"n": n}).encode()) for n in range(12)))
    await p.invoke("failing", b'{"n": 99}')
    records = await p.streams.read("audit", 0, 0, 100)
    assert [r.sequence for r in records] == list(range(1, 13))
    assert sorted(json.loads(bytes(r.data))["n"] for r in records) == list(range(12))


async def test_an_item_changed_since_the_function_read_it_fails_the_attempt_not_the_data(
    platform, tmp_path, eventually
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "notes.txt"
    p = await platform(APP.format(out=str(out)))
    await p.tables.put("counters", {"id": "c", "value": 0})
    await p.invoke_async("bump", b"null")
    await eventually(lambda: _bumped(out))
    await p.tables.put("counters", {"id": "c", "value": 10})  # lands while bump sleeps
    await p.wait_idle()
    item = await p.tables.get_item("counters", {"id": "c"})
    assert item is not None and item["value"] == 11  # 10 + 1: no lost update
    assert [(n["attempt"], n["value"]) for n in notes(out, "bump")] == [(1, 0), (2, 10)]
    [record] = await p.list_invocations(function="bump")
    assert record.status == "succeeded" and record.attempt == 2


async def _bumped(out: Path) -> bool:
    return bool(notes(out, "bump"))


INIT_APP = """
import squall

app = squall.App("init-effects")
app.table("seen", partition_key="id")

def seed(ctx):
    ctx.tables["seen"].put({"id": "init"})  # not part of the first invocation

@app.function(init=seed, permissions=["table:seen"], retries=0)
def first(event, ctx):
    ctx.tables["seen"].put({"id": "handler"})
    raise RuntimeError("the first invocation fails")
"""


async def test_calls_from_the_init_hook_take_effect_at_once(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(INIT_APP)
    record = await p.invoke("first", b"null")
    assert record.error is not None and record.cold
    assert await p.tables.get_item("seen", {"id": "init"}) is not None
    assert await p.tables.get_item("seen", {"id": "handler"}) is None
