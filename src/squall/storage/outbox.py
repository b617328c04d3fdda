"""The transactional outbox: deliveries a unit enqueued, waiting for a broker to take them.

On the distributed backend a unit's effects commit to the state store while its deliveries
travel on JetStream, and no transaction spans both. A unit therefore writes its deliveries
as ``PutOutbox`` rows beside its effects; a relay publishes the rows in order and deletes
them once the broker acknowledged them (``DeleteOutbox``). A crash in between publishes a
row twice, and the broker drops the second copy by its message id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.storage.protocols import Delivery, Op


class OutboxRow(msgspec.Struct, frozen=True):
    seq: int  # the order rows were committed in
    delivery: Delivery
    dedup_key: str | None = None


class OutboxStore(Protocol):
    async def pending_outbox(self, limit: int, after: int = 0) -> list[OutboxRow]:
        """Up to ``limit`` committed rows with ``seq`` > ``after``, oldest first."""
        ...

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None: ...
