"""Metering math, summaries, budget periods and declarations, and the metrics exposition."""

from __future__ import annotations

import calendar

import pytest
from prometheus_client.parser import text_string_to_metric_families

import squall
from squall.engine.bus_stats import BusStats
from squall.errors import ConfigError, InvalidInput
from squall.model.alerts import AlertConfig
from squall.model.budgets import BudgetConfig
from squall.model.config import FunctionConfig, Manifest
from squall.model.invocation import InvocationRecord
from squall.observe.budgets import period_start
from squall.observe.cost import PriceTable, cost_report, gb_seconds, invocation_cost
from squall.observe.metrics import Metrics, StateSnapshot
from squall.observe.summary import percentile, summarize


def record(function: str = "f", **fields: object) -> InvocationRecord:
    values: dict[str, object] = {
        "id": "x",
        "function": function,
        "version": "v",
        "trigger": "sync",
        "status": "succeeded",
        "memory_mb": 128,
        "duration_ms": 1.0,
        "billed_ms": 1,
        "created_at": 1_700_000_000.0,
        "end": 1_700_000_000.5,
    }
    values.update(fields)
    return InvocationRecord(**values)  # type: ignore[arg-type]


def test_gb_seconds_is_memory_times_billed_duration() -> None:
    assert gb_seconds(record(memory_mb=1024, billed_ms=1000)) == 1.0
    assert gb_seconds(record(memory_mb=512, billed_ms=250)) == 0.125
    assert gb_seconds(record(billed_ms=None)) == 0.0


