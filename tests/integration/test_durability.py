"""Nothing acknowledged to a client is lost when the platform is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
from support import AUTH, our_processes, start_squall, stop, wait_until_gone

COUNT = 1000

APP = """
import os
import time

import squall

app = squall.App("durable")


@app.function(concurrency=2)
def record(event, ctx):
    time.sleep(0.02)  # ~100 runs/s: slower than submission, so a backlog builds
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (ctx.invocation_id + "\\n").encode())
    finally:
        os.close(fd)
    return event
"""


async def submit_all(url: str, count: int) -> list[str]:
    accepted: list[str] = []
    # A fresh connection per request: keep-alive requests to uvicorn stall ~40 ms each here.
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url, limits=limits, timeout=30, headers=AUTH
    ) as client:
        semaphore = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with semaphore:
                response = await client.post(
                    "/api/v1/functions/record/invoke",
                    json={"n": n},
                    headers={"Prefer": "respond-async"},
                )
            assert response.status_code == 202, response.text
            accepted.append(response.json()["invocation_id"])

        await asyncio.gather(*(one(n) for n in range(count)))
    return accepted


def statuses(url: str) -> dict[str, str]:
    """Every invocation's status, paging through the admin API."""
    found: dict[str, str] = {}
    cursor: str | None = None
    with httpx.Client(base_url=url, timeout=30, headers=AUTH) as client:
        while True:
            params = {"function": "record", "limit": "1000"}
            if cursor:
                params["before"] = cursor
            body = client.get("/api/v1/invocations", params=params).json()
            for row in body["invocations"]:
                found[row["id"]] = row["status"]
            cursor = body["next"]
            if not cursor:
                return found


def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    out = tmp_path / "ran.txt"
    app = tmp_path / "app.py"
    app.write_text(APP.format(out=str(out)))
    data = tmp_path / "data"
    me = {os.getpid()}

    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        accepted = asyncio.run(submit_all(url, COUNT))
        assert len(set(accepted)) == COUNT
        ran_before_kill = len(out.read_text().splitlines()) if out.exists() else 0
        children = our_processes(tmp_path, data, me | {first.pid})
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL
    # the kill landed while work was still queued or running
    assert ran_before_kill < COUNT, "everything ran before the kill: the test proves nothing"
    # the scan does see the zygote (and its sandboxes) while they live...
    assert any("squall.runtime.zygote" in cmd for cmd in children.values()), children
    assert len(children) >= 2, children  # the zygote and at least one sandbox
    # ...and they all go away once the platform is dead
    leftovers = wait_until_gone(tmp_path, data, me, timeout=5)
    assert leftovers == {}, f"processes outlived the killed platform: {leftovers}"

    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        deadline = time.monotonic() + 60
        while True:
            found = statuses(url)
            done = [i for i in accepted if found.get(i) == "succeeded"]
            if len(done) == COUNT:
                break
            assert time.monotonic() < deadline, (
                f"{COUNT - len(done)} accepted invocations never succeeded;"
                f" statuses seen: {sorted(set(found.values()))}"
            )
            time.sleep(0.2)
        missing = set(accepted) - {i for i, s in found.items() if s == "succeeded"}
        assert missing == set()
        assert set(found) == set(accepted)  # nothing invented either
        ran = out.read_text().splitlines()
        assert set(accepted) <= set(ran), f"{len(set(accepted) - set(ran))} ids never ran"
        assert set(ran) <= set(accepted)
    finally:
        stop(second)
    assert second.returncode is not None
    leftovers = wait_until_gone(tmp_path, data, me, timeout=5)
    assert leftovers == {}, f"processes outlived the stopped platform: {leftovers}"
