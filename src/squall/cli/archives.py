"""``squall archives`` and ``squall replay``: keep a bus's events, and publish them again."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, parse_since
from squall.cli.render import clock
from squall.client import SquallClient

archives = typer.Typer(help="Archives of the events published to a bus.", no_args_is_help=True)
replays = typer.Typer(help="Replays of archived events.", no_args_is_help=True)

POLL_S = 0.2
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

PatternOption = Annotated[
    str | None, typer.Option("--pattern", help="An event pattern (JSON): only matching events.")
]


@archives.command()
def create(
    name: Annotated[str, typer.Argument(help="The archive's name.")],
    bus: Annotated[str, typer.Option(help="The bus whose events it keeps.")] = "default",
    retention: Annotated[
        str, typer.Option(help="How long events are kept: 90m, 12h, 7d, …")
    ] = "7d",
    pattern: PatternOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Archive every event published to a bus from now on (matching --pattern, if given)."""
    retention_s = _duration(retention)
    parsed = _json_option(pattern, "--pattern") if pattern is not None else None
    with session(url, key) as client:
        created = client.create_archive(name, bus, retention_s=retention_s, pattern=parsed)
    if as_json:
        print_json(created)
    else:
        console.print(f"archive {created['name']} keeps bus {created['bus']}'s events"
                      f" for {retention}", markup=False)


@archives.command("list")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the archives and how many events each holds."""
    with session(url, key) as client:
        listed = client.archives()
    if as_json:
        print_json({"archives": listed})
    elif not listed:
        console.print("no archives")
    else:
        console.print(_archives_table(listed))


@archives.command()
def show(
    name: Annotated[str, typer.Argument(help="The archive's name.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show one archive: its bus, pattern, retention and the events it holds."""
    with session(url, key) as client:
        found = client.archive(name)
    if as_json:
        print_json(found)
    else:
        console.print(_archives_table([found]))


@archives.command()
def delete(
    name: Annotated[str, typer.Argument(help="The archive's name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete an archive and every event it holds."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"delete would remove archive {name!r} and its events: pass --yes", 2)
        typer.confirm(f"Delete archive {name!r} and its events?", abort=True)
    with session(url, key) as client:
        client.delete_archive(name)
    console.print(f"deleted archive {name}", markup=False)


def replay(
    start: Annotated[
        str, typer.Option("--from", help="Events published since: 2h, 7d or an ISO 8601 time.")
    ],
    bus: Annotated[
        str | None, typer.Option(help="The bus to replay onto (default: the archive's).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="… and until (default: now).")
    ] = None,
    archive: Annotated[
        str | None, typer.Option(help="Only this archive (default: every archive of the bus).")
    ] = None,
    pattern: PatternOption = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Start it, print its id and return.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Publish archived events again, in their original order, with a progress bar."""
    if bus is None and archive is None:
        fail("give --bus or --archive", 2)
    body: dict[str, Any] = {
        "bus": bus,
        "archive": archive,
        "from": _moment(start, "--from"),
        "to": _moment(end, "--to") if end is not None else None,
        "pattern": _json_option(pattern, "--pattern") if pattern is not None else None,
    }
    with session(url, key) as client:
        status = client.start_replay(**body)
        if not no_wait:
            status = _follow(client, status, quiet=as_json)
    if as_json:
        print_json(status)
    elif no_wait:
        print(status["id"], flush=True)
    else:
        _summary(status)
    if status["state"] == "failed":
        raise typer.Exit(1)


@replays.command("list")
def list_replays(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List recent replays, newest first."""
    with session(url, key) as client:
        listed = client.replays()
    if as_json:
        print_json({"replays": listed})
        return
    table = Table("id", "bus", "state", "published", "total", "started", box=box.SIMPLE_HEAD)
    for row in listed:
        table.add_row(row["id"], row["bus"], row["state"], str(row["published"]),
                      str(row["total"]), clock(row["started_at"], date=True))
    console.print(table)


@replays.command("show")
def show_replay(
    replay_id: Annotated[str, typer.Argument(metavar="ID", help="The replay's id.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show one replay's state and progress."""
    with session(url, key) as client:
        status = client.replay(replay_id)
    if as_json:
        print_json(status)
    else:
        _summary(status)


def _follow(client: SquallClient, status: dict[str, Any], *, quiet: bool) -> dict[str, Any]:
    """Poll until the replay ends, drawing a progress bar on stderr unless ``quiet``."""
    columns = (TextColumn("replay {task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as bar:
        task = bar.add_task(status["id"], total=None)
        while True:
            bar.update(task, total=status["total"] or None, completed=status["published"])
            if status["state"] != "running":
                return status
            time.sleep(POLL_S)
            status = client.replay(status["id"])


def _summary(status: dict[str, Any]) -> None:
    last = clock(status["last_event_time"], date=True)
    console.print(
        f"replay {status['id']} {status['state']}: {status['published']}/{status['total']}"
        f" events onto bus {status['bus']} (last first published {last})",
        markup=False,
    )
    if status.get("error"):
        console.print(f"  error: {status['error']}", markup=False)


def _archives_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("name", "bus", "retention", "events", "first", "last", "pattern",
                  box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(
            row["name"], row["bus"], _show_duration(row["retention_s"]), str(row["events"]),
            clock(row["first_event_at"], date=True), clock(row["last_event_at"], date=True),
            json.dumps(row["pattern"]) if row["pattern"] is not None else "-",
        )
    return table


def _duration(text: str) -> int:
    match = _DURATION.match(text)
    if match is None:
        fail(f"--retention {text!r} is not a duration (90m, 12h, 7d)", 2)
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def _show_duration(seconds: int) -> str:
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_S[unit] == 0:
            return f"{seconds // _UNIT_S[unit]}{unit}"
    return f"{seconds}s"


def _moment(text: str, option: str) -> float:
    """A time given as a duration back from now (2h, 7d) or an ISO 8601 time, as epoch s."""
    try:
        return parse_since(text)
    except InputError:
        fail(f"{option} {text!r} is neither a duration back from now (30s, 10m, 2h, 7d)"
             " nor an ISO 8601 time", 2)


def _json_option(raw: str, option: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", 2)

