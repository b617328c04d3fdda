"""User queues (SQS semantics) on JetStream, for the distributed store.

A queue's messages live on the work stream beside the functions' deliveries, each one a
``Delivery`` of the carrier queue ``q:<name>`` (subject ``<prefix>.work.q.<name>``); a FIFO
queue has a subject per message group, ``q:<name>:<group>``. Delayed messages wait on the
DELAY stream like delayed deliveries do (``delays``). What a receive needs maps onto a
durable pull consumer per queue (per group for FIFO):

- **receive** is a no-wait pull (see ``_fetch``); the consumer never gives up on a message
  (``max_deliver`` -1), so a node that dies holding one only delays it. A visibility other
  than the consumer's ack wait is a ``nak`` with that delay, which keeps the message pending
  (in flight, invisible) until then. JetStream's delivery count is the receive count: past
  ``max_receive`` the message moves to the dead-letter queue (published with a message id
  of its own, then acked, so a move cut off halfway is redone once).
- **receipt** is the message's ack subject without ``$JS.ACK.``: any node can delete
  (``+ACK``) or change the visibility (``-NAK`` with a delay) of a message another node
  received. JetStream takes the ack of an earlier delivery too, so the latest receipt of a
  message received more than once is kept in a KV bucket, and an earlier one matches
  nothing, as on the embedded store.
- **FIFO**: a group's consumer hands its messages out in publish order; a receive takes
  only groups with nothing in flight, starting one group further on each time, holding the
  queue's turn (a key created in a KV bucket, with a TTL so a dead node's turn lapses) so
  two nodes never split one group's run.
- **dedup ids** stay in PostgreSQL (``queue_dedup``), checked in the unit that sends: the
  answer to a duplicate names the first message, however long ago it was consumed.

Not kept on this backend: ``first_received_at`` after the first receive (JetStream does not
record when a message was first delivered), and a delayed FIFO message does not hold back
its group while it waits (the embedded store's does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

import msgspec

from squall.model.queues import MAX_FIFO_BATCH, QueueMessage, QueueStats
from squall.storage.nats.cancelling import reraise_if_cancelled
from squall.storage.nats.streams import ensure_consumer
from squall.storage.nats.subjects import consumer_name, escape
from squall.storage.protocols import Delivery

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext
    from nats.js.kv import KeyValue

    from squall.storage.nats.queue import JetStreamQueue

log = logging.getLogger("squall.nats")

ACK_WAIT_S = 30.0  # a receive naks to the visibility it asked for when that differs
ACK_PREFIX = "$JS.ACK."
TURN_TTL_S = 10.0  # a FIFO receive that outlives this (a dead node's) loses its turn
RECEIPT_TTL_S = 2 * 86400.0  # how long a superseded receipt is known as such
PULL_ANSWER_S = 2.0  # a no-wait pull is answered at once; unanswered, its consumer is gone
GROUP_IDLE_S = 3600.0  # a group's consumer is removed after this long unused
DRAIN_BATCH = 256
STANDARD_MAX_PENDING = 100_000  # messages of a standard queue in flight at once
EXPIRE_LIMIT = 1000  # messages deleted per queue per sweep


BUCKETS = ("FIFO_TURNS", "RECEIPTS")  # KV buckets, named <work stream>_<this>


def bucket_streams(work_stream: str) -> list[str]:
    """The streams behind the KV buckets of the user queues on ``work_stream``."""
    return [f"KV_{work_stream}_{kind}" for kind in BUCKETS]


class Carried(msgspec.Struct, frozen=True, kw_only=True):
    """A queue message's fields that travel in the delivery's payload."""

    body: bytes
    attributes: dict[str, str] = {}
    group_id: str | None = None
    dedup_id: str | None = None
    sent_at: float
    traceparent: str | None = None
    source: str | None = None  # the queue a dead-lettered message came from


_pack = msgspec.msgpack.encode
_unpack_delivery = msgspec.msgpack.Decoder(Delivery).decode
_unpack = msgspec.msgpack.Decoder(Carried).decode


def carrier(queue: str, group_id: str | None = None) -> str:
    """The work queue that carries ``queue``'s messages (a group's, for FIFO)."""
    return f"q:{queue}" if group_id is None else f"q:{queue}:{escape(group_id)}"


def queue_of(carrier_queue: str) -> str | None:
    """``q:orders:g1`` → ``orders``; None for a queue that carries no user messages."""
    parts = carrier_queue.split(":")
    return parts[1] if len(parts) >= 2 and parts[0] == "q" else None


def as_delivery(message: QueueMessage, source: str | None = None) -> Delivery:
    carried = Carried(
        body=message.body,
        attributes=message.attributes,
        group_id=message.group_id,
        dedup_id=message.dedup_id,
        sent_at=message.sent_at,
        traceparent=message.traceparent,
        source=source,
    )
    return Delivery(
        id=message.id,
        queue=carrier(message.queue, message.group_id),
        payload=_pack(carried),
        invocation_id="",
        enqueued_at=message.sent_at,
        available_at=message.available_at,
    )


class Receipt(msgspec.Struct, frozen=True):
    stream: str
    consumer: str
    sequence: int  # the message's stream sequence

    @classmethod
    def parse(cls, receipt: str) -> Receipt | None:
        # <stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or the form with
        # <domain>.<account hash> in front (servers 2.10+).
        tokens = receipt.split(".")
        at = {7: 0, 9: 2, 10: 2}.get(len(tokens))
        if at is None or any(not token for token in tokens):
            return None
        try:
            return cls(tokens[at], tokens[at + 1], int(tokens[at + 3]))
        except ValueError:
            return None


class JetStreamMessages:
    """The ``QueueStore`` message operations on JetStream (the configs stay in the state
    store); ``queue`` is the node's open ``JetStreamQueue``."""

    def __init__(self, queue: JetStreamQueue) -> None:
        self._queue = queue
        self._js: JetStreamContext = queue.connection.jetstream()
        self._stream = queue.work_stream
        self._declared: set[str] = set()
        self._buckets: dict[str, KeyValue] = {}
        self._local_turns: dict[str, asyncio.Lock] = {}
        self._rotation: dict[str, int] = {}  # FIFO queue -> the group its next receive starts at

    # --- sending ----------------------------------------------------------------------------

    async def publish(self, deliveries: Sequence[Delivery]) -> None:
        """Publish committed messages, in order (their outbox rows are the caller's)."""
        await asyncio.gather(*(self._queue.publish(d) for d in deliveries))

    # --- receiving --------------------------------------------------------------------------

    async def receive(
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
        if not fifo:
            fetched = await self._fetch(carrier(queue), limit, STANDARD_MAX_PENDING)
            return await self._take(queue, fetched, visibility_s, max_receive, dead_letter)
        async with self._turn(queue) as granted:
            if not granted:
                return []
            picked: list[QueueMessage] = []
            for group in await self._groups(queue):
                if len(picked) >= limit:
                    break
                if await self._in_flight(group) > 0:
                    continue  # its order holds: the next message waits for the one out
                take = min(per_group or limit, limit - len(picked), MAX_FIFO_BATCH)
                fetched = await self._fetch(group, take, MAX_FIFO_BATCH)
                picked += await self._take(queue, fetched, visibility_s, max_receive, dead_letter)
            return picked

    async def _take(
        self,
        queue: str,
        fetched: list[Msg],
        visibility_s: float,
        max_receive: int | None,
        dead_letter: str | None,
    ) -> list[QueueMessage]:
        now = time.time()
        taken: list[QueueMessage] = []
        for message in fetched:
            delivery = _unpack_delivery(message.data)
            carried = _unpack(delivery.payload)
            count = message.metadata.num_delivered
            if max_receive is not None and count > max_receive:
                await self._move(message, delivery, carried, queue, dead_letter)
                continue
            if visibility_s != ACK_WAIT_S:
                await message.nak(delay=visibility_s if visibility_s > 0 else None)
            assert message.reply is not None
            receipt = message.reply.removeprefix(ACK_PREFIX)
            if count > 1:
                latest = await self._receipts()
                await latest.put(str(message.metadata.sequence.stream), receipt.encode())
            taken.append(
                QueueMessage(
                    id=delivery.id,
                    queue=queue,
                    body=carried.body,
                    attributes=carried.attributes,
                    group_id=carried.group_id,
                    dedup_id=carried.dedup_id,
                    sent_at=carried.sent_at,
                    available_at=now + visibility_s,
                    receive_count=count,
                    first_received_at=now if count == 1 else None,
                    receipt=receipt,
                    traceparent=carried.traceparent,
                )
            )
        return taken

    async def _move(
        self, message: Msg, delivery: Delivery, carried: Carried, queue: str, to: str | None
    ) -> None:
        """A message received ``max_receive`` times goes to ``to`` (dropped when None)."""
        if to is not None:
            await self._republish(message, delivery, carried, to, source=queue, why="dead")
        await message.ack_sync()

    async def _republish(
        self,
        message: Msg,
        delivery: Delivery,
        carried: Carried,
        to: str,
        *,
        source: str | None,
        why: str,
    ) -> None:
        """Publish the received ``message`` on queue ``to``, visible now, under a msg id of
        its own (``why`` and its sequence here), so doing it twice queues it once."""
        await self._queue.publish(
            msgspec.structs.replace(
                delivery,
                queue=carrier(to, carried.group_id),
                payload=_pack(msgspec.structs.replace(carried, source=source)),
                available_at=time.time(),
            ),
            f"{why}/{delivery.id}/{message.metadata.sequence.stream}",
        )

    async def _fetch(self, carrier_queue: str, limit: int, max_pending: int) -> list[Msg]:
        """What the consumer has for us now, up to ``limit``, without waiting.

        nats-py's ``fetch`` leaves a pull request waiting on the server when nothing is
        there; server 2.9 may hand a message that comes due just as that request expires
        to nobody, and it comes back only after the ack wait (30 s here). A no-wait pull is
        answered at once, so nothing is ever handed to a request no one reads; receivers
        wait on announcements and their own polling instead.
        """
        for _ in range(2):
            await self._declare(carrier_queue, max_pending)
            fetched, missing = await self._pull(carrier_queue, limit)
            if not missing:
                return fetched
            # No consumer answered: another node dropped the queue (and it was made again),
            # or a group's consumer lapsed unused. Make it again (NATS being away fails
            # there) and pull once more.
            self._declared.discard(carrier_queue)
        return []

    async def _pull(self, carrier_queue: str, limit: int) -> tuple[list[Msg], bool]:
        """One no-wait pull: the messages, and whether the consumer is missing."""
        nc = self._queue.connection
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        try:
            request = {"batch": limit, "no_wait": True}
            subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{consumer_name(carrier_queue)}"
            await nc.publish(subject, json.dumps(request).encode(), reply=inbox)
            fetched: list[Msg] = []
            while len(fetched) < limit:
                try:
                    message = await sub.next_msg(timeout=PULL_ANSWER_S)
                except TimeoutError:
                    reraise_if_cancelled()
                    # The server answers a no-wait pull at once, if only with a 404: no
                    # answer at all means no such consumer (JetStream ignores the pull).
                    return fetched, not fetched
                if (message.headers or {}).get("Status"):
                    break  # 404: no more messages now; 408: the request ended
                fetched.append(message)
            return fetched, False
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _declare(self, carrier_queue: str, max_pending: int) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig

        if carrier_queue in self._declared:
            return
        grouped = carrier_queue.count(":") == 2
        await ensure_consumer(
            self._js,
            self._stream,
            ConsumerConfig(
                durable_name=consumer_name(carrier_queue),
                filter_subject=self._queue.subject(carrier_queue),
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_S,
                max_deliver=-1,
                max_ack_pending=max_pending,
                inactive_threshold=GROUP_IDLE_S if grouped else None,
            ),
        )
        self._declared.add(carrier_queue)

    async def _groups(self, queue: str) -> list[str]:
        """The carrier queues of ``queue``'s groups that hold messages, each receive starting
        one group further on (finding the oldest head would cost a request per group)."""
        subjects = sorted(await self._subjects(self._group_pattern(queue)))
        if not subjects:
            return []
        turn = self._rotation.get(queue, 0) % len(subjects)
        self._rotation[queue] = turn + 1
        return [self._carrier_of(queue, s) for s in subjects[turn:] + subjects[:turn]]

    async def _next(self, stream: str, subject: str, after: int = 0) -> tuple[int, Carried] | None:
        """The first message on ``subject`` (a wildcard too) past sequence ``after``."""
        from nats.js.errors import NotFoundError

        try:
            raw = await self._js.get_msg(stream, seq=after + 1, subject=subject, next=True)
        except NotFoundError:
            return None
        return raw.seq or after + 1, _unpack(_unpack_delivery(raw.data or b"").payload)

    async def _in_flight(self, carrier_queue: str) -> int:
        from nats.js.errors import NotFoundError

        try:
            info = await self._js.consumer_info(self._stream, consumer_name(carrier_queue))
        except NotFoundError:
            self._declared.discard(carrier_queue)  # gone (lapsed, or dropped): made again
            return 0
        return info.num_ack_pending or 0

    @contextlib.asynccontextmanager
    async def _turn(self, queue: str) -> AsyncIterator[bool]:
        """The queue's FIFO turn across nodes (False: another node is receiving)."""
        from nats.js.errors import KeyWrongLastSequenceError

        async with self._local_turns.setdefault(queue, asyncio.Lock()):
            kv = await self._turn_bucket()
            key = queue  # queue names are valid keys: letters, digits, '-', '_', '.'
            try:
                await kv.create(key, b"1")
            except KeyWrongLastSequenceError:
                granted = False
            else:
                granted = True
            try:
                yield granted
            finally:
                if granted:
                    with contextlib.suppress(Exception):  # else it lapses after TURN_TTL_S
                        await kv.delete(key)

    async def _bucket(self, kind: str, ttl_s: float, *, memory: bool) -> KeyValue:
        bucket = self._buckets.get(kind)
        if bucket is None:
            from nats.js.api import KeyValueConfig, StorageType

            bucket = await self._js.create_key_value(
                KeyValueConfig(
                    bucket=f"{self._stream}_{kind}",
                    ttl=ttl_s,
                    storage=StorageType.MEMORY if memory else StorageType.FILE,
                )
            )
            self._buckets[kind] = bucket
        return bucket

    async def _turn_bucket(self) -> KeyValue:
        return await self._bucket(BUCKETS[0], TURN_TTL_S, memory=True)

    async def _receipts(self) -> KeyValue:
        """The latest receipt of each message received more than once, by its stream
        sequence: an earlier receipt then matches nothing, as on the embedded store."""
        return await self._bucket(BUCKETS[1], RECEIPT_TTL_S, memory=self._queue.in_memory)

    # --- receipts ---------------------------------------------------------------------------

    async def delete(self, queue: str, receipt: str) -> bool:
        if not await self._held(queue, receipt):
            return False
        await self._reply(receipt, b"+ACK")
        return True

    async def delete_many(self, queue: str, receipts: Iterable[str]) -> None:
        """Delete a settled batch's messages (a queue trigger's, after its unit committed)."""
        for receipt in receipts:
            parsed = Receipt.parse(receipt)
            if parsed is not None and self._owns(queue, parsed):
                await self._queue.connection.publish(ACK_PREFIX + receipt, b"+ACK")
        await self._queue.connection.flush()

    async def change_visibility(self, queue: str, receipt: str, visibility_s: float) -> bool:
        if not await self._held(queue, receipt):
            return False
        body = b"-NAK"
        if visibility_s > 0:
            body += b" " + json.dumps({"delay": int(visibility_s * 1e9)}).encode()
        await self._reply(receipt, body)
        return True

    def _owns(self, queue: str, receipt: Receipt) -> bool:
        mine = consumer_name(carrier(queue))
        return receipt.stream == self._stream and (
            receipt.consumer == mine or receipt.consumer.startswith(mine + "~3A")
        )

    async def _held(self, queue: str, receipt: str) -> bool:
        """The receipt is one of ``queue``'s and its message is still on the stream."""
        from nats.js.errors import NotFoundError

        parsed = Receipt.parse(receipt)
        if parsed is None or not self._owns(queue, parsed):
            return False
        try:
            await self._js.get_msg(self._stream, seq=parsed.sequence)
        except NotFoundError:
            return False
        latest = await self._latest(parsed.sequence)
        return latest is None or latest == receipt

    async def _latest(self, sequence: int) -> str | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await (await self._receipts()).get(str(sequence))
        except KeyNotFoundError:
            return None
        return (entry.value or b"").decode() or None

    async def _reply(self, receipt: str, body: bytes) -> None:
        # A request, so the server has applied it when this returns (as ack_sync).
        await self._queue.connection.request(ACK_PREFIX + receipt, body, timeout=5.0)

    # --- whole queues -----------------------------------------------------------------------

    async def stats(self, queue: str) -> QueueStats:
        subjects: dict[str, int] = {}
        delayed = 0
        oldest: float | None = None
        parked = self._queue.delay_stream
        for pattern in self._patterns(queue):
            subjects.update(await self._subjects(pattern))
        for pattern in self._patterns(queue, parked):
            delayed += sum((await self._subjects(pattern, parked)).values())
        for stream in (self._stream, self._queue.delay_stream):
            for pattern in self._patterns(queue, stream):
                first = await self._next(stream, pattern)
                if first is not None:
                    sent = first[1].sent_at
                    oldest = sent if oldest is None else min(oldest, sent)
        in_flight = 0
        for subject in subjects:
            in_flight += await self._in_flight(self._carrier_of(queue, subject))
        return QueueStats(
            visible=max(sum(subjects.values()) - in_flight, 0),
            in_flight=in_flight,
            delayed=delayed,
            oldest_sent_at=oldest,
        )

    async def _subjects(self, pattern: str, stream: str | None = None) -> dict[str, int]:
        """The subjects matching ``pattern`` that hold messages, with their counts."""
        info = await self._js.stream_info(stream or self._stream, subjects_filter=pattern)
        return {s: n for s, n in (info.state.subjects or {}).items() if n > 0}

    def _patterns(self, queue: str, stream: str | None = None) -> tuple[str, str]:
        """The subjects of ``queue``'s messages: its own (standard), its groups' (FIFO)."""
        kind = "delay" if stream == self._queue.delay_stream else "work"
        own = self._queue.subject(carrier(queue), kind)
        return own, own + ".*"

    def _group_pattern(self, queue: str) -> str:
        return self._patterns(queue)[1]

    def _carrier_of(self, queue: str, subject: str) -> str:
        if subject == self._queue.subject(carrier(queue)):
            return carrier(queue)
        # A group's token was escaped twice on its way in (once in ``carrier``).
        return f"{carrier(queue)}:{_unescape(subject.rsplit('.', 1)[1])}"

    async def purge(self, queue: str) -> None:
        from nats.js.errors import NotFoundError

        for stream in (self._stream, self._queue.delay_stream):
            for pattern in self._patterns(queue, stream):
                with contextlib.suppress(NotFoundError):
                    await self._js.purge_stream(stream, subject=pattern)

    async def drop(self, queue: str) -> None:
        """Purge the queue and remove its consumers (its config is the state store's)."""
        from nats.js.errors import NotFoundError

        await self.purge(queue)
        mine = consumer_name(carrier(queue))
        for info in await self._js.consumers_info(self._stream):
            name = info.name or ""
            if name == mine or name.startswith(mine + "~3A"):
                with contextlib.suppress(NotFoundError):
                    await self._js.delete_consumer(self._stream, name)
        self._declared = {c for c in self._declared if queue_of(c) != queue}

    async def expire(self, queue: str, before: float) -> int:
        """Delete ``queue``'s messages sent before ``before``, oldest first, up to
        ``EXPIRE_LIMIT`` a call; return how many."""
        from nats.js.errors import NotFoundError

        deleted = 0
        for pattern in self._patterns(queue):
            after = 0
            while deleted < EXPIRE_LIMIT:
                found = await self._next(self._stream, pattern, after)
                if found is None or found[1].sent_at >= before:
                    break
                after = found[0]
                with contextlib.suppress(NotFoundError):  # received and deleted meanwhile
                    await self._js.delete_msg(self._stream, after)
                deleted += 1
        return deleted

    async def redrive(self, dead_letter: str) -> dict[str, int]:
        """Move ``dead_letter``'s messages back to the queues they came from."""
        counts: dict[str, int] = {}
        groups = await self._subjects(self._group_pattern(dead_letter))
        carriers = [carrier(dead_letter)] + [self._carrier_of(dead_letter, s) for s in groups]
        for carried in carriers:
            fifo = carried != carrier(dead_letter)
            kept: list[Msg] = []
            seen: set[int] = set()
            while True:
                fetched = await self._fetch(
                    carried, DRAIN_BATCH, MAX_FIFO_BATCH if fifo else STANDARD_MAX_PENDING
                )
                fresh = [m for m in fetched if m.metadata.sequence.stream not in seen]
                if not fresh:
                    break
                for message in fresh:
                    seen.add(message.metadata.sequence.stream)
                    delivery = _unpack_delivery(message.data)
                    carried_fields = _unpack(delivery.payload)
                    source = carried_fields.source
                    if source is None:
                        kept.append(message)
                        continue
                    await self._republish(
                        message, delivery, carried_fields, source, source=None, why="redrive"
                    )
                    await message.ack_sync()
                    counts[source] = counts.get(source, 0) + 1
            for message in kept:  # visible again at once, not after the ack wait
                await message.nak()
        return counts

    async def close(self) -> None:
        self._declared.clear()  # the consumers outlive this node; nothing else is held


def _unescape(token: str) -> str:
    """Undo ``subjects.escape`` once (a group token was escaped twice on its way in)."""
    out = bytearray()
    at = 0
    while at < len(token):
        if token[at] == "~":
            out.append(int(token[at + 1 : at + 3], 16))
            at += 3
        else:
            out += token[at].encode()
            at += 1
    return out.decode()
