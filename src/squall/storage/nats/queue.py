"""Deliveries on NATS JetStream: one work-queue stream, a durable pull consumer per queue.

Subjects are ``<prefix>.work.<queue>`` (``fn:resize`` → ``squall.work.fn.resize``), all in
the stream ``<PREFIX>_WORK`` with work-queue retention: a message leaves the stream when
it is acked. Each queue has the durable consumer of its own subject, whose ``ack_wait`` is
the lease's visibility and whose ``max_deliver`` is the function's attempts (retries + 1)
plus one; a lease is a fetch, and a consumer that dies holding messages has them redelivered
once ``ack_wait`` passes. The delivery past the last attempt is never run: it comes
``exhausted``, for the caller to dead-letter. Without it a process that died during the
last attempt would leave the message in the stream, never delivered again and never
dead-lettered (JetStream's max-deliveries advisory is not durable). A FIFO queue's
consumer allows one message in flight, so it is served strictly in publish order, retries
included; FIFO groups and stream shards get one queue each.

Publishing sets ``Nats-Msg-Id`` to the delivery id (or ``<queue>/<dedup key>``): a second
publish within the stream's duplicate window is dropped, which is what makes the outbox
relay and a retried publish safe. Deliveries not due yet wait on the DELAY stream (see
``delays``).

The unit of work of the embedded store becomes: commit the effects and the invocation's
record to the state store, then ``settle`` its ``Ack`` / ``Retry`` / ``Bury`` ops here. A
crash in between redelivers the message; the consumer finds the invocation's record final
and only acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from squall.errors import ConfigError
from squall.model.invocation import DeadLetter
from squall.storage.nats.cancelling import reraise_if_cancelled
from squall.storage.nats.connect import ConnectOptions, connect
from squall.storage.nats.delays import MOVER, DelayMover
from squall.storage.nats.streams import StreamSpec, ensure_consumer, ensure_stream
from squall.storage.nats.subjects import check_prefix, consumer_name, queue_tokens, stream_name
from squall.storage.protocols import Ack, Bury, Delivery, Op, Retry

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.api import ConsumerConfig
    from nats.js.client import JetStreamContext

_pack = msgspec.msgpack.encode
_unpack = msgspec.msgpack.Decoder(Delivery).decode

MSG_ID = "Nats-Msg-Id"


@dataclass(frozen=True, kw_only=True)
class JetStreamConfig:
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    prefix: str = "squall"  # subjects <prefix>.work.> and <prefix>.delay.>
    duplicate_window_s: float = 120.0
    replicas: int = 1
    memory: bool = False
    move_delays: bool = True  # run a delay mover in this process (any number may run)

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        if self.duplicate_window_s <= 0:
            raise ConfigError("duplicate_window_s must be > 0", field="duplicate_window_s")
        if self.replicas < 1:
            raise ConfigError("replicas must be >= 1", field="replicas")


@dataclass(frozen=True, kw_only=True)
class QueueSpec:
    """A queue's consumer: ``visibility_s`` is its ack wait, ``retries`` + 1 the attempts
    (``max_deliver`` is one more, see above); ``fifo`` allows one message in flight."""

    name: str
    visibility_s: float = 30.0
    retries: int = 2
    fifo: bool = False
    max_in_flight: int = 10_000

    def __post_init__(self) -> None:
        queue_tokens(self.name)
        if self.visibility_s <= 0:
            raise ConfigError("visibility_s must be > 0", field="visibility_s")
        if self.retries < 0:
            raise ConfigError("retries must be >= 0", field="retries")
        if self.max_in_flight < 1:
            raise ConfigError("max_in_flight must be >= 1", field="max_in_flight")

    @property
    def attempts(self) -> int:
        return self.retries + 1

    @property
    def max_deliver(self) -> int:
        return self.attempts + 1


class LeasedDelivery(Delivery, kw_only=True):
    """A delivery as leased from JetStream, holding the message it came in."""

    message: Any  # nats.aio.msg.Msg; Any because msgspec resolves field types at run time
    last_attempt: bool = False  # a failure now is final: bury rather than retry


class JetStreamQueue:
    """The work queue on JetStream; open with ``JetStreamQueue.open(config)``."""

    def __init__(self, nc: Client, config: JetStreamConfig) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._config = config
        self.prefix = config.prefix
        self.work_stream = stream_name(config.prefix, "work")
        self.delay_stream = stream_name(config.prefix, "delay")
        self._specs: dict[str, QueueSpec] = {}
        self._subs: dict[str, JetStreamContext.PullSubscription] = {}
        self._mover: asyncio.Task[None] | None = None
        self.ensured: dict[str, str] = {}  # what opening did to the streams (see ensure_streams)

    @property
    def in_memory(self) -> bool:
        """The streams keep messages in memory (tests, throwaway clusters), not on disk."""
        return self._config.memory

    @property
    def connection(self) -> Client:
        """The NATS connection, for core (not JetStream) subjects beside the queue's."""
        return self._nc

    @classmethod
    async def open(cls, config: JetStreamConfig | None = None) -> JetStreamQueue:
        config = config or JetStreamConfig()
        queue = cls(await connect(config.connect), config)
        try:
            queue.ensured = await queue.ensure_streams()
            if config.move_delays:
                queue._mover = asyncio.create_task(
                    DelayMover(queue._js, queue.delay_stream, queue._publish_due).run(),
                    name="squall-nats-delays",
                )
        except BaseException:
            await queue._nc.close()
            raise
        return queue

    async def ensure_streams(self) -> dict[str, str]:
        """Create or update both streams and the delay mover's consumer; say what changed."""
        from nats.js.api import AckPolicy, ConsumerConfig

        work, delay = (
            StreamSpec(
                name=name,
                subjects=[f"{self.prefix}.{kind}.>"],
                duplicate_window_s=self._config.duplicate_window_s,
                replicas=self._config.replicas,
                memory=self._config.memory,
            )
            for name, kind in ((self.work_stream, "work"), (self.delay_stream, "delay"))
        )
        mover = ConsumerConfig(
            durable_name=MOVER,
            filter_subject=f"{self.prefix}.delay.>",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=-1,
            # Parked deliveries are all pending at once: allow as many as the stream holds.
            max_ack_pending=-1,
        )
        return {
            self.work_stream: await ensure_stream(self._js, work),
            self.delay_stream: await ensure_stream(self._js, delay),
            MOVER: await ensure_consumer(self._js, self.delay_stream, mover),
        }

    async def declare(self, spec: QueueSpec) -> str:
        """Create or update ``spec``'s durable consumer (``created`` / ``updated`` /
        ``unchanged``); a queue is declared before it is leased from."""
        result = await ensure_consumer(self._js, self.work_stream, self._consumer(spec))
        self._specs[spec.name] = spec
        return result

    def _consumer(self, spec: QueueSpec) -> ConsumerConfig:
        from nats.js.api import AckPolicy, ConsumerConfig

        return ConsumerConfig(
            durable_name=consumer_name(spec.name),
            filter_subject=self.subject(spec.name),
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=spec.visibility_s,
            max_deliver=spec.max_deliver,
            max_ack_pending=1 if spec.fifo else spec.max_in_flight,
        )

    def subject(self, queue: str, kind: str = "work") -> str:
        return f"{self.prefix}.{kind}.{queue_tokens(queue)}"

    # --- publish ---------------------------------------------------------------------------

    async def publish(self, delivery: Delivery, dedup_key: str | None = None) -> bool:
        """Store ``delivery`` durably; False when JetStream dropped it as a duplicate."""
        msg_id = delivery.id if dedup_key is None else f"{delivery.queue}/{dedup_key}"
        kind = "delay" if delivery.available_at > time.time() else "work"
        ack = await self._js.publish(
            self.subject(delivery.queue, kind), _pack(delivery), headers={MSG_ID: msg_id}
        )
        return not ack.duplicate

    async def _publish_due(self, delivery: Delivery, msg_id: str) -> bool:
        ack = await self._js.publish(
            self.subject(delivery.queue), _pack(delivery), headers={MSG_ID: msg_id}
        )
        return not ack.duplicate

    # --- lease and settle ------------------------------------------------------------------

    async def lease(
        self, queue: str, limit: int, visibility_s: float, *, wait_s: float = 0.05
    ) -> list[LeasedDelivery]:
        """Fetch up to ``limit`` deliveries of ``queue``, unacked for ``visibility_s``
        before JetStream hands them to another consumer; waits up to ``wait_s`` for one.

        Prefer long waits: nats-server 2.9 may count a redelivery that comes due just as a
        fetch expires as delivered without handing it over; it is back after ack_wait.
        """
        spec = self._specs.get(queue)
        if spec is None:
            raise ConfigError(f"queue {queue!r} was not declared", field="queue")
        if visibility_s != spec.visibility_s:
            await self.declare(dataclasses.replace(spec, visibility_s=visibility_s))
            spec = self._specs[queue]
        sub = self._subs.get(queue)
        if sub is None:
            sub = await self._js.pull_subscribe_bind(
                durable=consumer_name(queue), stream=self.work_stream
            )
            self._subs[queue] = sub
        try:
            messages = await sub.fetch(limit, timeout=wait_s)
        except TimeoutError:  # asyncio's or nats-py's subclass of it
            reraise_if_cancelled()
            return []
        except Exception:
            reraise_if_cancelled()
            raise
        now = time.time()
        return [self._leased(message, spec, now) for message in messages]

    @staticmethod
    def _leased(message: Msg, spec: QueueSpec, now: float) -> LeasedDelivery:
        d = _unpack(message.data)
        attempts = message.metadata.num_delivered
        return LeasedDelivery(
            id=d.id,
            queue=d.queue,
            payload=d.payload,
            invocation_id=d.invocation_id,
            attempts=attempts,
            enqueued_at=d.enqueued_at,
            available_at=now,
            headers=d.headers,
            message=message,
            last_attempt=attempts >= spec.attempts,
            exhausted=attempts > spec.attempts,
        )

    @staticmethod
    def dead_letter(
        delivery: LeasedDelivery, *, function: str, error: dict[str, object], now: float
    ) -> DeadLetter:
        """The dead letter to commit to the state store before ``bury``."""
        return DeadLetter(
            id=delivery.id,
            function=function,
            invocation_id=delivery.invocation_id,
            payload=delivery.payload,
            error=error,
            attempts=delivery.attempts,
            enqueued_at=delivery.enqueued_at,
            failed_at=now,
        )

    async def ack(self, delivery: LeasedDelivery) -> None:
        await delivery.message.ack_sync()

    async def retry(self, delivery: LeasedDelivery, delay_s: float) -> None:
        """Give the delivery back, to be redelivered in ``delay_s`` (an attempt more)."""
        await delivery.message.nak(delay=max(delay_s, 0.0))
        await self._nc.flush()

    async def bury(self, delivery: LeasedDelivery) -> None:
        """Stop redelivering: the caller has committed the dead letter to the state store
        (``dead_letter`` builds its fields from the delivery)."""
        await delivery.message.term()
        await self._nc.flush()

    async def in_progress(self, delivery: LeasedDelivery) -> None:
        """Restart the delivery's ack wait: a long invocation keeps its lease."""
        await delivery.message.in_progress()

    async def settle(self, ops: Iterable[Op], leased: Mapping[str, LeasedDelivery]) -> None:
        """Apply a committed unit's ``Ack`` / ``Retry`` / ``Bury`` ops to the messages
        leased for them (others are the state store's alone)."""
        now = time.time()
        for op in ops:
            if isinstance(op, Ack | Retry | Bury) and op.delivery_id in leased:
                message = leased[op.delivery_id].message
                if isinstance(op, Ack):
                    await message.ack()
                elif isinstance(op, Retry):
                    await message.nak(delay=max(op.available_at - now, 0.0))
                else:
                    await message.term()
        await self._nc.flush()

    # --- the WorkQueue reads ---------------------------------------------------------------

    async def recover(self) -> int:
        """Nothing to do: JetStream redelivers what a dead consumer held after ack_wait."""
        return 0

    async def next_due(self, queue: str) -> float | None:
        """Now when ``queue`` has deliveries waiting, else None (parked ones are not seen)."""
        info = await self._js.consumer_info(self.work_stream, consumer_name(queue))
        return time.time() if info.num_pending else None

    async def depth_below(self, token: str) -> int:
        """Deliveries not yet acked on the queues whose names start with ``<token>:`` (the
        functions' ``fn:``), waiting, in flight or parked until due."""
        total = 0
        for name, kind in ((self.work_stream, "work"), (self.delay_stream, "delay")):
            info = await self._js.stream_info(
                name, subjects_filter=f"{self.prefix}.{kind}.{token}.>"
            )
            total += sum((info.state.subjects or {}).values())
        return total

    async def depth(self, queue: str | None = None) -> int:
        """Deliveries not yet acked: waiting, in flight, or parked until due."""
        if queue is None:
            total = 0
            for name in (self.work_stream, self.delay_stream):
                state = (await self._js.stream_info(name)).state
                total += state.messages
            return total
        info = await self._js.consumer_info(self.work_stream, consumer_name(queue))
        parked = await self._js.stream_info(
            self.delay_stream, subjects_filter=self.subject(queue, "delay")
        )
        return (
            (info.num_pending or 0)
            + (info.num_ack_pending or 0)
            + sum((parked.state.subjects or {}).values())
        )

    # --- lifecycle -------------------------------------------------------------------------

    async def delete_streams(self) -> None:
        """Drop both streams and every delivery on them, and the user queues' KV buckets
        (tests, decommissioning)."""
        from nats.js.errors import NotFoundError

        from squall.storage.nats.messages import bucket_streams

        await self._stop_mover()
        for name in (self.work_stream, self.delay_stream, *bucket_streams(self.work_stream)):
            with contextlib.suppress(NotFoundError):
                await self._js.delete_stream(name)

    async def close(self) -> None:
        await self._stop_mover()
        for sub in self._subs.values():
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        await self._nc.close()

    async def _stop_mover(self) -> None:
        if self._mover is not None:
            self._mover.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._mover
            self._mover = None

