"""Effects stay exactly once across a SIGKILL: an attempt cut off by the kill left nothing,
and its re-run after the restart commits its effects once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from pathlib import Path

import httpx
from support import AUTH, start_squall

INVOCATIONS = 300
KILL_AFTER = 100  # producer runs before the kill, invocations still queued and running

APP = """
import os, time
import squall

app = squall.App("effects-durable")
app.queue_resource("outbox")

def note(line):
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\\n").encode())
    finally:
        os.close(fd)

@app.function(permissions=["publish:default", "send:outbox"], concurrency=2)
def produce(event, ctx):
    ctx.publish("item.made", {{"n": event["n"]}})
    ctx.send("outbox", {{"n": event["n"]}})
    time.sleep(0.01)
    note(f"produce {{event['n']}}")

@app.on("item.made", concurrency=2)
def count(event, ctx):
    note(f"count {{event['data']['n']}} {{event['id']}}")
"""


def lines(out: Path, kind: str) -> list[list[str]]:
    if not out.exists():
        return []
    return [line.split()[1:] for line in out.read_text().splitlines() if line.startswith(kind)]


async def invoke_all(url: str) -> None:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
    headers = {**AUTH, "X-Squall-Invocation-Type": "Event"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
        semaphore = asyncio.Semaphore(4)

        async def one(n: int) -> None:
            async with semaphore:
                response = await http.post("/api/v1/functions/produce/invoke", json={"n": n})
            assert response.status_code == 202, response.text

        await asyncio.gather(*(one(n) for n in range(INVOCATIONS)))


def outbox_size(url: str) -> int:
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
        stats = http.get("/api/v1/queues/outbox").json()
    return int(stats["visible"]) + int(stats["in_flight"]) + int(stats["delayed"])


def test_sigkill_mid_run_leaves_each_effect_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "ran.txt"
    (tmp_path / "app.py").write_text(APP.format(out=str(out)))
    data = tmp_path / "data"

    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        asyncio.run(invoke_all(url))  # every invocation is acknowledged before the kill
        deadline = time.monotonic() + 60
        while len(lines(out, "produce")) < KILL_AFTER:
            assert time.monotonic() < deadline, "the producer never got going"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.wait()
    assert len(lines(out, "produce")) < INVOCATIONS, "the kill did not land mid-run"

    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        deadline = time.monotonic() + 90
        while len({n for n, _ in lines(out, "count")}) < INVOCATIONS:
            assert time.monotonic() < deadline, (
                f"{len({n for n, _ in lines(out, 'count')})} of {INVOCATIONS} invocations'"
                f" events were delivered; {len(lines(out, 'produce'))} producer runs"
            )
            time.sleep(0.2)
        time.sleep(1.0)  # a doubled effect would have been delivered by now
        queued = outbox_size(url)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except Exception:
            second.kill()
            second.wait()

    events: dict[str, set[str]] = defaultdict(set)
    for n, event_id in lines(out, "count"):
        events[n].add(event_id)
    # Each invocation's attempts may have run more than once (the one the kill cut off),
    # but exactly one attempt's event was published, and one message sent.
    assert sorted(int(n) for n in events) == list(range(INVOCATIONS))
    doubled = {n: ids for n, ids in events.items() if len(ids) != 1}
    assert not doubled, doubled
    assert queued == INVOCATIONS
