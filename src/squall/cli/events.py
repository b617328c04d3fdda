"""``squall publish`` and ``squall events``: put events on a bus, test patterns, list rules."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from squall.cli.common import (
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    fail,
    print_json,
    session,
)
from squall.cli.parsing import InputError, read_payload
from squall.cli.rules import list_ as list_rules

events = typer.Typer(help="Event rules and pattern testing.", no_args_is_help=True)


def publish(
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="The event's type.")],
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="JSON data, @file.json, or - for stdin."),
    ] = None,
    source: Annotated[str, typer.Option(help="The event's source.")] = "squall://cli",
    subject: Annotated[str | None, typer.Option(help="The event's subject.")] = None,
    bus: Annotated[str, typer.Option(help="The bus to publish to.")] = "default",
    event_id: Annotated[
        str | None, typer.Option("--id", help="Event id (default: a new uuid).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Publish a CloudEvent onto a bus and print its id and the rules it matched."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": event_type,
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": _json_arg(data, "--data") if data is not None else None,
    }
    if subject is not None:
        event["subject"] = subject
    with session(url, key) as client:
        answer = client.publish(event, bus=bus)
    if as_json:
        print_json(answer)
        return
    [outcome] = answer["events"]
    matched = ", ".join(outcome["matched"]) or "no rule"
    note = " (duplicate: dropped)" if outcome["duplicate"] else ""
    console.print(f"{outcome['id']} -> {matched}{note}", markup=False)


@events.command("test-pattern")
def test_pattern(
    pattern: Annotated[str, typer.Argument(help="The pattern: JSON, @file.json or -.")],
    event: Annotated[str, typer.Argument(help="The event: JSON, @file.json or -.")],
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Say whether PATTERN matches EVENT (exit 0 when it does, 1 when not), or why it is invalid."""
    with session(url, key) as client:
        matched = client.test_pattern(_json_arg(pattern, "PATTERN"), _json_arg(event, "EVENT"))
    console.print("match" if matched else "no match")
    raise typer.Exit(0 if matched else 1)


@events.command("rules")
def rules(
    bus: Annotated[str | None, typer.Option(help="Only the rules on this bus.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List the rules (as `squall rules list`)."""
    list_rules(bus=bus, as_json=as_json, url=url, key=key)


def _json_arg(raw: str, what: str) -> Any:
    try:
        return json.loads(read_payload(raw, sys.stdin.buffer))
    except InputError as exc:
        fail(f"{what}: {exc}", 2)
