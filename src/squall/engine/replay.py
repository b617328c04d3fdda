"""Replays: archived events published again onto their bus, in their original publish order.

A replayed event keeps its id, type, source and data and carries ``squallreplay: <replay id>``.
It is routed like any event (rules match it, functions run again), but under invocation ids of
its own: routing derives an invocation's id from the event's source and id so that a repeated
publish cannot run twice, and a replay is exactly a wanted repeat. It is neither deduplicated
against its original nor archived again, nor checked against today's schemas (it was valid when
it was published). Replays run in the background, a page of events per unit of work; their
progress is kept in memory (a replay does not outlive the process that runs it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec

from squall.engine.archive import Archives, pattern_of
from squall.engine.router.patterns import Pattern
from squall.errors import InvalidInput, NotFound
from squall.model.archive import REPLAY_EXTENSION, ReplayState, ReplayStatus
from squall.model.cloudevent import CloudEvent
from squall.model.ids import new_id
from squall.storage.protocols import Bury, Enqueue, Op, PutInvocation, RememberEvent, Store

log = logging.getLogger("squall")

PAGE = 200  # events per unit of work
KEEP = 200  # finished replays remembered

Publish = Callable[[list[CloudEvent], str, str], Awaitable[None]]  # events, bus, replay id


def refuse_replay_marks(events: Sequence[CloudEvent]) -> None:
    """Only the platform marks events as replayed."""
    for event in events:
        if REPLAY_EXTENSION in event.extensions:
            raise InvalidInput(
                f"event {event.id!r}: the {REPLAY_EXTENSION} extension is set by the platform"
                " on replayed events and cannot be published",
                field=REPLAY_EXTENSION,
            )


def replay_ops(ops: Sequence[Op], replay_id: str) -> list[Op]:
    """Routing's ops for replayed events, moved to invocation and delivery ids of this
    replay's own, and without the dedup notes (the original's stay as they were)."""
    originals = [op.record.id for op in ops if isinstance(op, PutInvocation)]
    originals += [op.delivery.id for op in ops if isinstance(op, Enqueue)]  # bus, HTTP targets
    originals += [op.delivery_id for op in ops if isinstance(op, Bury)]
    ids = {original: _replayed_id(original, replay_id) for original in originals}
    return [_rekeyed(op, ids) for op in ops if not isinstance(op, RememberEvent)]


def _replayed_id(invocation_id: str, replay_id: str) -> str:
    return hashlib.sha256(f"{invocation_id}\0replay\0{replay_id}".encode()).hexdigest()[:24]


def _rekeyed(value: Any, ids: dict[str, str]) -> Any:
    """``value`` (an op, or a Struct inside one) with every field that holds one of the
    invocation ids replaced: deliveries, records and dead letters all name it."""
    if not isinstance(value, msgspec.Struct):
        return value
    changes: dict[str, Any] = {}
    for name in value.__struct_fields__:
        field = getattr(value, name)
        if isinstance(field, str) and field in ids:
            changes[name] = ids[field]
        elif isinstance(field, msgspec.Struct):
            rekeyed = _rekeyed(field, ids)
            if rekeyed is not field:
                changes[name] = rekeyed
    return msgspec.structs.replace(value, **changes) if changes else value


class Replays:
    def __init__(
        self, store: Store, archives: Archives, knows_bus: Callable[[str], bool], publish: Publish
    ) -> None:
        self._store = store
        self._archives = archives
        self._knows_bus = knows_bus
        self._publish = publish
        self._replays: dict[str, ReplayStatus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(
        self,
        *,
        bus: str | None,
        start: float,
        end: float | None = None,
        archive: str | None = None,
        pattern: dict[str, Any] | None = None,
    ) -> ReplayStatus:
        """Check the request and start replaying in the background; returns its status."""
        if archive is not None:
            config = self._archives.get(archive)
            if bus is not None and bus != config.bus:
                raise InvalidInput(
                    f"archive {archive!r} holds events of bus {config.bus!r}, not {bus!r}",
                    field="archive",
                )
            bus, names = config.bus, [config.name]
            if not self._knows_bus(bus):
                raise NotFound(
                    f"archive {archive!r} holds events of bus {bus!r}, which the app no longer"
                    " has",
                    field="archive",
                )
        else:
            if bus is None:
                raise InvalidInput("a replay needs a bus or an archive", field="bus")
            if not self._knows_bus(bus):
                raise NotFound(f"bus {bus!r} does not exist", field="bus")
            names = [config.name for config in self._archives.on_bus(bus)]
            if not names:
                raise NotFound(
                    f"bus {bus!r} has no archive to replay from (create one first)",
                    field="archive",
                )
        end = time.time() if end is None else end
        if start > end:
            raise InvalidInput(f"from ({start}) is after to ({end})", field="to")
        compiled = pattern_of(pattern)
        status = ReplayStatus(
            id="rp_" + new_id(),
            bus=bus,
            archives=names,
            start=start,
            end=end,
            pattern=pattern,
            started_at=time.time(),
        )
        self._forget_old()
        self._replays[status.id] = status
        self._tasks[status.id] = asyncio.create_task(self._run(status, compiled))
        return status

    def get(self, replay_id: str) -> ReplayStatus:
        found = self._replays.get(replay_id)
        if found is None:
            raise NotFound(f"replay {replay_id!r} does not exist", field="id")
        return found

    def all(self) -> list[ReplayStatus]:
        return sorted(self._replays.values(), key=lambda r: r.started_at, reverse=True)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def _forget_old(self) -> None:
        finished = [r for r in self.all() if r.state != ReplayState.RUNNING]
        for old in finished[KEEP:]:
            del self._replays[old.id]

    async def _run(self, status: ReplayStatus, pattern: Pattern | None) -> None:
        try:
            status.total = 0
            async for page in self._pages(status, pattern):
                status.total += len(page)
            async for page in self._pages(status, pattern):
                mark = {REPLAY_EXTENSION: status.id}
                events = [event.with_extensions(**mark) for _, event in page]
                await self._publish(events, status.bus, status.id)
                status.published += len(page)
                status.last_event_time = page[-1][0]
            status.state = ReplayState.COMPLETED
        except asyncio.CancelledError:
            status.state, status.error = ReplayState.FAILED, "the platform stopped"
            raise
        except Exception as exc:
            log.exception("replay %s failed", status.id)
            status.state, status.error = ReplayState.FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            status.finished_at = time.time()
            self._tasks.pop(status.id, None)

    async def _pages(
        self, status: ReplayStatus, pattern: Pattern | None
    ) -> AsyncIterator[list[tuple[float, CloudEvent]]]:
        """The events to replay, a page at a time, as (first published at, event)."""
        after, previous = 0, None
        while True:
            rows = await self._store.archived_events(
                status.archives, status.start, status.end, after, PAGE
            )
            if not rows:
                return
            page: list[tuple[float, CloudEvent]] = []
            for row in rows:
                after = row.seq
                # One publish archived into several archives: side by side, replayed once.
                key = (row.source, row.event_id, row.published_at)
                if key == previous:
                    continue
                previous = key
                document = msgspec.json.decode(row.body)
                if pattern is not None and not pattern.matches(document):
                    continue
                page.append((row.published_at, CloudEvent.from_json_dict(document)))
            if page:
                yield page
