"""What one rule match becomes: per target, a durable delivery, or a dead letter.

- A function target is an async invocation on the function's queue (``fn:<name>``), as
  any async invocation: the function's retry policy and dead-letter setting apply.
- Bus and HTTP targets are deliveries on ``target:bus`` and ``target:http``, which the
  target runner works off with the target's own retry policy.

Ids derive from the bus, the rule, the target, the event's source and its id, so a
repeated publish lands on the same delivery instead of running twice. An event more than
MAX_HOPS event-triggered steps deep is not delivered but dead-lettered as RecursiveLoop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import msgspec

from squall.engine.destinations import queue_name
from squall.engine.targets.letters import target_letter
from squall.model.cloudevent import CloudEvent
from squall.model.invocation import DeadLetter, InvocationRecord, InvocationStatus, Trigger
from squall.model.rules import MAX_HOPS, RuleConfig
from squall.model.targets import BusTarget, FunctionTarget, QueueTarget, Target
from squall.model.transform import render
from squall.storage.protocols import Bury, Delivery, Enqueue, Op, PutInvocation

BUS_QUEUE = "target:bus"
HTTP_QUEUE = "target:http"
QUEUE_QUEUE = "target:queue"  # deliveries that become messages on the platform's queues
TARGET_QUEUES = (BUS_QUEUE, HTTP_QUEUE, QUEUE_QUEUE)


@dataclass(frozen=True, slots=True)
class Routed:
    """One event on its way to targets: its JSON form, parsed and encoded, once."""

    event: CloudEvent
    document: dict[str, Any]
    body: bytes
    now: float
    version: str

    @property
    def looped(self) -> bool:
        return self.event.hops > MAX_HOPS


def deliver(
    rule: RuleConfig, target: Target, routed: Routed, functions: Collection[str]
) -> tuple[list[Op], str | None]:
    """The ops that hand ``routed`` to ``target``, and the queue that then has work."""
    event = routed.event
    delivery_id = event_delivery_id(rule, target, event)
    if isinstance(target, FunctionTarget):
        return _invoke(rule, target, routed, delivery_id, functions)
    headers = _headers(rule, target, event)
    headers["target"] = msgspec.json.encode(target).decode()
    if isinstance(target, BusTarget):
        queue, payload = BUS_QUEUE, routed.body
    elif isinstance(target, QueueTarget):
        queue, payload = QUEUE_QUEUE, _payload(target, routed, headers)
        headers["source"] = event.source  # a FIFO queue's default message group
    else:
        queue, payload = HTTP_QUEUE, _payload(target, routed, headers)
    delivery = Delivery(
        id=delivery_id,
        queue=queue,
        payload=payload,
        invocation_id=delivery_id,
        enqueued_at=routed.now,
        available_at=routed.now,
        headers=headers,
    )
    if routed.looped:
        letter = target_letter(delivery, _loop_error(rule, event), "RecursiveLoop", routed.now)
        return [Bury(delivery_id, letter)], None
    return [Enqueue(delivery)], queue


def _invoke(
    rule: RuleConfig,
    target: FunctionTarget,
    routed: Routed,
    invocation_id: str,
    functions: Collection[str],
) -> tuple[list[Op], str | None]:
    record = InvocationRecord(
        id=invocation_id,
        function=target.function,
        version=routed.version,
        trigger=Trigger.EVENT,
        status=InvocationStatus.QUEUED,
        created_at=routed.now,
    )
    payload = _payload(target, routed, None)
    if routed.looped or target.function not in functions:
        if routed.looped:
            record.error = _loop_error(rule, routed.event)
        else:  # a stored rule whose function the app no longer has
            record.error = {
                "type": "NotFound",
                "message": f"rule {rule.name!r} targets function {target.function!r},"
                " which the app no longer declares: not delivered",
                "rule": rule.name,
            }
        record.status = InvocationStatus.DEAD_LETTERED
        letter = DeadLetter(
            id=invocation_id,
            function=target.function,
            invocation_id=invocation_id,
            payload=payload,
            error=record.error,
            attempts=0,
            enqueued_at=routed.now,
            failed_at=routed.now,
        )
        return [PutInvocation(record), Bury(invocation_id, letter)], None
    queue = queue_name(target.function)
    delivery = Delivery(
        id=invocation_id,
        queue=queue,
        payload=payload,
        invocation_id=invocation_id,
        enqueued_at=routed.now,
        available_at=routed.now,
        headers=_headers(rule, target, routed.event),
    )
    return [PutInvocation(record), Enqueue(delivery)], queue


def _headers(rule: RuleConfig, target: Target, event: CloudEvent) -> dict[str, str]:
    headers = {
        "trigger": Trigger.EVENT,
        "rule": rule.name,
        "bus": rule.bus,
        "target_id": target.id,
        "hops": str(event.hops),
    }
    traceparent = event.traceparent
    if traceparent is not None:  # the delivery continues the publisher's trace
        headers["traceparent"] = traceparent
    if isinstance(target, FunctionTarget) and target.alias is not None:
        headers["qualifier"] = target.alias  # the dispatcher runs that alias's version
    return headers


def _payload(target: Target, routed: Routed, headers: dict[str, str] | None) -> bytes:
    """The (transformed) input as JSON; text is kept as a JSON string, marked in ``headers``."""
    assert not isinstance(target, BusTarget)  # buses forward the event unchanged
    rendered = render(target, routed.document, routed.body)
    if rendered.json:
        return rendered.body
    if headers is not None:
        headers["content"] = "text"
    return msgspec.json.encode(rendered.body.decode())


def _loop_error(rule: RuleConfig, event: CloudEvent) -> dict[str, object]:
    return {
        "type": "RecursiveLoop",
        "message": f"event {event.id!r} ({event.type}) is {event.hops} event-triggered"
        f" steps deep, past the limit of {MAX_HOPS}: not delivered",
        "rule": rule.name,
    }


def event_delivery_id(rule: RuleConfig, target: Target, event: CloudEvent) -> str:
    """The one delivery of ``event`` to ``target`` of ``rule``: a repeated publish lands on it.

    Led by the event's time in microseconds, like ``new_id``, so ids still sort by creation
    time and the store appends to its indexes: hash-ordered ids cost SQLite about twice the
    CPU per event (a random index page per row written).
    """
    seed = f"{rule.bus}\0{rule.name}\0{target.id}\0{event.source}\0{event.id}".encode()
    micros = int(event.time.timestamp() * 1_000_000) if event.time is not None else 0
    return f"{min(max(micros, 0), _MAX_MICROS):014x}{hashlib.sha256(seed).hexdigest()[:18]}"


_MAX_MICROS = 16**14 - 1
