"""``squall schedules``: list the app's schedules, and check an expression before deploying it."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.engine.schedules.expressions import MAX_PREVIEW, preview
from squall.errors import InvalidInput

schedules = typer.Typer(
    help="Schedules: rates, cron expressions and one-time runs.", no_args_is_help=True
)

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
    table = Table("name", "function", "expression", "tz", "last", "next", box=box.SIMPLE_HEAD)
    for item in listed:
        table.add_row(
            item["name"],
            item["function"],
            item["expression"],
            item["tz"],
            item["last_fire"] or "-",
            "\n".join(item["next_fires"]) or ("disabled" if not item["enabled"] else "-"),
        )
    console.print(table)


@schedules.command("next")
def next_(
    expression: Annotated[
        str,
        typer.Argument(
            metavar="EXPR",
            help="rate(5 minutes), 'cron(0 9 ? * MON-FRI *)', '*/15 * * * *' or"
            " at(2026-12-01T09:00:00).",
        ),
    ],
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone of the expression.")] = "UTC",
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