def test_invocation_cost_uses_aws_prices_by_default() -> None:
    prices = PriceTable()
    assert prices.public() == {"request_usd_per_million": 0.20, "gb_second_usd": 0.0000166667}
    one_gb_s = record(memory_mb=1024, billed_ms=1000)
    assert invocation_cost(one_gb_s, prices) == pytest.approx(0.0000002 + 0.0000166667)
    assert invocation_cost(record(billed_ms=None), prices) == 0.0  # never ran: not billed


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"request_usd_per_million": -1}, "request_usd_per_million"),
        ({"gb_second_usd": "cheap"}, "gb_second_usd"),
        ({"gb_second_usd": True}, "gb_second_usd"),
    ],
)
def test_bad_prices_name_the_field(fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        PriceTable(**fields)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_cost_report_groups_by_function_and_by_utc_day() -> None:
    day_one = calendar.timegm((2026, 3, 1, 23, 59, 0))
    day_two = calendar.timegm((2026, 3, 2, 0, 1, 0))
    records = [
        record("a", memory_mb=1024, billed_ms=500, end=day_one),
        record("a", memory_mb=1024, billed_ms=500, end=day_two),
        record("b", memory_mb=2048, billed_ms=1000, end=day_two),
        record("b", billed_ms=None, end=day_two),
    ]
    prices = PriceTable(request_usd_per_million=1_000_000, gb_second_usd=10)
    by_function = cost_report(records, by="function", since=0, until=1, prices=prices)
    rows = {row["function"]: row for row in by_function["rows"]}
    assert rows["a"] == {
        "function": "a",
        "requests": 2,
        "billed_ms": 1000,
        "gb_seconds": 1.0,
        "request_usd": 2.0,
        "compute_usd": 10.0,
        "total_usd": 12.0,
    }
    assert rows["b"]["requests"] == 1 and rows["b"]["gb_seconds"] == 2.0
    assert by_function["total"]["total_usd"] == 12.0 + 21.0
    by_day = cost_report(records, by="day", since=0, until=1, prices=prices)
    assert [(row["day"], row["requests"]) for row in by_day["rows"]] == [
        ("2026-03-01", 1),
        ("2026-03-02", 2),
    ]


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_summary_rows_cover_every_function() -> None:
    records = [
        record("a", duration_ms=10.0, cold=True),
        record("a", duration_ms=30.0, status="failed"),
        record("a", duration_ms=20.0, status="dead_lettered"),
    ]
    summary = summarize(records, ["a", "idle"], {"a": 2}, since=0.0, until=1.0)
    a, idle = summary["functions"]
    assert a == {
        "function": "a",
        "invocations": 3,
        "errors": 2,
        "error_rate": 2 / 3,
        "throttles": 2,
        "cold_starts": 1,
        "p50_ms": 20.0,
        "p99_ms": 30.0,
    }
    assert idle["invocations"] == 0 and idle["error_rate"] == 0.0 and idle["p99_ms"] is None


def test_periods_start_at_the_utc_day_and_month() -> None:
    now = calendar.timegm((2026, 7, 15, 13, 45, 10))
    assert period_start("day", now) == calendar.timegm((2026, 7, 15, 0, 0, 0))
    assert period_start("month", now) == calendar.timegm((2026, 7, 1, 0, 0, 0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"usd": 0}, "usd"),
        ({"usd": -5}, "usd"),
        ({"usd": "10"}, "usd"),
        ({"usd": 1, "period": "week"}, "period"),
    ],
)
def test_bad_budgets_name_the_field(kwargs: dict[str, object], field: str) -> None:
    app = squall.App("b")
    with pytest.raises(ConfigError) as raised:
        app.budget(**kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_a_budget_must_name_a_function_of_the_app_once() -> None:
    def manifest(*budgets: BudgetConfig) -> Manifest:
        return Manifest(
            app="b", version="1", functions=[FunctionConfig(name="f")], budgets=list(budgets)
        )

    manifest(BudgetConfig(usd=1, function="f"), BudgetConfig(usd=1, period="day")).validate()
    with pytest.raises(ConfigError, match="names no function") as raised:
        manifest(BudgetConfig(usd=1, function="g")).validate()
    assert raised.value.field == "function"
    with pytest.raises(ConfigError, match="declared twice"):
        manifest(BudgetConfig(usd=1), BudgetConfig(usd=2)).validate()


def test_concurrency_zero_is_a_valid_function_config() -> None:
    FunctionConfig(name="f", concurrency=0).validate()
    with pytest.raises(ConfigError):
        FunctionConfig(name="f", concurrency=0, min_instances=1).validate()


def test_exposition_counts_and_histogram_buckets() -> None:
    metrics = Metrics({}, BusStats(["default"]))
    metrics.observe(record("f", duration_ms=0.3, cold=True, init_ms=4.0))
    metrics.observe(record("f", duration_ms=0.001))
    metrics.observe(record("f", duration_ms=7.0, status="failed", error={"type": "Timeout"}))
    metrics.observe(
        record(
            "f",
            duration_ms=2000.0,
            status="failed",
            error={"type": "FunctionError", "error_type": "KeyError"},
        )
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render(StateSnapshot()).decode())
        for s in family.samples
    }

    def get(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    outcome = {"function": "f", "trigger": "sync"}
    assert get("squall_invocations_total", status="succeeded", **outcome) == 2
    assert get("squall_invocations_total", status="failed", **outcome) == 2
    assert get("squall_invocation_errors_total", function="f", error_type="Timeout") == 1
    assert get("squall_invocation_errors_total", function="f", error_type="KeyError") == 1
    assert get("squall_cold_starts_total", function="f") == 1
    bucket = "squall_invocation_duration_seconds_bucket"
    assert get(bucket, function="f", le="0.0005") == 2  # 0.3 ms and 1 µs
    assert get(bucket, function="f", le="0.005") == 2
    assert get(bucket, function="f", le="0.01") == 3  # 7 ms
    assert get(bucket, function="f", le="1.0") == 3
    assert get(bucket, function="f", le="2.5") == 4  # 2 s
    assert get(bucket, function="f", le="+Inf") == 4
    assert get("squall_invocation_duration_seconds_count", function="f") == 4
    total = get("squall_invocation_duration_seconds_sum", function="f")
    assert total == pytest.approx((0.3 + 0.001 + 7.0 + 2000.0) / 1000)
    assert get("squall_init_duration_seconds_bucket", function="f", le="0.005") == 1
    assert get("squall_init_duration_seconds_bucket", function="f", le="0.0025") == 0
    assert get("squall_bus_events_total", bus="default", outcome="published") == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metric": "latency", "threshold": 1}, "metric"),
        ({"metric": "error_rate", "threshold": 1.5}, "threshold"),
        ({"metric": "p99_ms", "threshold": -1}, "threshold"),
        ({"metric": "p99_ms", "threshold": 100, "window": "5 weeks"}, "window"),
        ({"metric": "p99_ms", "threshold": 100, "window": 0}, "window"),
        ({"metric": "p99_ms", "threshold": 100, "window": "2d"}, "window"),
    ],
)
def test_bad_alerts_name_the_field(kwargs: dict[str, object], field: str) -> None:
    app = squall.App("a")
    with pytest.raises(ConfigError) as raised:
        app.alert("rule", **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_alert_windows_take_durations_or_seconds() -> None:
    app = squall.App("a")
    assert app.alert("a", metric="throttles", threshold=0, window="5m").window_s == 300
    assert app.alert("b", metric="throttles", threshold=0, window=30).window_s == 30
    assert app.alert("c", metric="dlq_depth", threshold=0).window_s == 300


def test_an_alert_must_name_a_function_of_the_app_once() -> None:
    def manifest(*alerts: AlertConfig) -> Manifest:
        return Manifest(
            app="a", version="1", functions=[FunctionConfig(name="f")], alerts=list(alerts)
        )

    manifest(AlertConfig(name="x", metric="dlq_depth", threshold=0, function="f")).validate()
    with pytest.raises(ConfigError, match="names no function"):
        manifest(AlertConfig(name="x", metric="dlq_depth", threshold=0, function="g")).validate()
    twice = AlertConfig(name="x", metric="dlq_depth", threshold=0)
    with pytest.raises(ConfigError, match="declared twice"):
        manifest(twice, twice).validate()
