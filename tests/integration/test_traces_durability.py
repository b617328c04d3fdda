"""A trace that was served survives a SIGKILL of the platform, with its log lines; and a
queue message's trace context, committed with the message, carries the trace across the
restart to the consumer that runs after it."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
from support import AUTH, start_squall, wait_for

APP = """
import pathlib
import time

import squall

app = squall.App("durable-traces")
MARK = "{mark}"
# Short, so the message is received again soon after the restart; long enough that the kill
# comes well before the first receive's lease runs out.
app.queue_resource("slow", visibility_timeout_s=5)


@app.http("POST /orders", permissions=["send:slow"])
def place(request, ctx):
    ctx.log.info("placed", order=1)
    ctx.send("slow", {"order": 1})
    return {"ok": True}


@app.queue("slow")
def consume(messages, ctx):
    if messages[0]["receive_count"] == 1:
        pathlib.Path(MARK).write_text("started")
        time.sleep(30)  # the first receive never finishes: the platform is killed first
    ctx.log.info("consumed", receive_count=messages[0]["receive_count"])
"""


def _spans(http: httpx.Client, trace_id: str) -> list[dict[str, Any]] | None:
    response = http.get(f"/api/v1/traces/{trace_id}")
    return response.json()["spans"] if response.status_code == 200 else None


def test_served_trace_and_queued_trace_context_survive_sigkill(tmp_path: Path) -> None:
    mark = tmp_path / "first-receive"
    (tmp_path / "app.py").write_text(APP.replace("{mark}", str(mark)))
    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            response = http.post("/orders", json={})
            assert response.status_code == 200, response.text
            trace_id = response.headers["x-squall-trace-id"]

            def received() -> list[dict[str, Any]] | None:
                spans = _spans(http, trace_id) or []
                names = {span["name"] for span in spans}
                return spans if {"POST /orders", "send slow"} <= names else None

            before = wait_for(received)
            wait_for(lambda: True if mark.exists() else None)  # killed mid-receive
            logs = http.get("/api/v1/logs", params={"trace": trace_id}).json()["logs"]
            assert [line["message"] for line in logs] == ["placed"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            after = _spans(http, trace_id)
            assert after is not None
            assert {s["span_id"] for s in before} <= {s["span_id"] for s in after}
            lines = http.get("/api/v1/logs", params={"trace": trace_id}).json()["logs"]
            assert lines[0]["fields"] == {"order": 1}

            def consumed() -> list[dict[str, Any]] | None:
                spans = _spans(http, trace_id) or []
                invokes = [s for s in spans if s["name"] == "invoke consume"]
                done = [s for s in invokes if s["attributes"].get("squall.status") == "succeeded"]
                return spans if done else None

            spans = wait_for(consumed, timeout=60)
            by_id = {s["span_id"]: s for s in spans}
            [send] = [s for s in spans if s["name"] == "send slow"]
            finished = [
                s for s in spans
                if s["name"] == "invoke consume"
                and s["attributes"].get("squall.status") == "succeeded"
            ]
            receive = by_id[finished[0]["parent_id"]]
            assert receive["name"] == "receive slow"
            assert receive["parent_id"] == send["span_id"]
            assert receive["attributes"]["squall.receive_count"] == 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
