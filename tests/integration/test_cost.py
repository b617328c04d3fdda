"""Metering from stored records, and budgets that alert and stop a function."""

from __future__ import annotations

import asyncio
import time

import pytest
from conftest import stop_platform

from squall.errors import TooManyRequests
from squall.observe import budgets
from squall.observe.cost import PriceTable

APP = """
import time
import squall

app = squall.App("billing")


@app.function(memory_mb=512)
def big(event, ctx):
    time.sleep(event)
    return None


@app.function()
def small(event, ctx):
    return event


@app.function(retries=0)
def broken(event, ctx):
    raise RuntimeError("no")
"""

BUDGET_APP = """
import time
import squall

app = squall.App("budgeted")
app.budget(usd=0.000001, period="day", function="spender", stop=True)
app.budget(usd=0.0000005, period="month")


@app.function(memory_mb=1024)
def spender(event, ctx):
    time.sleep(0.02)
    return None


@app.function()
def other(event, ctx):
    return None


@app.on("squall.budget.exceeded")
def alarm(event, ctx):
    return event["data"]
"""


async def test_cost_is_the_records_billed_duration_times_memory(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    since = time.time() - 1
    p = await platform(APP)
    for pause in (0.01, 0.02, 0.0):
        await p.invoke("big", str(pause).encode())
    for n in range(5):
        await p.invoke("small", str(n).encode())
    await p.invoke("broken", b"null")
    await p.invoke_async("small", b"7")
    await p.wait_idle()

    records = await p.list_invocations(limit=100)
    assert len(records) == 10
    prices = PriceTable()
    expected_gb_s = {
        name: sum(
            r.memory_mb / 1024 * (r.billed_ms or 0) / 1000 for r in records if r.function == name
        )
        for name in ("big", "small", "broken")
    }
    report = await p.observability.cost("function", since)
    rows = {row["function"]: row for row in report["rows"]}
    assert set(rows) == {"big", "small", "broken"}
    for name, gb_s in expected_gb_s.items():
        assert rows[name]["gb_seconds"] == pytest.approx(gb_s, rel=1e-12)
        assert rows[name]["compute_usd"] == pytest.approx(gb_s * prices.gb_second_usd, rel=1e-12)
    assert rows["big"]["requests"] == 3
    assert rows["small"]["requests"] == 6  # the async one too
    assert rows["broken"]["requests"] == 1  # failures are billed
    assert rows["big"]["billed_ms"] == sum(r.billed_ms or 0 for r in records if r.function == "big")
    assert rows["big"]["billed_ms"] >= 30  # it slept 30 ms in all
    total = report["total"]
    assert total["requests"] == 10
    assert total["request_usd"] == pytest.approx(10 * 0.20 / 1_000_000)
    assert total["total_usd"] == pytest.approx(
        10 * 0.20 / 1_000_000 + sum(expected_gb_s.values()) * 0.0000166667
    )

    # by day: the same total in one row for today (UTC)
    by_day = await p.observability.cost("day", since)
    [today] = by_day["rows"]
    assert today["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    assert today["total_usd"] == pytest.approx(total["total_usd"], rel=1e-12)

    # from the store: a restart keeps the figures
    await stop_platform(p)
    again = await platform(APP)
    assert (await again.observability.cost("function", since))["total"] == total
    # a window after the workload is empty
    later = await again.observability.cost("function", time.time() + 1, time.time() + 2)
    assert later["rows"] == [] and later["total"]["requests"] == 0


async def test_prices_come_from_the_platform_config(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP, prices=PriceTable(request_usd_per_million=1_000_000, gb_second_usd=0))
    since = time.time() - 1
    await p.invoke("small", b"1")
    await p.invoke("small", b"2")
    report = await p.observability.cost("function", since)
    assert report["prices"] == {"request_usd_per_million": 1_000_000, "gb_second_usd": 0}
    assert report["total"]["total_usd"] == pytest.approx(2.0)


async def test_summary_counts_errors_cold_starts_and_percentiles(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    since = time.time() - 1
    for pause in (0.0, 0.0, 0.05):
        await p.invoke("big", str(pause).encode())
    await p.invoke("broken", b"null")
    summary = await p.observability.summary(since)
    rows = {row["function"]: row for row in summary["functions"]}
    assert rows["big"]["invocations"] == 3 and rows["big"]["errors"] == 0
    assert rows["big"]["cold_starts"] == 1
    assert rows["big"]["p99_ms"] >= 50 > rows["big"]["p50_ms"]
    assert rows["broken"] | {"p50_ms": None, "p99_ms": None} == {
        "function": "broken",
        "invocations": 1,
        "errors": 1,
        "error_rate": 1.0,
        "throttles": 0,
        "cold_starts": 1,
        "p50_ms": None,
        "p99_ms": None,
    }
    assert rows["small"]["invocations"] == 0 and rows["small"]["p50_ms"] is None


async def test_a_crossed_budget_alerts_once_and_stops_the_function(  # type: ignore[no-untyped-def]
    platform, eventually, monkeypatch
) -> None:
    monkeypatch.setattr(budgets, "CHECK_S", 0.05)
    p = await platform(BUDGET_APP)
    # 1 GB x >= 20 ms is >= 0.02 GB-s: with the request, >= 0.00000055 USD a call
    calls = 0
    while p.function("spender").concurrency != 0:
        assert calls < 50, "the budget never stopped the function"
        try:
            record = await p.invoke("spender", b"null")
        except TooManyRequests:  # stopped between the loop's check and this call
            break
        assert record.status == "succeeded"
        calls += 1
        await asyncio.sleep(0.01)
    assert calls >= 2  # >= 0.00000055 USD a call: the second one crosses 0.000001
    with pytest.raises(TooManyRequests, match="concurrency is 0"):
        await p.invoke("spender", b"null")
    await p.invoke("other", b"null")  # the function budget stops only its function

    async def alarms() -> list[dict[str, object]]:
        await p.wait_idle()
        records = await p.list_invocations(function="alarm")
        # An alarm still running when the records are read is not seen yet.
        return [r.public()["result"] for r in records if r.status == "succeeded"]

    fired = await eventually(lambda: _at_least(alarms, 2))
    by_function = {alarm["function"]: alarm for alarm in fired}
    assert set(by_function) == {"spender", None}
    spender = by_function["spender"]
    assert spender["period"] == "day" and spender["budget_usd"] == 0.000001
    assert spender["spend_usd"] >= 0.000001 and spender["stopped"] is True
    app_wide = by_function[None]
    assert app_wide["period"] == "month" and app_wide["stopped"] is False
    # checked again and again: each budget is announced once per period
    for _ in range(3):
        assert await p.observability.budgets.check() == []
    await p.wait_idle()
    assert len(await p.list_invocations(function="alarm")) == 2
    report = await p.observability.cost("function", time.time() - 60)
    states = {(b["function"], b["period"]): b["exceeded"] for b in report["budgets"]}
    assert states == {("spender", "day"): True, (None, "month"): True}
    scraped = (await p.observability.scrape()).decode()
    assert 'squall_budget_usd{function="spender",period="day"} 1e-06' in scraped
    assert 'squall_budget_spend_usd{function="*",period="month"}' in scraped


async def _at_least(check, count: int):  # type: ignore[no-untyped-def]
    found = await check()
    return found if len(found) >= count else None


async def test_spend_so_far_is_read_back_at_start(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = await platform(BUDGET_APP.replace("usd=0.000001,", "usd=1000.0,"))
    for _ in range(2):
        await p.invoke("spender", b"null")
    before = {b["period"]: b["spend_usd"] for b in p.observability.budgets.describe()}
    assert before["day"] > 0
    await stop_platform(p)
    again = await platform(BUDGET_APP.replace("usd=0.000001,", "usd=1000.0,"))
    after = {b["period"]: b["spend_usd"] for b in again.observability.budgets.describe()}
    assert after["day"] == pytest.approx(before["day"], rel=1e-9)
