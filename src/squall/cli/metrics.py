"""``squall metrics``: per-function invocations, errors, throttles, cold starts, p50/p99."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, parse_since

SinceOption = Annotated[
    str, typer.Option("--since", help="Window start: 30s, 10m, 1h, 2d or an ISO 8601 time.")
]


def since_of(text: str) -> float:
    try:
        return parse_since(text)
    except InputError as exc:
        fail(str(exc), 2)


def metrics(
    since: SinceOption = "1h",
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Summarize each function over a window, from the stored invocation records.

    Throttles are counted in the platform's memory since it started; Prometheus metrics
    are at GET /metrics (an API key with the read scope).
    """
    start = since_of(since)
    with session(url, key) as client:
        summary = client.metrics_summary(since=start)
    if as_json:
        print_json(summary)
        return
    console.print(summary_table(summary["functions"]))


def summary_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("function", no_wrap=True)
    for name in ("invocations", "errors", "error rate", "throttles", "cold starts", "p50", "p99"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            escape(row["function"]),
            str(row["invocations"]),
            str(row["errors"]),
            f"{row['error_rate'] * 100:.1f}%",
            str(row["throttles"]),
            str(row["cold_starts"]),
            _ms(row["p50_ms"]),
            _ms(row["p99_ms"]),
        )
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"
