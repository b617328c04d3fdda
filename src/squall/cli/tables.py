"""``squall tables``: list, create, show and delete tables; get, put, delete, query and
scan items."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload

tables = typer.Typer(help="Tables: key-value and document items.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The table's name.")]
PartitionArgument = Annotated[str, typer.Argument(help="The partition key's value.")]
SortOption = Annotated[
    str | None, typer.Option("--sort", "-s", help="The sort key's value (if the table has one).")
]
VersionOption = Annotated[
    int | None,
    typer.Option("--if-version", min=0, help="Only if the item is at this version (0: absent)."),
]


@tables.command("list")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the tables: keys, indexes, TTL attribute, change stream and items kept."""
    with session(url, key) as client:
        listed = client.tables()
    if as_json:
        print_json({"tables": listed})
        return
    if not listed:
        console.print("no tables")
        return
    table = Table("name", "partition key", "sort key", "indexes", "ttl", "stream", "items",
                  box=box.SIMPLE_HEAD)
    for row in listed:
        table.add_row(
            row["name"], row["partition_key"], row["sort_key"] or "-",
            ", ".join(i["name"] for i in row["indexes"]) or "-", row["ttl_attribute"] or "-",
            row["stream"] or "-", str(row["items"]),
        )
    console.print(table)


@tables.command()
def create(
    name: NameArgument,
    partition_key: Annotated[str, typer.Option("--partition-key", "-p", help="Partition key.")],
    sort_key: Annotated[str | None, typer.Option("--sort-key", help="Sort key.")] = None,
    key_type: Annotated[
        list[str] | None,
        typer.Option("--key-type", help="ATTRIBUTE=S|N, the type of a key attribute (default S)."),
    ] = None,
    index: Annotated[
        list[str] | None,
        typer.Option("--index", help="NAME=PARTITION[:SORT], a secondary index."),
    ] = None,
    ttl_attribute: Annotated[
        str | None, typer.Option("--ttl-attribute", help="Attribute holding expiry epoch seconds.")
    ] = None,
    stream: Annotated[
        str | None, typer.Option(help="Change stream images: new_and_old, new, old or keys.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a table (the app's own are declared in its code)."""
    body: dict[str, Any] = {"name": name, "partition_key": partition_key}
    if sort_key is not None:
        body["sort_key"] = sort_key
    if key_type:
        body["key_types"] = dict(_pair(spec, "--key-type", "ATTRIBUTE=S|N") for spec in key_type)
    if index:
        indexes: dict[str, dict[str, str]] = {}
        for spec in index:
            index_name, keys = _pair(spec, "--index", "NAME=PARTITION[:SORT]")
            partition, _, sort = keys.partition(":")
            indexes[index_name] = {"partition_key": partition, **({"sort_key": sort} if sort
                                                                  else {})}
        body["indexes"] = indexes
    if ttl_attribute is not None:
        body["ttl_attribute"] = ttl_attribute
    if stream is not None:
        body["stream"] = stream
    with session(url, key) as client:
        created = client.create_table(body)
    if as_json:
        print_json(created)
    else:
        console.print(f"table {created['name']}: partition key {created['partition_key']}",
                      markup=False)


@tables.command()
def show(
    name: NameArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show a table's keys, indexes and item count."""
    with session(url, key) as client:
        found = client.table(name)
    if as_json:
        print_json(found)
        return
    for field in ("name", "partition_key", "sort_key", "key_types", "ttl_attribute", "stream",
                  "items", "declared_by"):
        console.print(f"{field}: {found[field]}", markup=False)
    for row in found["indexes"]:
        console.print(f"index {row['name']}: {row['partition_key']} / {row['sort_key'] or '-'}",
                      markup=False)


@tables.command()
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete a table made through the API, with its items."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"delete would remove table {name!r} and its items: pass --yes", 2)
        typer.confirm(f"Delete table {name!r} and its items?", abort=True)
    with session(url, key) as client:
        client.delete_table(name)
    console.print(f"deleted table {name}", markup=False)


@tables.command()
def get(
    name: NameArgument,
    partition: PartitionArgument,
    sort: SortOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Print one item as JSON (with its _version)."""
    with session(url, key) as client:
        item = client.get_item(name, partition, sort)
    print_json(item)


@tables.command()
def put(
    name: NameArgument,
    item: Annotated[str, typer.Argument(help="The item: a JSON object, @file or - for stdin.")],
    if_not_exists: Annotated[
        bool, typer.Option("--if-not-exists", help="Only if no item has its key.")
    ] = False,
    if_version: VersionOption = None,
    condition: Annotated[
        str | None,
        typer.Option("--condition", help='Attribute tests, e.g. {"status": {"eq": "open"}}.'),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Write a whole item; prints its new version."""
    body: dict[str, Any] = {"item": _json_arg(item, "ITEM"), "if_not_exists": if_not_exists}
    if not isinstance(body["item"], dict):
        fail("ITEM must be a JSON object", 2)
    if if_version is not None:
        body["if_version"] = if_version
    if condition is not None:
        body["condition"] = _json_arg(condition, "--condition")
    with session(url, key) as client:
        stored = client.put_item(name, body)
    if as_json:
        print_json(stored)
    else:
        console.print(f"version {stored['_version']}", markup=False)


@tables.command("delete-item")
def delete_item(
    name: NameArgument,
    partition: PartitionArgument,
    sort: SortOption = None,
    if_version: VersionOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete one item."""
    with session(url, key) as client:
        deleted = client.delete_item(name, partition, sort, if_version)
    if as_json:
        print_json(deleted)
    else:
        console.print("deleted" if deleted["old"] is not None else "no such item", markup=False)


@tables.command()
def query(
    name: NameArgument,
    partition: PartitionArgument,
    index: Annotated[str | None, typer.Option("--index", "-i", help="Query this index.")] = None,
    sort: Annotated[
        str | None,
        typer.Option("--sort", "-s", help='A sort condition as JSON: ["gte", 5] or'
                     ' ["between", 1, 9].'),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 100,
    cursor: Annotated[str | None, typer.Option(help="The previous page's cursor.")] = None,
    descending: Annotated[bool, typer.Option("--descending", help="Highest first.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """One partition's items in sort order."""
    body: dict[str, Any] = {"limit": limit, "descending": descending}
    if index is not None:
        body["index"] = index
    if sort is not None:
        body["sort"] = _json_arg(sort, "--sort")
    if cursor is not None:
        body["cursor"] = cursor
    with session(url, key) as client:
        config = client.table(name)
        attribute = config["partition_key"]
        for found in config["indexes"]:
            if found["name"] == index:
                attribute = found["partition_key"]
        body["partition"] = _typed(partition, config["key_types"].get(attribute, "S"))
        page = client.query_table(name, body)
    _page(page, as_json)


@tables.command()
def scan(
    name: NameArgument,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Page size.")] = 100,
    cursor: Annotated[str | None, typer.Option(help="The previous page's cursor.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Every item, a page at a time, in key order."""
    with session(url, key) as client:
        page = client.scan_table(name, limit=limit, cursor=cursor)
    _page(page, as_json)


def _page(page: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(page)
        return
    for item in page["items"]:
        print(json.dumps(item), flush=True)
    if page["cursor"] is not None:
        console.print(f"next: --cursor {page['cursor']}", markup=False)


def _pair(spec: str, option: str, shape: str) -> tuple[str, str]:
    left, sep, right = spec.partition("=")
    if not sep or not left or not right:
        fail(f"{option} must be {shape}, got {spec!r}", 2)
    return left, right


def _json_arg(spec: str, option: str) -> Any:
    try:
        return json.loads(read_payload(spec, sys.stdin.buffer, option))
    except InputError as exc:
        fail(str(exc), 2)


def _typed(value: str, kind: str) -> Any:
    if kind != "N":
        return value
    try:
        number = float(value)
    except ValueError:
        fail(f"PARTITION must be a number for this key (type 'N'), got {value!r}", 2)
    return int(number) if number.is_integer() else number
