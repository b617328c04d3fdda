"""`squall traces ls|show` and `squall logs --trace` against a real `squall up`."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ADMIN_KEY, AUTH, NO_CONFIG, SQUALL, start_squall, wait_for

APP = """\
import squall

app = squall.App("cli-traces")


@app.http("POST /orders")
def place(request, ctx):
    with ctx.span("charge", amount=12):
        ctx.log.info("charged", amount=12)
    return {"ok": True}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("traces-cli")
    (workdir / "app.py").write_text(APP)
    proc, url = start_squall(workdir, "--log-format", "json", "--log-retention", "2d")
    yield url, workdir
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def squall(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "SQUALL_URL": url,
            "SQUALL_API_KEY": ADMIN_KEY,
            "SQUALL_CONFIG": NO_CONFIG,
            "PATH": str(Path(SQUALL).parent),
            "COLUMNS": "200",
        },
    )


def _order(url: str) -> str:
    response = httpx.post(f"{url}/orders", json={}, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["x-squall-trace-id"]


def test_traces_ls_and_show(served: tuple[str, Path]) -> None:
    url, _ = served
    trace_id = _order(url)

    def listed() -> Any:
        done = squall(url, "traces", "ls", "--json")
        assert done.returncode == 0, done.stderr
        page = json.loads(done.stdout)
        found = [t for t in page["traces"] if t["trace_id"] == trace_id]
        return found[0] if found and found[0]["spans"] >= 3 else None

    summary = wait_for(listed)
    assert summary["name"] == "POST /orders" and summary["functions"] == ["place"]
    text = squall(url, "traces", "ls")
    assert text.returncode == 0 and trace_id in text.stdout

    shown = squall(url, "traces", "show", trace_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    labels = [line.split(" ms  ", 1)[1] for line in lines]
    # the tree: the request, its invocation under it, the user's span under that
    assert labels[0].startswith("POST /orders")
    assert "  invoke place place" in labels and "    charge" in labels
    assert all(" ms  " in line for line in lines)

    as_json = json.loads(squall(url, "traces", "show", trace_id, "--json").stdout)
    assert as_json["trace_id"] == trace_id
    assert {s["name"] for s in as_json["spans"]} >= {"POST /orders", "invoke place", "charge"}


def test_logs_by_trace_and_bad_input(served: tuple[str, Path]) -> None:
    url, _ = served
    trace_id = _order(url)

    def lines() -> list[Any] | None:
        done = squall(url, "logs", "--trace", trace_id, "--json")
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        return rows or None

    [row] = wait_for(lines)
    assert row["message"] == "charged" and row["fields"] == {"amount": 12}
    assert row["trace_id"] == trace_id
    text = squall(url, "logs", "--trace", trace_id)
    assert "charged" in text.stdout and "amount=12" in text.stdout

    for args in (
        ("logs", "--trace", "not-a-trace"),
        ("traces", "show", "XYZ"),
        ("traces", "ls", "--limit", "0"),
    ):
        done = squall(url, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
    missing = squall(url, "traces", "show", "f" * 32)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_up_refuses_bad_observability_options(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    for args, message in (
        (("--log-retention", "forever"), "--log-retention"),
        (("--trace-retention", "0s"), "--trace-retention"),
        (("--otlp-endpoint", "localhost:4318"), "--otlp-endpoint"),
    ):
        done = subprocess.run(
            [SQUALL, "up", str(tmp_path / "app.py"), "--data-dir", str(tmp_path / "d"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
