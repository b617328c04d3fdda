"""``ctx.events_store``: the event streams a function declares in ``permissions``.

    es = ctx.events_store
    es.append("order-42", [{"type": "OrderPlaced", "data": {"total": 30}}],
              expected_version=squall.ExpectedVersion.no_stream())
    page = es.read("order-42")            # {"stream", "version", "events": [...]}
    es.read("order-42", backward=True, limit=1)
    es.read_all(after=0, prefixes=["order-"])   # needs events_store:*

An append lands with the invocation's success (with its events published on the default
bus); the invocation's own reads see it at once. An expected version that does not hold
raises ``squall.WrongExpectedVersion`` here, and nothing is appended.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from squall.errors import InvalidInput
from squall.model.event_store import ExpectedVersion


class _Link(Protocol):
    def call(self, op: str, args: dict[str, Any]) -> bytes | None: ...


def _decoded(body: bytes | None) -> Any:
    return None if body is None else msgspec.json.decode(body)


def _encoded(value: Any, field: str) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field} is not JSON-serializable: {exc}", field=field) from None


def wire_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events with their data and metadata encoded here, so what JSON cannot hold is
    refused in user code, naming the event."""
    if not isinstance(events, list):
        raise InvalidInput("events must be a list of {type, data} objects", field="events")
    wired = []
    for n, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidInput(f"events[{n}] must be an object with a type and data",
                               field=f"events[{n}]")
        wire = dict(event)
        wire["data"] = _encoded(event.get("data"), f"events[{n}].data")
        if event.get("metadata") is not None:
            wire["metadata"] = _encoded(event["metadata"], f"events[{n}].metadata")
        wired.append(wire)
    return wired


class EventsStore:
    __slots__ = ("_link",)

    def __init__(self, link: _Link) -> None:
        self._link = link

    def append(
        self,
        stream: str,
        events: list[dict[str, Any]],
        *,
        expected_version: ExpectedVersion | int | str = "any",
    ) -> dict[str, Any]:
        """Append ``events`` (``{"type", "data", "metadata"?, "schema_version"?}``) at
        once, all or none; returns ``{"stream", "version", "first_version", "ids"}``."""
        expected = (
            expected_version.wire() if isinstance(expected_version, ExpectedVersion)
            else expected_version
        )
        result: dict[str, Any] = _decoded(self._link.call(
            "es.append",
            {"stream": stream, "events": wire_events(events), "expected": expected},
        ))
        return result

    def read(
        self,
        stream: str,
        *,
        start: int | None = None,
        limit: int = 100,
        backward: bool = False,
    ) -> dict[str, Any]:
        """Events from version ``start`` on (down from it when ``backward``)."""
        page: dict[str, Any] = _decoded(self._link.call(
            "es.read",
            {"stream": stream, "start": start, "limit": limit, "backward": backward},
        ))
        return page

    def events(self, stream: str, *, start: int = 1) -> list[dict[str, Any]]:
        """Every event of ``stream`` from version ``start``, page after page."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.read(stream, start=start, limit=1000)
            found += page["events"]
            if len(page["events"]) < 1000:
                return found
            start = page["events"][-1]["version"] + 1

    def read_all(
        self, *, after: int = 0, limit: int = 100, prefixes: list[str] | None = None
    ) -> dict[str, Any]:
        """Events of all streams after global position ``after``:
        ``{"events", "checkpoint", "head"}``."""
        page: dict[str, Any] = _decoded(self._link.call(
            "es.read_all", {"after": after, "limit": limit, "prefixes": prefixes or []}
        ))
        return page

    def describe(self, stream: str) -> dict[str, Any]:
        state: dict[str, Any] = _decoded(self._link.call("es.describe", {"stream": stream}))
        return state

    def snapshot(self, stream: str) -> dict[str, Any] | None:
        """The latest snapshot ``{"version", "state", ...}`` of ``stream``, or None."""
        found: dict[str, Any] | None = _decoded(
            self._link.call("es.snapshot", {"stream": stream})
        )
        return found

    def put_snapshot(self, stream: str, version: int, state: Any) -> None:
        """Keep ``state`` as the fold of ``stream`` up to ``version`` (with the invocation)."""
        self._link.call(
            "es.put_snapshot",
            {"stream": stream, "version": version, "state": _encoded(state, "state")},
        )
