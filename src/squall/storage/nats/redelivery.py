"""Deliveries that come back after their unit committed.

On JetStream the ack follows the state commit, so a process that dies between the two has
its delivery redelivered although the invocation is over. Before running a leased batch,
the consumer asks the state store: a delivery whose invocation has a final record is only
acked. This, with dedup on the delivery id, keeps effects exactly-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from squall.model.invocation import FINISHED, InvocationRecord
from squall.storage.nats.queue import JetStreamQueue, LeasedDelivery


class Records(Protocol):
    async def get_invocation(self, invocation_id: str) -> InvocationRecord | None: ...


async def ack_finished(
    queue: JetStreamQueue, store: Records, leased: Sequence[LeasedDelivery]
) -> list[LeasedDelivery]:
    """Ack the redelivered deliveries whose invocation finished; return the others, to run."""
    to_run: list[LeasedDelivery] = []
    for delivery in leased:
        record = None
        if delivery.attempts > 1:  # a first delivery cannot have run before
            record = await store.get_invocation(delivery.invocation_id)
        if record is not None and record.status in FINISHED:
            await queue.ack(delivery)
        else:
            to_run.append(delivery)
    return to_run
