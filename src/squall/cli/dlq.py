"""``squall dlq``: list, redrive and purge dead-lettered async invocations."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from squall.cli.common import (
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    fail,
    print_json,
    session,
)
from squall.cli.render import dead_letters_table

dlq = typer.Typer(
    help="Dead letters: async invocations that ran out of retries.", no_args_is_help=True
)

FunctionArg = Annotated[
    str | None, typer.Argument(metavar="NAME", help="Only this function's dead letters.")
]
IdsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--id", metavar="ID", help="Only this dead letter (repeat for several).", show_default=False
    ),
]


@dlq.command("list")
def list_(
    name: FunctionArg = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List dead letters, oldest first as the platform returns them."""
    with session(url, key) as client:
        letters = client.dead_letters(name, limit=limit)
    if as_json:
        print_json({"dead_letters": letters})
    elif letters:
        console.print(dead_letters_table(letters))
    else:
        console.print("no dead letters")


@dlq.command()
def redrive(
    name: FunctionArg = None,
    ids: IdsOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Queue dead letters again as fresh async invocations (all of them unless narrowed)."""
    with session(url, key) as client:
        redriven = client.redrive(name, ids or None)
    if as_json:
        print_json({"redriven": redriven})
        return
    console.print(f"redriven {len(redriven)} dead letter(s)")
    for invocation_id in redriven:
        console.print(f"  {invocation_id}")


@dlq.command()
def purge(
    name: FunctionArg = None,
    ids: IdsOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete dead letters for good (all of them unless narrowed by NAME or --id)."""
    if not yes:
        scope = f"of function {name!r}" if name else "of every function"
        what = f"{len(ids)} dead letter(s)" if ids else f"all dead letters {scope}"
        if not sys.stdin.isatty():
            fail(f"purge would delete {what}: pass --yes to confirm", 2)
        typer.confirm(f"Delete {what}?", abort=True)
    with session(url, key) as client:
        purged = client.purge(name, ids or None)
    if as_json:
        print_json({"purged": purged})
    else:
        console.print(f"purged {purged} dead letter(s)")
