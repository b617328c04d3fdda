"""Schedules on a real platform: ticks fire as async invocations, once each, across restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from squall.engine.schedules.expressions import SECONDS_ENV
from squall.errors import ConfigError

APP = """
import json, os
import squall

app = squall.App("clock")

def note(path, event, ctx):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        line = {{"id": ctx.invocation_id, "trigger": ctx.trigger, "event": event}}
        os.write(fd, (json.dumps(line) + "\\n").encode())
    finally:
        os.close(fd)

@app.schedule("rate(1 second)", payload={{"job": "sweep"}}, missed={missed!r})
def sweep(event, ctx):
    note({out!r}, event, ctx)

@app.schedule("cron(0 9 ? * MON-FRI *)", tz="Europe/Paris", name="weekday-report")
@app.schedule("at(2098-12-01T09:00:00)", tz="Europe/Paris", name="once")
def report(event, ctx):
    note({out!r}, event, ctx)
"""


@pytest.fixture(autouse=True)
def second_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECONDS_ENV, "1")


def ran(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_a_rate_schedule_fires_with_its_event(platform, tmp_path, eventually) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ran.txt"
    p = await platform(APP.format(out=str(out), missed="skip"))

    async def three() -> bool:
        return len(ran(out)) >= 3

    await eventually(three, timeout=15)
    lines = ran(out)
    events = [line["event"] for line in lines]
    assert {line["trigger"] for line in lines} == {"schedule"}
    assert all(e["schedule"] == "sweep" and e["detail"] == {"job": "sweep"} for e in events)
    assert all(e["detail-type"] == "Scheduled Event" for e in events)
    assert [line["id"] for line in lines] == [e["id"] for e in events]
    times = [e["time"] for e in events]
    assert times == sorted(set(times))  # one tick per scheduled time, in order
    listed = {s["name"]: s for s in p.scheduler.describe(2)}
    assert set(listed) == {"sweep", "weekday-report", "once"}
    assert listed["sweep"]["fired"] >= 3 and listed["sweep"]["last_fire"] is not None
    assert listed["weekday-report"]["tz"] == "Europe/Paris"
    weekdays = listed["weekday-report"]["next_fires"]
    assert len(weekdays) == 2
    assert all(t.endswith(("T07:00:00Z", "T08:00:00Z")) for t in weekdays)  # 09:00 in Paris
    assert listed["once"]["next_fires"] == ["2098-12-01T08:00:00Z"]
    record = await p.get_invocation(lines[0]["id"])
    assert record.trigger == "schedule" and record.function == "sweep"


async def test_a_restart_neither_repeats_nor_replays_ticks(platform, tmp_path, eventually) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ran.txt"
    source = APP.format(out=str(out), missed="skip")
    first = await platform(source)

    async def two() -> bool:
        return len(ran(out)) >= 2

    await eventually(two, timeout=15)
    await first.stop()
    stopped_with = {line["event"]["time"] for line in ran(out)}
    last_before = max(stopped_with)
    await asyncio.sleep(2.5)  # ticks come due while nothing runs: skipped at the next start
    second = await platform(source)
    start_state = {s["name"]: s for s in second.scheduler.describe(1)}["sweep"]

    async def more() -> bool:
        return len(ran(out)) >= len(stopped_with) + 2

    await eventually(more, timeout=15)
    times = [line["event"]["time"] for line in ran(out)]
    assert len(times) == len(set(times)), "a tick fired twice"
    after = sorted(t for t in times if t > last_before)
    assert after[0] >= start_state["next_fires"][0]  # nothing from the downtime
    assert not any(line["event"].get("missed") for line in ran(out))


async def test_fire_once_catches_up_with_one_tick(platform, tmp_path, eventually) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ran.txt"
    source = APP.format(out=str(out), missed="fire_once")
    first = await platform(source)

    async def one() -> bool:
        return len(ran(out)) >= 1

    await eventually(one, timeout=15)
    await first.stop()
    await asyncio.sleep(3.5)  # three ticks or so are missed
    await platform(source)

    async def caught_up() -> bool:
        return any(line["event"].get("missed") for line in ran(out))

    await eventually(caught_up, timeout=15)
    await asyncio.sleep(0.5)
    missed = [line for line in ran(out) if line["event"].get("missed")]
    assert len(missed) == 1  # once, however many were missed
    times = [line["event"]["time"] for line in ran(out)]
    assert len(times) == len(set(times))


@pytest.mark.parametrize(
    ("decorator", "field", "says"),
    [
        ('@app.schedule("rate(1 minutes)")', "expression", "singular"),
        ('@app.schedule("rate(0 minutes)")', "expression", "positive"),
        ('@app.schedule("rate(5 fortnights)")', "expression", "unknown"),
        ('@app.schedule("cron(0 9 * * MON *)")', "expression", "exactly one of"),
        ('@app.schedule("rate(5 minutes)", tz="Mars/Olympus")', "tz", "IANA"),
        ('@app.schedule("rate(5 minutes)", missed="always")', "missed", "fire_once"),
        ('@app.schedule("rate(5 minutes)", jitter_s=-1)', "jitter_s", "out of range"),
    ],
)
async def test_invalid_schedules_stop_the_app(  # type: ignore[no-untyped-def]
    platform, decorator: str, field: str, says: str
) -> None:
    source = f"""
