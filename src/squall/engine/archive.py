"""Archives: the events published to a bus, kept for their retention, to be replayed.

Archiving is part of publishing: the ``ArchiveEvent`` ops join the unit of work that delivers
the events, so an event is archived exactly when it was published (a failed publish archives
nothing). Duplicates dropped by the dedup window and replayed events are not archived again.
A sweep deletes expired events once a minute: one indexed DELETE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from squall.engine.bus import Published
from squall.engine.router.patterns import Pattern, compile_pattern
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.archive import (
    DEFAULT_RETENTION_S,
    REPLAY_EXTENSION,
    ArchiveConfig,
    check_archive_name,
    check_retention,
)
from squall.model.cloudevent import CloudEvent
from squall.storage.protocols import (
    ArchiveEvent,
    DeleteArchive,
    ExpireArchived,
    Op,
    PutArchive,
    Store,
)

log = logging.getLogger("squall")

SWEEP_EVERY_S = 60.0


def pattern_of(value: Any, field: str = "pattern") -> Pattern | None:
    """A compiled event pattern, or None; ``InvalidInput`` names ``field`` and the problem."""
    if value is None:
        return None
    try:
        return compile_pattern(value)
    except InvalidInput as exc:
        where = f"{field}.{exc.field}" if exc.field else field
        raise InvalidInput(f"{field}: {exc.message}", field=where) from None


class Archives:
    def __init__(self, store: Store, knows_bus: Callable[[str], bool]) -> None:
        self._store = store
        self._knows_bus = knows_bus
        self._archives: dict[str, tuple[ArchiveConfig, Pattern | None]] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        for config in await self._store.list_archives():
            self._archives[config.name] = (config, pattern_of(config.pattern))

    def all(self) -> list[ArchiveConfig]:
        return [config for config, _ in sorted(self._archives.values(), key=lambda a: a[0].name)]

    def get(self, name: str) -> ArchiveConfig:
        found = self._archives.get(check_archive_name(name))
        if found is None:
            raise NotFound(f"archive {name!r} does not exist", field="name")
        return found[0]

    def on_bus(self, bus: str) -> list[ArchiveConfig]:
        return [config for config in self.all() if config.bus == bus]

    async def stats(self, name: str) -> tuple[int, float | None, float | None]:
        return await self._store.archive_stats(self.get(name).name)

    async def create(
        self,
        name: str,
        bus: str,
        *,
        pattern: dict[str, Any] | None = None,
        retention_s: int = DEFAULT_RETENTION_S,
    ) -> ArchiveConfig:
        check_archive_name(name)
        if not isinstance(bus, str) or not self._knows_bus(bus):
            raise NotFound(f"bus {bus!r} does not exist", field="bus")
        compiled = pattern_of(pattern)
        config = ArchiveConfig(
            name=name,
            bus=bus,
            pattern=pattern,
            retention_s=check_retention(retention_s),
            created_at=time.time(),
        )
        async with self._lock:
            if name in self._archives:
                raise Conflict(f"archive {name!r} already exists", field="name")
            await self._store.commit([PutArchive(config)])
            self._archives[name] = (config, compiled)
        return config

    async def delete(self, name: str) -> None:
        """Delete the archive and the events it holds."""
        async with self._lock:
            self.get(name)
            await self._store.commit([DeleteArchive(name)])
            del self._archives[name]

    def ops_for(
        self, bus: str, events: Sequence[CloudEvent], outcomes: Sequence[Published]
    ) -> list[Op]:
        """The ops that archive the ``events`` just routed on ``bus``."""
        archives = [(c, p) for c, p in self._archives.values() if c.bus == bus]
        if not archives:
            return []
        now = time.time()
        ops: list[Op] = []
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome.duplicate or REPLAY_EXTENSION in event.extensions:
                continue
            body = event.to_json()
            document: dict[str, Any] | None = None
            for config, pattern in archives:
                if pattern is not None:
                    document = event.to_json_dict() if document is None else document
                    if not pattern.matches(document):
                        continue
                # The rows of one event sit side by side (one per archive): replay relies on it.
                ops.append(
                    ArchiveEvent(
                        archive=config.name,
                        source=event.source,
                        event_id=event.id,
                        published_at=now,
                        expires_at=now + config.retention_s,
                        body=body,
                    )
                )
        return ops

    async def sweep(self, now: float | None = None) -> None:
        await self._store.commit([ExpireArchived(time.time() if now is None else now)])

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("archive retention sweep failed; trying again in a minute")
            await asyncio.sleep(SWEEP_EVERY_S)
