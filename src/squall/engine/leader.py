"""Leadership of a duty only one process may do at a time (firing schedules).

Each candidate tries to take the lease every RENEW_S; the holder renews it as often. A holder
that cannot renew (the store is unreachable, or another took it after it expired) stops
leading once its lease would have run out, before anyone else can take it — so two leaders
never overlap as long as clocks agree to within the margin — and another candidate takes over
within TTL_S + RENEW_S of the holder's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator

from squall.engine.waiting import wait_woken
from squall.storage.protocols import Store

log = logging.getLogger("squall.leader")

TTL_S = 10.0
RENEW_S = 3.0
MARGIN_S = 1.0  # a holder gives up this long before its lease runs out


def holder_id() -> str:
    """Who this process is, in lease rows and logs: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Leadership:
    def __init__(
        self,
        store: Store,
        name: str,
        holder: str | None = None,
        ttl_s: float = TTL_S,
        renew_s: float = RENEW_S,
    ) -> None:
        self._store = store
        self.name = name
        self.holder = holder or holder_id()
        self._ttl_s = ttl_s
        self._renew_s = renew_s
        self.token: int | None = None
        self._until = 0.0  # monotonic time this process's lease surely lasts until
        self.changed = asyncio.Event()  # set whenever leadership is won or lost

    @property
    def leading(self) -> bool:
        return self.token is not None and time.monotonic() < self._until

    async def try_acquire(self) -> bool:
        asked = time.monotonic()
        try:
            token = await self._store.acquire_lease(
                self.name, self.holder, self._ttl_s, force=self._store.exclusive
            )
        except Exception:
            log.warning("could not reach the store to hold the %s lease", self.name, exc_info=True)
            token = None if not self.leading else self.token
            self._set(token, self._until)
            return self.leading
        self._set(token, asked + self._ttl_s - min(MARGIN_S, self._ttl_s / 4))
        return self.leading

    def _set(self, token: int | None, until: float) -> None:
        was = self.leading
        self.token, self._until = token, until
        if was != self.leading:
            log.info(
                "%s %s the %s lease (token %s)",
                self.holder, "holds" if self.leading else "lost", self.name, token,
            )
            self.changed.set()

    async def run(self) -> None:
        try:
            while True:
                await self.try_acquire()
                await asyncio.sleep(self._renew_s)
        finally:
            if self.token is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._store.release_lease(self.name, self.holder))
                self.token = None

    async def wait_leading(self) -> None:
        while not self.leading:
            self.changed.clear()
            if self.leading:
                return
            await wait_woken(self.changed, self._renew_s)


@contextlib.asynccontextmanager
async def one_at_a_time(
    store: Store, name: str, *, enabled: bool = True, ttl_s: float = 60.0
) -> AsyncIterator[None]:
    """Hold lease ``name`` for the block, waiting while another process holds it (a
    holder that dies lets go when its lease expires). ``enabled=False`` holds nothing."""
    if not enabled:
        yield
        return
    holder = holder_id()
    while await store.acquire_lease(name, holder, ttl_s) is None:
        await asyncio.sleep(0.1)
    try:
        yield
    finally:
        await store.release_lease(name, holder)
