"""Queues: sending from functions, queue triggers (batches, partial failure, FIFO order,
visibility after a crash), dead letters and redrive, receivers with long polling, dedup."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import msgspec
import pytest

from squall.errors import InvalidInput, NotFound, PayloadTooLarge
from squall.model.invocation import InvocationRecord

APP = """
import json, os, time
import squall

app = squall.App("queues")
OUT = {out!r}

app.queue_resource("jobs-dlq")
app.queue_resource("jobs", visibility_timeout_s=1, max_receive=2, dead_letter="jobs-dlq")
app.queue_resource("orders.fifo", fifo=True, visibility_timeout_s=5)
app.queue_resource("ext", visibility_timeout_s=1)
app.queue_resource("ext.fifo", fifo=True, content_based_dedup=True)


def note(*row):
    with open(OUT, "a") as f:
        f.write(json.dumps(row) + "\\n")


@app.queue("jobs", batch_size=10, batch_window_s=0.2)
def work(messages, ctx):
    failed = []
    for m in messages:
        body = m["body"]
        note("jobs", body, m["receive_count"], len(messages))
        if body.get("crash") and m["receive_count"] == 1:
            os._exit(3)
        if body.get("fail"):
            failed.append(m["id"])
    return {{"failed": failed}}


@app.queue("orders.fifo", batch_size=2, max_concurrency=4)
def orders(messages, ctx):
    for m in messages:
        note("fifo", m["group_id"], m["body"], time.time())
        time.sleep(0.05)


@app.function(permissions=["send:jobs", "send:orders.fifo"])
def producer(event, ctx):
    return ctx.send(event["queue"], event["body"], group_id=event.get("group"))


@app.function(permissions=["send:jobs"])
def sneaky(event, ctx):
    try:
        ctx.send("ext", {{"x": 1}})
    except squall.AccessDenied as exc:
        return exc.details
    return None
