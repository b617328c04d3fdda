"""Sleeping until woken, in a way that a cancellation always ends."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_woken(event: asyncio.Event, timeout: float) -> None:
    """Return when ``event`` is set or ``timeout`` seconds passed.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
    event is set, and a stopping platform would then wait on the event forever.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
