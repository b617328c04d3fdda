"""nats-py's fetch may turn a cancellation into a timeout (or, once the connection has
closed, into an error). A loop that treats those as "nothing yet, poll again" would then
never end when cancelled; it calls ``reraise_if_cancelled`` first."""

from __future__ import annotations

import asyncio


def reraise_if_cancelled() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
