"""App streams on NATS JetStream: a JetStream stream per shard, numbered as records arrive.

Shard ``s`` of stream ``orders`` is the stream ``<PREFIX>_LOG_orders_<s>`` with the one
subject ``<prefix>.log.orders.<s>`` (names escaped as in ``subjects``). A stream per shard,
rather than one per app stream or one for all, because its stream sequence *is* the shard's
sequence: contiguous and increasing whichever node published, kept as the shard's head when
retention removes every record (``state.last_seq``), and a shard's bounds and a consumer's
lag are one stream-info request each. Retention is JetStream's ``max_age`` (the app
stream's ``retention_s``), on file storage unless the bus says memory; the duplicate
window drops a record published twice under its id (``Nats-Msg-Id``) — the outbox relay
republishing what a dying node had already published. ``max_age`` is per JetStream stream,
which is why one stream for all could not keep each app stream's retention.

A message is the msgpack of ``(partition key, data)``; its arrival time is JetStream's own
timestamp, the clock that ``max_age`` and ``at_timestamp`` starting positions use. A few
records are read by direct gets of their (known, contiguous) sequences, sent together; a
longer batch through an ephemeral pull consumer that starts at the first one.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec

from squall.model.streams import StreamConfig, StreamRecord
from squall.storage.logs import AppendRecord, ConsumerPosition, ShardBounds
from squall.storage.nats.streams import StreamSpec, ensure_stream
from squall.storage.nats.subjects import escape, stream_name

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.api import StreamState
    from nats.js.client import JetStreamContext

log = logging.getLogger("squall.nats")

MSG_ID = "Nats-Msg-Id"
DIRECT_READ = 16  # up to this many records are read by direct gets, more by a consumer
MAX_NAME = 200  # JetStream keeps a file stream in a directory of its name (255 bytes at most)
ENVELOPE = 1024  # room for the msgpack around a record and its headers
_JS_API = "$JS.API"

_pack = msgspec.msgpack.encode
_unpack = msgspec.msgpack.Decoder(tuple[str, bytes]).decode


class JetStreamLog:
    def __init__(
        self,
        nc: Client,
        *,
        prefix: str,
        duplicate_window_s: float,
        replicas: int = 1,
        memory: bool = False,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._prefix = prefix
        self._duplicate_window_s = duplicate_window_s
        self._replicas = replicas
        self._memory = memory
        self._shards: dict[str, int] = {}  # app stream -> its shards, as last ensured

    # --- names -----------------------------------------------------------------------------

    def subject(self, stream: str, shard: int) -> str:
        return f"{self._prefix}.log.{escape(stream)}.{shard}"

    def stream_for(self, stream: str, shard: int) -> str:
        """The JetStream stream of one shard (a digest stands in for a long name's tail)."""
        name = escape(stream)
        if len(name) > MAX_NAME:
            digest = hashlib.sha256(stream.encode()).hexdigest()[:16]
            name = f"{name[:MAX_NAME - 17]}_{digest}"
        return f"{stream_name(self._prefix, 'log')}_{name}_{shard}"

    def knows(self, stream: str) -> bool:
        return stream in self._shards

    # --- lifecycle -------------------------------------------------------------------------

    async def ensure(self, configs: Sequence[StreamConfig]) -> None:
        """Create or update every shard's stream of ``configs`` (idempotent: each node
        ensures the app's streams when it starts)."""
        specs = [
            StreamSpec(
                name=self.stream_for(config.name, shard),
                subjects=[self.subject(config.name, shard)],
                # JetStream allows no window longer than max_age.
                duplicate_window_s=min(self._duplicate_window_s, config.retention_s),
                replicas=self._replicas,
                memory=self._memory,
                log=True,
                max_age_s=float(config.retention_s),
            )
            for config in configs
            for shard in range(config.shards)
        ]
        await asyncio.gather(*(ensure_stream(self._js, spec) for spec in specs))
        for config in configs:
            self._shards[config.name] = config.shards

    async def delete(self, stream: str) -> None:
        """Drop every shard's stream of ``stream`` (those of an older, larger shard count too)
        with its records."""
        self._shards.pop(stream, None)
        await self._delete_matching(f"{self._prefix}.log.{escape(stream)}.*")

    async def delete_all(self) -> None:
        """Drop every app stream's records under this prefix (tests, decommissioning)."""
        self._shards.clear()
        await self._delete_matching(f"{self._prefix}.log.>")

    async def _delete_matching(self, subject: str) -> None:
        from nats.js.errors import NotFoundError

        for name in await self._names(subject):
            with contextlib.suppress(NotFoundError):
                await self._js.delete_stream(name)

    async def _names(self, subject: str) -> list[str]:
        """The streams holding subjects that match ``subject`` (JetStream's STREAM.NAMES)."""
        names: list[str] = []
        while True:
            request = json.dumps({"subject": subject, "offset": len(names)}).encode()
            reply = json.loads((await self._nc.request(f"{_JS_API}.STREAM.NAMES", request)).data)
            if "error" in reply:
                raise RuntimeError(f"listing streams of {subject}: {reply['error']}")
            page = reply.get("streams") or []
            names += page
            if not page or len(names) >= reply.get("total", 0):
                return names

    # --- appends ---------------------------------------------------------------------------

    @property
    def max_record_bytes(self) -> int:
        """The largest record (data and partition key) the NATS server takes in a message,
        with room for the envelope and headers."""
        return int(self._nc.max_payload) - ENVELOPE

    async def publish_record(self, record: AppendRecord) -> int | None:
        """Store ``record`` on its shard; its sequence (the first copy's, for a duplicate),
        or None when its stream is gone (deleted after the unit committed)."""
        from nats.errors import NoRespondersError
        from nats.js.errors import NoStreamResponseError, NotFoundError

        name = self.stream_for(record.stream, record.shard)
        try:
            ack = await self._js.publish(
                self.subject(record.stream, record.shard),
                _pack((record.partition_key, record.data)),
                stream=name,
                headers={MSG_ID: record.id},
            )
        except (NoStreamResponseError, NoRespondersError):
            try:  # nobody answered: a stream that is gone, or JetStream is away
                await self._js.stream_info(name)
            except NotFoundError:
                log.warning("stream %s shard %d is gone: record %s dropped with it",
                            record.stream, record.shard, record.id)
                return None
            raise
        return int(ack.seq)

    async def publish_records(self, records: Sequence[AppendRecord]) -> list[int | None]:
        """Publish in order on one connection (so a shard keeps their order), acks awaited
        together."""
        return list(await asyncio.gather(*(self.publish_record(r) for r in records)))

    # --- reads -----------------------------------------------------------------------------

    async def _state(self, stream: str, shard: int) -> StreamState | None:
        from nats.js.errors import NotFoundError

        try:
            return (await self._js.stream_info(self.stream_for(stream, shard))).state
        except NotFoundError:
            return None

    async def read(self, stream: str, shard: int, after: int, limit: int) -> list[StreamRecord]:
        state = await self._state(stream, shard)
        if state is None or not state.messages:
            return []
        start = max(after + 1, state.first_seq)
        count = min(limit, state.last_seq - start + 1)
        if count <= 0:
            return []
        if count <= DIRECT_READ:
            return await self._get_each(stream, shard, range(start, start + count))
        return await self._fetch(stream, shard, start, count)

    async def _get_each(self, stream: str, shard: int, seqs: range) -> list[StreamRecord]:
        from nats.js.errors import NotFoundError

        name = self.stream_for(stream, shard)
        found = await asyncio.gather(
            *(self._js.get_msg(name, seq, direct=True) for seq in seqs), return_exceptions=True
        )
        records: list[StreamRecord] = []
        for got in found:
            if isinstance(got, NotFoundError):  # retention removed it meanwhile
                continue
            if isinstance(got, BaseException):
                raise got
            assert got.seq is not None and got.headers is not None
            stamp = _stamp(got.headers["Nats-Time-Stamp"])
            records.append(_record(shard, got.seq, got.data or b"", stamp))
        return records

    async def _fetch(self, stream: str, shard: int, start: int, count: int) -> list[StreamRecord]:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        name = self.stream_for(stream, shard)
        info = await self._js.add_consumer(
            name,
            ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,  # gone by itself if this process dies reading
                mem_storage=True,
                num_replicas=1,
            ),
        )
        try:
            sub = await self._js.pull_subscribe_bind(consumer=info.name, stream=name)
            try:
                messages = await sub.fetch(count, timeout=5.0)
            finally:
                await sub.unsubscribe()
        finally:
            with contextlib.suppress(Exception):  # else it lapses after inactive_threshold
                await self._js.delete_consumer(name, info.name)
        return [
            _record(shard, m.metadata.sequence.stream, m.data, m.metadata.timestamp)
            for m in messages
        ]

    async def heads(self, stream: str) -> dict[int, int]:
        states = await self._states(stream)
        return {shard: state.last_seq for shard, state in states.items() if state.last_seq}

    async def _states(self, stream: str) -> dict[int, StreamState]:
        shards = range(self._shards.get(stream, 0))
        states = await asyncio.gather(*(self._state(stream, shard) for shard in shards))
        found = zip(shards, states, strict=True)
        return {shard: state for shard, state in found if state is not None}

    async def shard_bounds(self, stream: str, shards: int) -> list[ShardBounds]:
        states = await asyncio.gather(*(self._state(stream, shard) for shard in range(shards)))
        bounds: list[ShardBounds] = []
        for shard, state in enumerate(states):
            if state is None or not state.messages:
                bounds.append(ShardBounds(shard, 0, None, None))
            else:
                bounds.append(ShardBounds(shard, state.messages, state.first_seq, state.last_seq))
        return bounds

    async def first_sequence_at(self, stream: str, shard: int, at: float) -> int | None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        state = await self._state(stream, shard)
        if state is None or not state.messages:
            return None
        name = self.stream_for(stream, shard)
        info = await self._js.add_consumer(
            name,
            ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.fromtimestamp(at, UTC),
                ack_policy=AckPolicy.NONE,
                inactive_threshold=30.0,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        try:
            if not info.num_pending:
                return None
            sub = await self._js.pull_subscribe_bind(consumer=info.name, stream=name)
            try:
                messages = await sub.fetch(1, timeout=5.0)
            finally:
                await sub.unsubscribe()
        finally:
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(name, info.name)
        return int(messages[0].metadata.sequence.stream) if messages else None

    async def consumer_position(
        self, stream: str, shard: int, checkpoint: int
    ) -> ConsumerPosition:
        state = await self._state(stream, shard)
        if state is None or not state.messages:
            return ConsumerPosition(0, None)
        start = max(checkpoint + 1, state.first_seq)
        behind = max(0, state.last_seq - start + 1)
        if not behind:
            return ConsumerPosition(0, None)
        first = await self._get_each(stream, shard, range(start, start + 1))
        return ConsumerPosition(behind, first[0].arrival_time if first else None)


def _stamp(text: str) -> datetime:
    """A direct get's RFC 3339 time (nanoseconds) as the datetime nats-py makes of a
    consumer's message time, so both reads give a record the same arrival time."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    nanos = seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)
    return datetime.fromtimestamp(nanos / 1_000_000_000.0, UTC)


def _record(shard: int, seq: int, payload: bytes, stamp: datetime) -> StreamRecord:
    key, data = _unpack(payload)
    return StreamRecord(
        shard=shard,
        sequence=seq,
        partition_key=key,
        data=msgspec.Raw(data),
        arrival_time=stamp.timestamp(),
    )


def log_name(stream: str) -> bool:
    """An app stream's name (kept on JetStream), not a table's change stream (``table:…``,
    kept in PostgreSQL): app stream names cannot hold ':'."""
    return ":" not in stream
