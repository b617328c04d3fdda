"""Rules and targets as data: the API's parsing, validation naming the field, the app's rules."""

from __future__ import annotations

from typing import Any

import pytest

import squall
from squall.errors import ConfigError, InvalidInput
from squall.model.rule_input import parse_rule
from squall.model.rules import RuleConfig, check_references
from squall.model.targets import BusTarget, FunctionTarget, HttpTarget, RetryPolicy

PATTERN = {"type": ["order.placed"]}


def body(*targets: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "r", "pattern": PATTERN, "targets": list(targets), **fields}


def refused(data: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_rule(data).validate()
    return info.value


def test_a_rule_body_becomes_an_api_rule_with_target_ids() -> None:
    rule = parse_rule(
        body(
            {"kind": "function", "function": "fraud", "input_path": "$.data"},
            {"kind": "bus", "bus": "audit", "id": "to-audit"},
            {"kind": "http", "url": "https://example.com/hook", "retry": {"max_attempts": 3}},
            description="orders out",
        )
    )
    rule.validate()
    assert rule.origin == "api" and rule.enabled and rule.bus == "default"
    assert [t.id for t in rule.targets] == ["0", "to-audit", "2"]
    assert rule.targets[1] == BusTarget("audit", id="to-audit")
    http = rule.targets[2]
    assert isinstance(http, HttpTarget)
    assert http.retry == RetryPolicy(max_attempts=3, max_event_age_s=86400)
    assert http.dead_letter and http.timeout_s == 5.0
    assert rule.functions() == ["fraud"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (body({"kind": "function", "function": 3}), "targets[0].function"),
        (body({"kind": "function"}), "targets[0].function"),
        (body({"kind": "workflow", "workflow": "w"}), "targets[0].kind"),
        (body({"function": "f"}), "targets[0].kind"),
        (body({"kind": "bus", "bus": "b", "input_path": "$.data"}), "targets[0].input_path"),
        (body({"kind": "http", "url": "https://x", "colour": "red"}), "targets[0].colour"),
        (body(enabled="yes"), "enabled"),
        ({"pattern": PATTERN}, "name"),
        (body(pattern=[1]), "pattern"),
        (body(extra=1), "extra"),
        (
            body({"kind": "bus", "bus": "b", "retry": {"max_attempts": 1.5}}),
            "targets[0].retry.max_attempts",
        ),
    ],
)
def test_a_wrong_shape_names_the_field(data: dict[str, Any], field: str) -> None:
    assert refused(data).field == field


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"kind": "http", "url": "ftp://example.com"}, "targets[0].url"),
        ({"kind": "http", "url": "https://exa mple.com"}, "targets[0].url"),
        ({"kind": "http", "url": "https://example.com:99999/"}, "targets[0].url"),
        (
            {"kind": "http", "url": "https://x", "headers": {"Bad Name": "v"}},
            "targets[0].headers.Bad Name",
        ),
        (
            {"kind": "http", "url": "https://x", "headers": {"A": "line\nbreak"}},
            "targets[0].headers.A",
        ),
        ({"kind": "http", "url": "https://x", "headers": {"Host": "h"}}, "targets[0].headers.Host"),
        ({"kind": "http", "url": "https://x", "timeout_s": 0.5}, "targets[0].timeout_s"),
        (
            {"kind": "http", "url": "https://x", "retry": {"max_attempts": 186}},
            "targets[0].retry.max_attempts",
        ),
        (
            {"kind": "bus", "bus": "b", "retry": {"max_event_age_s": 59}},
            "targets[0].retry.max_event_age_s",
        ),
        ({"kind": "bus", "bus": "Upper"}, "targets[0].bus"),
        ({"kind": "function", "function": "9lives"}, "targets[0].function"),
        ({"kind": "function", "function": "f", "id": "a b"}, "targets[0].id"),
        ({"kind": "function", "function": "f", "input_path": "$.a[*]"}, "targets[0].input_path"),
        (
            {"kind": "function", "function": "f", "input": 1, "input_path": "$"},
            "targets[0].input_path",
        ),
        (
            {
                "kind": "function",
                "function": "f",
                "input_transformer": {"input_paths_map": {"t": "data"}, "input_template": "<t>"},
            },
            "targets[0].input_transformer.input_paths_map.t",
        ),
        (
            {
                "kind": "function",
                "function": "f",
                "input_transformer": {
                    "input_paths_map": {"squall.x": "$"},
                    "input_template": "<t>",
                },
            },
            "targets[0].input_transformer.input_paths_map.squall.x",
        ),
        (
            {
                "kind": "function",
                "function": "f",
                "input_transformer": {"input_template": '{"a": <a'},
            },
            "targets[0].input_transformer.input_template",
        ),
        ({"kind": "queue", "queue": "-bad"}, "targets[0].queue"),
        ({"kind": "queue", "queue": "q", "group_id": "has space"}, "targets[0].group_id"),
        (
            {"kind": "queue", "queue": "q", "retry": {"max_attempts": 999}},
            "targets[0].retry.max_attempts",
        ),
    ],
)
def test_invalid_targets_name_the_field(target: dict[str, Any], field: str) -> None:
    assert refused(body(target)).field == field


