"""Event-sourced aggregates: commands record events, ``apply_<Type>`` methods fold them.

    class Account(squall.Aggregate):
        category = "account"                  # streams "account-<id>"
        snapshot_every = 100                  # a snapshot each 100 events (0: never)
        upcasters = {("Deposited", 1): lambda data: {**data, "currency": "EUR"}}

        def __init__(self) -> None:           # the state before any event
            self.balance = 0

        def deposit(self, amount: int) -> None:          # a command
            if amount <= 0:
                raise ValueError("deposit a positive amount")
            self.record("Deposited", {"amount": amount}, schema_version=2)

        def apply_Deposited(self, data: dict) -> None:   # folds one event
            self.balance += data["amount"]

    account = Account.load(ctx.events_store, "42")   # snapshot, then the events after it
    account.deposit(10)
    account.save(ctx.events_store)                   # appends at the loaded version

``save`` expects the version ``load`` saw, so two commands that loaded the same version
cannot both append: the second raises ``squall.WrongExpectedVersion`` (and its invocation
fails; an async one is retried from a fresh load). An upcaster keyed by ``(type,
schema_version)`` turns an old event's data into the next version's, applied in a chain
until no upcaster matches, so ``apply_*`` methods only know the latest shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar

from squall.model.event_store import ExpectedVersion

A = TypeVar("A", bound="Aggregate")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_OWN = ("id", "version", "_pending")


class EventStoreLike(Protocol):
    """What ``ctx.events_store`` offers an aggregate."""

    def read(
        self, stream: str, *, start: int | None = None, limit: int = 100,
        backward: bool = False,
    ) -> dict[str, Any]: ...

    def append(
        self, stream: str, events: list[dict[str, Any]], *,
        expected_version: ExpectedVersion | int | str = "any",
    ) -> dict[str, Any]: ...

    def snapshot(self, stream: str) -> dict[str, Any] | None: ...

    def put_snapshot(self, stream: str, version: int, state: Any) -> None: ...


class Aggregate:
    category: ClassVar[str] = ""  # the stream name's prefix; default: the class name, lower
    snapshot_every: ClassVar[int] = 0
    upcasters: ClassVar[dict[tuple[str, int], Upcaster]] = {}

    id: str
    version: int  # the stream version folded so far, recorded events included
    _pending: list[dict[str, Any]]

    @classmethod
    def stream_for(cls, aggregate_id: str) -> str:
        return f"{cls.category or cls.__name__.lower()}-{aggregate_id}"

    @property
    def stream(self) -> str:
        return self.stream_for(self.id)

    @classmethod
    def create(cls: type[A], aggregate_id: str) -> A:
        """A new aggregate with no events (its first ``save`` expects no stream)."""
        aggregate = cls()
        aggregate.id = str(aggregate_id)
        aggregate.version = 0
        aggregate._pending = []
        return aggregate

    @classmethod
    def load(cls: type[A], store: EventStoreLike, aggregate_id: str) -> A:
        """Fold the latest snapshot (when ``snapshot_every``) and the events after it."""
        aggregate = cls.create(aggregate_id)
        start = 1
        if cls.snapshot_every:
            found = store.snapshot(aggregate.stream)
            if found is not None:
                aggregate.restore(found["state"])
                aggregate.version = int(found["version"])
                start = aggregate.version + 1
        while True:
            page = store.read(aggregate.stream, start=start, limit=1000)
            for event in page["events"]:
                aggregate._fold(event["type"], event.get("schema_version", 1), event["data"])
                aggregate.version = int(event["version"])
            if len(page["events"]) < 1000:
                return aggregate
            start = aggregate.version + 1

    def record(self, event_type: str, data: Any = None, *, schema_version: int = 1) -> None:
        """Record an event of a command: folded now, appended by ``save``."""
        self._fold(event_type, schema_version, data)
        self.version += 1
        self._pending.append(
            {"type": event_type, "data": data, "schema_version": schema_version}
        )

    @property
    def pending(self) -> list[dict[str, Any]]:
        return list(self._pending)

    def save(self, store: EventStoreLike) -> dict[str, Any] | None:
        """Append the recorded events, expecting the version this aggregate was loaded at;
        a snapshot too when the version crosses a multiple of ``snapshot_every``."""
        if not self._pending:
            return None
        loaded = self.version - len(self._pending)
        result = store.append(
            self.stream, self._pending, expected_version=ExpectedVersion.exact(loaded)
        )
        every = self.snapshot_every
        if every and loaded // every != self.version // every:
            store.put_snapshot(self.stream, self.version, self.snapshot())
        self._pending = []
        return result

    def snapshot(self) -> dict[str, Any]:
        """The state kept in a snapshot: the public attributes (override for others)."""
        return {k: v for k, v in vars(self).items() if k not in _OWN and not k.startswith("_")}

    def restore(self, state: dict[str, Any]) -> None:
        """Take a snapshot's state back (override with ``snapshot``)."""
        for key, value in state.items():
            setattr(self, key, value)

    def _fold(self, event_type: str, schema_version: int, data: Any) -> None:
        version = schema_version
        while (event_type, version) in self.upcasters:
            data = self.upcasters[(event_type, version)](data)
            version += 1
        method = getattr(self, "apply_" + event_type.replace(".", "_").replace("-", "_"), None)
        if method is None:
            raise TypeError(
                f"{type(self).__name__} has no apply_{event_type} method to fold"
                f" {event_type!r} events"
            )
        method(data)
