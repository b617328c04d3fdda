"""A projection killed with SIGKILL mid-run applies no event twice: its read-model writes
and its checkpoint land in one unit, so the restart resumes exactly after what landed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx
from support import AUTH, start_squall, wait_for

EVENTS = 400
APP = """
import time
import squall

app = squall.App("es-durable")

@app.projection("seen", from_streams=["acct-"], partition_key="account", batch_size=10)
def seen(event, table, ctx):
    account = event["stream"]
    item = table.get({"account": account}) or {"account": account, "positions": []}
    item.pop("_version", None)
    item["positions"].append(event["position"])
    table.put(item)
    time.sleep(0.004)
"""


def status(http: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = http.get("/api/v1/projections/seen").json()
    return body


def test_sigkill_during_a_projection_applies_each_event_once(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    data = tmp_path / "data"
    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            for n in range(EVENTS):
                response = http.post(
                    f"/api/v1/es/streams/acct-{n % 9}/events",
                    json={"events": [{"type": "Touched", "data": {"n": n}}]},
                )
                assert response.status_code == 201, response.text
            wait_for(lambda: True if status(http)["checkpoint"] >= EVENTS // 4 else None, 60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=20)
    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=30) as http:
            killed_at = status(http)["checkpoint"]
            assert 0 < killed_at <= EVENTS
            deadline = time.monotonic() + 120
            while status(http)["lag"] > 0:
                assert time.monotonic() < deadline, status(http)
                time.sleep(0.1)
            positions: list[int] = []
            for n in range(9):
                item = http.get(f"/api/v1/tables/seen/items/acct-{n}")
                assert item.status_code == 200, item.text
                positions += item.json()["positions"]
        assert sorted(positions) == list(range(1, EVENTS + 1))  # each once, none lost
    finally:
        second.send_signal(signal.SIGINT)
        second.wait(timeout=30)
