"""``squall schedules``: list the app's schedules, and check an expression before deploying it."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload
from squall.engine.schedules.expressions import MAX_PREVIEW, preview
from squall.errors import InvalidInput

schedules = typer.Typer(
    help="Schedules: rates, cron expressions and one-time runs.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The schedule's name.")]
ExpressionArg = Annotated[
    str,
    typer.Argument(
        metavar="EXPR",
        help="rate(5 minutes), 'cron(0 9 ? * MON-FRI *)', '*/15 * * * *' or"
        " at(2026-12-01T09:00:00).",
    ),
]
TzOption = Annotated[str, typer.Option("--tz", help="IANA time zone of the expression.")]
CountOption = Annotated[
    int, typer.Option("-n", "--count", min=1, max=MAX_PREVIEW, help="How many fire times.")
]


@schedules.command("ls")
def list_(
    count: CountOption = 3,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List the app's schedules with their last and next fire times (UTC)."""
    with session(url, key) as client:
        listed = client.schedules(count)
    if as_json:
        print_json({"schedules": listed})
        return
    if not listed:
        console.print("no schedules")
        return
    table = Table(
        "name", "function", "expression", "tz", "last", "next", "from", box=box.SIMPLE_HEAD
    )
    for item in listed:
        table.add_row(
            item["name"],
            item["function"],
            item["expression"],
            item["tz"],
            item["last_fire"] or "-",
            "\n".join(item["next_fires"]) or ("disabled" if not item["enabled"] else "-"),
            item["origin"],
        )
    console.print(table, markup=False)


@schedules.command()
def show(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show one schedule with its next fire times."""
    with session(url, key) as client:
        _print(client.schedule(name), as_json)


@schedules.command()
def put(
    name: NameArg,
    expression: ExpressionArg,
    function: Annotated[str, typer.Option("--function", "-f", help="The function it runs.")],
    tz: TzOption = "UTC",
    payload: Annotated[
        str | None,
        typer.Option("--payload", help="The event's detail: JSON, @file.json, or - for stdin."),
    ] = None,
    jitter_s: Annotated[
        int, typer.Option("--jitter", min=0, help="Delay each tick within this many seconds.")
    ] = 0,
    missed: Annotated[
        str, typer.Option(help="Ticks due while down, at start: skip or fire_once.")
    ] = "skip",
    description: Annotated[str, typer.Option(help="What the schedule is for.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create or replace a schedule, kept by the platform (the app's are read-only)."""
    body: dict[str, Any] = {
        "function": function,
        "expression": expression,
        "tz": tz,
        "jitter_s": jitter_s,
        "missed": missed,
        "description": description,
        "enabled": not disabled,
    }
    if payload is not None:
        try:
            body["payload"] = json.loads(read_payload(payload, sys.stdin.buffer, "--payload"))
        except InputError as exc:
            fail(str(exc), 2)
    with session(url, key) as client:
        _print(client.put_schedule(name, body), as_json)


@schedules.command()
def enable(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Fire the schedule again, from its next tick after now."""
    with session(url, key) as client:
        _print(client.update_schedule(name, {"enabled": True}), as_json)


@schedules.command()
def disable(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Stop firing the schedule until `squall schedules enable`."""
    with session(url, key) as client:
        _print(client.update_schedule(name, {"enabled": False}), as_json)


@schedules.command()
def delete(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Delete a schedule made through the CLI or the admin API."""
    with session(url, key) as client:
        done = client.delete_schedule(name)
    if as_json:
        print_json(done)
    else:
        console.print(f"deleted {done['deleted']}", markup=False)


def _print(item: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(item)
        return
    state = "enabled" if item["enabled"] else "disabled"
    console.print(
        f"{item['name']}: {item['expression']} ({item['tz']}) -> {item['function']}, {state}",
        markup=False,
    )
    console.print(f"  last: {item['last_fire'] or '-'}", markup=False)
    for moment in item["next_fires"]:
        console.print(f"  next: {moment}", markup=False)


@schedules.command("next")
def next_(
    expression: ExpressionArg,
    tz: TzOption = "UTC",
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start after this time (RFC 3339; without offset, a wall time in --tz).",
            show_default="now",
        ),
    ] = None,
    count: CountOption = 5,
    as_json: JsonOption = False,
) -> None:
    """Print the next fire times of EXPR (UTC); exit 2 naming the field if it is invalid.

    Computed here, the way the platform computes them: no platform needs to run.
    """
    try:
        times = preview(expression, tz, start, count, now=time.time())
    except InvalidInput as exc:
        fail(f"{exc.type}: {exc.message}", 2)
    if as_json:
        print_json({"expression": expression, "tz": tz, "times": times})
        return
    if not times:
        console.print("no fire times left", markup=False)
    for moment in times:
        console.print(moment, markup=False)
