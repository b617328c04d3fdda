"""Idempotency keys: a key names one invocation for 24 h, and concurrent repeats wait for it."""

from __future__ import annotations

import asyncio
import time

from squall.storage.protocols import StateStore

TTL_S = 24 * 3600


class Claims:
    """In-process claims on (function, key), so two calls racing with one key run once."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: dict[tuple[str, str], asyncio.Future[str]] = {}

    async def claim(self, function: str, key: str) -> str | None:
        """The invocation already bound to ``key``, or None after claiming it for the caller."""
        while (pending := self._pending.get((function, key))) is not None:
            existing = await asyncio.shield(pending)
            if existing:
                return existing
        found = await self._store.find_idempotent(function, key, time.time())
        if found is not None:
            return found
        self._pending[(function, key)] = asyncio.get_running_loop().create_future()
        return None

    def release(self, function: str, key: str | None, invocation_id: str | None) -> None:
        """End the caller's claim: bound to ``invocation_id``, or given up when None."""
        if key is None:
            return
        pending = self._pending.pop((function, key), None)
        if pending is not None and not pending.done():
            pending.set_result(invocation_id or "")


def expiry() -> float:
    return time.time() + TTL_S
