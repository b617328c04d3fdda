"""The transactional outbox: messages a unit wrote for a broker, waiting for it to take them.

On the distributed backend a unit's effects commit to the state store while its deliveries
and its stream records travel on JetStream, and no transaction spans both. A unit
therefore writes them as outbox rows beside its effects (``PutOutbox`` for a delivery,
``PutOutboxRecord`` for a record); a relay publishes the rows in order and deletes them
once the broker acknowledged them (``DeleteOutbox``). A crash in between publishes a row
twice, and the broker drops the second copy by its message id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.storage.logs import AppendRecord
from squall.storage.protocols import Delivery, Op


class OutboxRow(msgspec.Struct, frozen=True):
    """A delivery's row, or (``delivery`` None) a stream record's."""

    seq: int  # the order rows were committed in
    delivery: Delivery | None
    dedup_key: str | None = None
    record: AppendRecord | None = None

    @property
    def id(self) -> str:
        if self.record is not None:
            return self.record.id
        assert self.delivery is not None
        return self.delivery.id

    @property
    def made_at(self) -> float:
        """When the unit that wrote the row built it."""
        if self.record is not None:
            return self.record.arrival_time
        assert self.delivery is not None
        return self.delivery.enqueued_at


class OutboxStore(Protocol):
    async def pending_outbox(self, limit: int, after: int = 0) -> list[OutboxRow]:
        """Up to ``limit`` committed rows with ``seq`` > ``after``, oldest first."""
        ...

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None: ...
