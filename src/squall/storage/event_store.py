"""The event store contract: ops that append to streams and move projections, and reads.

``AppendEvents`` carries the version its writer expects (None: any); the store checks it
against the stream as it is at commit and raises ``WrongExpectedVersion`` (rolling the unit
back) when they differ, or ``Conflict`` when the stream was soft-deleted. Global positions
are given out by the store while applying, so they follow commit order.
``PutProjectionCheckpoint`` moves a projection generation's checkpoint only from the
position its writer read (a second writer of the same batch conflicts), in the unit that
holds the read-model writes of that batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from squall.model.event_store import (
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamMetadata,
    StreamState,
)


class AppendEvents(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    expect: int | None  # the stream version the writer saw; None: whatever it is
    events: list[NewEvent]
    recorded_at: float


class PutStreamMetadata(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    metadata: StreamMetadata
    at: float


class SoftDeleteStream(msgspec.Struct, frozen=True, kw_only=True):
    """Mark a stream deleted: reads and appends refuse it; read-all still has its events."""

    stream: str
    at: float


class PutSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    version: int
    state: bytes  # JSON
    recorded_at: float


class PutProjectionCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    generation: int
    position: int
    expect: int  # the checkpoint the batch was read after


class SwapReadModel(msgspec.Struct, frozen=True, kw_only=True):
    """Point projection ``name``'s read model at ``generation`` (a rebuild caught up)."""

    name: str
    generation: int
    retired: int  # the generation it replaces, whose checkpoint goes


EventStoreOp = (
    AppendEvents
    | PutStreamMetadata
    | SoftDeleteStream
    | PutSnapshot
    | PutProjectionCheckpoint
    | SwapReadModel
)


class EventStore(Protocol):
    async def es_stream(self, stream: str) -> StreamState | None:
        """The stream's version, metadata and deletion mark; None if never written."""
        ...

    async def es_streams(self, *, prefix: str, after: str, limit: int) -> list[StreamState]:
        """Streams by name after ``after``, whose names start with ``prefix``."""
        ...

    async def es_read_stream(
        self, stream: str, *, start: int, limit: int, backward: bool, now: float
    ) -> list[RecordedEvent]:
        """Events of ``stream`` from version ``start`` (inclusive) on, or down from it when
        ``backward``, within the stream's max age and count."""
        ...

    async def es_read_all(
        self, *, after: int, limit: int, prefixes: Sequence[str], until: int | None = None
    ) -> list[RecordedEvent]:
        """Events of every stream (whose name starts with one of ``prefixes``; empty: all)
        after global position ``after`` and up to ``until``, in global order."""
        ...

    async def es_head(self) -> int:
        """The last global position given out (0: no events)."""
        ...

    async def es_snapshot(self, stream: str) -> Snapshot | None: ...

    async def es_checkpoints(self) -> dict[tuple[str, int], int]:
        """Every projection generation's checkpoint."""
        ...

    async def es_read_models(self) -> dict[str, int]:
        """Each projection's live generation (absent: the first)."""
        ...
