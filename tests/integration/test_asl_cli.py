"""State machines through `squall up` and `squall workflows`: start, show and history name
the states; cancel stops a waiting execution; a bad definition stops `squall up` with exit
code 2 naming the state and field."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SQUALL, client_env, start_squall, wait_for

APP = """\
import squall

app = squall.App("asl-cli")


@app.function()
def greet(event, ctx):
    return "hello " + event["name"]


app.state_machine("greeter", definition={
    "StartAt": "Greet",
    "States": {
        "Greet": {"Type": "Task", "Resource": "greet", "ResultPath": "$.greeting",
                  "Next": "Check"},
        "Check": {"Type": "Choice", "Choices": [
            {"Variable": "$.greeting", "StringMatches": "hello *", "Next": "Done"}],
            "Default": "Odd"},
        "Odd": {"Type": "Fail", "Error": "Odd"},
        "Done": {"Type": "Succeed", "OutputPath": "$.greeting"},
    },
})

app.state_machine("sleeper", definition={
    "StartAt": "Nap",
    "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}},
})
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("asl-cli")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir)
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url], capture_output=True, text=True,
        env=client_env(COLUMNS="200"),
        timeout=60,
    )


def status_of(url: str, run_id: str) -> str:
    done = squall(url, "workflows", "show", run_id, "--json")
    assert done.returncode == 0, done.stderr
    status: str = json.loads(done.stdout)["status"]
    return status


def test_an_execution_through_the_cli_names_its_states(url: str) -> None:
    done = squall(url, "workflows", "start", "greeter", "--input", '{"name": "Ada"}',
                  "--id", "g-1")
    assert done.returncode == 0, done.stderr
    wait_for(lambda: True if status_of(url, "g-1") == "completed" else None, timeout=30)
    shown = squall(url, "workflows", "show", "g-1")
    assert 'result: "hello Ada"' in shown.stdout
    for state in ("Greet", "Check", "Done"):
        assert f" {state} " in shown.stdout
    history = json.loads(squall(url, "workflows", "history", "g-1", "--json").stdout)
    steps = [(s["kind"], s["name"]) for s in history["steps"]]
    assert steps == [("invoke", "greet"), ("state", "Greet"), ("state", "Check"),
                     ("state", "Done")]
    check = history["steps"][2]
    assert check["input"] == {"name": "Ada", "greeting": "hello Ada"}
    assert history["steps"][3]["output"] == "hello Ada"


def test_cancel_a_waiting_execution(url: str) -> None:
    squall(url, "workflows", "start", "sleeper", "--id", "s-1")
    wait_for(lambda: True if status_of(url, "s-1") == "sleeping" else None, timeout=30)
    assert squall(url, "workflows", "cancel", "s-1").returncode == 0
    wait_for(lambda: True if status_of(url, "s-1") == "cancelled" else None, timeout=30)


def test_a_bad_definition_stops_squall_up_naming_the_state(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.replace('"Default": "Odd"', '"Default": "Gone"'))
    done = subprocess.run([SQUALL, "up", "app.py", "--port", "0"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=client_env())
    assert done.returncode == 2
    assert "state machine 'greeter': States.Check.Default: 'Gone' is not a state" in (
        done.stderr)
