"""Canary schedules, rollback conditions and the checks on canary options."""

from __future__ import annotations

import pytest

from squall.errors import InvalidInput
from squall.model.deploys import Canary, RollbackRule, check_canary_options


def _canary(start: int, steps: int, duration: float = 600.0) -> Canary:
    return Canary(
        function="f", primary=1, canary=2, start_weight=start, steps=steps,
        duration_s=duration, started_at=1000.0,
    )


def test_one_step_holds_the_start_weight_until_the_end() -> None:
    canary = _canary(10, 1)
    assert [canary.weight_at(1000.0 + t) for t in (-5, 0, 300, 599.9, 600, 10_000)] == [
        10, 10, 10, 10, 100, 100
    ]


def test_steps_rise_in_equal_parts() -> None:
    canary = _canary(10, 3, duration=3.0)
    assert [canary.weight_at(1000.0 + t) for t in (0, 0.99, 1.0, 1.5, 2.0, 2.9, 3.0)] == [
        10, 10, 40, 40, 70, 70, 100
    ]


def test_weights_never_fall_and_end_at_all_traffic() -> None:
    canary = _canary(7, 9, duration=90.0)
    weights = [canary.weight_at(1000.0 + t / 10) for t in range(0, 1000)]
    assert weights == sorted(weights)
    assert weights[0] == 7 and weights[-1] == 100
    assert len(set(weights)) == 10  # the start weight, 8 steps, then all of it


def test_rollback_rules_parse() -> None:
    assert RollbackRule.parse("error_rate>2%") == [RollbackRule("error_rate", 0.02)]
    assert RollbackRule.parse("error_rate > 0.05") == [RollbackRule("error_rate", 0.05)]
    assert RollbackRule.parse("error_rate>2.5%, p99_ms>800") == [
        RollbackRule("error_rate", 0.025), RollbackRule("p99_ms", 800.0)
    ]
    assert [r.describe() for r in RollbackRule.parse("error_rate>2%,p99_ms>800")] == [
        "error_rate>2%", "p99_ms>800"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency>5", "not understood"),
        ("error_rate<2%", "not understood"),
        ("error_rate>", "not understood"),
        ("error_rate>2%,", "not understood"),
        ("", "not understood"),
        ("error_rate>100%", "0-100%"),
        ("error_rate>1.5", "0-100%"),
        ("p99_ms>800%", "milliseconds"),
    ],
)
def test_rollback_rule_errors_name_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        RollbackRule.parse(text)
    assert caught.value.field == "rollback_on"


@pytest.mark.parametrize(
    ("weight", "duration", "steps", "field"),
    [
        (0, 60.0, 1, "canary"),
        (100, 60.0, 1, "canary"),
        (101, 60.0, 1, "canary"),
        (-1, 60.0, 1, "canary"),
        (10, 0.0, 1, "for"),
        (10, 8 * 86400.0, 1, "for"),
        (10, 60.0, 0, "steps"),
        (10, 60.0, 101, "steps"),
    ],
)
def test_canary_options_out_of_range(weight: int, duration: float, steps: int, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_canary_options(weight, duration, steps)
    assert caught.value.field == field


def test_canary_options_in_range() -> None:
    check_canary_options(1, 1.0, 1)
    check_canary_options(99, 7 * 86400.0, 100)
