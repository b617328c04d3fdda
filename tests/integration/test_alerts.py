"""Alert rules on metrics fire and resolve, as events on the default bus, on a real platform."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from squall.errors import TooManyRequests
from squall.observe import alerts

APP = """
import time
import squall

app = squall.App("alerting")
app.alert("flaky-errors", metric="error_rate", threshold=0.5, window="2s", function="flaky")
app.alert("slow-p99", metric="p99_ms", threshold=100, window=2, function="flaky")
app.alert("dead", metric="dlq_depth", threshold=0)
app.alert("throttled", metric="throttles", threshold=0, window="2s", function="narrow")


@app.function(retries=0)
def flaky(event, ctx):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise RuntimeError("flaky")
    return None


@app.function(concurrency=1)
def narrow(event, ctx):
    time.sleep(event)


@app.on("squall.alert.fired")
@app.on("squall.alert.resolved")
def seen(event, ctx):
    return {"type": event["type"], **event["data"]}
"""


async def seen_events(p: Any) -> list[dict[str, Any]]:
    await p.wait_idle()
    records = await p.list_invocations(function="seen", limit=100)
    # Rules evaluated in the background may have a handler running now: not seen yet.
    done = [r.public()["result"] for r in records if r.status == "succeeded"]
    return sorted(done, key=lambda e: e["at"])


async def test_error_rate_and_p99_fire_then_resolve_when_the_window_moves_on(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    rules = p.observability.alerts
    assert await rules.check() == []  # no data: nothing fires
    await p.invoke("flaky", b'{"fail": true}')
    await p.invoke("flaky", b'{"fail": true}')
    await p.invoke("flaky", b'{"sleep": 0.15}')
    fired = await rules.check()
    assert sorted((e.type, e.data["alert"]) for e in fired) == [  # type: ignore[index]
        ("squall.alert.fired", "flaky-errors"),
        ("squall.alert.fired", "slow-p99"),
    ]
    assert await rules.check() == []  # still firing: announced once
    errors = {e.data["alert"]: e.data for e in fired}  # type: ignore[index]
    assert errors["flaky-errors"]["value"] == pytest.approx(2 / 3)
    assert errors["slow-p99"]["value"] >= 150
    assert {a["name"]: a["firing"] for a in rules.describe()} == {
        "flaky-errors": True,
        "slow-p99": True,
        "dead": False,
        "throttled": False,
    }
    scraped = (await p.observability.scrape()).decode()
    assert 'squall_alert_firing{alert="flaky-errors",metric="error_rate"} 1.0' in scraped
    assert 'squall_alert_firing{alert="dead",metric="dlq_depth"} 0.0' in scraped
    # good, fast calls while the bad ones age out of the 2 s window
    await asyncio.sleep(2.1)
    await p.invoke("flaky", b"{}")
    resolved = await rules.check()
    assert sorted((e.type, e.data["alert"]) for e in resolved) == [  # type: ignore[index]
        ("squall.alert.resolved", "flaky-errors"),
        ("squall.alert.resolved", "slow-p99"),
    ]
    events = await seen_events(p)
    assert [(e["type"], e["alert"]) for e in events if e["alert"] == "flaky-errors"] == [
        ("squall.alert.fired", "flaky-errors"),
        ("squall.alert.resolved", "flaky-errors"),
    ]


async def test_dead_letters_and_throttles_fire_and_resolve(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP, sync_wait_s=0.1)
    rules = p.observability.alerts
    await p.invoke_async("flaky", b'{"fail": true}')
    await p.wait_idle()
    running = asyncio.ensure_future(p.invoke("narrow", b"0.5"))
    await asyncio.sleep(0.1)
    with pytest.raises(TooManyRequests):
        await p.invoke("narrow", b"0")
    fired = {e.data["alert"]: e for e in await rules.check()}  # type: ignore[index]
    assert set(fired) == {"dead", "throttled", "flaky-errors"}
    assert fired["dead"].data["value"] == 1  # type: ignore[index]
    assert fired["throttled"].data["value"] == 1  # type: ignore[index]
    await running
    assert await p.purge_dead_letters(function="flaky") == 1
    resolved = {e.data["alert"] for e in await rules.check(now=time.time() + 3)}  # type: ignore[index]
    assert resolved == {"dead", "throttled", "flaky-errors"}


async def test_rules_are_evaluated_in_the_background(platform, eventually, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(alerts, "CHECK_S", 0.05)
    p = await platform(APP)
    await p.invoke_async("flaky", b'{"fail": true}')

    async def fired() -> list[dict[str, Any]]:
        return [e for e in await seen_events(p) if e["alert"] == "dead"]

    [event] = await eventually(fired)
    assert event["type"] == "squall.alert.fired" and event["metric"] == "dlq_depth"
    await p.purge_dead_letters(function="flaky")

    async def resolved() -> bool:
        return len(await fired()) == 2

    await eventually(resolved)
