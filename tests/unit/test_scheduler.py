"""The scheduler on a real store with its clock in the test's hands: ticks, restarts, guards."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from squall.engine.schedules.expressions import isoformat, jitter
from squall.engine.schedules.scheduler import Scheduler, tick_id
from squall.errors import Conflict
from squall.model.schedules import ScheduleConfig
from squall.storage.protocols import AdvanceSchedule
from squall.storage.sqlite.store import SqliteStore

T0 = datetime.fromisoformat("2026-03-28T23:59:30+00:00").timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def schedule(expression: str, **options: object) -> ScheduleConfig:
    return ScheduleConfig(name="tick", function="work", expression=expression, **options)  # type: ignore[arg-type]


async def queued(store: SqliteStore) -> list[dict[str, object]]:
    deliveries = await store.lease("fn:work", 1000, 60)
    return [msgspec.json.decode(d.payload) for d in deliveries]


async def start(store: SqliteStore, config: ScheduleConfig, clock: Clock) -> Scheduler:
    woken: list[str] = []
    scheduler = Scheduler(store, [config], "v1", woken.append, clock)
    await scheduler.load()
    return scheduler


async def test_each_due_tick_fires_once_in_order(store: SqliteStore) -> None:
    clock = Clock(T0)
    scheduler = await start(store, schedule("rate(1 minute)", payload={"k": 1}), clock)
    assert await scheduler.fire_due(T0 + 59) == 0
    clock.now = T0 + 185  # three ticks due: fired one after the other, none skipped
    assert await scheduler.fire_due(clock.now) == 3
    assert await scheduler.fire_due(clock.now) == 0
    events = await queued(store)
    assert [e["time"] for e in events] == [isoformat(T0 + 60 * k) for k in (1, 2, 3)]
    assert events[0]["detail"] == {"k": 1} and events[0]["schedule"] == "tick"
    assert events[0]["id"] == tick_id("tick", T0 + 60)
    [state] = await store.list_schedule_states()
    assert state.next_at == T0 + 240 and state.last_at == T0 + 180 and state.fired == 3


async def test_restart_skips_missed_ticks_by_default(store: SqliteStore) -> None:
    clock = Clock(T0)
    first = await start(store, schedule("rate(1 minute)"), clock)
    await first.fire_due(T0 + 60)
    clock.now = T0 + 600  # down for nine minutes
    second = await start(store, schedule("rate(1 minute)"), clock)
    assert await second.fire_due(clock.now) == 0
    [state] = await store.list_schedule_states()
    assert state.next_at == T0 + 660  # still on the anchor's grid
    assert state.fired == 1
    assert len(await queued(store)) == 1


async def test_fire_once_fires_the_latest_missed_tick(store: SqliteStore) -> None:
    config = schedule("rate(1 minute)", missed="fire_once")
    clock = Clock(T0)
    await start(store, config, clock)
    clock.now = T0 + 600 + 5
    await start(store, config, clock)
    events = await queued(store)
    assert [e["time"] for e in events] == [isoformat(T0 + 600)]
    assert events[0]["missed"] is True
    [state] = await store.list_schedule_states()
    assert state.next_at == T0 + 660


async def test_a_changed_expression_starts_afresh(store: SqliteStore) -> None:
    clock = Clock(T0)
    await start(store, schedule("rate(1 minute)"), clock)
    clock.now = T0 + 30
    await start(store, schedule("cron(30 2 * * ? *)", tz="Europe/Paris"), clock)
    [state] = await store.list_schedule_states()
    # 29 March 2026: 02:30 does not exist in Paris; it fires at 03:30 CEST.
    assert isoformat(state.next_at or 0) == "2026-03-29T01:30:00Z"
    assert await queued(store) == []


async def test_jitter_delays_each_tick_within_its_window(store: SqliteStore) -> None:
    clock = Clock(T0)
    scheduler = await start(store, schedule("rate(1 hour)", jitter_s=600), clock)
    offset = jitter("tick", T0 + 3600, 600)
    assert 0 < offset < 600
    assert await scheduler.fire_due(T0 + 3600 + offset - 0.01) == 0
    assert await scheduler.fire_due(T0 + 3600 + offset) == 1
    [event] = await queued(store)
    assert event["time"] == isoformat(T0 + 3600)  # the event carries the scheduled time


async def test_a_one_time_schedule_fires_once_and_is_done(store: SqliteStore) -> None:
    clock = Clock(T0)
    scheduler = await start(store, schedule("at(2026-03-29T01:00:00)"), clock)
    assert await scheduler.fire_due(T0 + 3629) == 0
    assert await scheduler.fire_due(T0 + 3630) == 1
    assert await scheduler.fire_due(T0 + 86400) == 0
    [state] = await store.list_schedule_states()
    assert state.next_at is None and state.fired == 1
    assert scheduler.describe()[0]["next_fires"] == []


async def test_a_tick_the_store_has_moved_past_is_not_enqueued(store: SqliteStore) -> None:
    clock = Clock(T0)
    scheduler = await start(store, schedule("rate(1 minute)"), clock)
    # Another writer advanced the schedule first: the compare-and-set refuses the stale unit.
    await store.commit([AdvanceSchedule("tick", T0 + 60, T0 + 120, T0 + 60, fired=1)])
    with pytest.raises(Conflict):
        await store.commit([AdvanceSchedule("tick", T0 + 60, T0 + 120, T0 + 60, fired=1)])
    assert await scheduler.fire_due(T0 + 61) == 0  # it learns the store's next tick instead
    assert await queued(store) == []
    assert await scheduler.fire_due(T0 + 121) == 1
    assert [e["time"] for e in await queued(store)] == [isoformat(T0 + 120)]


async def test_schedules_gone_from_the_app_are_forgotten(store: SqliteStore) -> None:
    clock = Clock(T0)
    await start(store, schedule("rate(1 minute)"), clock)
    await Scheduler(store, [], "v2", lambda name: None, clock).load()
    assert await store.list_schedule_states() == []


async def test_a_schedule_enabled_again_skips_the_ticks_it_was_off_for(store: SqliteStore) -> None:
    from squall.model.schedules import parse_schedule

    clock = Clock(T0)
    scheduler = Scheduler(store, [], "v1", lambda name: None, clock, functions=lambda: {"work"})
    await scheduler.load()
    body = {"name": "made", "function": "work", "expression": "rate(1 minute)"}
    assert await scheduler.put(parse_schedule(body), create=True) is True
    assert await scheduler.put(parse_schedule({**body, "enabled": False})) is False
    clock.now = T0 + 600
    assert await scheduler.fire_due(clock.now) == 0  # off: nothing fires
    await scheduler.put(parse_schedule(body))
    assert await scheduler.fire_due(clock.now) == 0
    [state] = await store.list_schedule_states()
    assert state.next_at == T0 + 660 and state.config is not None
    # It comes back from the store at the next start, as it was made.
    again = Scheduler(store, [], "v1", lambda name: None, clock, functions=lambda: {"work"})
    await again.load()
    assert again.get("made")["origin"] == "api"
    assert again.get("made")["next_fires"][0] == isoformat(T0 + 660)


def test_parse_schedule_names_the_field() -> None:
    from squall.errors import InvalidInput
    from squall.model.schedules import parse_schedule

    good = {"name": "n", "function": "work", "expression": "rate(1 minute)", "jitter_s": 60.0}
    assert parse_schedule(good).jitter_s == 60
    for body, field in [
        ({**good, "jitter_s": "soon"}, "jitter_s"),
        ({**good, "missed": "sometimes"}, "missed"),
        ({**good, "name": "next"}, "name"),
        ({**good, "name": "1st"}, "name"),
        ({**good, "colour": "red"}, "colour"),
        ({"name": "n", "expression": "rate(1 minute)"}, "function"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            parse_schedule(body)
        assert caught.value.field == field, body


async def test_a_stored_schedule_that_no_longer_parses_is_left_out(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from squall.engine.schedules.expressions import SECONDS_ENV
    from squall.model.schedules import parse_schedule

    monkeypatch.setenv(SECONDS_ENV, "1")
    clock = Clock(T0)
    first = Scheduler(store, [], "v1", lambda name: None, clock, functions=lambda: {"work"})
    await first.load()
    body = {"name": "fast", "function": "work", "expression": "rate(2 seconds)"}
    await first.put(parse_schedule(body), create=True)
    monkeypatch.delenv(SECONDS_ENV)
    second = Scheduler(store, [], "v1", lambda name: None, clock, functions=lambda: {"work"})
    await second.load()  # starts, without it
    assert second.describe() == []
    assert [s.name for s in await store.list_schedule_states()] == ["fast"]  # still kept
