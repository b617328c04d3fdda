"""Traces end to end: one trace follows an order from the HTTP request through an event, a
rule delivery and a queue message, with every hop under the right parent."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import StartPlatform

from squall.gateway import create_app
from squall.observe.tracing import SpanKind, use_span

APP = """
import logging

import squall

app = squall.App("shop")
log = logging.getLogger("shop")


@app.http("POST /orders", permissions=["publish:default"])
def place_order(request, ctx):
    order = request.json()
    ctx.log.info("placing order", order_id=order["id"])
    with ctx.span("validate", order_id=order["id"]) as span:
        span.set_attribute("valid", True)
        with ctx.span("price"):
            log.info("priced", extra={"total": order["total"]})
    ctx.set_attribute("order.total", order["total"])
    ctx.publish("order.placed", order)
    return {"id": order["id"], "trace": ctx.trace_id}


@app.on("order.placed", permissions=["send:emails"])
def fraud_check(event, ctx):
    ctx.send("emails", {"order": event["data"]["id"]})


@app.queue("emails")
def send_emails(messages, ctx):
    ctx.log.info("mailing", count=len(messages))


@app.function()
def failing(event, ctx):
    with ctx.span("doomed"):
        raise ValueError("no luck")
"""


async def _client(platform: Any) -> httpx.AsyncClient:
    auth = {"Authorization": f"Bearer {platform.bootstrap_key}"}
    transport = httpx.ASGITransport(app=create_app(platform))
    return httpx.AsyncClient(transport=transport, base_url="http://gw", headers=auth)


def _by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {span["name"]: span for span in spans}


async def _trace(client: httpx.AsyncClient, trace_id: str, names: set[str]) -> list[Any]:
    deadline = time.monotonic() + 20
    while True:
        response = await client.get(f"/api/v1/traces/{trace_id}")
        if response.status_code == 200:
            spans = response.json()["spans"]
            if names <= {span["name"] for span in spans}:
                return list(spans)
        assert time.monotonic() < deadline, f"spans missing: {response.text}"
        await _sleep(0.1)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_one_trace_follows_http_event_queue_chain(
    platform: StartPlatform, tmp_path: Path
) -> None:
    p = await platform(APP)
    async with await _client(p) as client:
        response = await client.post("/orders", json={"id": 7, "total": 120})
        assert response.status_code == 200, response.text
        trace_id = response.headers["x-squall-trace-id"]
        assert response.json() == {"id": 7, "trace": trace_id}
        await p.wait_idle()
        spans = await _trace(
            client,
            trace_id,
            {"invoke send-emails", "receive emails", "send emails", "invoke fraud-check"},
        )
        named = _by_name(spans)
        parent = {span["span_id"]: span["parent_id"] for span in spans}

        def parent_name(name: str) -> str | None:
            pid = named[name]["parent_id"]
            return next((s["name"] for s in spans if s["span_id"] == pid), None)

        assert named["POST /orders"]["parent_id"] is None
        assert named["POST /orders"]["kind"] == "server"
        assert parent_name("invoke place-order") == "POST /orders"
        assert parent_name("validate") == "invoke place-order"
        assert parent_name("price") == "validate"
        assert parent_name("publish default") == "invoke place-order"
        deliver = [s for s in spans if s["name"].startswith("deliver ")]
        assert len(deliver) == 1 and deliver[0]["kind"] == "consumer"
        assert parent_name(deliver[0]["name"]) == "publish default"
        assert parent_name("invoke fraud-check") == deliver[0]["name"]
        assert parent_name("send emails") == "invoke fraud-check"
        assert parent_name("receive emails") == "send emails"
        assert parent_name("invoke send-emails") == "receive emails"
        assert all(pid is None or pid in parent for pid in parent.values())

        invoke = named["invoke place-order"]["attributes"]
        assert invoke["squall.function"] == "place-order"
        assert invoke["squall.cold_start"] is True
        assert invoke["order.total"] == 120
        assert named["validate"]["attributes"] == {"order_id": 7, "valid": True}
        assert parent_name("cold_start") in {"invoke place-order", "invoke fraud-check",
                                             "invoke send-emails"}
        assert all(s["status"] != "error" for s in spans)

        listing = (await client.get("/api/v1/traces", params={"function": "send-emails"})).json()
        [summary] = [t for t in listing["traces"] if t["trace_id"] == trace_id]
        assert summary["name"] == "POST /orders"
        assert summary["spans"] == len(spans)
        assert set(summary["functions"]) == {"place-order", "fraud-check", "send-emails"}
        assert summary["error"] is False

        record = await p.get_invocation(named["invoke place-order"]["attributes"][
            "squall.invocation_id"])
        assert record.trace_id == trace_id
        lines = (await client.get("/api/v1/logs", params={"trace": trace_id})).json()["logs"]
        placing = next(line for line in lines if line["message"] == "placing order")
        assert placing["fields"] == {"order_id": 7}
        assert placing["span_id"] == named["invoke place-order"]["span_id"]
        assert placing["version"] == "1"
        priced = next(line for line in lines if line["message"] == "priced")
        assert priced["fields"] == {"total": 120}
        assert priced["span_id"] == named["price"]["span_id"]
        mailing = next(line for line in lines if line["message"] == "mailing")
        assert mailing["function"] == "send-emails" and mailing["trace_id"] == trace_id


async def test_incoming_traceparent_is_continued(platform: StartPlatform) -> None:
    p = await platform(APP)
    outer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with await _client(p) as client:
        response = await client.post(
            "/orders", json={"id": 1, "total": 5}, headers={"traceparent": outer}
        )
        assert response.headers["x-squall-trace-id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
        spans = await _trace(client, "4bf92f3577b34da6a3ce929d0e0e4736", {"POST /orders"})
        assert _by_name(spans)["POST /orders"]["parent_id"] == "00f067aa0ba902b7"


async def test_user_span_error_and_failed_invocation(platform: StartPlatform) -> None:
    p = await platform(APP)
    record = await p.invoke("failing", b"{}")
    assert record.status == "failed" and record.trace_id is not None
    async with await _client(p) as client:
        spans = await _trace(client, record.trace_id, {"invoke failing", "doomed", "init"})
        named = _by_name(spans)
        assert named["doomed"]["status"] == "error"
        assert named["doomed"]["events"][0]["attributes"]["exception.message"] == (
            "ValueError: no luck"
        )
        assert named["invoke failing"]["status"] == "error"
        assert named["invoke failing"]["parent_id"] is None
        assert named["cold_start"]["parent_id"] == named["invoke failing"]["span_id"]
        assert named["init"]["parent_id"] == named["cold_start"]["span_id"]
        assert named["cold_start"]["start"] <= named["init"]["start"]
        assert named["init"]["end"] <= named["doomed"]["start"]
        listing = (await client.get("/api/v1/traces")).json()
        assert next(t for t in listing["traces"] if t["trace_id"] == record.trace_id)["error"]
        # warm: no cold start span the second time
        again = await p.invoke("failing", b"{}")
        spans = await _trace(client, str(again.trace_id), {"invoke failing", "doomed"})
        assert "cold_start" not in _by_name(spans)
        assert _by_name(spans)["invoke failing"]["attributes"]["squall.cold_start"] is False


async def test_trace_api_bad_input(platform: StartPlatform) -> None:
    p = await platform(APP)
    async with await _client(p) as client:
        missing = await client.get("/api/v1/traces/" + "0" * 31 + "1")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "NotFound"
        malformed = await client.get("/api/v1/traces/xyz")
        assert malformed.status_code == 400
        assert malformed.json()["error"]["field"] == "trace_id"
        for params, field in (
            ({"limit": "0"}, "limit"),
            ({"limit": "many"}, "limit"),
            ({"before": "yesterday"}, "before"),
        ):
            bad = await client.get("/api/v1/traces", params=params)
            assert bad.status_code == 400, params
            assert bad.json()["error"]["field"] == field


async def test_listing_pages_newest_first(platform: StartPlatform) -> None:
    p = await platform(APP)
    ids = [str((await p.invoke("failing", b"{}")).trace_id) for _ in range(3)]
    async with await _client(p) as client:
        first = (await client.get("/api/v1/traces", params={"limit": 2})).json()
        assert [t["trace_id"] for t in first["traces"]] == ids[::-1][:2]
        assert first["next"] is not None
        rest = (
            await client.get("/api/v1/traces", params={"limit": 2, "before": first["next"]})
        ).json()
        assert [t["trace_id"] for t in rest["traces"]] == ids[:1]
        assert rest["next"] is None


@pytest.mark.parametrize("sample", [0.0])
async def test_unsampled_traces_are_not_stored(platform: StartPlatform, sample: float) -> None:
    p = await platform(APP, trace_sample=sample)
    record = await p.invoke("failing", b"{}")
    async with await _client(p) as client:
        await p.tracing.flush()
        assert record.trace_id is not None
        response = await client.get(f"/api/v1/traces/{record.trace_id}")
        assert response.status_code == 404


WORKFLOW_APP = """
import squall