import squall
app = squall.App("bad")

{decorator}
def tick(event, ctx):
    pass
"""
    with pytest.raises(ConfigError) as info:
        await platform(source)
    assert info.value.field == field
    assert says in info.value.message
    assert "'tick'" in info.value.message


DELAYED = """
import json, os, time
from datetime import datetime, timedelta, timezone
import squall

app = squall.App("later")

def note(kind, **fields):
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({{"kind": kind, "at": time.time(), **fields}}) + "\\n").encode())
    finally:
        os.close(fd)

@app.function(permissions=["publish:default", "invoke:later"])
def plan(event, ctx):
    delay = timedelta(seconds=event["delay"])
    return {{
        "event": ctx.publish_at(delay, "reminder.due", {{"n": event["n"]}}, subject="s-1"),
        "invocation": ctx.invoke("later", {{"n": event["n"]}}, async_=True, at=delay),
        "at": time.time(),
    }}

@app.function()
def sneaky(event, ctx):
    return ctx.publish_at(time.time() + 1, "reminder.due", {{}})

@app.function(permissions=["publish:default"])
def naive(event, ctx):
    return ctx.publish_at(datetime(2030, 1, 1), "reminder.due", {{}})

@app.function(permissions=["publish:*"])
def nowhere(event, ctx):
    return ctx.publish_at(time.time() + 60, "reminder.due", {{}}, bus="nowhere")

@app.function(permissions=["publish:default"])
def far(event, ctx):
    return ctx.publish_at(timedelta(days=400), "reminder.due", {{}})

@app.on("reminder.due")
def remind(event, ctx):
    note("event", id=event["id"], data=event["data"], subject=event.get("subject"))

@app.function()
def later(event, ctx):
    note("invoke", id=ctx.invocation_id, data=event)
