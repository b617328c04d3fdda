"""``squall traces``: list recent traces, show one as a waterfall of its spans."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session

TRACE_ID = re.compile(r"[0-9a-f]{32}")
BAR_WIDTH = 30

traces = typer.Typer(
    help="Distributed traces: every hop of a request, event or message.",
    no_args_is_help=True,
)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@traces.command("ls")
def list_traces(
    function: Annotated[
        str | None, typer.Option("--function", "-f", help="Only traces this function ran in.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    before: Annotated[
        str | None, typer.Option(help="The `next` cursor a previous page printed.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List recent traces, newest first: root span, start, duration, spans, functions."""
    with session(url, key) as client:
        page = client.traces(function, limit=limit, before=before)
    if as_json:
        print_json(page)
        return
    table = Table(
        "trace", "root", "start (UTC)", "ms", "spans", "functions", box=box.SIMPLE_HEAD
    )
    for trace in page["traces"]:
        table.add_row(
            trace["trace_id"],
            ("[red]✗[/] " if trace["error"] else "") + escape(trace["name"]),
            _time(trace["start"]),
            f"{trace['duration_ms']:.1f}",
            str(trace["spans"]),
            escape(", ".join(trace["functions"])),
        )
    console.print(table)
    if page["next"] is not None:
        console.print(f"more: --before {page['next']}", markup=False)


@traces.command("show")
def show(
    trace_id: Annotated[str, typer.Argument(metavar="ID", help="The trace id (32 hex digits).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show one trace as a waterfall: each span under its parent, with its duration."""
    if not TRACE_ID.fullmatch(trace_id):
        fail(f"{trace_id!r} is not a trace id (32 lower-case hex digits)", 2)
    with session(url, key) as client:
        trace = client.trace(trace_id)
    if as_json:
        print_json(trace)
        return
    for line in waterfall(trace["spans"]):
        console.print(line, soft_wrap=True, highlight=False)


def waterfall(spans: list[dict[str, Any]]) -> list[str]:
    """Rich markup lines: the span tree in start order, each with a bar placed on the
    trace's time line and its duration in ms."""
    if not spans:
        return []
    ids = {span["span_id"] for span in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_id"] if span["parent_id"] in ids else None
        children.setdefault(parent, []).append(span)
    start = min(span["start"] for span in spans)
    total = max(max(span["end"] for span in spans) - start, 1e-9)
    lines: list[str] = []

    def walk(span: dict[str, Any], depth: int) -> None:
        offset = round((span["start"] - start) / total * BAR_WIDTH)
        width = max(1, round((span["end"] - span["start"]) / total * BAR_WIDTH))
        bar = " " * offset + "█" * min(width, BAR_WIDTH - offset or 1)
        style = "red" if span["status"] == "error" else "cyan"
        label = escape("  " * depth + span["name"])
        function = span["attributes"].get("squall.function")
        suffix = f" [dim]{escape(str(function))}[/]" if function else ""
        ms = (span["end"] - span["start"]) * 1000
        lines.append(
            f"[{style}]{bar:<{BAR_WIDTH}}[/] {ms:9.2f} ms  {label}{suffix}"
        )
        for child in sorted(children.get(span["span_id"], []), key=lambda s: s["start"]):
            walk(child, depth + 1)

    for root in sorted(children.get(None, []), key=lambda s: s["start"]):
        walk(root, 0)
    return lines
