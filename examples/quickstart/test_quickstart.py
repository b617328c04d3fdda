"""End to end: serve the quickstart app with `squall up` and drive it with the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("quickstart")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir, "--retry-base", "0.05")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=client_env(),
    )


def test_hello_greets_with_the_greetings_loaded_by_init(url: str) -> None:
    done = squall(url, "invoke", "hello", "--data", '{"name": "Ada", "lang": "fr"}', "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["result"]["message"] == "Bonjour, Ada!"


def invocation(url: str, invocation_id: str) -> dict[str, object]:
    shown = squall(url, "invocation", invocation_id, "--json")
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


def wait_status(url: str, invocation_id: str, status: str) -> dict[str, object]:
    def reached() -> dict[str, object] | None:
        record = invocation(url, invocation_id)
        return record if record["status"] == status else None

    return wait_for(reached)


def test_async_square_succeeds_and_reaches_its_destination(url: str) -> None:
    queued = squall(url, "invoke", "slow-square", "--data", '{"n": 7}', "--async")
    assert queued.returncode == 0, queued.stderr
    invocation_id = queued.stdout.strip().split()[-1]
    done = wait_status(url, invocation_id, "succeeded")
    assert done["result"] == {"square": 49}

    def destination_ran() -> str | None:
        logs = squall(url, "logs", "record-result", "--json")
        lines = [json.loads(line)["message"] for line in logs.stdout.splitlines()]
        return next((line for line in lines if invocation_id in line), None)

    assert wait_for(destination_ran).endswith("Success")


def test_failing_square_is_retried_then_dead_lettered_and_redriven(url: str) -> None:
    queued = squall(url, "invoke", "slow-square", "--data", '{"n": -3}', "--async")
    invocation_id = queued.stdout.strip().split()[-1]
    record = wait_status(url, invocation_id, "dead_lettered")
    assert record["attempt"] == 3  # the first attempt and two retries
    listed = squall(url, "dlq", "list", "--json")
    letters = json.loads(listed.stdout)["dead_letters"]
    assert [letter["invocation_id"] for letter in letters] == [invocation_id]
    assert "negative" in letters[0]["error"]["message"]
    redriven = squall(url, "dlq", "redrive", "slow-square")
    assert redriven.returncode == 0, redriven.stderr

    def failed_again() -> dict[str, object] | None:
        rec = invocation(url, invocation_id)
        return rec if rec["trigger"] == "redrive" and rec["status"] == "dead_lettered" else None

    assert wait_for(failed_again)["attempt"] == 3