def test_integral_floats_count_as_integers_for_retries() -> None:
    target = {"kind": "bus", "bus": "b", "retry": {"max_attempts": 3.0, "max_event_age_s": 60}}
    [parsed] = parse_rule(body(target)).targets
    assert isinstance(parsed, BusTarget) and parsed.retry.max_attempts == 3


def test_rule_level_checks() -> None:
    assert refused(body(name="no spaces")).field == "name"
    assert refused(body(bus="Default")).field == "bus"
    assert refused(body(description="x" * 513)).field == "description"
    six = [{"kind": "function", "function": "f"}] * 6
    assert refused(body(*six)).field == "targets"
    twice = refused(body({"kind": "bus", "bus": "b", "id": "1"}, {"kind": "bus", "bus": "c"}))
    assert twice.field == "targets[1].id"
    assert refused({"name": "r", "pattern": {"a": ["\ud800"]}}).field == "body"


def test_references_are_checked_against_the_platform() -> None:
    rule = parse_rule(body({"kind": "function", "function": "f"}, {"kind": "bus", "bus": "audit"}))
    check_references(rule, {"f"}, {"default", "audit"})
    with pytest.raises(InvalidInput) as info:
        check_references(rule, {"g"}, {"default", "audit"})
    assert info.value.field == "targets[0].function"
    with pytest.raises(InvalidInput) as info:
        check_references(rule, {"f"}, {"default"})
    assert info.value.field == "targets[1].bus"


def test_app_rules_declare_several_targets_and_are_checked_at_load() -> None:
    app = squall.App("t")

    @app.on("order.placed")
    def record(event: Any, ctx: Any) -> None: ...

    audit = app.rule(
        "audit",
        event_type="order.placed",
        targets=[
            squall.targets.Function("record", input_path="$.data"),
            squall.targets.Http("https://example.com/hook", headers={"X-A": "1"}),
        ],
    )
    app.rule("on-audit-bus", bus="audit", pattern={"source": ["x"]}, targets=[])
    app.rule("forward", event_type="x", targets=[squall.targets.Bus("audit")])
    manifest = app.manifest()
    assert [r.name for r in manifest.rules] == ["record-0", "audit", "on-audit-bus", "forward"]
    assert manifest.rules[0].targets == (FunctionTarget("record", id="0"),)
    assert audit.origin == "app" and [t.id for t in audit.targets] == ["0", "1"]

    with pytest.raises(ConfigError) as bad:
        app.rule("bad", event_type="x", targets=[squall.targets.Http("nope")])
    assert bad.value.field == "targets[0].url"
    with pytest.raises(ConfigError) as bad_pattern:
        app.rule("bad", pattern={"data": {"total": [{"numeric": "x"}]}}, targets=[])
    assert bad_pattern.value.field == "pattern.data.total[0].numeric"

    with pytest.raises(ConfigError) as wrong_type:
        app.rule("bad", event_type="x", targets=[squall.targets.Http(42)])  # type: ignore[arg-type]
    assert wrong_type.value.field == "targets[0].url"
    app.rule("dangling", event_type="x", targets=[squall.targets.Function("nobody")])
    with pytest.raises(ConfigError) as dangling:
        app.manifest()
    assert dangling.value.field == "targets[0].function"


def test_rules_round_trip_through_json() -> None:
    import msgspec

    rule = parse_rule(
        body(
            {"kind": "function", "function": "f", "input": None},
            {"kind": "http", "url": "https://x", "input_transformer": {"input_template": "hi"}},
        )
    )
    again = msgspec.json.decode(msgspec.json.encode(rule), type=RuleConfig)
    assert again == rule
    assert again.targets[0] == FunctionTarget("f", id="0", input=None)  # null stays a constant
