"""Queue triggers: receive batches of a queue's messages and run a function on each batch.

A batch is received with the queue's visibility timeout, so its messages are invisible while
the function runs. What the handler reports as failed (``{"failed": [ids]}``, a list of ids,
or Lambda's ``{"batchItemFailures": [{"itemIdentifier": id}]}``), or the whole batch when the
invocation fails, is left in flight and reappears when the timeout ends; the rest is deleted
in the unit that records the invocation. FIFO: a group with messages in flight is not
received from, so its next batch waits for the previous one; after a failed message the rest
of its group in the batch is kept too, so order holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from squall.engine.invoker import Invoker
from squall.engine.queues.book import QueueBook
from squall.errors import InitError, SandboxCrashed
from squall.model.config import FunctionConfig
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.model.queues import QueueMessage, QueueTrigger
from squall.storage.protocols import AppendLogs, DeleteMessages, Op, PutInvocation, Store

log = logging.getLogger("squall.queues")

QUEUE_TRIGGER = "queue"
ERROR_PAUSE_S = 1.0


class QueueConsumers:
    def __init__(
        self,
        triggers: list[QueueTrigger],
        book: QueueBook,
        store: Store,
        invoker: Invoker,
        functions: Callable[[], dict[str, FunctionConfig]],
        running: dict[str, InvocationRecord],
    ) -> None:
        self._triggers = triggers
        self._book = book
        self._store = store
        self._invoker = invoker
        self._functions = functions
        self._running = running
        self._in_flight: dict[int, int] = {}  # trigger index -> batches running
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def busy(self) -> int:
        return sum(self._in_flight.values())

    async def run(self) -> None:
        await asyncio.gather(*(self._consume(i, t) for i, t in enumerate(self._triggers)))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _consume(self, index: int, trigger: QueueTrigger) -> None:
        freed = asyncio.Event()
        self._in_flight[index] = 0
        while True:
            config = self._functions()[trigger.function]
            limit = trigger.max_concurrency or config.concurrency
            if self._in_flight[index] >= limit:
                freed.clear()
                await freed.wait()
                continue
            try:
                batch = await self._gather(trigger)
            except Exception:
                log.exception("receiving from queue %r failed", trigger.queue)
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            if not batch:
                continue
            self._in_flight[index] += 1
            task = asyncio.create_task(self._process(trigger, config, batch))
            self._tasks.add(task)

            def done(task: asyncio.Task[None], index: int = index) -> None:
                self._tasks.discard(task)
                self._in_flight[index] -= 1
                freed.set()

            task.add_done_callback(done)

    async def _gather(self, trigger: QueueTrigger) -> list[QueueMessage]:
        """Up to ``batch_size`` messages, waiting for the first; then for at most the batch
        window while the batch is not full."""
        signals = self._book.signals
        batch: list[QueueMessage] = []
        window_ends: float | None = None
        while True:
            queue = self._book.get(trigger.queue)
            future = signals.future(queue.name)
            batch += await self._book.lease(
                queue, trigger.batch_size - len(batch), queue.visibility_timeout_s
            )
            now = time.monotonic()
            if batch and window_ends is None:
                window_ends = now + trigger.batch_window_s
            if len(batch) >= trigger.batch_size or (window_ends is not None and now >= window_ends):
                signals.discard(queue.name, future)
                return batch
            timeout = await self._book.until_visible(queue.name)
            if window_ends is not None:
                timeout = min(timeout, window_ends - now)
            await signals.wait(queue.name, future, timeout)

    async def _process(
        self, trigger: QueueTrigger, config: FunctionConfig, batch: list[QueueMessage]
    ) -> None:
        record = InvocationRecord(
            id=new_id(),
            function=config.name,
            version="",
            trigger=QUEUE_TRIGGER,
            status=InvocationStatus.RUNNING,
            attempt=max(m.receive_count for m in batch),
            created_at=min(m.sent_at for m in batch),
        )
        payload = msgspec.json.encode([m.public() for m in batch])
        self._running[record.id] = record
        try:
            await self._invoker.run(config, record, payload, wait_s=None)
        except (OSError, InitError) as exc:  # no sandbox could start: the batch failed
            record.status = InvocationStatus.FAILED
            error = exc if isinstance(exc, InitError) else SandboxCrashed(str(exc))
            record.error = error.to_dict()
        finally:
            self._running.pop(record.id, None)
        fifo = self._book.get(trigger.queue).fifo
        kept = _failed(record, batch, fifo)
        ops: list[Op] = [PutInvocation(record)]
        if record.logs:
            ops.append(AppendLogs(record.id, record.function, record.logs, record.request_id))
        receipts = [m.receipt for m in batch if m.id not in kept and m.receipt is not None]
        if receipts:
            ops.append(DeleteMessages(trigger.queue, receipts))
        try:
            await self._store.commit(ops)
        except Exception:  # the batch stays in flight and reappears after its timeout
            log.exception("settling the batch of %s failed", record.id)
            return
        if fifo and receipts:
            self._book.signals.notify(trigger.queue)  # its groups may go on


def _failed(record: InvocationRecord, batch: list[QueueMessage], fifo: bool) -> set[str]:
    """The ids of the messages to keep: all when the invocation failed, else those reported."""
    ids = {m.id for m in batch}
    if record.status != InvocationStatus.SUCCEEDED:
        return ids
    reported = _reported(record.result)
    failed = {i for i in reported if i in ids}
    if fifo and failed:
        stopped: set[str | None] = set()
        for m in batch:
            if m.group_id in stopped:
                failed.add(m.id)
            elif m.id in failed:
                stopped.add(m.group_id)
    return failed


def _reported(result: bytes | None) -> list[str]:
    if not result:
        return []
    try:
        value: Any = msgspec.json.decode(result)
    except msgspec.DecodeError:
        return []
    if isinstance(value, dict):
        if "batchItemFailures" in value:
            items = value["batchItemFailures"]
            value = [i.get("itemIdentifier") for i in items if isinstance(i, dict)]
        else:
            value = value.get("failed")
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if isinstance(v, str)]

