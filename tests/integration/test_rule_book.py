"""Rules changed while the platform runs: matching follows at once, the store keeps them."""

from __future__ import annotations

from typing import Any

import pytest

from squall.engine.platform import Platform
from squall.errors import Conflict, InvalidInput, NotFound
from squall.model.cloudevent import CloudEvent
from squall.model.rule_input import parse_rule

APP = """
import squall

app = squall.App("book")


@app.on("order.placed")
def record(event, ctx):
    return event["type"]
"""

TO_RECORD = [{"kind": "function", "function": "record"}]


def rule(name: str = "api-rule", **fields: Any) -> Any:
    return parse_rule({"name": name, "pattern": {"type": ["a"]}, "targets": TO_RECORD, **fields})


async def matched(p: Platform, event_type: str, bus: str = "default") -> list[str]:
    [outcome] = await p.publish([CloudEvent.create(event_type, {}, source="t")], bus=bus)
    return outcome.matched


async def test_changes_apply_to_matching_at_once(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    assert await p.rule_book.put(rule()) is True
    assert await matched(p, "a") == ["api-rule"]
    assert await p.rule_book.put(rule(pattern={"type": ["b"]})) is False  # replaced
    assert await matched(p, "a") == []
    assert await matched(p, "b") == ["api-rule"]
    await p.rule_book.put(rule(pattern={"type": ["b"]}, enabled=False))
    assert await matched(p, "b") == []
    await p.rule_book.put(rule(bus="side", pattern={"type": ["b"]}))
    assert await matched(p, "b") == []
    assert await matched(p, "b", bus="side") == ["api-rule"]
    assert {b["name"]: b["rules"] for b in p.rule_book.buses()} == {"default": 1, "side": 1}
    await p.rule_book.delete("api-rule")
    with pytest.raises(NotFound):
        await matched(p, "b", bus="side")  # its only rule is gone, and so is the bus
    await p.wait_idle(timeout=20)
    assert len(await p.list_invocations(function="record")) == 3


async def test_bad_rules_and_app_rules_change_nothing(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    before = p.rule_book.rules()
    cases = [
        (
            rule(pattern={"data": {"total": [{"numeric": [">", "x"]}]}}),
            "pattern.data.total[0].numeric[1]",
        ),
        (rule(targets=[{"kind": "function", "function": "nobody"}]), "targets[0].function"),
        (rule(targets=[{"kind": "bus", "bus": "nowhere"}]), "targets[0].bus"),
    ]
    for bad, field in cases:
        with pytest.raises(InvalidInput) as info:
            await p.rule_book.put(bad)
        assert info.value.field == field
    for attempt in (p.rule_book.put(rule("record-0")), p.rule_book.delete("record-0")):
        with pytest.raises(Conflict, match="declared in the app"):
            await attempt
    await p.rule_book.put(rule())
    with pytest.raises(Conflict, match="already exists"):
        await p.rule_book.put(rule(), create=True)
    assert before == p.rule_book.rules()[1:]  # sorted by name: api-rule first
    assert p.rule_book.get("api-rule").targets[0].id == "0"


async def test_rules_survive_a_restart(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.rule_book.put(rule(description="kept"))
    await p.rule_book.put(rule("gone"))
    await p.rule_book.delete("gone")
    await p.stop()
    again = await platform(APP)
    assert [(r.name, r.origin) for r in again.rule_book.rules()] == [
        ("api-rule", "api"),
        ("record-0", "app"),
    ]
    assert again.rule_book.get("api-rule").description == "kept"
    assert await matched(again, "a") == ["api-rule"]