app = squall.App("flows")


def reserve(order):
    return {"reserved": order["id"]}


def charge(order):
    return {"charged": order["id"]}


@app.workflow()
def fulfil(wf, order):
    r = wf.step(reserve, order)
    wf.sleep(0.05)
    return {"r": r, "c": wf.step(charge, order)}
"""


async def test_workflow_replays_and_steps_join_the_starters_trace(
    platform: StartPlatform,
) -> None:
    p = await platform(WORKFLOW_APP)
    starter = p.tracing.start("start order", kind=SpanKind.SERVER)
    with use_span(starter, end_on_exit=True):
        run = await p.start_workflow("fulfil", {"id": 3}, id="order-3")
    trace_id = f"{starter.get_span_context().trace_id:032x}"
    deadline = time.monotonic() + 20
    while (await p.workflows.get(run.id)).status != "completed":
        assert time.monotonic() < deadline
        await _sleep(0.05)
    async with await _client(p) as client:
        spans = await _trace(client, trace_id, {"step reserve", "step charge", "step sleep"})
    replays = [s for s in spans if s["name"] == "workflow fulfil"]
    assert len(replays) >= 2  # suspended by the sleep, replayed after it
    root = _by_name(spans)["start order"]
    assert all(r["parent_id"] == root["span_id"] for r in replays)
    by_id = {s["span_id"]: s for s in spans}
    for name in ("step reserve", "step charge"):
        step = _by_name(spans)[name]
        invocation = by_id[step["parent_id"]]
        assert invocation["name"] == "invoke fulfil"
        assert by_id[invocation["parent_id"]]["name"] == "workflow fulfil"
        assert step["attributes"]["squall.workflow_run"] == "order-3"
        assert step["attributes"]["squall.step_status"] == "completed"
