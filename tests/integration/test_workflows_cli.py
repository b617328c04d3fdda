"""`squall workflows` against a real `squall up`: start, ls, show, history, cancel, and the
admin API's answers to bad input."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from support import AUTH, SQUALL, client_env, start_squall, wait_for

APP = """\
import squall

app = squall.App("wf-cli")


def add(a, b):
    return a + b


@app.workflow()
def adder(wf, numbers):
    total = 0
    for n in numbers:
        total = wf.step(add, total, n)
    return total


@app.workflow()
def patient(wf, _):
    return wf.wait_for_event("never.comes")
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("workflows-cli")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        capture_output=True,
        text=True,
        env=client_env(),
        timeout=60,
    )


def status_of(url: str, run_id: str) -> str:
    done = squall(url, "workflows", "show", run_id, "--json")
    assert done.returncode == 0, done.stderr
    status: str = json.loads(done.stdout)["status"]
    return status


def test_start_show_history_and_ls(url: str) -> None:
    done = squall(url, "workflows", "start", "adder", "--input", "[1, 2, 3]", "--id", "sum-1")
    assert done.returncode == 0, done.stderr
    assert "started adder run sum-1" in done.stdout
    wait_for(lambda: True if status_of(url, "sum-1") == "completed" else None)
    again = squall(url, "workflows", "start", "adder", "--input", "[9]", "--id", "sum-1")
    assert "exists already" in again.stdout
    shown = squall(url, "workflows", "show", "sum-1")
    assert "adder run sum-1: completed" in shown.stdout and "result: 6" in shown.stdout
    assert shown.stdout.count(" add ") == 3  # the timeline: one row per step
    history = json.loads(squall(url, "workflows", "history", "sum-1", "--json").stdout)
    assert [s["output"] for s in history["steps"]] == [1, 3, 6]
    assert [s["input"] for s in history["steps"]] == [[0, 1], [1, 2], [3, 3]]
    listed = json.loads(squall(url, "workflows", "ls", "--workflow", "adder", "--json").stdout)
    assert "sum-1" in [r["id"] for r in listed["runs"]]
    assert "sum-1" in squall(url, "workflows", "ls").stdout


def test_ls_pages_with_a_cursor(url: str) -> None:
    for n in range(3):
        squall(url, "workflows", "start", "adder", "--input", "[]", "--id", f"page-{n}")
    first = httpx.get(
        f"{url}/api/v1/workflows/runs", params={"limit": 2}, headers=AUTH, timeout=10
    ).json()
    assert len(first["runs"]) == 2 and first["next_cursor"] == first["runs"][1]["id"]
    rest = httpx.get(
        f"{url}/api/v1/workflows/runs",
        params={"limit": 1000, "cursor": first["next_cursor"]},
        headers=AUTH,
        timeout=10,
    ).json()
    ids = [r["id"] for r in first["runs"] + rest["runs"]]
    assert len(ids) == len(set(ids)) and {"page-0", "page-1", "page-2"} <= set(ids)
    assert rest["next_cursor"] is None


def test_cancel_through_the_cli(url: str) -> None:
    squall(url, "workflows", "start", "patient", "--id", "p-1")
    wait_for(lambda: True if status_of(url, "p-1") == "waiting" else None)
    done = squall(url, "workflows", "cancel", "p-1")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: True if status_of(url, "p-1") == "cancelled" else None)


def test_bad_input_exits_2_naming_the_field(url: str) -> None:
    done = squall(url, "workflows", "start", "adder", "--input", "{not json")
    assert done.returncode == 2 and "--input" in done.stderr
    done = squall(url, "workflows", "start", "adder", "--id", "has space")
    assert done.returncode == 2 and "--id" in done.stderr
    done = squall(url, "workflows", "ls", "--status", "bogus")
    assert done.returncode == 2 and "--status" in done.stderr


def test_unknown_workflow_is_404_and_bad_json_400(url: str) -> None:
    missing = httpx.post(f"{url}/api/v1/workflows/nope/runs", json={}, headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "name"
    bad = httpx.post(
        f"{url}/api/v1/workflows/adder/runs",
        content=b"{nope",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
    extra = httpx.post(f"{url}/api/v1/workflows/adder/runs", json={"inputs": 1}, headers=AUTH)
    assert extra.status_code == 400 and extra.json()["error"]["field"] == "inputs"
    assert httpx.get(f"{url}/api/v1/workflows/runs/nope", headers=AUTH).status_code == 404
    assert squall(url, "workflows", "show", "nope").returncode != 0


def test_help_for_every_workflows_command() -> None:
    for command in ("start", "ls", "show", "history", "cancel"):
        done = subprocess.run(
            [SQUALL, "workflows", command, "--help"], capture_output=True, text=True
        )
        assert done.returncode == 0 and "Usage" in done.stdout, command
