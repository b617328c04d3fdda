"""``squall streams``: help for every command, and bad input refused with exit 2 before any
request (the URL below has nothing listening: a request would exit 1)."""

from __future__ import annotations

import socket

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


@pytest.mark.parametrize("command", ["ls", "show", "create", "delete", "put", "read"])
def test_every_streams_command_has_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, ["streams", command, "--help"])
    assert result.exit_code == 0
    assert f"Usage: squall streams {command}" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["put", "s", "-p", "k", "--data", "{"], "invalid JSON"),
        (["put", "s", "-p", "k", "--data", "@/nonexistent/data.json"], "cannot read --data"),
        (["put", "s", "-p", "", "--data", "1"], "--partition-key must be 1-256"),
        (["put", "s", "--data", "1"], "--partition-key"),
        (["read", "s", "--shard", "-1"], "--shard"),
        (["read", "s", "--limit", "0"], "--limit"),
        (["create", "s", "--shards", "65"], "--shards"),
        (["create", "s", "--retention-s", "10"], "--retention-s"),
        (["delete", "s"], "pass --yes"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    runner: CliRunner, args: list[str], words: str
) -> None:
    result = runner.invoke(app, ["streams", *args, "--url", closed_url()])
    assert result.exit_code == 2, result.output
    assert words in result.stderr


def test_an_unreachable_platform_exits_1(runner: CliRunner) -> None:
    result = runner.invoke(app, ["streams", "ls", "--url", closed_url()])
    assert result.exit_code == 1
    assert "cannot reach Squall" in result.stderr
