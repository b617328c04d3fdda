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
import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from squall.engine.effects import Effects
from squall.engine.invoker import Invoker
from squall.engine.queues.book import QueueBook
from squall.engine.workflows.starter import RunStarter
from squall.errors import InitError, InvalidInput, SandboxCrashed, SquallError
from squall.model.config import FunctionConfig
from squall.model.ids import new_id
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.model.queues import QueueMessage, QueueTrigger
from squall.observe.tracing import ROOT, Span, SpanKind, parent_of, set_span_in_context
from squall.runtime.sandbox import SandboxGone
from squall.storage.protocols import AppendLogs, DeleteMessages, Op, PutInvocation, Store

log = logging.getLogger("squall.queues")

QUEUE_TRIGGER = "queue"
ERROR_PAUSE_S = 1.0
MAX_LEASE = 1000  # messages leased at once, for all free slots together
SETTLE_WINDOW_S = 0.002  # outcomes wait this long to share a commit
STALE_MIN_S = 1.0  # a batch leased ahead may always wait this long for its slot


class QueueConsumers:
    def __init__(
        self,
        triggers: list[QueueTrigger],
        book: QueueBook,
        store: Store,
        invoker: Invoker,
        functions: Callable[[], dict[str, FunctionConfig]],
        running: dict[str, InvocationRecord],
        starter: RunStarter | None = None,
    ) -> None:
        self._triggers = triggers
        self._starter = starter
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
        """Keep up to a batch per slot leased ahead of the running ones, so a freed slot finds
        its next batch in memory; wait for messages only when nothing is left to run."""
        freed = asyncio.Event()
        # Leased batches waiting for a slot, with when they were leased.
        pending: collections.deque[tuple[float, list[QueueMessage]]] = collections.deque()
        self._in_flight[index] = 0
        size = trigger.batch_size
        while True:
            config = self._functions()[trigger.function]
            limit = trigger.max_concurrency or config.concurrency
            while pending and self._in_flight[index] < limit:
                leased_at, batch = pending.popleft()
                # A batch that waited past half its visibility timeout could reappear while it
                # runs, and run twice: leave it to reappear instead.
                hidden_s = self._book.get(trigger.queue).visibility_timeout_s
                if time.monotonic() - leased_at <= max(hidden_s / 2, STALE_MIN_S):
                    self._start(index, trigger, config, batch, freed)
            running = self._in_flight[index]
            want = 2 * limit - running - len(pending)  # batches
            try:
                if running < limit:  # nothing pending: wait for the next message
                    messages = await self._gather(trigger, want)
                elif want > 0:  # every slot busy: top up without waiting
                    queue = self._book.get(trigger.queue)
                    messages = await self._book.lease(
                        queue,
                        min(want * size, MAX_LEASE),
                        queue.visibility_timeout_s,
                        size if queue.fifo else None,
                    )
                else:
                    messages = []
            except Exception:
                log.exception("receiving from queue %r failed", trigger.queue)
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            leased_at = time.monotonic()
            pending.extend((leased_at, batch) for batch in _batches(messages, size))
            if not messages and self._in_flight[index] >= limit:
                freed.clear()
                await freed.wait()

    def _start(
        self,
        index: int,
        trigger: QueueTrigger,
        config: FunctionConfig,
        batch: list[QueueMessage],
        freed: asyncio.Event,
    ) -> None:
        self._in_flight[index] += 1
        task = asyncio.create_task(self._process(trigger, config, batch))
        self._tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._in_flight[index] -= 1
            freed.set()

        task.add_done_callback(done)

    async def _gather(self, trigger: QueueTrigger, slots: int) -> list[QueueMessage]:
        """Up to ``slots`` batches of messages, waiting for the first message; then for at
        most the batch window while not even one batch is full. FIFO: at most a batch per
        group, so each group fits in one batch and its order holds."""
        signals = self._book.signals
        batch: list[QueueMessage] = []
        window_ends: float | None = None
        size = trigger.batch_size
        while True:
            queue = self._book.get(trigger.queue)
            future = signals.future(queue.name)
            want = min(size * slots, MAX_LEASE) - len(batch)
            per_group = size if queue.fifo else None
            batch += await self._book.lease(queue, want, queue.visibility_timeout_s, per_group)
            now = time.monotonic()
            if batch and window_ends is None:
                window_ends = now + trigger.batch_window_s
            if len(batch) >= size or (window_ends is not None and now >= window_ends):
                signals.discard(queue.name, future)
                return batch
            timeout = await self._book.until_visible(queue.name)
            if window_ends is not None:
                timeout = min(timeout, window_ends - now)
            await signals.wait(queue.name, future, timeout)

    async def _process(
        self, trigger: QueueTrigger, config: FunctionConfig, batch: list[QueueMessage]
    ) -> None:
        if self._starter is not None and self._starter.starts(config.name):
            await self._start_runs(self._starter, trigger, config, batch)
            return
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
        effects = Effects()
        received = self._receive_spans(trigger.queue, batch)
        parent = set_span_in_context(received[0]) if received else None
        try:
            await self._invoker.run(
                config, record, payload, wait_s=None, effects=effects, parent=parent
            )
        except (OSError, InitError) as exc:  # no sandbox could start: the batch failed
            record.status = InvocationStatus.FAILED
            error = exc if isinstance(exc, InitError) else SandboxCrashed(str(exc))
            record.error = error.to_dict()
        except SandboxGone:  # it died before it took the batch
            record.status = InvocationStatus.FAILED
            record.error = SandboxCrashed("the sandbox closed before it took the batch").to_dict()
        finally:
            self._running.pop(record.id, None)
            for span in received:
                span.end()
        fifo = self._book.get(trigger.queue).fifo
        kept = _failed(record, batch, fifo)
        ops: list[Op] = [PutInvocation(record)]
        if record.logs:
            ops.append(AppendLogs(
                record.id, record.function, record.logs, record.request_id, record.version
            ))
        receipts = [m.receipt for m in batch if m.id not in kept and m.receipt is not None]
        if receipts:
            ops.append(DeleteMessages(trigger.queue, receipts))
        # A batch that ran commits its effects with the deletes of the messages it
        # handled (reported failures included: they are redelivered, and the handler's
        # effects for the others stand, as with SQS).
        ran = record.status == InvocationStatus.SUCCEEDED
        if ran:
            ops += effects.ops()
        else:
            effects.discarded()
        # Settled in the background, sharing commits: the slot is free for the next batch.
        committed = self._store.submit(ops, within_s=SETTLE_WINDOW_S)

        def settled(future: asyncio.Future[None]) -> None:
            if future.cancelled():
                return
            error = future.exception()
            if error is not None and ran and isinstance(error, SquallError):
                # Its effects could not commit: the batch failed; its messages reappear
                # after their visibility timeout, like any failed batch.
                effects.discarded()
                record.status = InvocationStatus.FAILED
                record.error = error.to_dict()
                self._store.commit_soon([PutInvocation(record)])
            elif error is not None:  # stays in flight; reappears after its timeout
                log.error(
                    "settling %s failed",
                    record.id,
                    exc_info=error,
                    extra={"invocation_id": record.id, "function": record.function},
                )
            else:
                if ran:
                    effects.committed()
                if fifo and receipts:
                    self._book.signals.notify(trigger.queue)  # its groups may go on

        committed.add_done_callback(settled)

    def _receive_spans(self, queue: str, batch: list[QueueMessage]) -> list[Span]:
        """A consumer span per message, each under the span that sent it; the batch's
        invocation runs under the first."""
        tracing = self._invoker.tracing
        if tracing is None:
            return []
        return [
            tracing.start(
                f"receive {queue}",
                parent_of(m.traceparent) or ROOT,
                kind=SpanKind.CONSUMER,
                attributes={
                    "squall.queue": queue,
                    "squall.message_id": m.id,
                    "squall.receive_count": m.receive_count,
                },
            )
            for m in batch
        ]


    async def _start_runs(
        self,
        starter: RunStarter,
        trigger: QueueTrigger,
        config: FunctionConfig,
        batch: list[QueueMessage],
    ) -> None:
        """A workflow's queue trigger: each message starts a run (its id is the message's, so
        a message received again starts nothing new), deleted in the same unit."""
        now = time.time()
        record = InvocationRecord(
            id=new_id(),
            function=config.name,
            version="",
            trigger=QUEUE_TRIGGER,
            status=InvocationStatus.SUCCEEDED,
            attempt=max(m.receive_count for m in batch),
            created_at=min(m.sent_at for m in batch),
            start=now,
            end=now,
            duration_ms=0.0,
        )
        ops: list[Op] = []
        started: list[str] = []
        receipts: list[str] = []
        for message in batch:
            try:
                ops.append(
                    starter.start_op(config.name, message.id, _body(message), message.traceparent)
                )
            except SquallError as exc:  # kept: received again, then its dead-letter queue
                log.warning("message %s of %r starts no run: %s", message.id, trigger.queue, exc)
                continue
            started.append(message.id)
            if message.receipt is not None:
                receipts.append(message.receipt)
        record.result = msgspec.json.encode({"workflow": config.name, "run_ids": started})
        ops.append(PutInvocation(record))
        if receipts:
            ops.append(DeleteMessages(trigger.queue, receipts))
        try:
            await self._store.submit(ops, within_s=SETTLE_WINDOW_S)
        except Exception:  # stays in flight; reappears after its visibility timeout
            log.exception("starting runs of %s from %r failed", config.name, trigger.queue)
            return
        starter.wake()
        if self._book.get(trigger.queue).fifo and receipts:
            self._book.signals.notify(trigger.queue)


def _body(message: QueueMessage) -> Any:
    try:
        return msgspec.json.decode(message.body)
    except msgspec.DecodeError:
        raise InvalidInput("a workflow's input must be JSON", field="body") from None


def _batches(messages: list[QueueMessage], size: int) -> list[list[QueueMessage]]:
    """Split a lease into batches of ``size``; a FIFO group (at most ``size`` messages of a
    lease) is never split, so its messages stay in one batch, in order."""
    if not messages or messages[0].group_id is None:
        return [messages[i : i + size] for i in range(0, len(messages), size)]
    groups: dict[str | None, list[QueueMessage]] = {}
    for m in messages:
        groups.setdefault(m.group_id, []).append(m)
    batches: list[list[QueueMessage]] = [[]]
    for members in groups.values():
        if len(batches[-1]) + len(members) > size:
            batches.append([])
        batches[-1].extend(members)
    return [b for b in batches if b]


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

