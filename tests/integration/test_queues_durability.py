"""A message whose send was acknowledged survives a SIGKILL of the platform, and so does a
message a trigger had received but not finished: it is processed after the restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
from support import AUTH, start_squall, wait_for

MESSAGES = 400
KILL_AFTER = 150  # acknowledged sends before the platform is killed, sending still going

APP = """
import os
import time

import squall

app = squall.App("queues-durable")
app.queue_resource("kept")
app.queue_resource("slow", visibility_timeout_s=4)


@app.queue("slow", batch_size=1)
def slow(messages, ctx):
    for m in messages:
        fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{{m['body']}} {{m['receive_count']}}\\n".encode())
        os.close(fd)
    time.sleep(30 if messages[0]["receive_count"] == 1 else 0)
"""


async def send_all(url: str, proc: subprocess.Popen[bytes]) -> set[int]:
    """Send MESSAGES bodies; SIGKILL ``proc`` after KILL_AFTER acks; the acknowledged bodies."""
    acked: set[int] = set()
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=10) as http:
        numbers = iter(range(MESSAGES))

        async def sender() -> None:
            for n in numbers:
                try:
                    response = await http.post("/api/v1/queues/kept/messages", json={"body": n})
                except httpx.TransportError:
                    continue
                if response.status_code == 201:
                    acked.add(n)
                    if len(acked) == KILL_AFTER:
                        proc.send_signal(signal.SIGKILL)

        await asyncio.gather(*(sender() for _ in range(4)))
    return acked


def test_acknowledged_sends_and_unfinished_batches_survive_sigkill(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    (tmp_path / "app.py").write_text(APP.format(out=str(out)))
    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=url, headers=AUTH) as http:
            http.post("/api/v1/queues/slow/messages", json={"body": "unfinished"})
            wait_for(lambda: (out.exists() and "unfinished 1" in out.read_text()) or None)
        acked = asyncio.run(send_all(url, proc))
        proc.wait(timeout=10)
        assert "unfinished 2" not in out.read_text()  # killed within its visibility timeout
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) >= KILL_AFTER

    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=url, headers=AUTH) as http:
            kept: set[int] = set()
            while True:
                response = http.post(
                    "/api/v1/queues/kept/receive", json={"max_messages": 10, "visibility_s": 600}
                )
                messages = response.json()["messages"]
                if not messages:
                    break
                kept |= {m["body"] for m in messages}
            assert acked <= kept, sorted(acked - kept)[:10]
            # The batch in flight at the kill reappears after its visibility timeout.
            wait_for(lambda: "unfinished 2" in out.read_text() or None, timeout=20)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