"""


def rows(out: Path, kind: str) -> list[list[object]]:
    if not out.exists():
        return []
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    return [row[1:] for row in lines if row[0] == kind]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out.jsonl"


async def test_a_trigger_gets_batches_and_retries_only_the_failed(  # type: ignore[no-untyped-def]
    platform, out, eventually
) -> None:
    p = await platform(APP.format(out=str(out)))
    for n in range(5):
        await p.queues.send("jobs", msgspec.json.encode({"n": n, "fail": n == 3}))
    # The batch window gathers all five into one batch; only n=3 comes back, once more,
    # then moves to the dead-letter queue after max_receive=2 receives.
    await eventually(lambda: _dlq_has(p, 1), timeout=15)
    seen = rows(out, "jobs")
    assert sorted(r[0]["n"] for r in seen if r[1] == 1) == [0, 1, 2, 3, 4]
    assert [r[0]["n"] for r in seen if r[1] == 2] == [3]
    assert seen[0][2] == 5  # one batch of five
    stats = await p.queues.stats("jobs")
    assert (stats.visible, stats.in_flight, stats.delayed) == (0, 0, 0)

    moved = await p.queues.redrive("jobs-dlq")
    assert moved == {"jobs": 1}
    await eventually(lambda: _count(out, "jobs", lambda r: r[0].get("n") == 3, 4), timeout=15)
    await eventually(lambda: _dlq_has(p, 1), timeout=15)


async def _dlq_has(p, n: int) -> bool:  # type: ignore[no-untyped-def]
    stats = await p.queues.stats("jobs-dlq")
    return bool(stats.visible == n)


async def _count(out: Path, kind: str, match, n: int = 1) -> bool:  # type: ignore[no-untyped-def]
    """At least ``n`` rows of ``kind`` match."""
    return len([r for r in rows(out, kind) if match(r)]) >= n


async def test_a_message_whose_sandbox_died_reappears_after_its_visibility_timeout(  # type: ignore[no-untyped-def]
    platform, out, eventually
) -> None:
    p = await platform(APP.format(out=str(out)))
    started = time.monotonic()
    await p.queues.send("jobs", msgspec.json.encode({"crash": True}))
    await eventually(
        lambda: _count(out, "jobs", lambda r: r[0] == {"crash": True} and r[1] == 2), timeout=15
    )
    assert time.monotonic() - started >= 1.0  # invisible for the whole visibility timeout

    async def both_recorded() -> list[InvocationRecord] | None:
        # The handler's row is written before its invocation's record commits.
        records = await p.list_invocations(function="work")
        return records if {r.status for r in records} >= {"failed", "succeeded"} else None

    records = await eventually(both_recorded, timeout=15)
    failed = [r for r in records if r.status == "failed"]
    assert failed[0].error is not None and failed[0].error["type"] == "SandboxCrashed"


async def test_fifo_keeps_order_within_groups_and_runs_groups_in_parallel(  # type: ignore[no-untyped-def]
    platform, out, eventually
) -> None:
    p = await platform(APP.format(out=str(out)))
    groups = ["a", "b", "c", "d"]
    for n in range(8):
        for group in groups:
            await p.queues.send(
                "orders.fifo", msgspec.json.encode(n), group_id=group, dedup_id=f"{group}-{n}"
            )
    await eventually(lambda: _count(out, "fifo", lambda r: True, 32), timeout=30)
    seen = rows(out, "fifo")
    for group in groups:
        assert [r[1] for r in seen if r[0] == group] == list(range(8))
    # Groups ran side by side: their time spans overlap.
    spans = {g: (min(r[2] for r in seen if r[0] == g), max(r[2] for r in seen if r[0] == g))
             for g in groups}
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values())


async def test_send_from_a_function_needs_the_permission(  # type: ignore[no-untyped-def]
    platform, out, eventually
) -> None:
    p = await platform(APP.format(out=str(out)))
    record = await p.invoke("producer", b'{"queue": "jobs", "body": {"n": 42}}')
    assert record.status == "succeeded", record.error
    await eventually(lambda: _count(out, "jobs", lambda r: r[0] == {"n": 42}), timeout=10)

    record = await p.invoke("producer", b'{"queue": "orders.fifo", "body": 1}')
    assert record.error is not None and "needs a group_id" in str(record.error["message"])

    record = await p.invoke("sneaky", b"null")
    assert msgspec.json.decode(record.result or b"") == {
        "function": "sneaky", "action": "send", "resource": "ext"
    }


async def test_long_polling_returns_as_soon_as_a_message_arrives(  # type: ignore[no-untyped-def]
    platform, out
) -> None:
    p = await platform(APP.format(out=str(out)))

    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await p.queues.send("ext", b'"hello"', attributes={"kind": "greeting"})

    started = time.monotonic()
    task = asyncio.create_task(send_later())
    [message] = await p.queues.receive("ext", wait_s=10, max_messages=10)
    waited = time.monotonic() - started
    await task
    assert 0.25 < waited < 2.0
    assert message.public()["body"] == "hello" and message.attributes == {"kind": "greeting"}
    assert message.receive_count == 1 and message.receipt

    # In flight: invisible to the next receive; visible again after the timeout (1 s).
    assert await p.queues.receive("ext") == []
    stats = await p.queues.stats("ext")
    assert stats.in_flight == 1 and stats.oldest_sent_at is not None
    [again] = await p.queues.receive("ext", wait_s=3)
    assert again.id == message.id and again.receive_count == 2
    with pytest.raises(NotFound):  # the first receipt is stale now
        await p.queues.delete_message("ext", message.receipt or "")
    await p.queues.change_visibility("ext", again.receipt or "", 0)
    [third] = await p.queues.receive("ext")
    await p.queues.delete_message("ext", third.receipt or "")
    assert await p.queues.receive("ext", wait_s=0.2) == []


async def test_fifo_dedup_drops_a_repeat_within_the_window(  # type: ignore[no-untyped-def]
    platform, out
) -> None:
    p = await platform(APP.format(out=str(out)))
    first = await p.queues.send("ext.fifo", b'{"a": 1}', group_id="g")
    repeat = await p.queues.send("ext.fifo", b'{"a": 1}', group_id="g")  # same content
    other = await p.queues.send("ext.fifo", b'{"a": 2}', group_id="g", dedup_id="x")
    again = await p.queues.send("ext.fifo", b'{"a": 3}', group_id="g", dedup_id="x")
    assert not first.duplicate and repeat.duplicate and repeat.id == first.id
    assert not other.duplicate and again.duplicate
    messages = await p.queues.receive("ext.fifo", max_messages=10)
    assert [m.public()["body"] for m in messages] == [{"a": 1}, {"a": 2}]


async def test_bad_sends_and_receives_name_the_field(  # type: ignore[no-untyped-def]
    platform, out
) -> None:
    p = await platform(APP.format(out=str(out)))
    with pytest.raises(PayloadTooLarge) as big:
        await p.queues.send("ext", b'"' + b"x" * 262144 + b'"')
    assert "262146 bytes" in big.value.message and "262144" in big.value.message
    with pytest.raises(NotFound):
        await p.queues.send("nope", b"1")
    cases = [
        ({"delay_s": 901}, "delay_s"),
        ({"delay_s": -1}, "delay_s"),
        ({"group_id": "g"}, "group_id"),
    ]
    for kwargs, field in cases:
        with pytest.raises(InvalidInput) as bad:
            await p.queues.send("ext", b"1", **kwargs)  # type: ignore[arg-type]
        assert bad.value.field == field
    with pytest.raises(InvalidInput) as bad:
        await p.queues.send("ext.fifo", b"1")
    assert bad.value.field == "group_id"
    for kwargs, field in [({"wait_s": 21}, "wait_s"), ({"max_messages": 11}, "max_messages")]:
        with pytest.raises(InvalidInput) as bad:
            await p.queues.receive("ext", **kwargs)  # type: ignore[arg-type]
        assert bad.value.field == field
    assert (await p.queues.stats("ext")).visible == 0


async def test_queues_made_at_run_time_and_their_messages_survive_a_restart(  # type: ignore[no-untyped-def]
    platform, out
) -> None:
    from squall.model.queues import QueueConfig

    source = APP.format(out=str(out))
    p = await platform(source)
    with pytest.raises(InvalidInput) as bad:  # its dead-letter queue must exist first
        await p.queues.create(QueueConfig(name="made", max_receive=2, dead_letter="later"))
    assert bad.value.field == "dead_letter"
    await p.queues.create(QueueConfig(name="made", visibility_timeout_s=7))
    sent = await p.queues.send("made", b'{"kept": true}')
    await p.stop()

    p = await platform(source)
    queue = p.queues.get("made")
    assert (queue.origin, queue.visibility_timeout_s) == ("api", 7)
    [message] = await p.queues.receive("made")
    assert message.id == sent.id and message.public()["body"] == {"kept": True}
    await p.queues.delete("made")
    with pytest.raises(NotFound):
        p.queues.get("made")


async def test_the_sweep_drops_messages_past_their_retention(  # type: ignore[no-untyped-def]
    platform, out
) -> None:
    p = await platform(APP.format(out=str(out)))
    old = p.queues.message("ext", b'"old"', None, 0, None, None)
    old.sent_at -= p.queues.get("ext").retention_s + 1
    await p._store.send_messages([old], 300)
    await p.queues.send("ext", b'"new"')
    await p.queues.sweep()
    [kept] = await p.queues.receive("ext", max_messages=10)
    assert kept.public()["body"] == "new"
