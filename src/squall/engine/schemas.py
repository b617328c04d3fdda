"""The schema registry: JSON Schemas per event type and version, and the check of published data.

Every registered schema is compiled once (at registration, or when the platform starts) and
its validator kept beside it, so a publish pays one dict lookup and one compiled validation per
event. Versions are positive integers registered in order; version N+1 must be BACKWARD
compatible with version N (``events.compat``) unless forced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import msgspec

from squall.errors import Conflict, InvalidInput, NotFound
from squall.events.compat import backward_problems
from squall.events.schemas import compile_schema, data_error
from squall.model.cloudevent import CloudEvent
from squall.model.schemas import SchemaRecord, check_type, check_version, parse_dataschema
from squall.storage.protocols import DeleteSchema, PutSchema, Store


@dataclass(frozen=True, slots=True)
class _Entry:
    record: SchemaRecord
    validator: jsonschema_rs.Validator


@dataclass(frozen=True, slots=True)
class Registered:
    record: SchemaRecord
    created: bool  # False: the same schema was already registered under this version
    forced: list[str]  # the incompatibilities registered anyway (force)


class SchemaRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._types: dict[str, dict[int, _Entry]] = {}
        self._lock = asyncio.Lock()  # one registration at a time: the version order holds

    async def load(self) -> None:
        for record in await self._store.list_schemas():
            entry = _Entry(record, compile_schema(record.schema))
            self._types.setdefault(record.type, {})[record.version] = entry

    # --- reading -------------------------------------------------------------------------

    def types(self) -> dict[str, list[int]]:
        return {t: sorted(versions) for t, versions in sorted(self._types.items()) if versions}

    def versions(self, event_type: str) -> list[SchemaRecord]:
        found = self._types.get(check_type(event_type))
        if not found:
            raise NotFound(
                f"event type {event_type!r} has no registered schema", field="type"
            )
        return [found[v].record for v in sorted(found)]

    def get(self, event_type: str, version: int) -> SchemaRecord:
        entry = self._types.get(check_type(event_type), {}).get(version)
        if entry is None:
            raise NotFound(
                f"schema {event_type!r} version {version} is not registered"
                f"{self._registered_note(event_type)}",
                field="version",
            )
        return entry.record

    def _registered_note(self, event_type: str) -> str:
        versions = sorted(self._types.get(event_type, {}))
        return f" (registered: {', '.join(map(str, versions))})" if versions else ""

    # --- changing ------------------------------------------------------------------------

    async def put(
        self, event_type: str, raw_version: str | int, schema: Any, *, force: bool = False
    ) -> Registered:
        event_type, version = check_type(event_type), check_version(raw_version)
        validator = compile_schema(schema)
        async with self._lock:
            versions = self._types.get(event_type, {})
            existing = versions.get(version)
            if existing is not None:
                if _same(existing.record.schema, schema):
                    return Registered(existing.record, created=False, forced=[])
                raise Conflict(
                    f"schema {event_type!r} version {version} is already registered with a"
                    f" different schema: register the change as version {max(versions) + 1}",
                    field="version",
                )
            latest = max(versions, default=0)
            if version != latest + 1:
                raise Conflict(
                    f"versions are registered in order: the next version of {event_type!r}"
                    f" is {latest + 1}, not {version}",
                    field="version",
                )
            problems = backward_problems(versions[latest].record.schema, schema) if latest else []
            if problems and not force:
                raise Conflict(
                    f"schema {event_type!r} version {version} is not backward compatible with"
                    f" version {latest} (a document valid under {latest} would be rejected):"
                    f" {'; '.join(problems)}. Register it anyway with force",
                    field="schema",
                    reasons=problems,
                )
            record = SchemaRecord(
                type=event_type, version=version, schema=schema, created_at=time.time()
            )
            await self._store.commit([PutSchema(record)])
            self._types.setdefault(event_type, {})[version] = _Entry(record, validator)
            return Registered(record, created=True, forced=problems)

    async def delete(self, event_type: str, version: int | None = None) -> list[int]:
        """Delete one version, or every version; returns the versions deleted."""
        async with self._lock:
            if version is None:
                deleted = [r.version for r in self.versions(event_type)]
            else:
                deleted = [self.get(event_type, version).version]
            await self._store.commit([DeleteSchema(event_type, version)])
            versions = self._types.get(event_type, {})
            for gone in deleted:
                versions.pop(gone, None)
            if not versions:
                self._types.pop(event_type, None)
            return deleted

    # --- publishing ----------------------------------------------------------------------

    def check(self, events: Sequence[CloudEvent]) -> None:
        """Raise ``InvalidInput`` naming the event, the JSON path and the rule, for the first
        event whose data its schema rejects. An event is checked against the version its
        ``dataschema`` names (one of the platform's forms), else its type's latest version."""
        if not self._types:
            return
        for index, event in enumerate(events):
            entry = self._entry_for(event)
            if entry is not None:
                _check_data(entry, event, index)

    def _entry_for(self, event: CloudEvent) -> _Entry | None:
        named = parse_dataschema(event.dataschema) if event.dataschema else None
        if named is not None:
            event_type, version = named
            entry = self._types.get(event_type, {}).get(version)
            if entry is None:
                raise InvalidInput(
                    f"event {event.id!r}: dataschema {event.dataschema!r} names schema"
                    f" {event_type!r} version {version}, which is not registered"
                    f"{self._registered_note(event_type)}",
                    field="dataschema",
                    event=event.id,
                )
            return entry
        versions = self._types.get(event.type)
        return versions[max(versions)] if versions else None


def _check_data(entry: _Entry, event: CloudEvent, index: int) -> None:
    uri = entry.record.uri
    if not event.has_data:
        what = "binary data" if event.data_base64 is not None else "no data"
        raise InvalidInput(
            f"event {event.id!r} ({event.type}) has {what}, but schema {uri} validates its"
            " JSON data",
            field="data",
            event=event.id,
            index=index,
            schema=uri,
        )
    found = data_error(entry.validator, entry.record.schema, event.data)
    if found is None:
        return
    path, problem, keyword, rule = found
    raise InvalidInput(
        f"event {event.id!r} ({event.type}): {path}: {problem} (schema {uri}, rule {rule})",
        field=path,
        rule=rule,
        keyword=keyword,
        schema=uri,
        event=event.id,
        index=index,
    )


def _same(a: Any, b: Any) -> bool:
    return bool(msgspec.json.encode(a, order="sorted") == msgspec.json.encode(b, order="sorted"))
