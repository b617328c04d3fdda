"""``squall streams``: list, show, create and delete streams, put records, read a shard."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload
from squall.cli.render import clock

streams = typer.Typer(help="Streams: partitioned, ordered logs of records.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The stream's name.")]


@streams.command("ls")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the streams: shards, records kept, retention and consumer lag."""
    with session(url, key) as client:
        listed = client.streams()
    if as_json:
        print_json({"streams": listed})
        return
    if not listed:
        console.print("no streams")
        return
    table = Table("name", "shards", "records", "retention", "consumers", "behind",
                  box=box.SIMPLE_HEAD)
    for row in listed:
        consumers = sorted({c["function"] for c in row["consumers"]})
        table.add_row(
            row["name"], str(row["shards"]),
            str(sum(s["records"] for s in row["shard_details"])), f"{row['retention_s']}s",
            ", ".join(consumers) or "-", str(sum(c["behind"] for c in row["consumers"])),
        )
    console.print(table)


@streams.command()
def create(
    name: NameArgument,
    shards: Annotated[int, typer.Option(min=1, max=64, help="Shards: fixed once created.")] = 1,
    retention_s: Annotated[
        int,
        typer.Option("--retention-s", min=60, max=365 * 86400, help="Seconds records are kept."),
    ] = 86400,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a stream (the app's own are declared in its code)."""
    with session(url, key) as client:
        created = client.create_stream(name, shards=shards, retention_s=retention_s)
    if as_json:
        print_json(created)
    else:
        console.print(f"stream {created['name']}: {created['shards']} shards, records kept"
                      f" {created['retention_s']}s", markup=False)


@streams.command()
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete a stream made through the API, with its records."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"delete would remove stream {name!r} and its records: pass --yes", 2)
        typer.confirm(f"Delete stream {name!r} and its records?", abort=True)
    with session(url, key) as client:
        client.delete_stream(name)
    console.print(f"deleted stream {name}", markup=False)


@streams.command()
def show(
    name: NameArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show a stream's shards (first and last sequence) and each consumer's lag per shard."""
    with session(url, key) as client:
        found = client.stream(name)
    if as_json:
        print_json(found)
        return
    console.print(f"stream {found['name']}: {found['shards']} shards, records kept"
                  f" {found['retention_s']}s", markup=False)
    shards = Table("shard", "records", "first", "last", box=box.SIMPLE_HEAD)
    for row in found["shard_details"]:
        shards.add_row(str(row["shard"]), str(row["records"]), _seq(row["first_sequence"]),
                       _seq(row["last_sequence"]))
    console.print(shards)
    if found["consumers"]:
        lag = Table("consumer", "shard", "checkpoint", "behind", "oldest unprocessed",
                    box=box.SIMPLE_HEAD)
        for row in found["consumers"]:
            age = row["oldest_unprocessed_age_s"]
            lag.add_row(row["function"], str(row["shard"]), str(row["checkpoint"]),
                        str(row["behind"]), "-" if age is None else f"{age:.1f}s ago")
        console.print(lag)


@streams.command()
def put(
    name: NameArgument,
    partition_key: Annotated[
        str, typer.Option("--partition-key", "-p", help="The partition key: it picks the shard.")
    ],
    data: Annotated[
        str, typer.Option("--data", "-d", help="The record's data: JSON, @file or - for stdin.")
    ] = "null",
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Append a record; prints its shard and sequence number."""
    if not partition_key or len(partition_key) > 256:
        fail(f"--partition-key must be 1-256 characters, got {len(partition_key)}", 2)
    try:
        value = json.loads(read_payload(data, sys.stdin.buffer))
    except InputError as exc:
        fail(str(exc), 2)
    with session(url, key) as client:
        [result] = client.put_records(name, [{"data": value, "partition_key": partition_key}])
    if as_json:
        print_json(result)
    else:
        console.print(f"shard {result['shard']} sequence {result['sequence']}", markup=False)


@streams.command()
def read(
    name: NameArgument,
    shard: Annotated[int, typer.Option("--shard", "-s", min=0, help="The shard to read.")] = 0,
    after: Annotated[
        int, typer.Option(min=0, help="Only records with a higher sequence number.")
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Read a shard's records in sequence order, from after a sequence number."""
    with session(url, key) as client:
        page = client.read_records(name, shard, after=after, limit=limit)
    if as_json:
        print_json(page)
        return
    table = Table("sequence", "partition key", "arrived", "data", box=box.SIMPLE_HEAD)
    for row in page["records"]:
        table.add_row(str(row["sequence"]), row["partition_key"],
                      clock(row["arrival_time"], date=True), json.dumps(row["data"])[:120])
    console.print(table)
    console.print(f"next: --after {page['next_after']}", markup=False)


def _seq(value: Any) -> str:
    return "-" if value is None else str(value)
