"""A real `squall up` killed with SIGKILL: no tick fires twice, missed ticks follow the policy."""

from __future__ import annotations

import itertools
import json
import signal
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support import AUTH, start_squall, stop, wait_for

from squall.engine.schedules.expressions import SECONDS_ENV

APP = """
import json, os
import squall

app = squall.App("ticking")

@app.schedule("rate(1 second)", missed={missed!r}, payload={{"n": 1}})
def tick(event, ctx):
    fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        line = {{"id": ctx.invocation_id, "time": event["time"], "missed": event.get("missed")}}
        os.write(fd, (json.dumps(line) + "\\n").encode())
    finally:
        os.close(fd)
"""


def ran(out: Path) -> list[dict[str, str]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def _parse(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


@pytest.mark.parametrize("missed", ["skip", "fire_once"])
def test_sigkill_fires_no_tick_twice(tmp_path: Path, missed: str) -> None:
    out = tmp_path / "ran.txt"
    (tmp_path / "app.py").write_text(APP.format(out=str(out), missed=missed))
    data = tmp_path / "data"
    env = {SECONDS_ENV: "1"}

    first, url = start_squall(tmp_path, "--data-dir", str(data), env=env)
    try:
        wait_for(lambda: True if len(ran(out)) >= 3 else None, timeout=20)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.time()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = ran(out)
    time.sleep(3)  # ticks come due while nothing runs
    restarted_at = time.time()
    second, url = start_squall(tmp_path, "--data-dir", str(data), env=env)
    try:
        wait_for(lambda: True if len(ran(out)) >= len(before) + 3 else None, timeout=20)
        with httpx.Client(base_url=url, headers=AUTH, timeout=10) as http:
            records = http.get(
                "/api/v1/invocations", params={"function": "tick", "limit": "1000"}
            ).json()["invocations"]
            listed = http.get("/api/v1/schedules").json()["schedules"]
    finally:
        stop(second)

    lines = ran(out)
    ids_by_time: dict[str, set[str]] = {}
    for line in lines:
        ids_by_time.setdefault(line["time"], set()).add(line["id"])
    # One invocation per tick (a handler killed mid-run may run again, under the same id).
    assert all(len(ids) == 1 for ids in ids_by_time.values()), ids_by_time
    assert {r["trigger"] for r in records} == {"schedule"}
    assert {line["id"] for line in lines} <= {r["id"] for r in records}
    times = sorted(_parse(t) for t in ids_by_time)
    assert all(b - a >= 0.999 for a, b in itertools.pairwise(times))

    # About three ticks came due while nothing ran (more until the restart had loaded).
    downtime = [t for t in times if killed_at < t < restarted_at]
    caught_up = {(line["id"], line["time"]) for line in lines if line["missed"]}
    if missed == "skip":
        assert downtime == [] and caught_up == set()
    else:
        # One of them fired, as the latest missed before the restart loaded (which may be
        # after restarted_at on a loaded machine); the others did not.
        assert len(caught_up) == 1, caught_up
        [(_, when)] = caught_up
        assert _parse(when) > killed_at - 1
        assert len(downtime) <= 1 and set(downtime) <= {_parse(when)}, downtime
    assert listed[0]["name"] == "tick" and listed[0]["fired"] >= len(ids_by_time)
