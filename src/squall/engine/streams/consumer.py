"""One stream trigger's consumer of one shard: batches in sequence order, one in flight.

A batch is the records after the checkpoint (up to ``batch_size``, within the sync payload
limit, gathered for up to ``batch_window_s``). The function gets ``{"records": [...]}``; on
success the checkpoint moves past the batch. On an error the batch is retried with
backoff; once its retries are spent (at the first error when retries are unlimited), a
batch of several records is split in halves, each delivered in turn the same way, so a bad
record ends up alone. A record that still fails, or that is older than
``max_record_age_s``, is reported to ``on_failure`` (shard, sequences, the error) and the
checkpoint moves past it, in one unit of work. A restart resumes after the last checkpoint:
records are delivered at least once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.retry import backoff_delay
from squall.engine.streams.failure import failure_ops
from squall.engine.streams.reports import first_failed
from squall.engine.waiting import wait_woken
from squall.errors import SquallError, TooManyRequests
from squall.model.invocation import InvocationRecord, InvocationStatus, Trigger
from squall.model.streams import StreamRecord, StreamTrigger
from squall.storage.logs import PutCheckpoint
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.streams")

# (function, payload, also): ``also(record)`` gives the ops to commit in the invocation's
# own unit (the checkpoint its success moves), so effects and checkpoint land together.
Also = Callable[[InvocationRecord], Sequence[Op]]
Invoke = Callable[[str, bytes, Also], Awaitable[InvocationRecord]]
POLL_S = 1.0  # longest wait for new records when nothing wakes the consumer
PAYLOAD_MARGIN = 64 * 1024  # room for the envelope around the records' data


@dataclass
class ConsumerSettings:
    invoke: Invoke
    wake: Callable[[str], None]  # a function's queue got a delivery
    max_payload: int
    retry_base_s: float = 1.0
    retry_cap_s: float = 300.0


class ShardConsumer:
    def __init__(
        self, trigger: StreamTrigger, shard: int, store: Store, settings: ConsumerSettings
    ) -> None:
        self.trigger = trigger
        self.shard = shard
        self._store = store
        self._settings = settings
        self._rng = random.Random()
        self._wakeup = asyncio.Event()
        self.checkpoint = 0
        self.busy = False

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, start: int) -> None:
        self.checkpoint = start
        while True:
            try:
                batch = await self._next_batch()
                if not batch:
                    await self._wait(POLL_S)
                    continue
                self.busy = True
                await self._deliver(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store failed a read: try again, from the checkpoint
                log.exception("consumer %s of shard %d failed", self.trigger.function, self.shard)
                await asyncio.sleep(POLL_S)
            finally:
                self.busy = False

    async def _wait(self, timeout: float) -> None:
        await wait_woken(self._wakeup, timeout)
        self._wakeup.clear()

    async def _read(self) -> list[StreamRecord]:
        trigger = self.trigger
        records = await self._store.read_records(
            trigger.stream, self.shard, self.checkpoint, trigger.batch_size
        )
        budget = self._settings.max_payload - PAYLOAD_MARGIN
        size = 0
        for index, record in enumerate(records):
            size += len(record.data) + len(record.partition_key) + 128
            if size > budget and index > 0:
                return records[:index]
        return records

    async def _next_batch(self) -> list[StreamRecord]:
        self._wakeup.clear()
        records = await self._read()
        window = self.trigger.batch_window_s
        if not records or window <= 0 or len(records) >= self.trigger.batch_size:
            return records
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0:
            await self._wait(left)
            records = await self._read()
            if len(records) >= self.trigger.batch_size:
                break
        return records

    async def _deliver(self, batch: list[StreamRecord]) -> None:
        trigger = self.trigger
        failures = 0
        error: dict[str, Any] | None = None
        invocation_id: str | None = None
        while True:
            expired, batch = self._expired(batch)
            if expired:
                await self._give_up(expired, "RecordAgeExceeded", error, failures, invocation_id)
            if not batch:
                return
            record = await self._invoke(batch)
            error = record.error
            done = self._done(record, batch)  # checkpointed with the invocation
            if done:
                self.checkpoint = max(self.checkpoint, batch[done - 1].sequence)
            if error is None and done < len(batch):
                _, reason = first_failed(record.result, batch)
                error = {"type": "BatchItemFailures", "message": reason}
                batch = batch[done:]
            if error is None:
                return
            failures += 1
            invocation_id = record.id
            log.info(
                "%s on stream %s shard %d, sequences %d-%d, attempt %d: %s",
                trigger.function, trigger.stream, self.shard, batch[0].sequence,
                batch[-1].sequence, failures, error.get("message"),
            )
            exhausted = 0 <= trigger.max_retries < failures
            if trigger.bisect_on_error and len(batch) > 1 and (
                exhausted or trigger.max_retries < 0
            ):
                half = len(batch) // 2
                await self._deliver(batch[:half])
                await self._deliver(batch[half:])
                return
            if exhausted:
                await self._give_up(batch, "RetryAttemptsExhausted", error, failures, invocation_id)
                return
            await asyncio.sleep(self._backoff(failures))

    def _expired(self, batch: list[StreamRecord]) -> tuple[list[StreamRecord], list[StreamRecord]]:
        """The leading records past ``max_record_age_s``, and the rest."""
        max_age = self.trigger.max_record_age_s
        if max_age < 0:
            return [], batch
        oldest_allowed = time.time() - max_age
        cut = 0
        while cut < len(batch) and batch[cut].arrival_time < oldest_allowed:
            cut += 1
        return batch[:cut], batch[cut:]

    def _done(self, record: InvocationRecord, batch: list[StreamRecord]) -> int:
        """How many leading records of ``batch`` the invocation handled."""
        if record.error is not None or record.status != InvocationStatus.SUCCEEDED:
            return 0
        if self.trigger.report_batch_item_failures:
            retry_from, _ = first_failed(record.result, batch)
            if retry_from is not None:
                return retry_from
        return len(batch)

    async def _invoke(self, batch: list[StreamRecord]) -> InvocationRecord:
        payload = msgspec.json.encode({"records": batch})
        trigger = self.trigger

        def checkpoint(record: InvocationRecord) -> list[Op]:
            done = self._done(record, batch)
            if not done:
                return []
            sequence = batch[done - 1].sequence
            return [PutCheckpoint(trigger.function, trigger.stream, self.shard, sequence)]

        while True:
            try:
                return await self._settings.invoke(self.trigger.function, payload, checkpoint)
            except TooManyRequests:
                # Every sandbox stayed busy for the whole sync wait: not the batch's fault, so
                # not a failed attempt; ask again at once, spread out a little.
                await asyncio.sleep(self._rng.uniform(0.01, 0.05))
            except SquallError as exc:
                return InvocationRecord(
                    id="",
                    function=self.trigger.function,
                    version="",
                    trigger=Trigger.STREAM,
                    status=InvocationStatus.FAILED,
                    created_at=time.time(),
                    error=exc.to_dict(),
                )

    async def _give_up(
        self,
        records: list[StreamRecord],
        condition: str,
        error: dict[str, Any] | None,
        attempts: int,
        invocation_id: str | None,
    ) -> None:
        trigger = self.trigger
        log.warning(
            "%s on stream %s shard %d: skipping sequences %d-%d (%s)",
            trigger.function, trigger.stream, self.shard, records[0].sequence,
            records[-1].sequence, condition,
        )
        ops: list[Op] = [
            PutCheckpoint(trigger.function, trigger.stream, self.shard, records[-1].sequence)
        ]
        ops += failure_ops(trigger, self.shard, records, condition, error, attempts, invocation_id)
        await self._commit(ops)
        if trigger.on_failure is not None:
            self._settings.wake(trigger.on_failure)

    async def _checkpoint(self, sequence: int) -> None:
        trigger = self.trigger
        await self._commit([PutCheckpoint(trigger.function, trigger.stream, self.shard, sequence)])

    async def _commit(self, ops: list[Op]) -> None:
        """Commit, trying again until it lands: the shard cannot move on without it."""
        attempt = 0
        while True:
            try:
                await self._store.commit(ops)
            except Exception:
                attempt += 1
                log.exception("committing the checkpoint of %s failed", self.trigger.function)
                await asyncio.sleep(self._backoff(min(attempt, 6)))
                continue
            for op in ops:
                if isinstance(op, PutCheckpoint):
                    self.checkpoint = max(self.checkpoint, op.sequence)
            return

    def _backoff(self, attempt: int) -> float:
        settings = self._settings
        return backoff_delay(attempt, settings.retry_base_s, settings.retry_cap_s, self._rng)
