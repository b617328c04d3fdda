"""The queues of the platform: the app's and those made through the API, and what they do.

Every entry point validates its input whole and raises an error naming the field before it
changes anything. Sends and deletes signal waiting receivers in the process, so a long poll
returns as soon as a message arrives.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from squall.engine.effects import Effects
from squall.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from squall.model.ids import new_id
from squall.model.queues import (
    DEDUP_WINDOW_S,
    MAX_BATCH,
    MAX_DELAY_S,
    MAX_MESSAGE_BYTES,
    MAX_RECEIVE_MESSAGES,
    MAX_VISIBILITY_S,
    MAX_WAIT_S,
    QueueConfig,
    QueueMessage,
    QueueStats,
    SendOutcome,
    check_dead_letter,
)
from squall.storage.protocols import (
    DropQueue,
    ExpireMessages,
    PurgeQueue,
    PutQueue,
    SendMessages,
    Store,
)

log = logging.getLogger("squall.queues")

SWEEP_S = 60.0  # retention and dedup windows are enforced this often
MAX_ID_LENGTH = 128


class Signals:
    """In-process wake-ups per queue; a waiter registers before it looks, so none is missed."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}

    def future(self, queue: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(queue, set()).add(future)
        return future

    def notify(self, queue: str) -> None:
        for future in self._waiters.pop(queue, ()):
            if not future.done():
                future.set_result(None)

    def discard(self, queue: str, future: asyncio.Future[None]) -> None:
        self._waiters.get(queue, set()).discard(future)

    async def wait(self, queue: str, future: asyncio.Future[None], timeout: float) -> None:
        try:
            await asyncio.wait([future], timeout=max(0.0, timeout))
        finally:
            self.discard(queue, future)


class QueueBook:
    def __init__(self, store: Store, declared: Sequence[QueueConfig]) -> None:
        self._store = store
        self._queues: dict[str, QueueConfig] = {q.name: q for q in declared}
        self.signals = Signals()

    async def load(self) -> None:
        for queue in await self._store.list_queues():
            self._queues.setdefault(queue.name, queue)

    async def refresh(self) -> None:
        """Take in API queues another node made or deleted."""
        stored = {queue.name: queue for queue in await self._store.list_queues()}
        for name, queue in list(self._queues.items()):
            if queue.origin != "app" and name not in stored:
                del self._queues[name]
        for name, queue in stored.items():
            self._queues.setdefault(name, queue)

    # --- the queues ------------------------------------------------------------------------

    def get(self, name: str) -> QueueConfig:
        try:
            return self._queues[name]
        except KeyError:
            raise NotFound(
                f"queue {name!r} does not exist (queues: {', '.join(sorted(self._queues))})",
                field="queue",
                queue=name,
            ) from None

    def all(self) -> list[QueueConfig]:
        return [self._queues[name] for name in sorted(self._queues)]

    async def create(self, queue: QueueConfig) -> QueueConfig:
        queue = msgspec.structs.replace(queue, origin="api", created_at=time.time())
        queue.validate()
        check_dead_letter(queue, self._queues)
        if queue.name in self._queues:
            raise Conflict(f"queue {queue.name!r} already exists", field="name")
        await self._store.commit([PutQueue(queue)])
        self._queues[queue.name] = queue
        return queue

    async def delete(self, name: str) -> None:
        queue = self.get(name)
        if queue.origin == "app":
            raise Conflict(
                f"queue {name!r} is declared by the app and cannot be deleted here",
                field="name",
            )
        await self._store.commit([DropQueue(name)])
        del self._queues[name]

    async def purge(self, name: str) -> None:
        self.get(name)
        await self._store.commit([PurgeQueue(name)])

    async def stats(self, name: str) -> QueueStats:
        self.get(name)
        await self._store.commit(())  # a barrier: see every committed send
        return await self._store.queue_stats(name)

    # --- messages --------------------------------------------------------------------------

    async def send(
        self,
        name: str,
        body: bytes,
        *,
        attributes: dict[str, str] | None = None,
        delay_s: int | None = None,
        group_id: str | None = None,
        dedup_id: str | None = None,
        effects: Effects | None = None,
        traceparent: str | None = None,
    ) -> SendOutcome:
        """Queue one message (``body`` is JSON); returns once it is committed.

        Held in ``effects`` (a send from inside an invocation), it is queued when the
        invocation's effects commit; a FIFO duplicate is then dropped, so the id returned is
        the new message's own."""
        message = self.message(name, body, attributes, delay_s, group_id, dedup_id, traceparent)
        if effects is not None:
            effects.add(
                [SendMessages([message], DEDUP_WINDOW_S)],
                after=lambda: self.signals.notify(name),
            )
            return SendOutcome(message.id, False)
        [outcome] = await self._store.send_messages([message], DEDUP_WINDOW_S)
        self.signals.notify(name)
        return outcome

    async def send_batch(self, name: str, messages: Sequence[QueueMessage]) -> list[SendOutcome]:
        """Queue messages built by ``message`` in one commit, in their order."""
        if not 1 <= len(messages) <= MAX_BATCH:
            raise InvalidInput(
                f"a batch holds 1-{MAX_BATCH} messages, got {len(messages)}", field="messages"
            )
        outcomes = await self._store.send_messages(messages, DEDUP_WINDOW_S)
        self.signals.notify(name)
        return outcomes

    def message(
        self,
        name: str,
        body: bytes,
        attributes: dict[str, str] | None,
        delay_s: int | None,
        group_id: str | None,
        dedup_id: str | None,
        traceparent: str | None = None,
    ) -> QueueMessage:
        queue = self.get(name)
        attributes = attributes or {}
        size = len(body) + sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items())
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(
                f"message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes",
                field="body",
                size=size,
                limit=MAX_MESSAGE_BYTES,
            )
        if delay_s is None:
            delay_s = queue.delay_s
        if isinstance(delay_s, bool) or not isinstance(delay_s, int):
            raise InvalidInput(f"delay_s={delay_s!r} must be an integer", field="delay_s")
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise InvalidInput(
                f"delay_s={delay_s} is out of range (allowed 0-{MAX_DELAY_S})", field="delay_s"
            )
        _check_id("group_id", group_id)
        _check_id("dedup_id", dedup_id)
        if queue.fifo:
            if group_id is None:
                raise InvalidInput(
                    f"queue {name!r} is FIFO: a message needs a group_id", field="group_id"
                )
            if dedup_id is None and queue.content_based_dedup:
                dedup_id = hashlib.sha256(body).hexdigest()
        else:
            for field, value in (("group_id", group_id), ("dedup_id", dedup_id)):
                if value is not None:
                    raise InvalidInput(
                        f"queue {name!r} is a standard queue: {field} applies to FIFO queues"
                        " only",
                        field=field,
                    )
        now = time.time()
        return QueueMessage(
            id=new_id(),
            queue=name,
            body=body,
            attributes=attributes,
            group_id=group_id,
            dedup_id=dedup_id,
            sent_at=now,
            available_at=now + delay_s,
            traceparent=traceparent,
        )

    async def receive(
        self,
        name: str,
        *,
        max_messages: int = 1,
        wait_s: float = 0.0,
        visibility_s: int | None = None,
    ) -> list[QueueMessage]:
        """Long polling: wait up to ``wait_s`` for a first message, then return at once."""
        queue = self.get(name)
        _check_number("max_messages", max_messages, 1, MAX_RECEIVE_MESSAGES)
        _check_number("wait_s", wait_s, 0, MAX_WAIT_S, integer=False)
        if visibility_s is None:
            visibility_s = queue.visibility_timeout_s
        _check_number("visibility_s", visibility_s, 0, MAX_VISIBILITY_S)
        deadline = time.monotonic() + wait_s
        while True:
            future = self.signals.future(name)
            messages = await self.lease(queue, max_messages, visibility_s)
            left = deadline - time.monotonic()
            if messages or left <= 0:
                self.signals.discard(name, future)
                return messages
            await self.signals.wait(name, future, min(left, await self.until_visible(name)))

    async def lease(
        self,
        queue: QueueConfig,
        limit: int,
        visibility_s: float,
        per_group: int | None = None,
    ) -> list[QueueMessage]:
        dead_letter = queue.dead_letter if queue.dead_letter in self._queues else None
        messages = await self._store.receive_messages(
            queue.name,
            limit,
            visibility_s,
            fifo=queue.fifo,
            max_receive=queue.max_receive,
            dead_letter=dead_letter,
            per_group=per_group,
        )
        if dead_letter is not None:
            self.signals.notify(dead_letter)
        return messages

    async def until_visible(self, name: str, cap: float = 1.0) -> float:
        """Seconds until an invisible message of ``name`` may become visible, at most ``cap``."""
        at = await self._store.next_visible(name)
        return cap if at is None else min(cap, max(0.005, at - time.time()))

    async def delete_message(self, name: str, receipt: str) -> None:
        """Delete a received message; its receipt must be the one of its latest receive."""
        self.get(name)
        if not await self._store.delete_message(name, receipt):
            raise NotFound(
                f"receipt {receipt!r} matches no message of queue {name!r} (deleted, or"
                " received again since)",
                field="receipt",
            )
        self.signals.notify(name)  # a FIFO group may be free now

    async def change_visibility(self, name: str, receipt: str, visibility_s: int) -> None:
        self.get(name)
        _check_number("visibility_s", visibility_s, 0, MAX_VISIBILITY_S)
        if not await self._store.change_visibility(name, receipt, visibility_s):
            raise NotFound(
                f"receipt {receipt!r} matches no message in flight on queue {name!r}",
                field="receipt",
            )
        self.signals.notify(name)

    async def redrive(self, name: str) -> dict[str, int]:
        """Move messages dead-lettered into ``name`` back to their queues."""
        self.get(name)
        counts = await self._store.redrive_messages(name)
        for queue in counts:
            self.signals.notify(queue)
        return counts

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            await self.sweep()

    async def sweep(self) -> None:
        now = time.time()
        ops: list[Any] = [
            ExpireMessages(q.name, now - q.retention_s, now) for q in self._queues.values()
        ]
        if ops:
            try:
                await self._store.commit(ops)
            except Exception:
                log.exception("expiring queue messages failed")


def _check_id(field: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidInput(
            f"{field} must be a string of 1-{MAX_ID_LENGTH} characters, got {value!r}",
            field=field,
        )


def _check_number(
    field: str, value: object, low: int, high: int, *, integer: bool = True
) -> None:
    kinds = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        raise InvalidInput(f"{field}={value!r} is out of range (allowed {low}-{high})", field=field)
