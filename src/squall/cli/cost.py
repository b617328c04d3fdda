"""``squall cost``: requests, GB-seconds and USD by function or day, from the records."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, print_json, session
from squall.cli.metrics import since_of


class By(StrEnum):
    function = "function"
    day = "day"


def cost(
    by: Annotated[
        By, typer.Option("--by", help="One row per function or per UTC day.")
    ] = By.function,
    since: Annotated[
        str, typer.Option("--since", help="Window start: 30s, 10m, 1h, 7d or an ISO 8601 time.")
    ] = "7d",
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """What invocations cost: one request each, plus memory x billed duration in GB-seconds,
    at the platform's prices (`squall up --price-requests/--price-gb-second`)."""
    start = since_of(since)
    with session(url, key) as client:
        report = client.cost(by=by.value, since=start)
    if as_json:
        print_json(report)
        return
    console.print(cost_table(report))
    for budget in report["budgets"]:
        whom = budget["function"] or "the app"
        state = "EXCEEDED" if budget["exceeded"] else "ok"
        line = (
            f"budget {whom} per {budget['period']}: {_usd(budget['spend_usd'])} of"
            f" {_usd(budget['usd'])} ({state}{', stops it' if budget['stop'] else ''})"
        )
        console.print(line, markup=False, soft_wrap=True)


def cost_table(report: dict[str, Any]) -> Table:
    by = report["by"]
    table = Table(box=box.SIMPLE_HEAD, show_footer=True)
    table.add_column(by, footer="total", no_wrap=True)
    total = report["total"]
    columns = (
        ("requests", "requests", str),
        ("GB-s", "gb_seconds", _gb_s),
        ("requests USD", "request_usd", _usd),
        ("compute USD", "compute_usd", _usd),
        ("total USD", "total_usd", _usd),
    )
    for title, field, show in columns:
        table.add_column(title, justify="right", footer=show(total[field]), no_wrap=True)
    for row in report["rows"]:
        table.add_row(escape(str(row[by])), *(show(row[field]) for _, field, show in columns))
    return table


def _usd(value: float) -> str:
    """Cents for sums that reach them, else enough digits to see a few invocations."""
    if value >= 1 or value == 0:
        return f"${value:,.2f}"
    text = f"{value:.10f}".rstrip("0")
    return f"${text}" if len(text.split(".")[1]) >= 2 else f"${value:.2f}"


def _gb_s(value: float) -> str:
    return f"{value:,.6f}"
