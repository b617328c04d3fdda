"""The partitioned log: records appended per (stream, shard) under increasing sequence numbers,
read from a position, consumer checkpoints per (consumer, stream, shard), retention trims.

Appends and checkpoint advances are ops in units of work, so a checkpoint lands together
with the deliveries its batch caused (an on-failure destination, say) or not at all. Who
numbers the records depends on the store (``assigns_sequences``): the embedded store keeps
what the engine numbered from each shard's head, which one process holds; the distributed
store's records live on JetStream, whose per-shard streams number them as they arrive from
any node (the engine's ops then carry sequence 0 and an id to publish them under once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.model.streams import StreamConfig, StreamRecord


class AppendRecord(msgspec.Struct, frozen=True):
    stream: str
    shard: int
    sequence: int  # 0 when the store assigns it
    partition_key: str
    data: bytes  # JSON
    arrival_time: float
    id: str = ""  # where the store assigns sequences: the record's id, to publish it once


class PutCheckpoint(msgspec.Struct, frozen=True):
    """``consumer`` has processed ``stream``'s ``shard`` up to ``sequence`` included."""

    consumer: str
    stream: str
    shard: int
    sequence: int


class TrimLog(msgspec.Struct, frozen=True):
    """Delete the records of ``stream`` that arrived before ``before``."""

    stream: str
    before: float


class PutStream(msgspec.Struct, frozen=True):
    """Create a stream made through the admin API (the app's own come from its code)."""

    stream: StreamConfig


class DeleteStream(msgspec.Struct, frozen=True):
    """Remove a stream with its records, shard heads and checkpoints."""

    name: str


LogOp = AppendRecord | PutCheckpoint | TrimLog | PutStream | DeleteStream


class ShardBounds(msgspec.Struct, frozen=True):
    """What one shard holds now (sequences are None when it is empty)."""

    shard: int
    records: int
    first_sequence: int | None
    last_sequence: int | None


class ConsumerPosition(msgspec.Struct, frozen=True):
    """How far a consumer is behind on one shard."""

    behind: int  # records after its checkpoint
    oldest_arrival: float | None  # arrival time of the first of them


class PartitionedLog(Protocol):
    # True: the store numbers appended records (ops carry sequence 0 and an id); False: it
    # keeps the sequences the engine gave out from its in-memory heads.
    assigns_sequences: bool

    @property
    def max_record_bytes(self) -> int:
        """Data and partition key: a larger record is refused when it is put."""
        ...

    async def ensure_logs(self, streams: Sequence[StreamConfig]) -> None:
        """Make (or update) where ``streams`` keep their records, before records arrive."""
        ...

    async def append_records(self, records: Sequence[AppendRecord]) -> list[int | None]:
        """Append ``records`` in one unit of work, outside any invocation; return each one's
        sequence (None: the records are committed, their numbers are not known yet)."""
        ...

    async def list_streams(self) -> list[StreamConfig]:
        """The streams made through the admin API, by name."""
        ...

    async def read_records(
        self, stream: str, shard: int, after: int, limit: int
    ) -> list[StreamRecord]:
        """Up to ``limit`` records of the shard with a sequence above ``after``, in order."""
        ...

    async def shard_bounds(self, stream: str, shards: int) -> list[ShardBounds]: ...

    async def heads(self, stream: str) -> dict[int, int]:
        """shard -> the last sequence it gave out (kept when retention trims the records)."""
        ...

    async def first_sequence_at(self, stream: str, shard: int, time: float) -> int | None:
        """The first sequence of the shard that arrived at ``time`` or later."""
        ...

    async def checkpoints(self, stream: str) -> dict[tuple[str, int], int]:
        """(consumer, shard) -> the last sequence it processed."""
        ...

    async def consumer_position(
        self, stream: str, shard: int, checkpoint: int
    ) -> ConsumerPosition: ...
