"""Target delivery without I/O: what a match becomes, and how an attempt settles."""

from __future__ import annotations

import random
import time
from typing import Any

import msgspec
import pytest

from squall.engine.bus import Buses
from squall.engine.targets.attempt import DELIVERED, Attempt, Backoff, settle
from squall.engine.targets.letters import is_target_letter, redrive_ops
from squall.engine.targets.routing import BUS_QUEUE, HTTP_QUEUE
from squall.model.cloudevent import CloudEvent
from squall.model.rules import RuleConfig
from squall.model.targets import (
    BusTarget,
    FunctionTarget,
    HttpTarget,
    InputTransformer,
    RetryPolicy,
    Target,
)
from squall.storage.protocols import (
    Ack,
    Bury,
    Delivery,
    Enqueue,
    PutInvocation,
    Retry,
    TakeDeadLetter,
)

BACKOFF = Backoff(1.0, 300.0, random.Random(7))


def rule(name: str, *targets: Target, bus: str = "default", **pattern: Any) -> RuleConfig:
    ids = tuple(msgspec.structs.replace(t, id=str(i)) for i, t in enumerate(targets))
    return RuleConfig(
        name=name, bus=bus, pattern=pattern or {"type": ["t"]}, targets=ids, origin="api"
    )


def event(hops: int = 0, **data: Any) -> CloudEvent:
    return CloudEvent.create(
        "t", data, source="test", id="e-1", hops=hops, time="2025-03-01T10:00:00Z"
    )


def route(buses: Buses, *events: CloudEvent, bus: str = "default") -> tuple[list[Any], set[str]]:
    ops, _, queues = buses.route(bus, list(events), set())
    return ops, queues


def test_a_match_becomes_one_delivery_per_target() -> None:
    http = HttpTarget(
        "https://x",
        input_transformer=InputTransformer(
            input_paths_map={"n": "$.data.n"}, input_template="n is <n>"
        ),
    )
    buses = Buses(
        [rule("r", FunctionTarget("f", input_path="$.data"), BusTarget("audit"), http)],
        "v1",
        lambda: {"f"},
    )
    ops, queues = route(buses, event(n=3))
    assert queues == {"fn:f", BUS_QUEUE, HTTP_QUEUE}
    enqueued = {op.delivery.queue: op.delivery for op in ops if isinstance(op, Enqueue)}
    assert msgspec.json.decode(enqueued["fn:f"].payload) == {"n": 3}
    assert enqueued["fn:f"].headers["rule"] == "r"
    assert msgspec.json.decode(enqueued[BUS_QUEUE].payload)["id"] == "e-1"
    text = enqueued[HTTP_QUEUE]
    assert (msgspec.json.decode(text.payload), text.headers["content"]) == ("n is 3", "text")
    assert msgspec.json.decode(text.headers["target"], type=Target) == msgspec.structs.replace(
        http, id="2"
    )
    assert len({d.id for d in enqueued.values()}) == 3
    assert [op.record.function for op in ops if isinstance(op, PutInvocation)] == ["f"]
    again, _ = route(buses, event(n=3))
    assert {op.delivery.id for op in again if isinstance(op, Enqueue)} == {
        d.id for d in enqueued.values()
    }  # the same event lands on the same deliveries


def test_rules_change_in_place_and_buses_follow_them() -> None:
    buses = Buses([], "v1", lambda: {"f"})
    assert not buses.knows("audit")
    buses.put(rule("r", FunctionTarget("f"), BusTarget("audit")))
    assert buses.knows("audit") and buses.names == ["audit", "default"]
    assert route(buses, event())[1] == {"fn:f", BUS_QUEUE}
    current = buses.rule("r")
    assert current is not None
    buses.put(msgspec.structs.replace(current, enabled=False))
    assert route(buses, event())[1] == set()
    buses.put(rule("r", FunctionTarget("f"), type=["other"]))
    assert route(buses, event())[1] == set()
    assert not buses.knows("audit")
    assert route(buses, CloudEvent.create("other", 1, source="s"))[1] == {"fn:f"}
    buses.put(rule("on-audit", bus="audit"))
    assert buses.knows("audit")
    buses.remove("on-audit")
    buses.remove("r")
    assert buses.names == ["default"] and buses.rules() == []


