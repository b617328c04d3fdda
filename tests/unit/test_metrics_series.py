"""The dashboard's time series: buckets, percentiles, cost per bucket and bad windows."""

from __future__ import annotations

import pytest

from squall.errors import InvalidInput
from squall.model.invocation import InvocationRecord
from squall.observe.cost import PriceTable
from squall.observe.series import MAX_POINTS, check_step, series

T0 = 1_700_000_000.0
PRICES = PriceTable(request_usd_per_million=1_000_000, gb_second_usd=1000)  # 1 USD a request


def record(at: float, function: str = "f", **fields: object) -> InvocationRecord:
    values: dict[str, object] = {
        "id": f"r{at}",
        "function": function,
        "version": "v",
        "trigger": "sync",
        "status": "succeeded",
        "memory_mb": 1024,
        "duration_ms": 10.0,
        "billed_ms": 10,
        "created_at": at,
    }
    values.update(fields)
    return InvocationRecord(**values)  # type: ignore[arg-type]


def test_records_fall_into_the_bucket_they_were_created_in() -> None:
    records = [
        record(T0 + 1, duration_ms=10.0),
        record(T0 + 59, duration_ms=30.0, cold=True),
        record(T0 + 60, status="failed", duration_ms=5.0),
        record(T0 + 179.9, status="dead_lettered", billed_ms=None, duration_ms=None),
    ]
    out = series(records, since=T0, until=T0 + 180, step=60, prices=PRICES)
    assert [p["t"] for p in out["points"]] == [T0, T0 + 60, T0 + 120]
    first, second, third = out["points"]
    assert (first["invocations"], first["errors"], first["cold_starts"]) == (2, 0, 1)
    assert (first["p50_ms"], first["p99_ms"]) == (10.0, 30.0)
    assert (second["invocations"], second["errors"]) == (1, 1)
    assert (third["invocations"], third["errors"], third["p50_ms"]) == (1, 1, None)
    # 1 USD a request plus 1 GB x 0.01 s x 1000 USD; an invocation that never ran costs 0.
    assert first["cost_usd"] == pytest.approx(2 * (1 + 10.0))
    assert third["cost_usd"] == 0.0


def test_an_empty_bucket_has_zero_counts_and_no_percentiles() -> None:
    out = series([], since=T0, until=T0 + 30, step=60, prices=PRICES)
    assert out["points"] == [
        {"t": T0, "invocations": 0, "errors": 0, "cold_starts": 0, "p50_ms": None,
         "p99_ms": None, "cost_usd": 0.0}
    ]


def test_a_function_filter_and_records_outside_the_window() -> None:
    records = [record(T0 + 5, "a"), record(T0 + 6, "b"), record(T0 - 1, "a"), record(T0 + 70, "a")]
    out = series(records, since=T0, until=T0 + 60, step=60, prices=PRICES, function="a")
    assert out["function"] == "a"
    assert [p["invocations"] for p in out["points"]] == [1]


@pytest.mark.parametrize(
    ("since", "until", "step", "words"),
    [
        (T0, T0 + 60, 0.5, "at least 1"),
        (T0, T0 + 60, float("nan"), "at least 1"),
        (T0 + 60, T0, 10, "after until"),
        (T0, T0 + MAX_POINTS * 10 + 1, 10, f"at most {MAX_POINTS}"),
        (-1e308, 1e308, 10, "too long"),
    ],
)
def test_bad_windows_name_the_field(since: float, until: float, step: float, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_step(since, until, step)
    assert words in caught.value.message
    assert caught.value.field in ("step", "since")


def test_the_most_points_allowed() -> None:
    assert check_step(T0, T0 + MAX_POINTS * 10, 10) == MAX_POINTS
