"""The event store as functions, the admin API and the CLI use it: checked appends that
publish their events, stream reads, read-all, metadata, soft delete and snapshots.

An append from a running invocation is an effect: its ops (the ``AppendEvents`` and the
bus deliveries of its events as CloudEvents, source ``squall.es``, type the event type,
subject the stream) are held in the invocation's ``Effects`` and land with its success, in
one unit, so an event is stored exactly when it is published. The expected version is
checked at the call against the committed stream plus the invocation's own held appends
(``effects.state("es")``), raising ``WrongExpectedVersion`` in user code, and again by the
store at commit, where a conflict fails the attempt. Outside an invocation an append
commits at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from squall.engine.effects import Effects, commit_or_hold
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.cloudevent import CloudEvent
from squall.model.event_store import (
    ES_SOURCE,
    EVENT_ID_RE,
    MAX_APPEND,
    MAX_EVENT_BYTES,
    MAX_READ,
    MAX_SCHEMA_VERSION,
    NewEvent,
    RecordedEvent,
    StreamMetadata,
    StreamState,
    check_event_type,
    check_stream_name,
    parse_expected,
    wrong_version,
)
from squall.model.ids import new_id
from squall.storage.event_store import (
    AppendEvents,
    PutSnapshot,
    PutStreamMetadata,
    SoftDeleteStream,
)
from squall.storage.protocols import Op, Store

Hook = Callable[[], None]
EventOps = Callable[[Sequence[CloudEvent]], tuple[list[Op], Hook]]
_decode_metadata = msgspec.json.Decoder(StreamMetadata).decode


class Pending(msgspec.Struct):
    """What one invocation appended to a stream and has not committed yet."""

    base: int  # the stream version the first held append saw
    events: list[dict[str, Any]]


class EventStoreService:
    def __init__(self, store: Store, event_ops: EventOps, wake: Hook) -> None:
        self._store = store
        self._event_ops = event_ops
        self._wake = wake  # projections: the global log grew

    # --- writes ----------------------------------------------------------------------------

    async def append(
        self,
        stream: Any,
        events: Any,
        expected: Any = None,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        """Append ``events`` (``[{"type", "data", "metadata"?, "schema_version"?, "id"?}]``)
        to ``stream`` if it is at ``expected`` (``"any"``, ``"no_stream"`` or a version);
        returns the stream's new version and the events' ids."""
        name = check_stream_name(stream)
        expect = parse_expected(expected)
        checked = _checked_events(events)
        pending = _pending(effects)
        state = await self._live(name)
        held = pending.get(name)
        current = state.version if state is not None else 0
        if held is not None:
            current = held.base + len(held.events)
        if expect is not None and expect != current:
            raise wrong_version(name, expect, current)
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC)
        # Every attribute was checked above and the data is decoded JSON, so the events
        # are built without CloudEvent.create's second validation (a third of an append).
        cloud = [
            CloudEvent(
                id=event.id, source=ES_SOURCE, type=event.type, time=stamp, subject=name,
                datacontenttype="application/json", data=msgspec.json.decode(event.data),
            )
            for event in checked
        ]
        bus_ops, landed = self._event_ops(cloud)
        ops: list[Op] = [AppendEvents(stream=name, expect=expect, events=checked, recorded_at=now),
                         *bus_ops]

        def after() -> None:
            landed()
            self._wake()

        if held is None and effects is not None:
            held = pending[name] = Pending(current, [])
        if held is not None:
            first = held.base + len(held.events) + 1
            held.events += [
                _shown(name, first + n, None, event, now) for n, event in enumerate(checked)
            ]
        await commit_or_hold(self._store, effects, ops, after=after)
        return {
            "stream": name,
            "version": current + len(checked),
            "first_version": current + 1,
            "ids": [event.id for event in checked],
        }

    async def set_metadata(self, stream: Any, metadata: Any) -> dict[str, Any]:
        name = check_stream_name(stream)
        if not isinstance(metadata, dict):
            raise InvalidInput("metadata must be an object", field="metadata")
        unknown = sorted(set(metadata) - {"max_age_s", "max_count"})
        if unknown:
            raise InvalidInput(
                f"metadata field {unknown[0]!r} is unknown (max_age_s, max_count)",
                field=f"metadata.{unknown[0]}",
            )
        try:
            meta = msgspec.convert(metadata, StreamMetadata)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"metadata is invalid: {exc}", field="metadata") from None
        meta.validate()
        await self._live(name)
        await self._store.commit([PutStreamMetadata(stream=name, metadata=meta, at=time.time())])
        return await self.describe(name)

    async def delete(self, stream: Any) -> dict[str, Any]:
        """Soft-delete: reads and appends refuse the stream; read-all keeps its events."""
        name = check_stream_name(stream)
        state = await self._store.es_stream(name)
        if state is None:
            raise NotFound(f"stream {name!r} does not exist", field="stream", stream=name)
        await self._store.commit([SoftDeleteStream(stream=name, at=time.time())])
        return await self.describe(name)

    async def put_snapshot(
        self, stream: Any, version: Any, state: Any, effects: Effects | None = None
    ) -> None:
        name = check_stream_name(stream)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidInput("a snapshot's version must be 1 or more", field="version")
        encoded = _json(state, "state")
        op = PutSnapshot(stream=name, version=version, state=encoded, recorded_at=time.time())
        await commit_or_hold(self._store, effects, [op])

    # --- reads -----------------------------------------------------------------------------

    async def describe(self, stream: Any) -> dict[str, Any]:
        name = check_stream_name(stream)
        await self._store.commit(())
        state = await self._store.es_stream(name)
        if state is None:
            raise NotFound(f"stream {name!r} does not exist", field="stream", stream=name)
        return _described(state)

    async def streams(
        self, prefix: Any = "", after: Any = "", limit: Any = 100
    ) -> dict[str, Any]:
        if not isinstance(prefix, str) or not isinstance(after, str):
            raise InvalidInput("prefix and after must be strings", field="prefix")
        size = _limit(limit)
        await self._store.commit(())
        found = await self._store.es_streams(prefix=prefix, after=after, limit=size + 1)
        page = found[:size]
        return {
            "streams": [_described(state) for state in page],
            "next": page[-1].stream if len(found) > size else None,
        }

    async def read(
        self,
        stream: Any,
        *,
        start: Any = None,
        limit: Any = 100,
        backward: bool = False,
        effects: Effects | None = None,
    ) -> dict[str, Any]:
        """Events of ``stream`` from version ``start`` (default: the first, or the last when
        ``backward``); an invocation also sees what it appended and has not committed."""
        name = check_stream_name(stream)
        size = _limit(limit)
        if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                                  or start < 0):
            raise InvalidInput("start must be a version number, 0 or more", field="start")
        if effects is None:
            await self._store.commit(())
        state = await self._live(name)
        held = _pending(effects).get(name)
        version = state.version if state is not None else 0
        pending = held.events if held is not None else []
        top = (held.base + len(pending)) if held is not None else version
        first = start if start is not None else (top if backward else 1)
        stored = await self._store.es_read_stream(
            name, start=first, limit=size, backward=backward, now=time.time()
        )
        events = [_recorded(event) for event in stored]
        if held is not None:
            if backward:
                mine = [e for e in reversed(pending) if e["version"] <= first]
                events = [e for e in events if e["version"] <= held.base]
                events = (mine + events)[:size]
            else:
                events = [e for e in events if e["version"] <= held.base]
                events += [e for e in pending if e["version"] >= first]
                events = events[:size]
        return {"stream": name, "version": top, "events": events}

    async def read_all(
        self, after: Any = 0, limit: Any = 100, prefixes: Any = ()
    ) -> dict[str, Any]:
        """Events of every stream after global position ``after``, in global order."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInput("after must be a global position, 0 or more", field="after")
        size = _limit(limit)
        if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
            raise InvalidInput("prefixes must be a list of strings", field="prefixes")
        await self._store.commit(())
        events = await self._store.es_read_all(after=after, limit=size, prefixes=list(prefixes))
        return {
            "events": [_recorded(event) for event in events],
            "checkpoint": events[-1].position if events else after,
            "head": await self._store.es_head(),
        }

    async def snapshot(self, stream: Any) -> dict[str, Any] | None:
        name = check_stream_name(stream)
        found = await self._store.es_snapshot(name)
        if found is None:
            return None
        return {
            "stream": name,
            "version": found.version,
            "state": msgspec.json.decode(found.state),
            "recorded_at": found.recorded_at,
        }

    async def _live(self, name: str) -> StreamState | None:
        """The stream's committed state; refused when it was soft-deleted."""
        state = await self._store.es_stream(name)
        if state is not None and state.deleted:
            raise Conflict(
                f"stream {name!r} is deleted: it can no longer be read or appended to",
                field="stream",
                stream=name,
            )
        return state


