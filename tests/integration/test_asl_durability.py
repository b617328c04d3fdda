"""A state machine run survives SIGKILLs of `squall up` during a Task, a Wait and a Map:
after each restart it resumes from its checkpoints, every completed Task ran exactly once,
and the execution completes."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from support import AUTH, start_squall, wait_for

APP = """
import os, time
import squall

app = squall.App("asl-durable")
LOG = {log!r}
GO = {go!r}
ITEM_GO = {item_go!r}


def note(what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (what + "\\n").encode())
    finally:
        os.close(fd)


@app.function()
def first(event, ctx):
    note("first")
    return {{"first": 1}}


@app.function(timeout_s=60)
def slow(event, ctx):
    note("slow-start")
    while not os.path.exists(GO):
        time.sleep(0.05)
    note("slow-end")
    return 2


@app.function(timeout_s=60)
def item(event, ctx):
    note(f"item-{{event}}-start")
    while event == 3 and not os.path.exists(ITEM_GO):
        time.sleep(0.05)
    note(f"item-{{event}}")
    return event * 10


@app.function()
def last(event, ctx):
    note("last")
    return sum(event["items"])


app.state_machine("durable", definition={{
    "StartAt": "First",
    "States": {{
        "First": {{"Type": "Task", "Resource": "first", "ResultPath": "$.first",
                   "Next": "Slow"}},
        "Slow": {{"Type": "Task", "Resource": "slow", "ResultPath": "$.slow", "Next": "Nap"}},
        "Nap": {{"Type": "Wait", "Seconds": 2, "Next": "Each"}},
        "Each": {{"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 2,
                  "ItemProcessor": {{"StartAt": "Item", "States": {{
                      "Item": {{"Type": "Task", "Resource": "item", "End": True}}}}}},
                  "ResultPath": "$.items", "Next": "Last"}},
        "Last": {{"Type": "Task", "Resource": "last", "End": True}},
    }},
}})
"""


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def notes(log: Path) -> Counter[str]:
    return Counter(log.read_text().split()) if log.exists() else Counter()


def run_of(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/api/v1/workflows/runs/e1", headers=AUTH, timeout=10)
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


def completed_items(url: str) -> int:
    """Map iterations (child runs of the machine's branch workflow) that completed."""
    response = httpx.get(
        f"{url}/api/v1/workflows/runs",
        params={"workflow": "durable-branch", "status": "completed"},
        headers=AUTH,
        timeout=10,
    )
    response.raise_for_status()
    return len(response.json()["runs"])


def in_status(url: str, status: str) -> bool | None:
    return True if run_of(url)["status"] == status else None


def test_execution_survives_sigkill_in_a_task_a_wait_and_a_map(tmp_path: Path) -> None:
    log, go, item_go = tmp_path / "tasks.log", tmp_path / "go", tmp_path / "item-go"
    (tmp_path / "app.py").write_text(APP.format(log=str(log), go=str(go),
                                                item_go=str(item_go)))
    proc, url = start_squall(tmp_path)
    try:
        started = httpx.post(
            f"{url}/api/v1/workflows/durable/runs",
            json={"input": {"items": [1, 2, 3, 4]}, "id": "e1"},
            headers=AUTH,
            timeout=10,
        )
        assert started.status_code == 201, started.text
        wait_for(lambda: True if notes(log)["slow-start"] else None)
        kill(proc)  # during a Task: First is checkpointed, Slow is not
        go.write_text("")
        proc, url = start_squall(tmp_path)
        wait_for(lambda: in_status(url, "sleeping"), timeout=30)
        kill(proc)  # during the Wait
        proc, url = start_squall(tmp_path)
        wait_for(lambda: True if notes(log)["item-3-start"] else None, timeout=30)
        # Items 1, 2 and 4 checkpointed (a Task killed before its checkpoint lands runs
        # again, at least once), item 3 still running.
        wait_for(lambda: True if completed_items(url) == 3 else None, timeout=30)
        kill(proc)  # during the Map: items 1, 2 and 4 are done, item 3 is running
        item_go.write_text("")
        proc, url = start_squall(tmp_path)
        wait_for(lambda: in_status(url, "completed"), timeout=60)
        run = run_of(url)
        assert run["result"] == 100
        counts = notes(log)
        assert counts["first"] == 1
        assert counts["slow-end"] == 1
        assert counts["item-1"] == 1 and counts["item-2"] == 1 and counts["item-4"] == 1
        assert counts["item-3"] == 1
        assert counts["last"] == 1
        history = httpx.get(
            f"{url}/api/v1/workflows/runs/e1/history", headers=AUTH, timeout=10
        ).json()["steps"]
        states = [s["name"] for s in history if s["kind"] == "state"]
        assert states == ["First", "Slow", "Nap", "Each", "Last"]
        each = next(s for s in history if s["kind"] == "state" and s["name"] == "Each")
        assert each["output"]["items"] == [10, 20, 30, 40]
    finally:
        stop(proc)
