"""CLI option parsing and the exit codes of errors caught before any request is sent."""

from __future__ import annotations

import io
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from squall.cli import app
from squall.cli.parsing import InputError, parse_since, read_payload

NOW = 1_700_000_000.0


def closed_url() -> str:
    """A URL nothing listens on: reaching it would exit 1, so an exit 2 proves no request."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --since


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h", 3600), ("2d", 172800), ("1.5h", 5400), (" 5m ", 300)],
)
def test_since_durations_count_back_from_now(text: str, seconds: float) -> None:
    assert parse_since(text, now=NOW) == NOW - seconds


def test_since_iso_time_with_zone() -> None:
    assert (
        parse_since("2024-05-01T12:00:00+00:00") == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    )
    assert parse_since("2024-05-01T12:00:00Z") == parse_since("2024-05-01T12:00:00+00:00")


def test_since_naive_iso_time_is_local() -> None:
    assert parse_since("2024-05-01T12:00:00") == datetime(2024, 5, 1, 12).timestamp()


@pytest.mark.parametrize("text", ["banana", "10", "10x", "-5m", "m", ""])
def test_since_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(InputError, match="--since") as info:
        parse_since(text, now=NOW)
    assert "30s, 10m, 1h, 2d" in str(info.value)


# --data


def test_data_inline_is_sent_as_given() -> None:
    assert read_payload('{"n": 1.10}', io.BytesIO()) == b'{"n": 1.10}'


def test_data_from_file(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(b"[1, 2, 3]\n")
    assert read_payload(f"@{path}", io.BytesIO()) == b"[1, 2, 3]\n"


def test_data_from_stdin() -> None:
    assert read_payload("-", io.BytesIO(b'{"from": "stdin"}')) == b'{"from": "stdin"}'


def test_malformed_inline_json_names_the_position() -> None:
    with pytest.raises(InputError) as info:
        read_payload('{"a": 1,\n "b": }', io.BytesIO())
    assert str(info.value).startswith("invalid JSON in --data:")
    assert "line 2, column 7" in str(info.value)


def test_malformed_file_json_names_the_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[1, 2,")
    with pytest.raises(InputError) as info:
        read_payload(f"@{path}", io.BytesIO())
    assert str(path) in str(info.value)
    assert "line 1, column 7" in str(info.value)


def test_malformed_stdin_json_says_stdin() -> None:
    with pytest.raises(InputError, match=r"stdin.*line 1, column 1"):
        read_payload("-", io.BytesIO(b"nope"))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"
    with pytest.raises(InputError) as info:
        read_payload(f"@{path}", io.BytesIO())
    assert f"cannot read --data file '{path}'" in str(info.value)
    assert "No such file" in str(info.value)


def test_non_utf8_data_is_rejected() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        read_payload("-", io.BytesIO(b'"\xff"'))


# exit codes of usage errors that never reach a server


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_malformed_data_exits_2_with_one_line(runner: CliRunner) -> None:
    result = runner.invoke(app, ["invoke", "hello", "--data", "{bad", "--url", closed_url()])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: invalid JSON in --data: Expecting property name enclosed in double quotes"
        " at line 1, column 2"
    ]
    assert result.stdout == ""


def test_missing_data_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    result = runner.invoke(app, ["invoke", "hello", "-d", f"@{missing}", "--url", closed_url()])
    assert result.exit_code == 2
    assert str(missing) in result.stderr


def test_malformed_stdin_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["invoke", "hello", "--data", "-", "--url", closed_url()], input="{]"
    )
    assert result.exit_code == 2
    assert "stdin" in result.stderr


def test_bad_since_exits_2(runner: CliRunner) -> None:
    result = runner.invoke(app, ["logs", "--since", "yesterday", "--url", closed_url()])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --since 'yesterday'")


@pytest.mark.parametrize(
    "args",
    [
        ["logs", "--level", "loud"],
        ["invocations", "--limit", "abc"],
        ["invocations", "--limit", "0"],
        ["dlq", "list", "--limit", "-1"],
        ["up", "app.py", "--port", "70000"],
        ["invoke"],
        ["nonsense"],
    ],
)
def test_bad_option_values_exit_2(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--url", closed_url()] if args[0] != "up" else args)
    assert result.exit_code == 2, result.output


def test_purge_without_yes_refuses_when_not_interactive(runner: CliRunner) -> None:
    result = runner.invoke(app, ["dlq", "purge", "boom", "--url", closed_url()])
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert "'boom'" in result.stderr


def test_unreachable_platform_exits_1_with_a_hint(runner: CliRunner) -> None:
    url = closed_url()
    result = runner.invoke(app, ["ls", "--url", url])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach Squall at {url}")
    assert "squall up app.py" in result.stderr


def test_url_comes_from_the_environment(runner: CliRunner) -> None:
    url = closed_url()
    result = runner.invoke(app, ["ls"], env={"SQUALL_URL": url})
    assert result.exit_code == 1
    assert url in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["up"],
        ["invoke"],
        ["ls"],
        ["invocations"],
        ["invocation"],
        ["logs"],
        ["dlq", "list"],
        ["dlq", "redrive"],
        ["dlq", "purge"],
    ],
)
def test_every_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: squall {' '.join(command)}" in result.stdout


def test_compact_targets() -> None:
    from squall.cli.rules import parse_target

    assert parse_target("function:fraud-check", 0) == {
        "kind": "function",
        "function": "fraud-check",
    }
    assert parse_target("bus:audit", 0) == {"kind": "bus", "bus": "audit"}
    assert parse_target("queue:emails", 0) == {"kind": "queue", "queue": "emails"}
    assert parse_target("http:https://x.example/a?b=1", 0) == {
        "kind": "http",
        "url": "https://x.example/a?b=1",
    }
    assert parse_target('{"kind": "bus", "bus": "b", "id": "x"}', 0)["id"] == "x"
    for bad in ("lambda:f", "function:", "audit", '{"kind": '):
        with pytest.raises(InputError, match="--target"):
            parse_target(bad, 3)