def _pending(effects: Effects | None) -> dict[str, Pending]:
    if effects is None:
        return {}
    held: dict[str, Pending] = effects.state("es", dict)
    return held


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_READ:
        raise InvalidInput(f"limit must be 1-{MAX_READ}, not {value!r}", field="limit")
    return value


def _json(value: Any, field: str) -> bytes:
    """``value`` as JSON; bytes (already encoded by the sandbox) are checked instead."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"{field} is not valid JSON: {exc}", field=field) from None
        return raw
    try:
        return msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field} is not JSON-serializable: {exc}", field=field) from None


def _checked_events(events: Any) -> list[NewEvent]:
    if not isinstance(events, list) or not events:
        raise InvalidInput("events must be a non-empty list of events", field="events")
    if len(events) > MAX_APPEND:
        raise InvalidInput(
            f"an append holds at most {MAX_APPEND} events, not {len(events)}", field="events"
        )
    checked: list[NewEvent] = []
    ids: set[str] = set()
    for n, event in enumerate(events):
        where = f"events[{n}]"
        if not isinstance(event, dict):
            raise InvalidInput(f"{where} must be an object with a type and data", field=where)
        unknown = sorted(set(event) - {"type", "data", "metadata", "schema_version", "id"})
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]} is not an event field",
                               field=f"{where}.{unknown[0]}")
        kind = check_event_type(event.get("type"), f"{where}.type")
        data = _json(event.get("data"), f"{where}.data")
        metadata = _json(event.get("metadata") or {}, f"{where}.metadata")
        if not metadata.startswith(b"{"):
            raise InvalidInput(f"{where}.metadata must be an object", field=f"{where}.metadata")
        if len(data) + len(metadata) > MAX_EVENT_BYTES:
            raise InvalidInput(
                f"{where} is {len(data) + len(metadata)} bytes of JSON; the limit is"
                f" {MAX_EVENT_BYTES}",
                field=f"{where}.data",
            )
        schema_version = event.get("schema_version", 1)
        if isinstance(schema_version, float) and schema_version.is_integer():
            schema_version = int(schema_version)
        if isinstance(schema_version, bool) or not isinstance(schema_version, int) \
                or not 1 <= schema_version <= MAX_SCHEMA_VERSION:
            raise InvalidInput(f"{where}.schema_version must be 1-{MAX_SCHEMA_VERSION}",
                               field=f"{where}.schema_version")
        event_id = event.get("id") or new_id()
        if not isinstance(event_id, str) or not EVENT_ID_RE.fullmatch(event_id):
            raise InvalidInput(
                f"{where}.id must be 1-128 letters, digits or ._:@- characters",
                field=f"{where}.id",
            )
        if event_id in ids:
            raise InvalidInput(f"{where}.id {event_id!r} is given twice", field=f"{where}.id")
        ids.add(event_id)
        checked.append(NewEvent(id=event_id, type=kind, data=data, metadata=metadata,
                                schema_version=schema_version))
    return checked


def _recorded(event: RecordedEvent) -> dict[str, Any]:
    return {
        "stream": event.stream,
        "version": event.version,
        "position": event.position,
        "id": event.id,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": msgspec.json.decode(event.data),
        "metadata": msgspec.json.decode(event.metadata),
        "recorded_at": event.recorded_at,
    }


def _shown(
    stream: str, version: int, position: int | None, event: NewEvent, now: float
) -> dict[str, Any]:
    return {
        "stream": stream,
        "version": version,
        "position": position,  # None: given out at commit
        "id": event.id,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": msgspec.json.decode(event.data),
        "metadata": msgspec.json.decode(event.metadata),
        "recorded_at": now,
    }


def _described(state: StreamState) -> dict[str, Any]:
    return {
        "stream": state.stream,
        "version": state.version,
        "deleted": state.deleted,
        "metadata": msgspec.to_builtins(state.metadata),
        "created_at": state.created_at,
        "updated_at": state.updated_at,
    }
