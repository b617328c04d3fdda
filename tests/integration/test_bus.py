"""The event bus: rules, publishing from functions and over HTTP, dedup, loops."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from support import ADMIN_KEY, SQUALL, client_env, start_squall, wait_for

from squall.model.cloudevent import CloudEvent

APP = """
import squall

app = squall.App("bus")


@app.on("order.placed", pattern={"data": {"total": [{"numeric": [">", 100]}]}})
def big_order(event, ctx):
    print("big", event["data"]["total"], event["id"])
    return event["data"]


@app.on("order.placed")
def any_order(event, ctx):
    return event["subject"]


@app.function(permissions=["publish:default"])
def checkout(event, ctx):
    return ctx.publish("order.placed", {"total": event["total"]}, subject=event["subject"])


@app.function()
def sneaky(event, ctx):
    try:
        ctx.publish("order.placed", {"total": 1})
    except squall.AccessDenied as exc:
        return exc.details
    return None


@app.on("ping", permissions=["publish:default"], retries=0)
def ping(event, ctx):
    ctx.publish("ping", {"n": event["data"]["n"] + 1})
    return event["squallhops"] if "squallhops" in event else 0
"""


async def test_rules_match_and_deliver_to_their_functions(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    small = CloudEvent.create("order.placed", {"total": 20}, source="test", subject="o-1")
    big = CloudEvent.create("order.placed", {"total": 250}, source="test", subject="o-2")
    other = CloudEvent.create("order.shipped", {"total": 999}, source="test", subject="o-3")
    outcomes = await p.publish([small, big, other])
    assert [sorted(o.matched) for o in outcomes] == [
        ["any-order-0"],
        ["any-order-0", "big-order-0"],
        [],
    ]
    await p.wait_idle(timeout=20)
    big_runs = await p.list_invocations(function="big-order")
    assert [msgspec.json.decode(r.result or b"") for r in big_runs] == [{"total": 250}]
    assert big_runs[0].trigger == "event"
    subjects = sorted(
        msgspec.json.decode(r.result or b"") for r in await p.list_invocations(function="any-order")
    )
    assert subjects == ["o-1", "o-2"]


async def test_an_event_id_is_delivered_once_per_source(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    event = CloudEvent.create("order.placed", {"total": 5}, source="dup", subject="s", id="e-1")
    first = await p.publish([event, event])
    second = await p.publish([event])
    assert [o.duplicate for o in first + second] == [False, True, True]
    same_id_other_source = CloudEvent.create(
        "order.placed", {"total": 5}, source="other", subject="s", id="e-1"
    )
    [third] = await p.publish([same_id_other_source])
    assert not third.duplicate
    await p.wait_idle(timeout=20)
    assert len(await p.list_invocations(function="any-order")) == 2


async def test_functions_publish_only_with_permission(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    record = await p.invoke("checkout", b'{"total": 500, "subject": "o-9"}')
    assert record.status == "succeeded", record.error
    event_id = msgspec.json.decode(record.result or b"")
    await p.wait_idle(timeout=20)
    [big] = await p.list_invocations(function="big-order")
    assert big.status == "succeeded"
    logs = await p.list_logs(invocation_id=big.id)
    assert logs[0].message == f"big 500 {event_id}"
    denied = await p.invoke("sneaky", b"null")
    assert msgspec.json.decode(denied.result or b"") == {
        "function": "sneaky",
        "action": "publish",
        "resource": "default",
    }


async def test_an_event_loop_stops_after_16_hops(platform) -> None:  # type: ignore[no-untyped-def]
    p = await platform(APP)
    await p.publish([CloudEvent.create("ping", {"n": 0}, source="test")])
    await p.wait_idle(timeout=60)
    runs = await p.list_invocations(function="ping", limit=100)
    delivered = [r for r in runs if r.status == "succeeded"]
    looped = [r for r in runs if r.status == "dead_lettered"]
    assert len(delivered) == 17  # hops 0 through 16
    assert sorted(msgspec.json.decode(r.result or b"") for r in delivered) == list(range(17))
    [stopped] = looped
    assert stopped.error is not None and stopped.error["type"] == "RecursiveLoop"
    [letter] = await p.list_dead_letters(function="ping")
    assert letter.error["type"] == "RecursiveLoop"


async def test_unknown_bus_is_not_found(platform) -> None:  # type: ignore[no-untyped-def]
    from squall.errors import NotFound

    p = await platform(APP)
    with pytest.raises(NotFound) as info:
        await p.publish([CloudEvent.create("x", 1, source="t")], bus="nope")
    assert info.value.field == "bus"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("bus")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_structured_batch_and_binary_publishing_over_http(url: str, tmp_path: Path) -> None:
    structured = {
        "specversion": "1.0",
        "id": "h-1",
        "source": "http-test",
        "type": "order.placed",
        "subject": "h-1",
        "data": {"total": 150},
    }
    response = httpx.post(
        f"{url}/api/v1/events",
        content=json.dumps(structured),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["events"][0]["matched"] == ["any-order-0", "big-order-0"]
    batch = [dict(structured, id="h-2", subject="h-2"), dict(structured, id="h-3", subject="h-3")]
    response = httpx.post(
        f"{url}/events",
        content=json.dumps(batch),
        headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 202, response.text
    assert [e["id"] for e in response.json()["events"]] == ["h-2", "h-3"]
    binary = httpx.post(
        f"{url}/api/v1/events",
        content=b'{"total": 7}',
        headers={
            **AUTH,
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "h-4",
            "ce-source": "http-test",
            "ce-type": "order.placed",
            "ce-subject": "h-4",
        },
    )
    assert binary.status_code == 202, binary.text
    assert binary.json()["events"][0]["matched"] == ["any-order-0"]

    def delivered() -> list[str] | None:
        shown = httpx.get(
            f"{url}/api/v1/invocations", params={"function": "any-order"}, headers=AUTH
        ).json()
        done = [r["id"] for r in shown["invocations"] if r["status"] == "succeeded"]
        if len(done) < 4:
            return None
        return sorted(
            httpx.get(f"{url}/api/v1/invocations/{i}", headers=AUTH).json()["result"]
            for i in done
        )

    assert wait_for(delivered) == ["h-1", "h-2", "h-3", "h-4"]


def test_bad_events_are_400_naming_the_attribute(url: str) -> None:
    response = httpx.post(
        f"{url}/api/v1/events",
        content=json.dumps({"specversion": "1.0", "source": "x", "type": "t"}),
        headers={**AUTH, "Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "id"
    anonymous = httpx.post(
        f"{url}/events",
        content=b"{}",
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert anonymous.status_code == 401


def test_pattern_tester(url: str) -> None:
    pattern = {"data": {"total": [{"numeric": [">", 100]}]}}
    matching = {"type": "t", "data": {"total": 101}}
    answer = httpx.post(
        f"{url}/api/v1/events/test-pattern",
        json={"pattern": pattern, "event": matching},
        headers=AUTH,
    )
    assert answer.json() == {"match": True}
    answer = httpx.post(
        f"{url}/api/v1/events/test-pattern",
        json={"pattern": pattern, "event": {"data": {"total": "101"}}},
        headers=AUTH,
    )
    assert answer.json() == {"match": False}  # numeric tests apply only to numbers
    invalid = httpx.post(
        f"{url}/api/v1/events/test-pattern",
        json={"pattern": {"data": {"total": []}}, "event": matching},
        headers=AUTH,
    )
    assert invalid.status_code == 400
    assert "total" in invalid.json()["error"]["field"]


def test_rules_are_listed(url: str) -> None:
    rules = httpx.get(f"{url}/api/v1/rules", headers=AUTH).json()["rules"]
    assert {(r["name"], r["bus"], r["origin"]) for r in rules} == {
        ("big-order-0", "default", "app"),
        ("any-order-0", "default", "app"),
        ("ping-0", "default", "app"),
    }
    [big] = [r for r in rules if r["name"] == "big-order-0"]
    assert big["targets"] == [{"kind": "function", "id": "0", "function": "big-order",
                               "alias": None, "input_path": None, "input_transformer": None}]


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
        env=client_env(),
        check=False,
    )


def test_cli_publish_and_test_pattern(url: str) -> None:
    done = cli(url, "publish", "order.placed", "--data", '{"total": 300}', "--subject", "c-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("-> any-order-0, big-order-0")
    pattern = '{"type": ["order.placed"]}'
    yes = cli(url, "events", "test-pattern", pattern, '{"type": "order.placed"}')
    assert (yes.returncode, yes.stdout.strip()) == (0, "match")
    no = cli(url, "events", "test-pattern", pattern, '{"type": "order.shipped"}')
    assert (no.returncode, no.stdout.strip()) == (1, "no match")
    bad = cli(url, "events", "test-pattern", '{"type": "x"}', "{}")
    assert bad.returncode == 2
    assert "must hold an array" in bad.stderr
