"""An app stream on a cluster: two gateways put into one stream at once, and the stream
trigger (run by the coordinator on a third node) consumes every record once, each shard
in sequence order — records numbered by JetStream, not by either gateway."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_nodes import cluster, wait_until
from support import AUTH

pytestmark = pytest.mark.timeout(240)

APP = """
import json
import os
import squall

app = squall.App("cluster-streams")
app.stream_resource("orders", shards=2)

@app.stream("orders", batch_size=25, starting_position="trim_horizon")
def consume(event, ctx):
    with open({out!r}, "a") as f:
        for r in event["records"]:
            f.write(json.dumps({{"shard": r["shard"], "sequence": r["sequence"],
                                 "n": r["data"]["n"], "node": os.environ["TEST_NODE"]}}) + "\\n")
"""
PER_GATEWAY = 120


def consumed(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def put_all(url: str, first: int, acked: list[tuple[int, int, int]]) -> None:
    """Singles and batches of three, keys spread over both shards."""
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
        for n in range(first, first + PER_GATEWAY, 3):
            body = {"records": [{"data": {"n": m}, "partition_key": f"k{m % 5}"}
                                for m in range(n, n + 3)]}
            response = http.post("/streams/orders/records", json=body)
            assert response.status_code == 200, response.text
            for m, put in zip(range(n, n + 3), response.json()["records"], strict=True):
                acked.append((put["shard"], put["sequence"], m))


def test_two_gateways_put_into_one_stream_and_the_trigger_reads_each_shard_in_order(
    tmp_path: Path,
) -> None:
    out = tmp_path / "consumed.jsonl"
    with cluster(tmp_path) as running:
        (running.app_dir / "app.py").write_text(APP.format(out=str(out)))
        running.start_all({"gw1": "gateway", "gw2": "gateway", "work": "invoker,scheduler"})
        acked: list[tuple[int, int, int]] = []
        puts = [
            threading.Thread(target=put_all, args=(running.nodes[name].url, first, acked))
            for name, first in (("gw1", 0), ("gw2", 1000))
        ]
        for thread in puts:
            thread.start()
        for thread in puts:
            thread.join()
        assert len(acked) == 2 * PER_GATEWAY
        assert len({(shard, seq) for shard, seq, _ in acked}) == len(acked)  # no clashes
        wait_until(
            lambda: len(consumed(out)) >= len(acked),
            60,
            lambda: f"consumed {len(consumed(out))} of {len(acked)}\n{running.logs()}",
        )
        records = consumed(out)
        assert {r["node"] for r in records} == {"work"}
        for shard in (0, 1):
            mine = [(r["sequence"], r["n"]) for r in records if r["shard"] == shard]
            assert [seq for seq, _ in mine] == list(range(1, len(mine) + 1)), shard
            assert sorted(mine) == sorted((seq, n) for s, seq, n in acked if s == shard)
        with httpx.Client(base_url=f"{running.gateway}/api/v1", headers=AUTH) as http:
            described = http.get("/streams/orders").json()
            assert sum(s["records"] for s in described["shard_details"]) == len(acked)
            wait_until(  # the coordinator commits each checkpoint with its invocation
                lambda: all(
                    c["behind"] == 0 for c in http.get("/streams/orders").json()["consumers"]
                ),
                10,
                running.logs,
            )
