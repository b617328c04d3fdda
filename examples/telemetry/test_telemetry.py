"""End to end: serve the telemetry app with `squall up`, post readings to its route, and watch
the stream with the CLI."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SQUALL, client_env, start_squall, wait_for

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("telemetry")
    shutil.copy(HERE / "app.py", workdir / "app.py")
    proc, url = start_squall(workdir, "--retry-base", "0.05")
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0


def squall(url: str, *args: str) -> Any:
    done = subprocess.run(
        [SQUALL, *args, "--url", url, "--json"],
        capture_output=True, text=True, timeout=30, check=False, env=client_env(),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_readings_are_summarized_and_the_malformed_one_is_quarantined(url: str) -> None:
    readings = [{"device": f"d-{i % 3}", "celsius": 20 + i} for i in range(12)]
    readings.insert(5, {"device": "d-1", "celsius": "n/a"})
    with httpx.Client(base_url=url, timeout=30) as http:
        for reading in readings:
            response = http.post("/readings", json=reading)
            assert response.status_code == 202, response.text
            assert set(response.json()) == {"shard", "sequence"}

    def caught_up() -> dict[str, Any] | None:
        shown = squall(url, "streams", "show", "readings")
        behind = [c["behind"] for c in shown["consumers"]]
        return shown if len(behind) == 2 and not any(behind) else None

    shown = wait_for(caught_up, timeout=30)
    assert sum(s["records"] for s in shown["shard_details"]) == len(readings)

    def quarantined() -> list[dict[str, Any]] | None:
        runs = squall(url, "invocations", "quarantine")["invocations"]
        done = [r for r in runs if r["status"] == "succeeded"]
        return done or None

    [report] = wait_for(quarantined, timeout=30)
    where = squall(url, "invocation", report["id"])["result"]
    page = squall(url, "streams", "read", "readings", "--shard", str(where["shard"]),
                  "--after", str(where["sequence"] - 1), "--limit", "1")
    assert page["records"][0]["data"] == {"device": "d-1", "celsius": "n/a"}

    runs = squall(url, "invocations", "summarize", "--limit", "100")["invocations"]
    hottest: dict[str, float] = {}
    for run in runs:
        if run["status"] == "succeeded":
            result = squall(url, "invocation", run["id"])["result"]
            for device, celsius in result.items():
                hottest[device] = max(celsius, hottest.get(device, celsius))
    assert hottest == {"d-0": 29.0, "d-1": 30.0, "d-2": 31.0}
