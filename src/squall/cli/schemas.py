"""``squall schemas``: register, list, show and delete the JSON Schemas of event types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.render import clock

schemas = typer.Typer(help="JSON Schemas of event types, versioned.", no_args_is_help=True)

TypeArg = Annotated[str, typer.Argument(metavar="TYPE", help="The event type, e.g. order.placed.")]


@schemas.command()
def put(
    event_type: TypeArg,
    version: Annotated[int, typer.Argument(min=1, help="The version: the latest one plus 1.")],
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The JSON Schema file, or - for stdin.")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Register it even if not backward compatible.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Register VERSION of TYPE's schema; exit 2 if it is invalid, out of order or breaking."""
    schema = _read_schema(file)
    with session(url, key) as client:
        done = client.put_schema(event_type, version, schema, force=force)
    if as_json:
        print_json(done)
        return
    what = "registered" if done["created"] else "already registered (unchanged)"
    console.print(f"{done['uri']} {what}", markup=False)
    for reason in done["forced"]:
        console.print(f"  forced past: {reason}", markup=False)


@schemas.command("list")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the event types with schemas and their versions."""
    with session(url, key) as client:
        types = client.schemas()
    if as_json:
        print_json({"schemas": types})
        return
    if not types:
        console.print("no schemas")
        return
    table = Table("type", "versions", "latest", box=box.SIMPLE_HEAD)
    for row in types:
        table.add_row(row["type"], ", ".join(map(str, row["versions"])), str(row["latest"]))
    console.print(table)


@schemas.command()
def show(
    event_type: TypeArg,
    version: Annotated[
        int | None, typer.Argument(min=1, help="One version (default: list the versions).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show TYPE's versions, or the schema of one VERSION."""
    with session(url, key) as client:
        if version is not None:
            record = client.schema(event_type, version)
            print_json(record if as_json else record["schema"])
            return
        versions = client.schema_versions(event_type)
    if as_json:
        print_json(versions)
        return
    table = Table("version", "uri", "registered", box=box.SIMPLE_HEAD)
    for row in versions["versions"]:
        table.add_row(str(row["version"]), row["uri"], clock(row["created_at"], date=True))
    console.print(table)


@schemas.command()
def delete(
    event_type: TypeArg,
    version: Annotated[int | None, typer.Argument(min=1, help="Only this version.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete one version of TYPE's schema, or all of them."""
    if not yes:
        what = f"every version of {event_type!r}"
        if version is not None:
            what = f"version {version} of {event_type!r}"
        if not sys.stdin.isatty():
            fail(f"delete would remove {what}: pass --yes to confirm", 2)
        typer.confirm(f"Delete {what}?", abort=True)
    with session(url, key) as client:
        done = client.delete_schema(event_type, version)
    if as_json:
        print_json(done)
    else:
        console.print(f"deleted {done['type']} version(s) {', '.join(map(str, done['deleted']))}")


def _read_schema(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text()
    except OSError as exc:
        fail(f"cannot read schema file '{file}': {exc.strerror}", 2)
    except UnicodeDecodeError:
        fail(f"schema file '{file}' is not UTF-8 text", 2)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"invalid JSON in '{file}': {exc.msg} at line {exc.lineno}, column {exc.colno}", 2)
