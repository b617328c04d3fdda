"""Faults on a cluster of `squall node` processes sharing PostgreSQL and NATS JetStream:
1 gateway, 3 invokers and 2 schedulers on this machine.

Effects are checked the way a user would: every accepted invocation's event is published
exactly once (its id is the one the attempt that committed published), however often an
attempt ran; nothing accepted is missing; schedule ticks never fire twice.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
from cluster_nodes import Cluster, cluster, wait_until
from support import AUTH

pytestmark = pytest.mark.timeout(300)

LAYOUT = {
    "gw": "gateway",
    "inv1": "invoker",
    "inv2": "invoker",
    "inv3": "invoker",
    "sch1": "scheduler",
    "sch2": "scheduler",
}

APP = """
import os, time
import squall

app = squall.App("cluster-faults")

def note(line):
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + " " + os.environ["TEST_NODE"] + "\\n").encode())
    finally:
        os.close(fd)

@app.function(permissions=["publish:default"], concurrency=2, timeout_s=10)
def produce(event, ctx):
    note(f"start {{event['n']}}")
    ctx.publish("item.made", {{"n": event["n"]}})
    time.sleep(0.15)  # slow enough that the kill lands with work in flight
    note(f"produce {{event['n']}}")

@app.on("item.made", concurrency=2)
def count(event, ctx):
    note(f"count {{event['data']['n']}} {{event['id']}}")
{extra}
"""


def lines(out: Path, kind: str) -> list[list[str]]:
    if not out.exists():
        return []
    return [line.split()[1:] for line in out.read_text().splitlines() if line.startswith(kind)]


def write_app(running: Cluster, extra: str = "") -> Path:
    out = running.workdir / "ran.txt"
    (running.app_dir / "app.py").write_text(APP.format(out=str(out), extra=extra))
    return out


async def invoke_all(url: str, numbers: range) -> None:
    limits = httpx.Limits(max_connections=4)
    headers = {**AUTH, "X-Squall-Invocation-Type": "Event"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        semaphore = asyncio.Semaphore(4)

        async def one(n: int) -> None:
            async with semaphore:
                response = await http.post("/api/v1/functions/produce/invoke", json={"n": n})
            assert response.status_code == 202, response.text

        await asyncio.gather(*(one(n) for n in numbers))


def events_by_number(out: Path) -> dict[int, set[str]]:
    events: dict[int, set[str]] = defaultdict(set)
    for n, event_id, _node in lines(out, "count"):
        events[int(n)].add(event_id)
    return events


def assert_each_once(out: Path, total: int, running: Cluster) -> None:
    """Every invocation's event arrived, and only one event per invocation was published."""
    wait_until(
        lambda: len(events_by_number(out)) >= total,
        120,
        lambda: f"{len(events_by_number(out))} of {total} events arrived\n{running.logs()}",
    )
    time.sleep(1.0)  # a doubled effect would have been delivered by now
    events = events_by_number(out)
    assert sorted(events) == list(range(total))
    doubled = {n: ids for n, ids in events.items() if len(ids) != 1}
    assert not doubled, doubled


def test_sigkill_of_an_invoker_under_load_moves_its_work_to_the_others(tmp_path: Path) -> None:
    total = 200
    with cluster(tmp_path) as running:
        out = write_app(running)
        running.start_all(LAYOUT)
        asyncio.run(invoke_all(running.gateway, range(total)))  # all accepted before the kill
        wait_until(
            lambda: len(lines(out, "produce")) >= 40,
            60,
            lambda: f"the producers never got going\n{running.logs()}",
        )
        by_node = Counter(node for *_, node in lines(out, "produce"))
        victim = max(("inv1", "inv2", "inv3"), key=lambda name: by_node[name])
        running.nodes[victim].kill(signal.SIGKILL)
        time.sleep(0.5)  # its orphaned sandboxes finish the call they are in, then exit
        killed_at = len(lines(out, "produce"))
        assert killed_at < total, "the kill did not land under load"

        assert_each_once(out, total, running)
        after = Counter(node for *_, node in lines(out, "produce")[killed_at:])
        assert victim not in after
        # What the victim had started and not finished ran again on the others.
        started = {n for n, node in lines(out, "start") if node == victim}
        finished = {n for n, node in lines(out, "produce") if node == victim}
        cut_off = started - finished
        assert cut_off, "the kill cut off no invocation"
        redone = {n for n, node in lines(out, "produce") if n in cut_off}
        assert redone == cut_off
        assert sum(1 for name in ("inv1", "inv2", "inv3") if after[name]) == 2, after
        with running.client() as http:  # every accepted invocation has a finished record
            listed = http.get(
                "/api/v1/invocations", params={"function": "produce", "limit": 1000}
            ).json()["invocations"]
        statuses = Counter(record["status"] for record in listed)
        assert statuses == {"succeeded": total}, statuses
