"""Ids of event deliveries: one per (rule, target, event), sorted by the event's time."""

from __future__ import annotations

from squall.engine.targets.routing import event_delivery_id
from squall.model.cloudevent import CloudEvent
from squall.model.ids import new_id
from squall.model.rules import RuleConfig
from squall.model.targets import BusTarget, FunctionTarget

TARGET = FunctionTarget(id="f", function="f")
RULE = RuleConfig(name="r-0", pattern={"type": ["t"]}, targets=(TARGET,))
OTHER = RuleConfig(name="r-1", pattern={"type": ["t"]}, targets=(TARGET,))


def event_invocation_id(rule: RuleConfig, event: CloudEvent) -> str:
    return event_delivery_id(rule, rule.targets[0], event)


def test_each_target_of_a_rule_gets_its_own_delivery() -> None:
    audit = BusTarget(id="audit", bus="audit")
    rule = RuleConfig(name="r", pattern={"type": ["t"]}, targets=(TARGET, audit))
    first = event("e-1", "2025-03-01T10:00:00Z")
    assert event_delivery_id(rule, TARGET, first) != event_delivery_id(rule, audit, first)


def event(event_id: str, time: str, source: str = "s") -> CloudEvent:
    return CloudEvent.create("t", {"n": 1}, source=source, id=event_id, time=time)


def test_the_same_event_and_rule_give_the_same_id() -> None:
    first = event("e-1", "2025-03-01T10:00:00.000001Z")
    again = event("e-1", "2025-03-01T10:00:00.000001Z")
    assert event_invocation_id(RULE, first) == event_invocation_id(RULE, again)
    ids = {
        event_invocation_id(RULE, first),
        event_invocation_id(OTHER, first),
        event_invocation_id(RULE, event("e-2", "2025-03-01T10:00:00.000001Z")),
        event_invocation_id(RULE, event("e-1", "2025-03-01T10:00:00.000001Z", source="t")),
    }
    assert len(ids) == 4


def test_ids_sort_by_event_time_like_platform_ids() -> None:
    times = ["1999-12-31T23:59:59Z", "2025-03-01T10:00:00Z", "2025-03-01T10:00:00.5+01:00"]
    ids = [event_invocation_id(RULE, event(f"e-{n}", t)) for n, t in enumerate(times)]
    # +01:00 is an hour earlier in UTC than the 10:00Z event
    assert sorted(ids) == [ids[0], ids[2], ids[1]]
    # an event stamped now sorts among the ids the platform makes now
    now = event_invocation_id(RULE, CloudEvent.create("t", 1, source="s"))
    assert abs(int(now[:14], 16) - int(new_id()[:14], 16)) < 1_000_000


def test_times_outside_the_id_range_are_clamped() -> None:
    old = event_invocation_id(RULE, event("e-1", "1900-01-01T00:00:00Z"))
    late = event_invocation_id(RULE, event("e-1", "9999-12-31T23:59:59Z"))
    assert old.startswith("0" * 14) and late.startswith("f" * 14)
    assert len(old) == len(late) == 32
