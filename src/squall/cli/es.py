"""``squall es``: read, append to, list, delete event streams and set their metadata;
``squall projections``: their lag, and rebuilds with a progress bar."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload
from squall.client import SquallClient
from squall.errors import InvalidInput
from squall.model.event_store import check_stream_name, parse_expected

es = typer.Typer(help="The event store: streams of events per aggregate.", no_args_is_help=True)
projections = typer.Typer(
    help="Projections: read models built from the event store.", no_args_is_help=True
)

StreamArg = Annotated[str, typer.Argument(metavar="STREAM", help="The stream, e.g. order-42.")]
POLL_S = 0.25


def _stream(name: str) -> str:
    try:
        return check_stream_name(name)
    except InvalidInput as exc:
        fail(exc.message, 2)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _events_table(events: list[dict[str, Any]], *, stream: bool = False) -> Table:
    columns = ["position", *(["stream"] if stream else []), "version", "type", "recorded",
               "data"]
    table = Table(*columns, box=box.SIMPLE_HEAD)
    for event in events:
        row = [str(event["position"]), *([event["stream"]] if stream else []),
               str(event["version"]), event["type"], _time(event["recorded_at"]),
               _short(event["data"])]
        table.add_row(*row)
    return table


@es.command()
def read(
    stream: StreamArg,
    start: Annotated[int | None, typer.Option(min=0, help="First version to read.")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=1000, help="How many.")]
    = 100,
    backward: Annotated[bool, typer.Option("--backward", help="Newest first.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Read the events of STREAM, forward from its first (or --start) or backward."""
    name = _stream(stream)
    with session(url, key) as client:
        page = client.es_read(name, start=start, limit=limit, backward=backward)
    if as_json:
        print_json(page)
        return
    console.print(f"{page['stream']} at version {page['version']}", markup=False)
    if page["events"]:
        console.print(_events_table(page["events"]), markup=False)


@es.command()
def append(
    stream: StreamArg,
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="The event type.")],
    data: Annotated[
        str, typer.Option("--data", "-d", help="The data: JSON, @file.json, or - for stdin.")
    ] = "null",
    expected: Annotated[
        str, typer.Option("--expected", help="any, no_stream or the stream's version.")
    ] = "any",
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Append one event of TYPE to STREAM (at --expected version)."""
    name = _stream(stream)
    try:
        value = json.loads(read_payload(data, sys.stdin.buffer, "--data"))
    except (InputError, ValueError) as exc:
        fail(f"--data is not JSON: {exc}", 2)
    wire: int | str = int(expected) if expected.isdigit() else expected
    try:
        parse_expected(wire, "--expected")
    except InvalidInput as exc:
        fail(exc.message, 2)
    with session(url, key) as client:
        result = client.es_append(name, [{"type": event_type, "data": value}], wire)
    if as_json:
        print_json(result)
        return
    console.print(f"appended {event_type} to {name}: version {result['version']}",
                  markup=False)


@es.command()
def streams(
    prefix: Annotated[str, typer.Option(help="Only streams whose names start so.")] = "",
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=1000, help="How many.")]
    = 100,
    after: Annotated[str, typer.Option(help="Show the page after this stream (next).")] = "",
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List streams by name."""
    with session(url, key) as client:
        page = client.es_streams(prefix=prefix, after=after, limit=limit)
    if as_json:
        print_json(page)
        return
    if not page["streams"]:
        console.print("no streams")
        return
    table = Table("stream", "version", "deleted", "updated", "metadata", box=box.SIMPLE_HEAD)
    for state in page["streams"]:
        table.add_row(state["stream"], str(state["version"]), "yes" if state["deleted"] else "",
                      _time(state["updated_at"]), _short(state["metadata"]))
    console.print(table, markup=False)
    if page["next"]:
        console.print(f"more: --after {page['next']}", markup=False)


@es.command()
def delete(
    stream: StreamArg, as_json: JsonOption = False, url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Soft-delete STREAM: no more reads or appends (projections still see its events)."""
    name = _stream(stream)
    with session(url, key) as client:
        state = client.es_delete(name)
    if as_json:
        print_json(state)
        return
    console.print(f"deleted {name} (at version {state['version']})", markup=False)


@es.command()
def meta(
    stream: StreamArg,
    max_age: Annotated[float | None, typer.Option("--max-age", min=0.001,
                                                  help="Reads keep events this young (s).")]
    = None,
    max_count: Annotated[int | None, typer.Option("--max-count", min=1,
                                                  help="Reads keep the last N events.")]
    = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show STREAM's version and metadata; with --max-age/--max-count, set them."""
    name = _stream(stream)
    with session(url, key) as client:
        if max_age is None and max_count is None:
            state = client.es_stream(name)
        else:
            state = client.es_set_metadata(name, {"max_age_s": max_age, "max_count": max_count})
    if as_json:
        print_json(state)
        return
    console.print(
        f"{name}: version {state['version']}{' (deleted)' if state['deleted'] else ''},"
        f" metadata {json.dumps(state['metadata'])}",
        markup=False,
    )


def _projections_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("projection", "table", "generation", "checkpoint", "head", "lag", "rebuild",
                  "error", box=box.SIMPLE_HEAD)
    for row in rows:
        rebuild = row["rebuild"]
        shown = "-" if rebuild is None else f"gen {rebuild['generation']}, lag {rebuild['lag']}"
        error = row["last_error"]
        table.add_row(row["name"], row["table"], str(row["generation"]),
                      str(row["checkpoint"]), str(row["head"]), str(row["lag"]), shown,
                      "" if error is None else str(error.get("message", ""))[:60])
    return table


@projections.command("ls")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List projections with their checkpoint and lag (head - checkpoint)."""
    with session(url, key) as client:
        rows = client.projections()
    if as_json:
        print_json({"projections": rows})
        return
    if not rows:
        console.print("no projections")
        return
    console.print(_projections_table(rows), markup=False)


@projections.command()
def status(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The projection.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show one projection's generation, checkpoint, lag and rebuild."""
    with session(url, key) as client:
        row = client.projection(name)
    if as_json:
        print_json(row)
        return
    console.print(_projections_table([row]), markup=False)


@projections.command()
def rebuild(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The projection.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait",
                                       help="Follow the rebuild until it is swapped in.")]
    = True,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Replay every event into a fresh table and swap it in once caught up."""
    with session(url, key) as client:
        row = client.rebuild_projection(name)
        if wait:
            row = _follow(client, row, quiet=as_json)
    if as_json:
        print_json(row)
        return
    if row["rebuild"] is None:
        console.print(f"{name}: generation {row['generation']} is live, lag {row['lag']}",
                      markup=False)
    else:
        console.print(f"{name}: rebuilding generation {row['rebuild']['generation']}",
                      markup=False)


def _follow(client: SquallClient, row: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll until the new generation is live, drawing its catch-up on stderr."""
    target = row["rebuild"]["generation"] if row["rebuild"] else row["generation"]
    columns = (TextColumn("rebuild {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as bar:
        task = bar.add_task(row["name"], total=row["head"] or None)
        while True:
            fresh = row["rebuild"]
            done = row["checkpoint"] if fresh is None else fresh["checkpoint"]
            bar.update(task, total=row["head"] or None, completed=done)
            if fresh is None and row["generation"] >= target:
                return row
            time.sleep(POLL_S)
            row = client.projection(row["name"])
