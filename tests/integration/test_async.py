"""Async invocations: queueing, retries, dead letters, destinations, redrive and purge."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import pytest

APP = """
import os
import time

import squall

app = squall.App("async")


def note(event, ctx):
    with open(event["path"], "a") as f:
        f.write(f"{{ctx.invocation_id}} {{ctx.attempt}} {{ctx.trigger}}\\n")


@app.function()
def work(event, ctx):
    note(event, ctx)
    time.sleep(event.get("sleep", 0))
    return {{"done": event.get("n")}}


@app.function(retries=2)
def always_fails(event, ctx):
    note(event, ctx)
    raise RuntimeError(f"attempt {{ctx.attempt}} failed")


@app.function(retries=1)
def crashes(event, ctx):
    note(event, ctx)
    os._exit(7)


@app.function(retries=0)
def fails_once(event, ctx):
    note(event, ctx)
    raise RuntimeError("no retries for me")


@app.function(retries=1, dead_letter=False)
def no_dlq(event, ctx):
    note(event, ctx)
    raise RuntimeError("dropped")


@app.function(retries=2, max_event_age_s=60)
def short_lived_event(event, ctx):
    note(event, ctx)
    raise RuntimeError("too slow to retry")


@app.function(retries=0)
def toggle(event, ctx):
    note(event, ctx)
    if os.path.exists({flag!r}):
        raise RuntimeError("flag is set")
    return {{"ok": event.get("n")}}


@app.function(retries=0, on_success="sink", on_failure="sink")
def source(event, ctx):
    if event.get("fail"):
        raise ValueError("source failed")
    return {{"doubled": event["x"] * 2}}


@app.function()
def sink(event, ctx):
    return event
