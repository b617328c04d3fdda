"""Fires the app's schedules: each tick becomes an async invocation of its function.

Exactly once per tick: the tick's delivery is enqueued in the unit that moves the
schedule's persisted next tick past it (``AdvanceSchedule``, a compare-and-set on the old
next tick), so after a SIGKILL either both landed or neither did; the invocation id is
derived from (schedule, tick time) as well, so a repeated enqueue is dropped by id. At
start, ticks that came due while the platform was down are handled by the schedule's
missed policy: ``skip`` them, or ``fire_once`` for the latest of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.destinations import queue_name
from squall.engine.leader import Leadership
from squall.engine.schedules.expressions import Expression, isoformat, jitter, parse
from squall.engine.waiting import wait_woken
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.invocation import InvocationRecord, InvocationStatus, Trigger
from squall.model.schedules import ScheduleConfig, ScheduleState
from squall.storage.protocols import (
    AdvanceSchedule,
    DeleteSchedule,
    Delivery,
    Enqueue,
    Op,
    PutInvocation,
    PutSchedule,
    Store,
)

log = logging.getLogger("squall.scheduler")

MAX_SLEEP_S = 1.0  # the loop looks at the clock at least this often
MAX_CATCH_UP = 100_000  # ticks walked to find the latest missed one


@dataclass
class _Entry:
    config: ScheduleConfig
    expression: Expression
    state: ScheduleState

    @property
    def due_at(self) -> float | None:
        """When the next tick fires: its nominal time plus its jitter."""
        nominal = self.state.next_at
        if nominal is None or not self.config.enabled:
            return None
        return nominal + jitter(self.config.name, nominal, self.config.jitter_s)


class Scheduler:
    def __init__(
        self,
        store: Store,
        schedules: Sequence[ScheduleConfig],
        version: str,
        wake: Callable[[str], None],
        clock: Callable[[], float] = time.time,
        functions: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._store = store
        self._configs = list(schedules)
        self._version = version
        self._wake = wake
        self._clock = clock
        self._functions = functions
        self._entries: dict[str, _Entry] = {}
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()  # a tick and a change through the API never interleave

    async def load(self) -> None:
        """Bring the persisted states in line with the app, applying the missed policies.

        Schedules made through the admin API come back from the store; one the app now
        declares under the same name gives way to the app's.
        """
        now = self._clock()
        states = {s.name: s for s in await self._store.list_schedule_states()}
        app_names = self._names()
        stored = [
            s.config
            for s in states.values()
            if s.config is not None and s.name not in app_names
        ]
        ops: list[Op] = [
            DeleteSchedule(name)
            for name, state in states.items()
            if name not in app_names and state.config is None
        ]
        ticks: list[tuple[_Entry, float]] = []
        for config in [*self._configs, *stored]:
            if config.origin != "app" and config.function not in self._functions():
                log.warning(
                    "schedule %s names function %s, which the app no longer has: not loaded",
                    config.name,
                    config.function,
                )
                continue
            try:
                expression = parse(config.expression, config.tz)
            except InvalidInput as exc:  # stored under other settings (a test's second rates)
                log.warning("schedule %s is not loaded: %s", config.name, exc.message)
                continue
            fingerprint = f"{config.expression}|{config.tz}"
            state = states.get(config.name)
            kept = None if config.origin == "app" else config
            if state is None or state.fingerprint != fingerprint or state.config != kept:
                state = _fresh(config, expression, now, state)  # new, or changed by the app
                ops.append(PutSchedule(state))
                self._entries[config.name] = _Entry(config, expression, state)
                continue
            entry = _Entry(config, expression, state)
            self._entries[config.name] = entry
            due = entry.due_at
            if due is None or due >= now:
                continue
            missed = self._latest_missed(entry, now)
            if config.missed == "fire_once" and missed is not None:
                ticks.append((entry, missed))
            else:
                advance = expression.next_after(now, state.anchor)
                ops.append(AdvanceSchedule(config.name, state.next_at, advance, None))
                state.next_at = advance
                log.info("schedule %s: skipped the ticks missed while down", config.name)
        if ops:
            await self._store.commit(ops)
        for entry, missed in ticks:
            await self._fire(entry, missed, now, catch_up=True)

    def _names(self) -> set[str]:
        return {config.name for config in self._configs}

    # --- schedules made through the admin API ------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        if name not in self._entries:
            raise NotFound(
                f"schedule {name!r} does not exist (schedules: {', '.join(sorted(self._entries))})",
                field="name",
                schedule=name,
            )
        return self._view(self._entries[name], 3)

    async def put(self, config: ScheduleConfig, *, create: bool = False) -> bool:
        """Create or replace an API schedule (validated whole); True if it was created."""
        config.validate()
        expression = parse(config.expression, config.tz)
        if config.function not in self._functions():
            raise InvalidInput(
                f"schedule {config.name!r}: function {config.function!r} does not exist"
                f" (functions: {', '.join(sorted(self._functions()))})",
                field="function",
            )
        async with self._lock:
            existing = self._entries.get(config.name)
            self._writable(config.name, existing, create)
            now = self._clock()
            state = _fresh(config, expression, now, None if existing is None else existing.state)
            if existing is not None and existing.state.fingerprint == state.fingerprint:
                # Same times: keep its place, unless it was off and its next tick passed.
                state.anchor, state.next_at = existing.state.anchor, existing.state.next_at
                if state.next_at is not None and state.next_at < now:
                    state.next_at = expression.next_after(now, state.anchor)
            await self._store.commit([PutSchedule(state)])
            self._entries[config.name] = _Entry(config, expression, state)
        self._changed.set()
        return existing is None

    async def delete(self, name: str) -> None:
        async with self._lock:
            existing = self._entries.get(name)
            if existing is None:
                self.get(name)  # raises NotFound
            self._writable(name, existing, False)
            await self._store.commit([DeleteSchedule(name)])
            del self._entries[name]
        self._changed.set()

    async def refresh(self) -> None:
        """Take in API schedules another node made, changed or deleted. Entries that did not
        change keep their in-memory state (the coordinator's is the newest)."""
        states = {s.name: s for s in await self._store.list_schedule_states()}
        app_names = self._names()
        async with self._lock:
            for name, entry in list(self._entries.items()):
                stored = states.get(name)
                if entry.config.origin != "app" and (stored is None or stored.config is None):
                    del self._entries[name]
            for name, state in states.items():
                config = state.config
                if config is None or name in app_names:
                    continue
                known = self._entries.get(name)
                if known is not None and known.config == config:
                    continue
                try:
                    expression = parse(config.expression, config.tz)
                except InvalidInput as exc:
                    log.warning("schedule %s is not loaded: %s", name, exc.message)
                    continue
                self._entries[name] = _Entry(config, expression, state)
        self._changed.set()

    def _writable(self, name: str, existing: _Entry | None, create: bool) -> None:
        if existing is not None and existing.config.origin == "app":
            raise Conflict(
                f"schedule {name!r} is declared by the app and is read-only here",
                field="name",
                schedule=name,
            )
        if existing is not None and create:
            raise Conflict(f"schedule {name!r} already exists", field="name", schedule=name)

    def _latest_missed(self, entry: _Entry, now: float) -> float | None:
        """The latest tick due before ``now``, walking from the persisted next tick."""
        first = entry.state.next_at
        if first is None:
            return None
        latest = first
        for count, tick in enumerate(entry.expression.times(first, entry.state.anchor)):
            due = tick + jitter(entry.config.name, tick, entry.config.jitter_s)
            if count >= MAX_CATCH_UP or due >= now:
                break
            latest = tick
        return latest

    async def run(self, leadership: Leadership | None = None) -> None:
        """Fire ticks as they come due; with ``leadership``, only while this process leads
        (one scheduler among several processes sharing a store)."""
        while True:
            if leadership is not None and not leadership.leading:
                await leadership.wait_leading()
                await self.load()  # another leader may have moved the schedules on
            self._changed.clear()
            try:
                await self.fire_due(self._clock())
            except Exception:  # the store failed: the tick stays due and is tried again
                log.exception("firing due schedules failed")
                await asyncio.sleep(MAX_SLEEP_S)
            dues = [d for d in (e.due_at for e in self._entries.values()) if d is not None]
            pause = min([MAX_SLEEP_S, *(d - self._clock() for d in dues)])
            if pause > 0:
                await wait_woken(self._changed, pause)

    async def fire_due(self, now: float) -> int:
        """Fire every tick due by ``now`` (in order, each once); return how many fired.

        Ticks due while the platform runs fire however late they are; only a start applies
        the missed policy (to the ticks that came due while it was down).
        """
        fired = 0
        for entry in list(self._entries.values()):
            async with self._lock:
                while (due := entry.due_at) is not None and due <= now:
                    if self._entries.get(entry.config.name) is not entry:
                        break  # replaced or deleted meanwhile
                    nominal = entry.state.next_at
                    assert nominal is not None
                    if not await self._fire(entry, nominal, now):
                        break
                    fired += 1
        return fired

    async def _fire(
        self, entry: _Entry, nominal: float, now: float, *, catch_up: bool = False
    ) -> bool:
        config, state = entry.config, entry.state
        after = max(nominal, now) if catch_up else nominal
        advance = entry.expression.next_after(after, state.anchor)
        invocation_id = tick_id(config.name, nominal)
        real_now = time.time()  # the queue runs on the real clock, whatever drives ticks
        record = InvocationRecord(
            id=invocation_id,
            function=config.function,
            version=self._version,
            trigger=Trigger.SCHEDULE,
            status=InvocationStatus.QUEUED,
            created_at=real_now,
        )
        delivery = Delivery(
            id=invocation_id,
            queue=queue_name(config.function),
            payload=msgspec.json.encode(tick_event(config, invocation_id, nominal, catch_up)),
            invocation_id=invocation_id,
            enqueued_at=real_now,
            available_at=real_now,
            headers={"trigger": Trigger.SCHEDULE, "kind": "json", "schedule": config.name},
        )
        try:
            await self._store.commit(
                [
                    AdvanceSchedule(config.name, state.next_at, advance, nominal, fired=1),
                    PutInvocation(record),
                    Enqueue(delivery, dedup_key=f"schedule:{config.name}@{nominal}"),
                ]
            )
        except Conflict:  # the store moved on without us: take its word
            stored = {s.name: s for s in await self._store.list_schedule_states()}
            if config.name in stored:
                entry.state = stored[config.name]
            return False
        state.next_at, state.last_at, state.fired = advance, nominal, state.fired + 1
        self._wake(config.function)
        return True

    def describe(self, count: int = 3) -> list[dict[str, Any]]:
        """Each schedule with its last tick and its next ``count`` ticks (RFC 3339, UTC)."""
        return [self._view(self._entries[name], count) for name in sorted(self._entries)]

    def _view(self, entry: _Entry, count: int) -> dict[str, Any]:
        config, state = entry.config, entry.state
        upcoming: list[str] = []
        if state.next_at is not None and config.enabled:
            upcoming.append(isoformat(state.next_at))
            for tick in entry.expression.times(state.next_at, state.anchor):
                if len(upcoming) >= count:
                    break
                upcoming.append(isoformat(tick))
        return {
            "name": config.name,
            "function": config.function,
            "expression": config.expression,
            "tz": config.tz,
            "payload": config.payload,
            "jitter_s": config.jitter_s,
            "missed": config.missed,
            "enabled": config.enabled,
            "description": config.description,
            "origin": config.origin,
            "last_fire": None if state.last_at is None else isoformat(state.last_at),
            "next_fires": upcoming[:count],
            "fired": state.fired,
        }


def _fresh(
    config: ScheduleConfig, expression: Expression, now: float, old: ScheduleState | None
) -> ScheduleState:
    """A state that starts the schedule's times at ``now``, keeping its history."""
    return ScheduleState(
        name=config.name,
        fingerprint=f"{config.expression}|{config.tz}",
        anchor=now,
        next_at=expression.next_after(now, now),
        last_at=None if old is None else old.last_at,
        fired=0 if old is None else old.fired,
        config=None if config.origin == "app" else config,
    )


def tick_id(name: str, nominal: float) -> str:
    """The invocation id of a tick: led by its time (ids sort by time), then the schedule."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{round(nominal * 1_000_000):014x}{digest}"


def tick_event(
    config: ScheduleConfig, invocation_id: str, nominal: float, catch_up: bool
) -> dict[str, Any]:
    """What the handler gets, in the spirit of EventBridge's scheduled events."""
    event: dict[str, Any] = {
        "version": "0",
        "id": invocation_id,
        "detail-type": "Scheduled Event",
        "source": "squall.scheduler",
        "schedule": config.name,
        "time": isoformat(nominal),
        "detail": {} if config.payload is None else config.payload,
    }
    if catch_up:
        event["missed"] = True  # fired at start for ticks due while the platform was down
    return event
