"""Per-bus counters: published, duplicates, matched, deliveries and events stopped as loops."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import msgspec
from support import AUTH, start_squall

from squall.engine.bus_stats import BusCounters
from squall.model.cloudevent import CloudEvent

APP = """
import squall

app = squall.App("stats")


@app.on("ping", permissions=["publish:default"], retries=0)
def ping(event, ctx):
    ctx.publish("ping", {"n": event["data"]["n"] + 1})


@app.on("order.placed")
@app.on("order.placed", bus="audit")
def record(event, ctx):
    return event["id"]


@app.on("order.placed", pattern={"data": {"total": [{"numeric": [">", 100]}]}})
def big(event, ctx):
    return event["id"]
"""


def counters(stats: list[BusCounters], bus: str) -> dict[str, object]:
    [entry] = [s for s in stats if s.bus == bus]
    data = msgspec.structs.asdict(entry)
    del data["bus"]
    return data


async def test_a_loop_is_counted_once_and_not_delivered(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    zero = {"published": 0, "duplicates": 0, "matched": 0, "deliveries": 0, "looped": 0}
    assert counters(p.bus_stats.snapshot(), "default") == zero
    await p.publish([CloudEvent.create("ping", {"n": 0}, source="test")])
    await p.wait_idle(timeout=60)
    # hops 0 to 16 are delivered, and each publishes the next; the one at hop 17 is a loop
    assert counters(p.bus_stats.snapshot(), "default") == {
        "published": 18,
        "duplicates": 0,
        "matched": 18,
        "deliveries": 17,
        "looped": 1,
    }
    [letter] = await p.list_dead_letters(function="ping")
    assert letter.error["type"] == "RecursiveLoop"


async def test_matches_duplicates_and_buses_are_counted_apart(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    small = CloudEvent.create("order.placed", {"total": 5}, source="shop", id="o-1")
    large = CloudEvent.create("order.placed", {"total": 500}, source="shop", id="o-2")
    other = CloudEvent.create("order.shipped", {"total": 500}, source="shop", id="o-3")
    await p.publish([small, large, other, small])
    await p.publish([large])
    await p.publish([CloudEvent.create("order.placed", {}, source="shop", id="o-4")], bus="audit")
    stats = p.bus_stats.snapshot()
    assert [s.bus for s in stats] == ["audit", "default"]
    assert counters(stats, "default") == {
        "published": 3,
        "duplicates": 2,  # the second copy in the batch, and the second publish
        "matched": 2,
        "deliveries": 3,  # record for both orders, big for the large one
        "looped": 0,
    }
    assert counters(stats, "audit") == {
        "published": 1,
        "duplicates": 0,
        "matched": 1,
        "deliveries": 1,
        "looped": 0,
    }
    # one invocation per delivery counted
    await p.wait_idle(timeout=20)
    assert len(await p.list_invocations(function="record")) == 3
    assert len(await p.list_invocations(function="big")) == 1


def test_stats_are_served_by_the_admin_api(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            published = http.post(
                "/api/v1/events",
                json={
                    "specversion": "1.0",
                    "id": "h-1",
                    "source": "shop",
                    "type": "order.placed",
                    "data": {"total": 200},
                },
                headers={"Content-Type": "application/cloudevents+json"},
            )
            assert published.status_code == 202, published.text
            response = http.get("/api/v1/buses/stats")
            assert response.status_code == 200
            body = response.json()
            assert isinstance(body["since"], float)
            assert body["buses"] == [
                {
                    "bus": "audit",
                    "published": 0,
                    "duplicates": 0,
                    "matched": 0,
                    "deliveries": 0,
                    "looped": 0,
                },
                {
                    "bus": "default",
                    "published": 1,
                    "duplicates": 0,
                    "matched": 1,
                    "deliveries": 2,
                    "looped": 0,
                },
            ]
            assert httpx.get(f"{url}/api/v1/buses/stats").status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