def test_looped_events_and_missing_functions_are_dead_letters() -> None:
    buses = Buses([rule("r", FunctionTarget("gone"), HttpTarget("https://x"))], "v1", lambda: {"f"})
    ops, queues = route(buses, event())
    assert queues == {HTTP_QUEUE}
    [letter] = [op.letter for op in ops if isinstance(op, Bury)]
    assert (letter.function, letter.error["type"]) == ("gone", "NotFound")
    ops, queues = route(buses, event(hops=17))
    assert queues == set()
    letters = {op.letter.function: op.letter for op in ops if isinstance(op, Bury)}
    assert {name: x.error["type"] for name, x in letters.items()} == {
        "gone": "RecursiveLoop",
        "rule:r": "RecursiveLoop",
    }
    assert letters["rule:r"].error["target"]["url"] == "https://x"


def delivery(attempts: int, age_s: float = 0.0) -> Delivery:
    now = time.time()
    target = msgspec.json.encode(HttpTarget("https://x", id="0")).decode()
    return Delivery(
        id="d-1",
        queue=HTTP_QUEUE,
        payload=b'{"a": 1}',
        invocation_id="d-1",
        attempts=attempts,
        enqueued_at=now - age_s,
        available_at=now,
        headers={"rule": "r", "target": target, "bus": "default"},
    )


FAILED = Attempt(ok=False, retryable=True, error={"type": "HttpError", "status": 503})
POLICY = RetryPolicy(max_attempts=2, max_event_age_s=3600)


def settled(
    attempts: int, attempt: Attempt, *, age_s: float = 0.0, dead_letter: bool = True
) -> Any:
    now = time.time()
    [op] = settle(delivery(attempts, age_s), attempt, POLICY, dead_letter, BACKOFF, now)
    return op


def test_success_acks_and_failures_retry_while_attempts_remain() -> None:
    assert settled(1, DELIVERED) == Ack("d-1")
    retry = settled(1, FAILED)
    assert isinstance(retry, Retry) and retry.available_at > time.time()
    assert isinstance(settled(2, FAILED), Retry)
    buried = settled(3, FAILED)  # max_attempts=2: two retries after the first attempt
    assert isinstance(buried, Bury)
    assert buried.letter.error["condition"] == "RetriesExhausted"
    assert buried.letter.attempts == 3 and buried.letter.function == "rule:r"
    assert settled(3, FAILED, dead_letter=False) == Ack("d-1")


def test_final_failures_and_old_events_are_not_retried() -> None:
    final = Attempt(ok=False, error={"type": "HttpError", "status": 400})
    buried = settled(1, final)
    assert isinstance(buried, Bury)
    assert buried.letter.error == {
        "type": "HttpError",
        "status": 400,
        "condition": "NotRetryable",
        "rule": "r",
        "target": msgspec.to_builtins(HttpTarget("https://x", id="0")),
        "delivery": {"queue": HTTP_QUEUE, "headers": delivery(1).headers},
    }
    aged = settled(1, FAILED, age_s=3599.5)
    assert isinstance(aged, Bury) and aged.letter.error["condition"] == "EventAgeExceeded"


def test_retry_after_is_honoured_within_the_cap() -> None:
    asked = Attempt(ok=False, retryable=True, retry_after_s=30.0)
    retry = settled(1, asked)
    assert isinstance(retry, Retry) and retry.available_at - time.time() == pytest.approx(30, abs=1)
    assert BACKOFF.delay(1, 10_000.0) == 300.0


def test_target_letters_redrive_to_their_queue_under_the_same_id() -> None:
    buried = settled(1, Attempt(ok=False, error={"type": "HttpError"}))
    assert is_target_letter(buried.letter)
    ops, queue = redrive_ops(buried.letter, time.time())
    assert queue == HTTP_QUEUE
    assert ops[0] == TakeDeadLetter("d-1")
    again = ops[1]
    assert isinstance(again, Enqueue)
    assert (again.delivery.id, again.delivery.attempts) == ("d-1", 0)
    assert again.delivery.headers == delivery(1).headers
    assert again.delivery.payload == b'{"a": 1}'
