"""``squall keys`` (create, ls, revoke) and ``squall login``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from squall.cli import config
from squall.cli.common import (
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    describe,
    fail,
    print_json,
    session,
)
from squall.cli.render import clock
from squall.client import DEFAULT_URL, PlatformUnreachable, SquallClient
from squall.errors import Forbidden, InvalidInput, SquallError
from squall.security.keys import SCOPES, parse_scopes

keys = typer.Typer(help="API keys: create, list and revoke (admin scope).", no_args_is_help=True)


@keys.command()
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for, e.g. ci.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"Comma-separated scopes ({','.join(SCOPES)}); repeatable."),
    ],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a key and print it: on stdout, alone, this once and never again."""
    try:
        scopes = list(parse_scopes(",".join(scope), "--scope"))
    except InvalidInput as exc:
        fail(exc.message, 2)
    with session(url, key) as client:
        created = client.create_key(name, scopes)
    if as_json:
        print_json(created)
        return
    print(
        f"created {created['id']} ({created['name']}) with scopes {','.join(created['scopes'])};"
        " store the key now, it is not shown again:",
        file=sys.stderr,
    )
    print(created["key"], flush=True)


@keys.command("ls")
def list_keys(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List keys: id, name, visible prefix, scopes, times (never the keys themselves)."""
    with session(url, key) as client:
        rows = client.keys()
    if as_json:
        print_json({"keys": rows})
        return
    table = Table(
        "id", "name", "prefix", "scopes", "created", "last used", "revoked", box=box.SIMPLE_HEAD
    )
    for row in rows:
        table.add_row(
            row["id"],
            escape(row["name"]),
            escape(row["prefix"]) + "…",
            ",".join(row["scopes"]),
            clock(row.get("created_at"), date=True),
            clock(row.get("last_used_at"), date=True),
            clock(row.get("revoked_at"), date=True),
        )
    console.print(table)


@keys.command()
def revoke(
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id from `squall keys ls`.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Revoke a key for good: requests carrying it get 401 from now on."""
    with session(url, key) as client:
        revoked = client.revoke_key(key_id)
    if as_json:
        print_json(revoked)
    else:
        console.print(f"revoked {revoked['id']} ({escape(revoked['name'])})")


def login(url: UrlOption = None, key: KeyOption = None) -> None:
    """Check a key against the platform and save URL and key for later commands (mode 0600)."""
    url = url or DEFAULT_URL
    if not key:
        if sys.stdin.isatty():
            key = typer.prompt("API key", hide_input=True)
        else:
            key = sys.stdin.readline().strip()
    if not key:
        fail("no API key given: pass --key, set SQUALL_API_KEY or type it at the prompt", 2)
    with SquallClient(url, key=key) as client:
        try:
            client.functions()
        except Forbidden:  # a 403 proves the key is valid; it only lacks the read scope
            console.print("note: this key is valid but has no read scope", soft_wrap=True)
        except (PlatformUnreachable, SquallError) as exc:
            fail(describe(exc), 1)
    path = config.save(url, key)
    console.print(f"logged in to {url}; key saved in {path}", soft_wrap=True)