"""


@pytest.fixture
def flag(tmp_path: Path) -> Path:
    return tmp_path / "flag"


@pytest.fixture
def app_path(make_app, tmp_path: Path, flag: Path) -> Path:
    return make_app(tmp_path, APP.format(flag=str(flag)))


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    return tmp_path / "notes.txt"


def payload(notes: Path, **extra: object) -> bytes:
    return msgspec.json.encode({"path": str(notes), **extra})


def read_notes(notes: Path) -> list[tuple[str, int, str]]:
    if not notes.exists():
        return []
    rows = [line.split() for line in notes.read_text().splitlines()]
    return [(row[0], int(row[1]), row[2]) for row in rows]


async def test_async_returns_queued_at_once_then_completes(platform, app_path, notes) -> None:
    p = await platform(app_path)
    started = time.monotonic()
    queued = await p.invoke_async("work", payload(notes, sleep=0.3, n=1))
    assert time.monotonic() - started < 0.25
    assert queued.status == "queued"
    assert queued.trigger == "async"
    seen = (await p.get_invocation(queued.id)).status
    assert seen in ("queued", "running")
    deadline = time.monotonic() + 10
    while (record := await p.get_invocation(queued.id)).status != "succeeded":
        assert record.status in ("queued", "running"), record
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert msgspec.json.decode(record.result) == {"done": 1}
    assert record.attempt == 1
    assert record.error is None
    assert read_notes(notes) == [(queued.id, 1, "async")]
    await p.wait_idle(timeout=5)
    assert await p.queue_depth() == 0


async def test_many_async_all_complete(platform, app_path, notes) -> None:
    p = await platform(app_path)
    ids = [(await p.invoke_async("work", payload(notes, n=i))).id for i in range(30)]
    await p.wait_idle(timeout=20)
    records = [await p.get_invocation(i) for i in ids]
    assert [msgspec.json.decode(r.result) for r in records] == [{"done": i} for i in range(30)]
    assert sorted(row[0] for row in read_notes(notes)) == sorted(ids)


async def test_retried_then_dead_lettered(platform, app_path, notes) -> None:
    p = await platform(app_path)
    body = payload(notes, order=42)
    queued = await p.invoke_async("always-fails", body)
    await p.wait_idle(timeout=10)
    assert read_notes(notes) == [
        (queued.id, 1, "async"),
        (queued.id, 2, "async"),
        (queued.id, 3, "async"),
    ]
    record = await p.get_invocation(queued.id)
    assert record.status == "dead_lettered"
    assert record.attempt == 3
    assert record.error is not None
    assert record.error["type"] == "FunctionError"
    assert record.error["message"] == "RuntimeError: attempt 3 failed"
    [letter] = await p.list_dead_letters()
    assert letter.function == "always-fails"
    assert letter.invocation_id == queued.id
    assert letter.attempts == 3
    assert letter.payload == body
    assert letter.error["condition"] == "RetriesExhausted"
    assert letter.error["type"] == "FunctionError"
    assert letter.error["error_type"] == "RuntimeError"
    assert letter.public()["payload"] == {"path": str(notes), "order": 42}


async def test_crashes_are_retried_too(platform, app_path, notes) -> None:
    p = await platform(app_path)
    queued = await p.invoke_async("crashes", payload(notes))
    await p.wait_idle(timeout=10)
    assert [row[1] for row in read_notes(notes)] == [1, 2]
    record = await p.get_invocation(queued.id)
    assert record.status == "dead_lettered"
    assert record.error is not None
    assert record.error["type"] == "SandboxCrashed"
    assert "exited with code 7" in str(record.error["message"])
    [letter] = await p.list_dead_letters(function="crashes")
    assert letter.attempts == 2


async def test_retries_zero(platform, app_path, notes) -> None:
    p = await platform(app_path)
    queued = await p.invoke_async("fails-once", payload(notes))
    await p.wait_idle(timeout=10)
    assert [row[1] for row in read_notes(notes)] == [1]
    record = await p.get_invocation(queued.id)
    assert record.status == "dead_lettered"
    assert record.attempt == 1
    [letter] = await p.list_dead_letters()
    assert letter.attempts == 1
    assert letter.error["condition"] == "RetriesExhausted"


async def test_dead_letter_disabled(platform, app_path, notes) -> None:
    p = await platform(app_path)
    queued = await p.invoke_async("no-dlq", payload(notes))
    await p.wait_idle(timeout=10)
    assert [row[1] for row in read_notes(notes)] == [1, 2]
    record = await p.get_invocation(queued.id)
    assert record.status == "failed"
    assert record.attempt == 2
    assert record.error is not None
    assert record.error["message"] == "RuntimeError: dropped"
    assert await p.list_dead_letters() == []
    assert await p.queue_depth() == 0


async def test_event_age_exceeded(platform, app_path, notes) -> None:
    # With a 200 s retry base the first retry would come due 100-200 s after the event was
    # queued: past max_event_age_s=60, so the platform gives up after one attempt.
    p = await platform(app_path, retry_base_s=200.0)
    queued = await p.invoke_async("short-lived-event", payload(notes))
    await p.wait_idle(timeout=10)
    assert [row[1] for row in read_notes(notes)] == [1]
    record = await p.get_invocation(queued.id)
    assert record.status == "dead_lettered"
    assert record.attempt == 1
    [letter] = await p.list_dead_letters()
    assert letter.error["condition"] == "EventAgeExceeded"
    assert letter.attempts == 1


async def test_success_destination(platform, app_path) -> None:
    p = await platform(app_path)
    queued = await p.invoke_async("source", b'{"x": 21}')
    await p.wait_idle(timeout=10)
    assert (await p.get_invocation(queued.id)).status == "succeeded"
    [delivered] = await p.list_invocations(function="sink")
    assert delivered.trigger == "destination"
    assert delivered.status == "succeeded"
    event = msgspec.json.decode(delivered.result)
    assert event["version"] == "1.0"
    assert event["requestContext"] == {
        "requestId": queued.id,
        "functionName": "source",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert event["requestPayload"] == {"x": 21}
    assert event["responsePayload"] == {"doubled": 42}
    assert event["responseContext"] == {"statusCode": 200, "functionError": None}
    assert isinstance(event["timestamp"], str)


async def test_failure_destination(platform, app_path) -> None:
    p = await platform(app_path)
    queued = await p.invoke_async("source", b'{"x": 1, "fail": true}')
    await p.wait_idle(timeout=10)
    assert (await p.get_invocation(queued.id)).status == "dead_lettered"
    [delivered] = await p.list_invocations(function="sink")
    event = msgspec.json.decode(delivered.result)
    assert event["requestContext"]["condition"] == "RetriesExhausted"
    assert event["requestContext"]["requestId"] == queued.id
    assert event["requestContext"]["approximateInvokeCount"] == 1
    assert event["requestPayload"] == {"x": 1, "fail": True}
    assert event["responseContext"]["functionError"] == "FunctionError"
    assert event["responsePayload"]["type"] == "FunctionError"
    assert event["responsePayload"]["message"] == "ValueError: source failed"


async def test_sync_invocations_have_no_destinations(platform, app_path) -> None:
    p = await platform(app_path)
    record = await p.invoke("source", b'{"x": 2}')
    assert msgspec.json.decode(record.result) == {"doubled": 4}
    await p.wait_idle(timeout=5)
    assert await p.list_invocations(function="sink") == []


async def test_redrive_succeeds_once_handler_works(platform, app_path, notes, flag) -> None:
    p = await platform(app_path)
    flag.touch()
    queued = await p.invoke_async("toggle", payload(notes, n=9))
    await p.wait_idle(timeout=10)
    assert (await p.get_invocation(queued.id)).status == "dead_lettered"
    assert len(await p.list_dead_letters(function="toggle")) == 1

    flag.unlink()
    assert await p.redrive(function="toggle") == [queued.id]
    await p.wait_idle(timeout=10)
    record = await p.get_invocation(queued.id)
    assert record.status == "succeeded"
    assert record.trigger == "redrive"
    assert msgspec.json.decode(record.result) == {"ok": 9}
    assert await p.list_dead_letters() == []
    assert read_notes(notes) == [(queued.id, 1, "async"), (queued.id, 1, "redrive")]
    assert await p.redrive(function="toggle") == []


async def test_redrive_by_id_and_failing_again(platform, app_path, notes, flag) -> None:
    p = await platform(app_path)
    flag.touch()
    first = await p.invoke_async("toggle", payload(notes, n=1))
    second = await p.invoke_async("toggle", payload(notes, n=2))
    await p.wait_idle(timeout=10)
    letters = {letter.invocation_id: letter for letter in await p.list_dead_letters()}
    assert set(letters) == {first.id, second.id}
    assert await p.redrive(ids=[letters[second.id].id]) == [second.id]
    await p.wait_idle(timeout=10)
    # still failing: back in the dead letters, and the other letter was not touched
    again = await p.list_dead_letters()
    assert sorted(letter.invocation_id for letter in again) == sorted([first.id, second.id])
    assert (await p.get_invocation(second.id)).status == "dead_lettered"


async def test_purge(platform, app_path, notes) -> None:
    p = await platform(app_path)
    for _ in range(3):
        await p.invoke_async("fails-once", payload(notes))
    await p.invoke_async("always-fails", payload(notes))
    await p.wait_idle(timeout=10)
    assert len(await p.list_dead_letters()) == 4
    assert await p.purge_dead_letters(function="fails-once") == 3
    remaining = await p.list_dead_letters()
    assert [letter.function for letter in remaining] == ["always-fails"]
    assert await p.purge_dead_letters() == 1
    assert await p.list_dead_letters() == []
    assert await p.purge_dead_letters() == 0


async def test_list_dead_letters_filters_by_function(platform, app_path, notes) -> None:
    p = await platform(app_path)
    a = await p.invoke_async("fails-once", payload(notes))
    b = await p.invoke_async("always-fails", payload(notes))
    await p.wait_idle(timeout=10)
    assert [x.invocation_id for x in await p.list_dead_letters(function="fails-once")] == [a.id]
    assert [x.invocation_id for x in await p.list_dead_letters(function="always-fails")] == [b.id]
    assert await p.list_dead_letters(function="work") == []
    assert len(await p.list_dead_letters(limit=1)) == 1


async def test_stop_right_after_a_wake_does_not_hang(platform, app_path) -> None:
    """Stopping the platform in the loop turn that woke the dispatcher must still stop it.

    ``redrive()`` (like ``invoke_async()``) wakes the dispatcher; a shutdown that lands in the
    same loop turn (Ctrl-C right after a request) must not be swallowed.
    """
    p = await platform(app_path)
    await asyncio.sleep(0.05)  # the dispatcher is idle, waiting for a wake-up
    assert await p.redrive() == []  # nothing to redrive, but it wakes the dispatcher
    stopping = asyncio.ensure_future(p.stop())
    done, _ = await asyncio.wait([stopping], timeout=5)
    hung = not done
    if hung:
        for _ in range(100):  # clean up so the leak does not spill into other tests
            for task in p._tasks:
                task.cancel()
            done, _ = await asyncio.wait([stopping], timeout=0.05)
            if done:
                break
    assert not hung, "Platform.stop() hung: the dispatcher swallowed its cancellation"
    stopping.result()