"""


def notes(out: Path, kind: str) -> list[dict[str, Any]]:
    return [line for line in ran(out) if line["kind"] == kind]


async def test_publish_at_and_delayed_invoke_wait_for_their_time(  # type: ignore[no-untyped-def]
    platform, tmp_path, eventually
) -> None:
    out = tmp_path / "ran.txt"
    p = await platform(DELAYED.format(out=str(out)))
    record = await p.invoke("plan", b'{"n": 1, "delay": 1.5}')
    assert record.error is None, record.error
    planned = json.loads(record.result or b"")

    async def both() -> bool:
        return bool(notes(out, "event")) and bool(notes(out, "invoke"))

    await eventually(both, timeout=15)
    [event] = notes(out, "event")
    [invoked] = notes(out, "invoke")
    assert event["id"] == planned["event"] and event["data"] == {"n": 1}
    assert event["subject"] == "s-1"
    assert invoked["id"] == planned["invocation"] and invoked["data"] == {"n": 1}
    assert event["at"] - planned["at"] >= 1.4
    assert invoked["at"] - planned["at"] >= 1.4


async def test_publish_at_survives_a_restart(platform, tmp_path, eventually) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "ran.txt"
    source = DELAYED.format(out=str(out))
    first = await platform(source)
    record = await first.invoke("plan", b'{"n": 7, "delay": 2.5}')
    planned = json.loads(record.result or b"")
    await first.stop()
    assert notes(out, "event") == []
    await platform(source)

    async def published() -> list[dict[str, Any]]:
        return notes(out, "event")

    [event] = await eventually(published, timeout=15)
    assert event["id"] == planned["event"] and event["at"] - planned["at"] >= 2.4
    await asyncio.sleep(0.5)
    assert len(notes(out, "event")) == 1


async def test_publish_at_needs_permission_and_an_aware_time(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(DELAYED.format(out="/dev/null"))
    denied = await p.invoke("sneaky", b"null")
    assert denied.error is not None  # the handler did not catch the AccessDenied it got
    assert str(denied.error["message"]).startswith("AccessDenied: function 'sneaky' may not")
    assert "publish:default" in str(denied.error["message"])
    naive = await p.invoke("naive", b"null")
    assert naive.error is not None and "time zone" in str(naive.error["message"])
    nowhere = await p.invoke("nowhere", b"null")  # refused at once, not when due
    assert nowhere.error is not None and "bus 'nowhere' does not exist" in nowhere.error["message"]
    far = await p.invoke("far", b"null")
    assert far.error is not None and "within 366 days" in str(far.error["message"])
    assert await p.queue_depth() == 0


async def test_schedules_made_at_run_time_fire_and_outlive_a_restart(  # type: ignore[no-untyped-def]
    platform, tmp_path, eventually
) -> None:
    from squall.errors import Conflict, InvalidInput, NotFound
    from squall.model.schedules import parse_schedule

    out = tmp_path / "ran.txt"
    source = APP.format(out=str(out), missed="skip")
    first = await platform(source)
    made = parse_schedule(
        {"name": "made", "function": "report", "expression": "rate(1 second)", "payload": [1]}
    )
    assert await first.scheduler.put(made, create=True) is True

    async def made_ran() -> list[dict[str, Any]]:
        return [line for line in ran(out) if line["event"]["schedule"] == "made"]

    [tick, *_] = await eventually(made_ran, timeout=15)
    assert tick["event"]["detail"] == [1]
    with pytest.raises(Conflict):
        await first.scheduler.put(made, create=True)
    with pytest.raises(Conflict):  # the app's own are read-only
        await first.scheduler.put(parse_schedule({**_body(made), "name": "sweep"}))
    with pytest.raises(InvalidInput) as info:
        await first.scheduler.put(parse_schedule({**_body(made), "function": "ghost"}))
    assert info.value.field == "function"
    await first.stop()

    second = await platform(source)
    assert second.scheduler.get("made")["origin"] == "api"
    seen = len(await made_ran())
    await eventually(lambda: _more(made_ran, seen), timeout=15)
    off = parse_schedule({**_body(made), "enabled": False})
    await second.scheduler.put(off)
    await asyncio.sleep(0.3)  # a tick already queued may still run
    stopped = len(await made_ran())
    await asyncio.sleep(1.5)
    assert len(await made_ran()) == stopped
    await second.scheduler.delete("made")
    with pytest.raises(NotFound):
        second.scheduler.get("made")


def _body(config: Any) -> dict[str, Any]:
    import msgspec

    body = msgspec.structs.asdict(config)
    body.pop("origin")
    return body


async def _more(check: Any, count: int) -> bool:
    return len(await check()) > count
