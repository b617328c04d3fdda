"""The distributed store: state in PostgreSQL; functions' deliveries, user queues' messages
and app streams' records on NATS JetStream.

Every node of a cluster opens one. Reads, control-plane state, invocation records, tables
and workflows are the PostgreSQL store's; app streams' records are JetStream's (see
``records``: they go through the same outbox as deliveries), and so are the messages of
the SQS-like queues (see ``messages``: a ``SendMessages`` op becomes outbox rows after its
dedup check, a ``DeleteMessages`` op acks after the commit). Deliveries to functions
(queues ``fn:<name>``: async invokes, matched events, schedule ticks, destinations,
redrives) travel on JetStream, so any number of invoker nodes share them through each
queue's durable pull consumer. The
platform's internal queues (delayed events, rule targets, workflow steps) stay in
PostgreSQL, leased by the one node that holds the coordinator lease.

A unit of work is still one PostgreSQL transaction:

- its ``Enqueue`` ops on brokered queues are written as outbox rows beside its effects;
  once the transaction commits, the committing node publishes them (``Nats-Msg-Id`` = the
  delivery id, or ``<queue>/<dedup key>``) and deletes the rows. A node that dies between
  commit and publish leaves the rows for the coordinator's relay, and JetStream drops a
  second copy within its duplicate window. The relay takes only rows older than
  ``RELAY_AFTER_S``: younger ones are their node's to publish (and, until its lazy delete
  lands, already published), so relaying them would publish them twice;
- its ``Ack`` / ``Retry`` / ``Bury`` ops on deliveries leased from JetStream settle the
  messages after the commit (a bury's dead letter is committed with the unit). A node that
  dies in between has the message redelivered; ``lease`` then finds the invocation's record
  finished and only acks it, so effects committed with the record happen once.

Objects' bytes (bucket puts) are kept in the bus prefix's JetStream object store
(``objects``: see ``storage/nats/objects.py`` and ``engine/buckets/jetstream.py``), so every
node reads what any node wrote; their metadata rows are PostgreSQL's.

After publishing, a node announces the queues on ``<prefix>.wake`` (core NATS, not
durable: the dispatchers' periodic sweep covers a lost announcement), so idle invokers on
other nodes lease at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import msgspec

from squall.model.invocation import FINISHED
from squall.model.queues import QueueMessage, QueueStats, SendOutcome
from squall.storage.nats.logs import JetStreamLog
from squall.storage.nats.messages import JetStreamMessages, as_delivery
from squall.storage.nats.objects import JetStreamObjects
from squall.storage.nats.outbox import OutboxRelay
from squall.storage.nats.queue import JetStreamConfig, JetStreamQueue, LeasedDelivery, QueueSpec
from squall.storage.nats.records import RecordsOnJetStream
from squall.storage.outbox import OutboxRow
from squall.storage.postgres.store import PostgresStore
from squall.storage.protocols import (
    Ack,
    Bury,
    DeleteMessages,
    DeleteOutbox,
    Delivery,
    DropQueue,
    Enqueue,
    ExpireMessages,
    Op,
    PurgeQueue,
    PutOutbox,
    Retry,
    SendMessages,
    SendViaOutbox,
)
from squall.storage.sqlite.db import Database
from squall.storage.sqlite.queues import send_via_outbox

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

log = logging.getLogger("squall.nats")

BROKERED_PREFIX = "fn:"  # the functions' queues; the platform's own stay in PostgreSQL
# JetStream hands a delivery to another node when its holder has not acked nor touched it
# for this long. Held deliveries are touched every third of it, however long they wait or
# run (the function's own timeout is the platform's to enforce), so only a dead or cut-off
# node's work moves.
ACK_WAIT_S = 10.0
RETRY_SOON_S = 1.0  # a delivery whose outcome could not be committed runs again after this
# The relay leaves an outbox row this long (by its delivery's enqueued_at) to the node that
# committed it, which publishes it at once. A relay that took every row it saw published
# 971 of 3,400 async invokes a second time in one run of benchmarks/cluster.py.
RELAY_AFTER_S = 3.0

_encode_names = msgspec.msgpack.encode
_decode_names = msgspec.msgpack.Decoder(list[str]).decode


def brokered(queue: str) -> bool:
    return queue.startswith(BROKERED_PREFIX)


def default_spec(queue: str) -> QueueSpec:
    return QueueSpec(name=queue)


class BrokeredStore(RecordsOnJetStream):
    """Open with ``BrokeredStore.connect(store_url, bus_url)``; ``close`` closes both."""

    exclusive = False  # nodes share the schema: a dead node's lease expires, it is not taken

    _broker: JetStreamQueue
    _messages: JetStreamMessages  # the user queues' messages
    relay: OutboxRelay  # publishes rows a node left behind; run by the coordinator
    objects: JetStreamObjects  # the buckets' object bytes

    def __init__(self, db: Database[Op]) -> None:
        super().__init__(db)
        self.specs: Callable[[str], QueueSpec] = default_spec  # set by the platform
        self._leased: dict[str, LeasedDelivery] = {}  # by delivery id, until settled
        self._declared: set[str] = set()
        self._wake_listeners: list[Callable[[str], None]] = []
        self._wake_sub: Subscription | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.ack_wait_s = ACK_WAIT_S
        self.relay_after_s = RELAY_AFTER_S

    @classmethod
    async def connect_brokered(cls, url: str, bus: JetStreamConfig) -> BrokeredStore:
        store = await cls.connect(url, shared=True)
        assert isinstance(store, BrokeredStore)
        try:
            store._broker = await JetStreamQueue.open(bus)
        except BaseException:
            await PostgresStore.close(store)
            raise
        try:
            store.objects = await JetStreamObjects.open(store._broker.connection, bus)
        except BaseException:
            await store._broker.close()
            await PostgresStore.close(store)
            raise
        store._messages = JetStreamMessages(store._broker)
        store._log = JetStreamLog(
            store._broker.connection,
            prefix=bus.prefix,
            duplicate_window_s=bus.duplicate_window_s,
            replicas=bus.replicas,
            memory=bus.memory,
        )
        store.relay = OutboxRelay(
            _LeftBehind(store), store._broker, records=store._log, poll_s=1.0
        )
        return store

    @property
    def broker(self) -> JetStreamQueue:
        return self._broker

    # --- units of work ---------------------------------------------------------------------

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None:
        await self.submit(ops, within_s=within_s)

    def submit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> asyncio.Future[None]:
        ops, appended, deleted = self.take_records(ops)
        state_ops, outgoing, settling, later = self._split(ops)
        committed: asyncio.Future[None] = self._db.commit(state_ops, within_s)
        if appended or deleted:
            committed = asyncio.ensure_future(self.after_records(committed, appended, deleted))
        if not outgoing and not settling and not later:
            return committed
        return asyncio.ensure_future(self._after_commit(committed, outgoing, settling, later))

    def commit_soon(self, ops: Sequence[Op]) -> None:
        future = self.submit(ops)
        future.add_done_callback(_log_failure)

    def _split(
        self, ops: Sequence[Op]
    ) -> tuple[list[Op], list[PutOutbox], list[tuple[Op, LeasedDelivery]], list[Later]]:
        """The ops for PostgreSQL; the outbox rows, settlements and queue work that follow
        the commit."""
        state_ops: list[Op] = []
        outgoing: list[PutOutbox] = []
        settling: list[tuple[Op, LeasedDelivery]] = []
        later: list[Later] = []
        for op in ops:
            if isinstance(op, SendMessages):
                sending = _via_outbox(op.messages, op.dedup_window_s)
                state_ops.append(sending)
                later.append(functools.partial(self._publish_sent, sending))
            elif isinstance(op, DeleteMessages):
                later.append(functools.partial(self._messages.delete_many, op.queue, op.receipts))
            elif isinstance(op, ExpireMessages):  # the dedup ids' part is PostgreSQL's
                state_ops.append(op)
                later.append(functools.partial(self._messages.expire, op.queue, op.before))
            elif isinstance(op, PurgeQueue | DropQueue):
                state_ops.append(op)
                later.append(functools.partial(self._clear, op))
            elif isinstance(op, Enqueue) and brokered(op.delivery.queue):
                row = PutOutbox(op.delivery, op.dedup_key)
                outgoing.append(row)
                state_ops.append(row)
            elif isinstance(op, Ack | Retry | Bury) and op.delivery_id in self._leased:
                settling.append((op, self._leased[op.delivery_id]))
                if isinstance(op, Bury):  # its dead letter is state; the delete finds no row
                    state_ops.append(op)
            else:
                state_ops.append(op)
        return state_ops, outgoing, settling, later

    async def _after_commit(
        self,
        committed: asyncio.Future[None],
        outgoing: list[PutOutbox],
        settling: list[tuple[Op, LeasedDelivery]],
        later: list[Later],
    ) -> None:
        try:
            await committed
        except BaseException:  # nothing was published; the outcomes run again
            await self._give_back([delivery for _, delivery in settling])
            raise
        if settling:
            try:
                await self._settle(settling)
            except Exception as exc:  # redelivered after ack_wait, then acked as finished
                log.warning("settling %d deliveries on JetStream failed: %s", len(settling), exc)
        if outgoing:
            await self._publish(outgoing)
        for work in later:
            try:
                await work()
            except Exception as exc:  # the unit is committed: its caller is not told
                log.warning("queue work after a commit failed: %s", exc)

    async def _give_back(self, deliveries: list[LeasedDelivery]) -> None:
        for delivery in deliveries:
            self._leased.pop(delivery.id, None)
            with contextlib.suppress(Exception):  # unreachable: redelivered after ack_wait
                await delivery.message.nak(delay=RETRY_SOON_S)

    async def _settle(self, settling: list[tuple[Op, LeasedDelivery]]) -> None:
        for _, delivery in settling:
            self._leased.pop(delivery.id, None)
        await self._broker.settle([op for op, _ in settling], {d.id: d for _, d in settling})

    async def _publish(self, rows: list[PutOutbox]) -> None:
        """Publish committed outbox rows and delete them; rows a failure leaves behind are
        the relay's (the unit is committed, so its caller is not told)."""
        if not rows:
            return
        try:
            # One connection writes the publishes in this order, so a subject sees them
            # in commit order even though the acks are awaited together.
            await asyncio.gather(
                *(self._broker.publish(row.delivery, row.dedup_key) for row in rows)
            )
        except Exception as exc:
            log.warning("publishing %d deliveries failed (%s): the relay retries", len(rows), exc)
            self.relay.notify()
            return
        self._db.commit_lazy([_delete_outbox(rows)])
        await self._announce({row.delivery.queue for row in rows})

    # --- leasing ---------------------------------------------------------------------------

    async def lease(self, queue: str, limit: int, visibility_s: float) -> list[Delivery]:
        if not brokered(queue):
            return await super().lease(queue, limit, visibility_s)
        await self.declare([queue])
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._touch_forever())
        leased = await self._broker.lease(queue, limit, self.ack_wait_s, wait_s=0.02)
        fresh: list[Delivery] = []
        for delivery in leased:
            if delivery.attempts > 1 and await self._finished(delivery):
                await self._broker.ack(delivery)  # its unit committed; the ack was lost
                continue
            self._leased[delivery.id] = delivery
            fresh.append(delivery)
        return fresh

    async def _finished(self, delivery: LeasedDelivery) -> bool:
        record = await self.get_invocation(delivery.invocation_id)
        return record is not None and record.status in FINISHED

    async def declare(self, queues: Sequence[str]) -> None:
        """Create or update the consumers of ``queues`` now, not on their first lease: a
        queue's backlog is visible (to an autoscaler reading consumer lag) before any
        invoker has run."""
        for queue in queues:
            if brokered(queue) and queue not in self._declared:
                spec = self.specs(queue)
                await self._broker.declare(
                    QueueSpec(
                        name=queue,
                        visibility_s=self.ack_wait_s,
                        retries=spec.retries,
                        fifo=spec.fifo,
                        max_in_flight=spec.max_in_flight,
                    )
                )
                self._declared.add(queue)

    async def _touch_forever(self) -> None:
        """Keep every held delivery's lease: an invocation may wait for a sandbox or run
        for longer than ``ack_wait_s``."""
        while True:
            await asyncio.sleep(self.ack_wait_s / 3)
            try:
                for delivery in list(self._leased.values()):
                    await delivery.message.in_progress()
            except Exception as exc:  # NATS is away: the messages come back to someone
                log.warning("keeping %d leases failed: %s", len(self._leased), exc)

    async def next_due(self, queue: str) -> float | None:
        if not brokered(queue):
            return await super().next_due(queue)
        if queue not in self._declared:
            return None
        return await self._broker.next_due(queue)

    async def depth(self, queue: str | None = None) -> int:
        if queue is None:  # the work of functions; user queues' messages wait for receivers
            return await super().depth() + await self._broker.depth_below(
                BROKERED_PREFIX.removesuffix(":")
            )
        if not brokered(queue):
            return await super().depth(queue)
        if queue not in self._declared:
            return 0
        return await self._broker.depth(queue)

    # --- user queues: messages on JetStream, configs and dedup ids in PostgreSQL ---------

    async def send_messages(
        self, messages: Sequence[QueueMessage], dedup_window_s: float
    ) -> list[SendOutcome]:
        sending = _via_outbox(messages, dedup_window_s)
        outcomes: list[SendOutcome] = await self._db.call(
            lambda conn: send_via_outbox(conn, sending)
        )
        await self._publish_sent(sending)
        return outcomes

    async def receive_messages(
        self,
        queue: str,
        limit: int,
        visibility_s: float,
        *,
        fifo: bool,
        max_receive: int | None = None,
        dead_letter: str | None = None,
        per_group: int | None = None,
    ) -> list[QueueMessage]:
        return await self._messages.receive(
            queue,
            limit,
            visibility_s,
            fifo=fifo,
            max_receive=max_receive,
            dead_letter=dead_letter,
            per_group=per_group,
        )

    async def delete_message(self, queue: str, receipt: str) -> bool:
        return await self._messages.delete(queue, receipt)

    async def change_visibility(self, queue: str, receipt: str, visibility_s: float) -> bool:
        return await self._messages.change_visibility(queue, receipt, visibility_s)

    async def redrive_messages(self, dead_letter: str) -> dict[str, int]:
        counts = await self._messages.redrive(dead_letter)
        await self._announce({f"q:{queue}" for queue in counts})
        return counts

    async def queue_stats(self, queue: str) -> QueueStats:
        return await self._messages.stats(queue)

    async def next_visible(self, queue: str) -> float | None:
        return None  # receivers are woken by announcements, and poll at least every second

    async def _publish_sent(self, sending: SendViaOutbox) -> None:
        await self._publish(_sent_rows(sending))

    async def _clear(self, op: PurgeQueue | DropQueue) -> None:
        if isinstance(op, PurgeQueue):
            await self._messages.purge(op.name)
        else:
            await self._messages.drop(op.name)

    # --- wake-ups between nodes ------------------------------------------------------------

    def on_wake(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(queue)`` when any node published deliveries on ``queue``."""
        self._wake_listeners.append(listener)

    async def listen(self) -> None:
        """Subscribe to the wake announcements (once, after the listeners are set)."""
        if self._wake_sub is not None:
            return

        async def heard(message: Msg) -> None:
            with contextlib.suppress(msgspec.DecodeError):
                for queue in _decode_names(message.data):
                    for listener in self._wake_listeners:
                        listener(queue)

        self._wake_sub = await self._broker.connection.subscribe(
            f"{self._broker.prefix}.wake", cb=heard
        )

    async def watch_control(self, listener: Callable[[], None], node: str) -> None:
        """Call ``listener()`` when another node says it changed the control plane (rules,
        schedules, queues, versions and aliases), so this one reloads them."""

        async def heard(message: Msg) -> None:
            if message.data.decode(errors="replace") != node:
                listener()

        await self._broker.connection.subscribe(f"{self._broker.prefix}.control", cb=heard)

    async def announce_control(self, node: str) -> None:
        with contextlib.suppress(Exception):  # best effort: nodes also reload periodically
            await self._broker.connection.publish(
                f"{self._broker.prefix}.control", node.encode()
            )

    async def _announce(self, queues: set[str]) -> None:
        with contextlib.suppress(Exception):  # best effort: sweeps find the work anyway
            await self._broker.connection.publish(
                f"{self._broker.prefix}.wake", _encode_names(sorted(queues))
            )

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        try:
            await self._messages.close()
            await self._broker.close()
        finally:
            await super().close()


class _LeftBehind:
    """The outbox as the relay sees it: the rows, oldest first, up to the first one younger
    than the store's ``relay_after_s``."""

    def __init__(self, store: BrokeredStore) -> None:
        self._store = store

    async def pending_outbox(self, limit: int, after: int = 0) -> list[OutboxRow]:
        rows = await self._store.pending_outbox(limit, after)
        cutoff = time.time() - self._store.relay_after_s
        for at, row in enumerate(rows):
            if row.made_at > cutoff:
                return rows[:at]
        return rows

    async def commit(self, ops: Sequence[Op], *, within_s: float = 0.0) -> None:
        await self._store.commit(ops, within_s=within_s)


Later = Callable[[], Awaitable[object]]


def _via_outbox(messages: Sequence[QueueMessage], dedup_window_s: float) -> SendViaOutbox:
    return SendViaOutbox(
        list(messages), [as_delivery(m) for m in messages], dedup_window_s, sent=[]
    )


def _sent_rows(sending: SendViaOutbox) -> list[PutOutbox]:
    return [PutOutbox(sending.deliveries[index]) for index in sending.sent]


def _delete_outbox(rows: list[PutOutbox]) -> Op:
    return DeleteOutbox([row.delivery.id for row in rows])


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a background commit failed", exc_info=future.exception())
