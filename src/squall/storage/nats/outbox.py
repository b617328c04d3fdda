"""The outbox relay: deliveries and stream records committed to the state store, published
to JetStream.

A unit that enqueues or puts records writes outbox rows in its own transaction. The relay reads the
rows in commit order, publishes each (waiting for JetStream's ack, so order per subject is
commit order), then deletes the published rows. A relay killed after publishing and before
deleting publishes those rows again when it restarts; JetStream drops them by their
``Nats-Msg-Id`` if the restart comes within the stream's duplicate window (and past it the
consumer still finds the invocation final, so effects stay exactly-once). Several relays
on one store are safe for the same reason; one is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from squall.storage.logs import AppendRecord
from squall.storage.outbox import OutboxRow, OutboxStore
from squall.storage.protocols import DeleteOutbox, Delivery

log = logging.getLogger("squall.nats")


class Publisher(Protocol):
    async def publish(self, delivery: Delivery, dedup_key: str | None = None) -> bool: ...


class RecordPublisher(Protocol):
    async def publish_record(self, record: AppendRecord) -> int | None:
        """Its sequence (None: its stream is gone, so the record goes with it)."""
        ...


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        publisher: Publisher,
        *,
        records: RecordPublisher | None = None,
        batch: int = 256,
        poll_s: float = 0.5,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._records = records
        self._batch = batch
        self._poll_s = poll_s
        self._max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self.published = 0  # rows published and deleted, since this relay started

    def notify(self) -> None:
        """Rows were committed: relay them now rather than at the next poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish and delete one batch of pending rows, in order; return how many."""
        rows = await self._store.pending_outbox(self._batch)
        done: list[str] = []
        try:
            for row in rows:
                await self._publish(row)
                done.append(row.id)
        finally:
            # What was published is deleted even when a later publish failed, so the
            # next pass starts at the first row that is still to go.
            if done:
                await self._store.commit([DeleteOutbox(done)])
                self.published += len(done)
        return len(done)

    async def _publish(self, row: OutboxRow) -> None:
        if row.record is None:
            assert row.delivery is not None
            await self._publisher.publish(row.delivery, row.dedup_key)
            return
        if self._records is None:
            raise RuntimeError("the outbox holds stream records and this relay has no log")
        await self._records.publish_record(row.record)

    async def run(self) -> None:
        """Relay until cancelled; a failed pass (broker down) is retried with backoff."""
        backoff = self._poll_s
        while True:
            try:
                count = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %s; retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            backoff = self._poll_s
            if count == self._batch:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s)
