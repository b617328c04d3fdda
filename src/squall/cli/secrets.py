"""``squall secrets``: set, ls, rm. Values go in from stdin, a file or a hidden prompt, and
never come back out: no command prints one, and none takes one as an argument (it would
land in shell history and ``ps``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.render import clock
from squall.errors import ConfigError
from squall.model.stages import check_stage_name, scoped_secret

secrets = typer.Typer(
    help="Secrets: encrypted values functions declare (admin scope).", no_args_is_help=True
)


def _strip_newline(value: str) -> str:
    # `echo value | squall secrets set X` and editors add one line ending; keep the rest.
    return value.removesuffix("\n").removesuffix("\r")


def read_value(value_file: Path | None) -> str:
    if value_file is not None:
        try:
            return _strip_newline(value_file.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            fail(f"cannot read --value-file '{value_file}': {reason}", 2)
    if not sys.stdin.isatty():
        return _strip_newline(sys.stdin.read())
    value: str = typer.prompt("Value", hide_input=True, confirmation_prompt=True)
    return value


@secrets.command("set")
def set_(
    name: Annotated[str, typer.Argument(help="Secret name, e.g. DB_PASSWORD.")],
    value_file: Annotated[
        Path | None, typer.Option("--value-file", help="Read the value from this file.")
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage",
            help="Only for this stage: stored as STAGE__NAME, which that stage's functions"
            " see as NAME.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Set a secret from stdin when piped, else from a hidden prompt (or --value-file)."""
    if stage is not None:
        try:
            name = scoped_secret(check_stage_name(stage), name)
        except ConfigError as exc:
            fail(exc.message, 2)
    value = read_value(value_file)
    if not value:
        fail("the secret's value is empty", 2)
    with session(url, key) as client:
        info = client.set_secret(name, value)
    console.print(f"secret {info['name']} set")


@secrets.command("ls")
def list_secrets(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List secrets' names and times (never their values)."""
    with session(url, key) as client:
        rows = client.secrets()
    if as_json:
        print_json({"secrets": rows})
        return
    table = Table("name", "created", "updated", box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(
            row["name"], clock(row["created_at"], date=True), clock(row["updated_at"], date=True)
        )
    console.print(table)


@secrets.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="Secret name.")],
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete a secret."""
    with session(url, key) as client:
        client.delete_secret(name)
    console.print(f"secret {name} deleted")
