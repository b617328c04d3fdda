"""Event buses: match published events against rules and turn matches into deliveries.

Every rule of a bus sits in one compiled matcher. A published event becomes, in one
unit of work, an async invocation per matching rule's function (durable, retried,
dead-lettered like any async invocation) plus a note of its id for deduplication.
An event more than MAX_HOPS event-triggered invocations deep is a loop: it is not
delivered but dead-lettered with reason RecursiveLoop.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from squall.engine.destinations import queue_name
from squall.engine.router.matcher import Matcher
from squall.model.cloudevent import CloudEvent
from squall.model.invocation import DeadLetter, InvocationRecord, InvocationStatus, Trigger
from squall.model.rules import DEFAULT_BUS, MAX_HOPS, RuleConfig
from squall.storage.protocols import Bury, Delivery, Enqueue, Op, PutInvocation, RememberEvent

DEDUP_WINDOW_S = 24 * 3600


@dataclass
class Published:
    """What publishing did with one event."""

    id: str
    duplicate: bool = False
    matched: list[str] = field(default_factory=list)  # rule names
    looped: bool = False


class Buses:
    def __init__(self, rules: Sequence[RuleConfig], version: str) -> None:
        self._version = version
        self._rules = {rule.name: rule for rule in rules}
        self._matchers: dict[str, Matcher] = {DEFAULT_BUS: Matcher()}
        for rule in rules:
            self._matchers.setdefault(rule.bus, Matcher()).add(rule.name, rule.pattern)
        for matcher in self._matchers.values():
            matcher.rebalance()

    @property
    def names(self) -> list[str]:
        return sorted(self._matchers)

    def rules(self) -> list[RuleConfig]:
        return list(self._rules.values())

    def knows(self, bus: str) -> bool:
        return bus in self._matchers

    def route(
        self, bus: str, events: Sequence[CloudEvent], seen: set[tuple[str, str]]
    ) -> tuple[list[Op], list[Published], set[str]]:
        """Ops that deliver ``events`` (those not in ``seen``), what happened, functions woken."""
        now = time.time()
        ops: list[Op] = []
        outcomes: list[Published] = []
        targets: set[str] = set()
        matcher = self._matchers[bus]
        for event in events:
            outcome = Published(event.id)
            outcomes.append(outcome)
            key = (event.source, event.id)
            if key in seen:
                outcome.duplicate = True
                continue
            seen.add(key)  # a second copy in the same batch is a duplicate too
            ops.append(RememberEvent(event.source, event.id, now + DEDUP_WINDOW_S))
            body = event.to_json()
            outcome.looped = event.hops > MAX_HOPS
            for name in sorted(matcher.match(event.to_json_dict())):
                rule = self._rules[name]
                outcome.matched.append(name)
                ops += self._deliver(rule, event, body, now, outcome.looped)
                if not outcome.looped:
                    targets.add(rule.function)
        return ops, outcomes, targets

    def _deliver(
        self, rule: RuleConfig, event: CloudEvent, body: bytes, now: float, looped: bool
    ) -> list[Op]:
        invocation_id = event_invocation_id(rule, event)
        record = InvocationRecord(
            id=invocation_id,
            function=rule.function,
            version=self._version,
            trigger=Trigger.EVENT,
            status=InvocationStatus.QUEUED,
            created_at=now,
        )
        if looped:
            record.status = InvocationStatus.DEAD_LETTERED
            record.error = {
                "type": "RecursiveLoop",
                "message": f"event {event.id!r} ({event.type}) is {event.hops} event-triggered"
                f" invocations deep, past the limit of {MAX_HOPS}: not delivered",
                "rule": rule.name,
            }
            letter = DeadLetter(
                id=invocation_id,
                function=rule.function,
                invocation_id=invocation_id,
                payload=body,
                error=record.error,
                attempts=0,
                enqueued_at=now,
                failed_at=now,
            )
            return [PutInvocation(record), Bury(invocation_id, letter)]
        delivery = Delivery(
            id=invocation_id,
            queue=queue_name(rule.function),
            payload=body,
            invocation_id=invocation_id,
            enqueued_at=now,
            available_at=now,
            headers={
                "trigger": Trigger.EVENT,
                "rule": rule.name,
                "bus": rule.bus,
                "hops": str(event.hops),
            },
        )
        return [PutInvocation(record), Enqueue(delivery)]


def event_invocation_id(rule: RuleConfig, event: CloudEvent) -> str:
    """The one invocation of ``rule`` for ``event``: a publish delivered twice lands on it.

    Led by the event's time in microseconds, like ``new_id``, so ids still sort by creation
    time and the store appends to its indexes: hash-ordered ids cost SQLite about twice the
    CPU per event (a random index page per row written).
    """
    seed = f"{rule.bus}\0{rule.name}\0{event.source}\0{event.id}".encode()
    micros = int(event.time.timestamp() * 1_000_000) if event.time is not None else 0
    return f"{min(max(micros, 0), _MAX_MICROS):014x}{hashlib.sha256(seed).hexdigest()[:18]}"


_MAX_MICROS = 16**14 - 1
