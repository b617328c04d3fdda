"""Nodes of a cluster share the control plane: a rule, queue or schedule made through one
gateway is in force on every node at once, and gone everywhere once deleted."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_nodes import Cluster, cluster, wait_until

pytestmark = pytest.mark.timeout(240)

APP = """
import os
import squall

app = squall.App("cluster-control")

@app.function()
def count(event, ctx):
    with open({out!r}, "a") as f:
        f.write(json.dumps({{"event": event, "node": os.environ["TEST_NODE"],
                            "mode": os.environ.get("MODE")}}) + "\\n")
"""


def ran(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def api(node_url: str) -> httpx.Client:
    from support import AUTH

    return httpx.Client(base_url=f"{node_url}/api/v1", headers=AUTH, timeout=30)


def matched(http: httpx.Client, n: int) -> list[str]:
    event = {"specversion": "1.0", "id": f"ping-{n}", "source": "t", "type": "ping", "data": {}}
    response = http.post(
        "/events",
        content=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
    )
    assert response.status_code == 202, response.text
    names: list[str] = response.json()["events"][0]["matched"]
    return names


def start(tmp_path: Path, running: Cluster) -> Path:
    out = tmp_path / "ran.jsonl"
    (running.app_dir / "app.py").write_text("import json\n" + APP.format(out=str(out)))
    running.env["SQUALL_SCHEDULE_SECONDS"] = "1"
    running.start_all({"gw1": "gateway", "gw2": "gateway", "work": "invoker,scheduler"})
    return out


def test_rules_queues_and_schedules_made_on_one_gateway_hold_on_all(tmp_path: Path) -> None:
    with cluster(tmp_path) as running:
        out = start(tmp_path, running)
        with api(running.nodes["gw1"].url) as one, api(running.nodes["gw2"].url) as two:
            check_shared(running, out, one, two)


def check_shared(running: Cluster, out: Path, one: httpx.Client, two: httpx.Client) -> None:
    """Each change made on one gateway is in force on the other."""
    to_count = [{"kind": "function", "function": "count"}]
    rule = {"pattern": {"type": ["ping"]}, "targets": to_count}
    assert one.put("/rules/pings", json=rule).status_code == 201
    numbers = iter(range(1000))
    wait_until(
        lambda: matched(two, next(numbers)) == ["pings"],
        5,
        lambda: f"gw2 never saw the rule\n{running.logs()}",
    )
    wait_until(
        lambda: any(r["event"].get("type") == "ping" for r in ran(out)),
        20,
        lambda: f"the matched event never ran\n{running.logs()}",
    )
    assert two.delete("/rules/pings").status_code == 200
    wait_until(
        lambda: matched(one, next(numbers)) == [],
        5,
        lambda: f"gw1 kept the deleted rule\n{running.logs()}",
    )

    created = one.post("/queues", json={"name": "jobs"})
    assert created.status_code == 201, created.text
    wait_until(lambda: two.get("/queues/jobs").status_code == 200, 5, running.logs)
    check_messages(running, one, two)
    assert one.delete("/queues/jobs").status_code in (200, 204)
    wait_until(lambda: two.get("/queues/jobs").status_code == 404, 5, running.logs)

    check_settings_and_streams(running, out, one, two)

    beat = {"function": "count", "expression": "rate(1 second)", "payload": {"beat": 1}}
    assert two.put("/schedules/beat", json=beat).status_code == 201
    wait_until(  # fired by the coordinator on the third node
        lambda: any(r["event"].get("schedule") == "beat" for r in ran(out)),
        20,
        lambda: f"the schedule made on gw2 never fired\n{running.logs()}",
    )
    assert one.delete("/schedules/beat").status_code in (200, 204)
    wait_until(lambda: two.get("/schedules/beat").status_code == 404, 5, running.logs)


def check_messages(running: Cluster, one: httpx.Client, two: httpx.Client) -> None:
    """A message sent through one gateway wakes a receiver long-polling on the other, and
    the receipt that gateway gave deletes it through the first."""
    received: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: received.append(
            two.post("/queues/jobs/receive", json={"wait_s": 10, "max_messages": 10})
        )
    )
    waiting.start()
    time.sleep(0.5)
    sent_at = time.monotonic()
    sent = one.post("/queues/jobs/messages", json={"body": {"n": 1}})
    assert sent.status_code == 201, sent.text
    waiting.join(15)
    assert time.monotonic() - sent_at < 3.0, running.logs()  # long before wait_s ends
    [response] = received
    [message] = response.json()["messages"]
    assert message["id"] == sent.json()["id"] and message["body"] == {"n": 1}
    assert one.get("/queues/jobs").json()["in_flight"] == 1
    assert one.delete(f"/queues/jobs/messages/{message['receipt']}").status_code == 200
    wait_until(lambda: two.get("/queues/jobs").json()["in_flight"] == 0, 5, running.logs)


def check_settings_and_streams(
    running: Cluster, out: Path, one: httpx.Client, two: httpx.Client
) -> None:
    """A function's settings changed through one gateway apply on the invoker node; a
    stream, a table and a bucket made through one gateway are there on the other."""
    changed = one.patch("/functions/count", json={"env": {"MODE": "patched"}})
    assert changed.status_code == 200, changed.text
    wait_until(
        lambda: two.get("/functions/count").json()["env"] == {"MODE": "patched"},
        5,
        running.logs,
    )
    numbers = iter(range(1000))

    def runs_patched() -> bool:
        accepted = two.post(
            "/functions/count/invoke",
            json={"try": next(numbers)},
            headers={"X-Squall-Invocation-Type": "Event"},
        )
        assert accepted.status_code == 202, accepted.text
        time.sleep(0.3)
        return any(r["mode"] == "patched" and r["node"] == "work" for r in ran(out))

    wait_until(runs_patched, 20, lambda: f"the invoker kept the old env\n{running.logs()}")

    made = one.post("/streams", json={"name": "clicks", "shards": 2})
    assert made.status_code == 201, made.text
    record = {"data": {"x": 1}, "partition_key": "k"}
    wait_until(
        lambda: two.post("/streams/clicks/records", json=record).status_code in (200, 201),
        5,
        lambda: f"gw2 never saw the stream\n{running.logs()}",
    )
    table = one.post("/tables", json={"name": "carts", "partition_key": "id"})
    assert table.status_code == 201, table.text
    bucket = one.post("/buckets", json={"name": "uploads"})
    assert bucket.status_code == 201, bucket.text
    wait_until(
        lambda: two.get("/tables/carts").status_code == 200
        and two.get("/buckets/uploads").status_code == 200,
        5,
        lambda: f"gw2 never saw the table or the bucket\n{running.logs()}",
    )
    assert one.delete("/tables/carts").status_code in (200, 204)
    assert one.delete("/buckets/uploads").status_code in (200, 204)
    wait_until(
        lambda: two.get("/tables/carts").status_code == 404
        and two.get("/buckets/uploads").status_code == 404,
        5,
        lambda: f"gw2 kept the deleted table or bucket\n{running.logs()}",
    )
