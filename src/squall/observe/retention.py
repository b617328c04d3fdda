"""The retention sweep: log lines and traces older than their configured age are deleted."""

from __future__ import annotations

import asyncio
import logging
import time

from squall.storage.protocols import ExpireLogs, Store
from squall.storage.traces import ExpireSpans

log = logging.getLogger("squall.retention")


class Retention:
    def __init__(self, store: Store, *, logs_s: float, traces_s: float, every_s: float) -> None:
        self._store = store
        self.logs_s = logs_s
        self.traces_s = traces_s
        self._every_s = every_s

    async def sweep(self, now: float | None = None) -> None:
        """Delete what is past retention as of ``now`` (epoch s, default the clock)."""
        now = time.time() if now is None else now
        await self._store.commit([ExpireLogs(now - self.logs_s), ExpireSpans(now - self.traces_s)])

    async def sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # a failed sweep is tried again next time; serving goes on
                log.exception("the retention sweep failed")
            await asyncio.sleep(self._every_s)
