"""``squall schemas``, ``squall archives`` and ``squall replay``: help, and bad input refused
with exit 2 before any request (the URL below has nothing listening: a request would exit 1)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from squall.cli import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "command",
    [
        ["schemas", "put"], ["schemas", "list"], ["schemas", "show"], ["schemas", "delete"],
        ["archives", "create"], ["archives", "list"], ["archives", "show"],
        ["archives", "delete"], ["replay"], ["replays", "list"], ["replays", "show"],
    ],
)
def test_every_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: squall {' '.join(command)}" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["replay", "--bus", "b", "--from", "yesterday-ish"], "--from 'yesterday-ish'"),
        (["replay", "--bus", "b", "--from", "1h", "--to", "soon"], "--to 'soon'"),
        (["replay", "--from", "1h"], "give --bus or --archive"),
        (["replay", "--bus", "b", "--from", "1h", "--pattern", "{"], "--pattern is not valid"),
        (["archives", "create", "a", "--retention", "7 weeks"], "--retention '7 weeks'"),
        (["archives", "create", "a", "--pattern", "[1,"], "--pattern is not valid JSON"),
        (["schemas", "put", "t", "1", "/nonexistent/schema.json"], "cannot read schema file"),
        (["schemas", "delete", "t"], "pass --yes"),
        (["archives", "delete", "a"], "pass --yes"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    runner: CliRunner, args: list[str], words: str
) -> None:
    result = runner.invoke(app, [*args, "--url", closed_url()])
    assert result.exit_code == 2, result.output
    assert words in result.stderr


def test_a_version_must_be_a_positive_integer(runner: CliRunner, tmp_path: Path) -> None:
    schema = tmp_path / "s.json"
    schema.write_text("{}")
    result = runner.invoke(app, ["schemas", "put", "t", "0", str(schema), "--url", closed_url()])
    assert result.exit_code == 2
