"""The `squall` console script end to end: real `squall up`, commands in subprocesses."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ADMIN_KEY, NO_CONFIG, SQUALL, client_env, start_squall, wait_for

MAX_SYNC = 1024

APP = """\
import squall

app = squall.App("t")

@app.function()
def hello(event, ctx):
    print("hi from stdout")
    ctx.logger.warning("careful")
    return {"hello": (event or {}).get("name", "world")}

@app.function(retries=0)
def boom(event, ctx):
    raise ValueError("nope")
"""



@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "app.py").write_text(APP)
    return path


@pytest.fixture(scope="module")
def url(workdir: Path) -> Iterator[str]:
    proc, url = start_squall(workdir, "--max-sync-payload", str(MAX_SYNC))
    yield url
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (workdir / "up.err").read_text()


def squall(
    url: str, *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SQUALL, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={
            "SQUALL_URL": url,
            "SQUALL_API_KEY": ADMIN_KEY,
            "SQUALL_CONFIG": NO_CONFIG,
            "PATH": str(Path(SQUALL).parent),
            "COLUMNS": "200",
        },
    )


def squall_json(url: str, *args: str) -> Any:
    done = squall(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# up


def test_up_prints_where_it_serves(workdir: Path, url: str) -> None:
    # The URL lines come first; the function table may still be on its way.
    out = wait_for(lambda: text if "boom" in (text := (workdir / "up.out").read_text()) else None)
    assert f"gateway    {url}\n" in out
    assert f"admin API  {url}/api/v1\n" in out
    assert "hello" in out
    assert "boom" in out
    assert f"dashboard  {url}/ui/" in out


def test_up_with_a_bad_app_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "import squall\napp = squall.App('b')\n"
        "@app.function(memory_mb=1)\ndef f(event, ctx):\n    return 1\n"
    )
    done = squall("http://unused", "up", "app.py", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: ")
    assert "memory_mb=1" in done.stderr


def test_up_on_a_busy_port_exits_1(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = squall("http://unused", "up", "app.py", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 1
    assert (
        done.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_up_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    proc, url = start_squall(tmp_path)
    assert squall(url, "invoke", "hello").returncode == 0
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    assert "Traceback" not in (tmp_path / "up.err").read_text()
    assert "squall stopped" in (tmp_path / "up.out").read_text()


# invoke


def test_invoke_prints_the_result(url: str) -> None:
    done = squall(url, "invoke", "hello", "--data", '{"name": "cli"}')
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{\n  "hello": "cli"\n}\n'


def test_invoke_reads_data_from_a_file_and_stdin(url: str, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"name": "file"}')
    assert json.loads(squall(url, "invoke", "hello", "-d", f"@{event}").stdout) == {"hello": "file"}
    piped = squall(url, "invoke", "hello", "-d", "-", stdin=b'{"name": "pipe"}')
    assert json.loads(piped.stdout) == {"hello": "pipe"}


def test_invoke_json_reports_the_invocation(url: str) -> None:
    out = squall_json(url, "invoke", "hello")
    assert out["result"] == {"hello": "world"}
    assert out["status_code"] == 200
    assert isinstance(out["cold"], bool)
    record = squall_json(url, "invocation", out["invocation_id"])
    assert record["status"] == "succeeded"


def test_failed_invocation_exits_1(url: str) -> None:
    done = squall(url, "invoke", "boom")
    assert done.returncode == 1
    assert last_line(done.stderr) == "error: FunctionError: ValueError: nope"
    assert 'raise ValueError("nope")' in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["invoke", "ghost"], "error: NotFound: function 'ghost' does not exist"),
        (["invoke", "hello", "-d", json.dumps("x" * MAX_SYNC)], "error: PayloadTooLarge: "),
        (["invocation", "0000"], "error: NotFound: invocation '0000'"),
    ],
)
def test_request_errors_exit_2(url: str, args: list[str], expected: str) -> None:
    done = squall(url, *args)
    assert done.returncode == 2
    assert done.stderr.startswith(expected)


def test_payload_too_large_names_both_sizes(url: str) -> None:
    data = json.dumps("x" * MAX_SYNC)
    done = squall(url, "invoke", "hello", "-d", data)
    assert str(len(data)) in done.stderr
    assert str(MAX_SYNC) in done.stderr


def test_unreachable_platform_exits_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    done = squall(closed, "invoke", "hello")
    assert done.returncode == 1
    assert "cannot reach Squall" in done.stderr
    assert "squall up app.py" in done.stderr


def test_invoke_async_prints_the_id(url: str) -> None:
    done = squall(url, "invoke", "hello", "--async", "-d", '{"name": "bg"}')
    assert done.returncode == 0, done.stderr
    invocation_id = done.stdout.strip()

    def succeeded() -> dict[str, Any] | None:
        record: dict[str, Any] = squall_json(url, "invocation", invocation_id)
        return record if record["status"] == "succeeded" else None

    assert wait_for(succeeded)["result"] == {"hello": "bg"}


def test_idempotency_key_runs_once(url: str) -> None:
    key = f"cli-{time.monotonic_ns()}"
    first = squall_json(url, "invoke", "hello", "-k", key, "-d", '{"name": "one"}')
    again = squall_json(url, "invoke", "hello", "-k", key, "-d", '{"name": "two"}')
    assert again["invocation_id"] == first["invocation_id"]
    assert again["result"] == {"hello": "one"}


# ls, invocations, logs


def test_ls(url: str) -> None:
    functions = {fn["name"]: fn for fn in squall_json(url, "ls")["functions"]}
    assert set(functions) == {"hello", "boom"}
    assert functions["boom"]["retries"] == 0
    table = squall(url, "ls")
    assert table.returncode == 0
    assert "hello" in table.stdout
    assert "128 MB" in table.stdout


def test_invocations(url: str) -> None:
    invocation_id = squall_json(url, "invoke", "hello")["invocation_id"]
    page = squall_json(url, "invocations", "hello", "--limit", "1")
    assert [inv["id"] for inv in page["invocations"]] == [invocation_id]
    assert page["next"] == invocation_id
    table = squall(url, "invocations", "hello", "--limit", "1")
    assert invocation_id in table.stdout
    assert f"more: --before {invocation_id}" in table.stdout
    assert squall(url, "invocations", "--status", "sleeping").returncode == 2


def test_invocation_shows_logs(url: str) -> None:
    invocation_id = squall_json(url, "invoke", "hello")["invocation_id"]
    done = squall(url, "invocation", invocation_id)
    assert done.returncode == 0
    assert "succeeded" in done.stdout
    assert "hi from stdout" in done.stdout
    assert "careful" in done.stdout


def log_rows(url: str, *args: str) -> list[dict[str, Any]]:
    done = squall(url, "logs", "--json", *args)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_logs(url: str) -> None:
    invocation_id = squall_json(url, "invoke", "hello")["invocation_id"]
    rows = log_rows(url, "hello", "--invocation", invocation_id)
    assert [row["message"] for row in rows] == ["hi from stdout", "careful"]
    warnings = log_rows(url, "--invocation", invocation_id, "--level", "warning")
    assert [row["message"] for row in warnings] == ["careful"]
    grepped = log_rows(url, "--invocation", invocation_id, "--grep", "stdout")
    assert [row["message"] for row in grepped] == ["hi from stdout"]
    assert log_rows(url, "--since", "1s", "--grep", "no such text") == []
    text = squall(url, "logs", "--invocation", invocation_id)
    assert "WARNING" in text.stdout
    assert "careful" in text.stdout


def test_logs_follow_prints_new_lines_until_interrupted(url: str) -> None:
    follower = subprocess.Popen(
        [SQUALL, "logs", "-f", "--json", "--since", "1s", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=client_env(),
    )
    try:
        time.sleep(1.0)
        invocation_id = squall_json(url, "invoke", "hello", "-d", '{"name": "f"}')["invocation_id"]
        assert follower.stdout is not None
        seen: list[dict[str, Any]] = []
        while len([row for row in seen if row["invocation_id"] == invocation_id]) < 2:
            line = follower.stdout.readline()
            assert line, "logs -f exited before printing the new lines"
            seen.append(json.loads(line))
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        follower.kill()
        follower.communicate()


# dead letters


def test_dlq_list_redrive_purge(url: str) -> None:
    assert squall(url, "dlq", "purge", "boom", "--yes").returncode == 0
    invocation_id = squall(url, "invoke", "boom", "--async").stdout.strip()

    def letters() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = squall_json(url, "dlq", "list", "boom")["dead_letters"]
        return found or None

    [letter] = wait_for(letters)
    assert letter["invocation_id"] == invocation_id
    table = squall(url, "dlq", "list", "boom")
    assert letter["id"] in table.stdout
    assert "ValueError: nope" in table.stdout

    redrive = squall(url, "dlq", "redrive", "boom", "--id", letter["id"])
    assert redrive.returncode == 0
    assert "redriven 1 dead letter(s)" in redrive.stdout
    assert invocation_id in redrive.stdout
    [again] = wait_for(letters)
    assert again["invocation_id"] == invocation_id

    refused = squall(url, "dlq", "purge", "boom")
    assert refused.returncode == 2
    assert wait_for(letters)
    purged = squall(url, "dlq", "purge", "boom", "--yes")
    assert purged.returncode == 0
    assert purged.stdout.strip() == "purged 1 dead letter(s)"
    assert squall_json(url, "dlq", "list", "boom") == {"dead_letters": []}
    assert squall(url, "dlq", "list", "boom").stdout.strip() == "no dead letters"
