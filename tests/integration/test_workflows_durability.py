"""A workflow run survives SIGKILLs of `squall up` during a step, a sleep and an event wait:
after each restart it resumes from its checkpoints, every completed step ran exactly once,
and the run completes."""

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

app = squall.App("wf-durable")
LOG = {log!r}
GO = {go!r}


def note(what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (what + "\\n").encode())
    finally:
        os.close(fd)


def first(x):
    note("first")
    return 1


def slow(x):
    note("slow-start")
    while not os.path.exists(GO):
        time.sleep(0.05)
    note("slow-end")
    return 2


def after_sleep(x):
    note("after-sleep")
    return 3


def last(event):
    note("last")
    return event["data"]["id"]


@app.workflow()
def durable(wf, x):
    wf.step(first, x)
    wf.step(slow, x)
    wf.sleep(2)
    wf.step(after_sleep, x)
    event = wf.wait_for_event("thing.done", pattern={{"data": {{"id": [x["id"]]}}}})
    return wf.step(last, event)
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
    response = httpx.get(f"{url}/api/v1/workflows/runs/d1", headers=AUTH, timeout=10)
    response.raise_for_status()
    run: dict[str, Any] = response.json()
    return run


def in_status(url: str, status: str) -> bool | None:
    return True if run_of(url)["status"] == status else None


def test_run_survives_sigkill_in_a_step_a_sleep_and_a_wait(tmp_path: Path) -> None:
    log, go = tmp_path / "steps.log", tmp_path / "go"
    (tmp_path / "app.py").write_text(APP.format(log=str(log), go=str(go)))
    proc, url = start_squall(tmp_path)
    try:
        started = httpx.post(
            f"{url}/api/v1/workflows/durable/runs",
            json={"input": {"id": "d1"}, "id": "d1"},
            headers=AUTH,
            timeout=10,
        )
        assert started.status_code == 201, started.text
        wait_for(lambda: True if notes(log)["slow-start"] else None)
        kill(proc)  # during a step: first is checkpointed, slow is not
        go.write_text("")
        proc, url = start_squall(tmp_path)
        again = httpx.post(
            f"{url}/api/v1/workflows/durable/runs", json={"id": "d1"}, headers=AUTH, timeout=10
        )
        assert again.status_code == 200  # the same run, not a new one
        wait_for(lambda: in_status(url, "sleeping"), timeout=30)
        kill(proc)  # during the sleep
        proc, url = start_squall(tmp_path)
        wait_for(lambda: in_status(url, "waiting"), timeout=30)
        kill(proc)  # while waiting for the event
        proc, url = start_squall(tmp_path)
        event = {
            "specversion": "1.0",
            "id": "done-1",
            "source": "test",
            "type": "thing.done",
            "data": {"id": "d1"},
        }
        published = httpx.post(
            f"{url}/api/v1/events",
            json=event,
            headers={**AUTH, "Content-Type": "application/cloudevents+json"},
            timeout=10,
        )
        assert published.status_code < 300, published.text
        wait_for(lambda: in_status(url, "completed"), timeout=30)
        run = run_of(url)
        assert run["result"] == "d1"
        counts = notes(log)
        assert counts["first"] == 1
        assert counts["after-sleep"] == 1
        assert counts["last"] == 1
        history = httpx.get(
            f"{url}/api/v1/workflows/runs/d1/history", headers=AUTH, timeout=10
        ).json()["steps"]
        assert [(s["name"], s["status"]) for s in history] == [
            ("first", "completed"),
            ("slow", "completed"),
            ("sleep", "completed"),
            ("after_sleep", "completed"),
            ("thing.done", "completed"),
            ("last", "completed"),
        ]
        assert all(s["attempts"] == 1 for s in history if s["kind"] == "step")
        assert history[4]["output"]["id"] == "done-1"
    finally:
        stop(proc)
