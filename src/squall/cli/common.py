"""What every command shares: options, the client session, error lines and exit codes.

Exit codes: 0 success; 1 the invocation failed or the platform is unreachable; 2 the request
was wrong (bad option, bad input, unknown function) and retrying it unchanged will not help.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from squall.cli.config import ConfigFileError, resolve
from squall.client import DEFAULT_URL, PlatformUnreachable, SquallClient
from squall.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    SquallError,
    Unauthorized,
)

USAGE_ERRORS = (ConfigError, Conflict, InvalidInput, NotFound, PayloadTooLarge)

# Piped output goes to scripts and pagers, not an 80-column terminal: do not squeeze tables.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="SQUALL_URL",
        help=f"Where the platform listens (default: from `squall login`, else {DEFAULT_URL}).",
        show_default=False,
    ),
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="SQUALL_API_KEY",
        help="API key (default: from `squall login`).",
        show_default=False,
        show_envvar=True,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the admin API's JSON.")]


def fail(message: str, code: int) -> NoReturn:
    # Plain print, not Rich: one unwrapped line, and brackets in messages are not markup.
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


def exit_code(error: SquallError) -> int:
    return 2 if isinstance(error, USAGE_ERRORS) else 1


def describe(error: SquallError) -> str:
    if isinstance(error, PlatformUnreachable):
        return error.message
    if isinstance(error, Unauthorized):
        return (
            f"{error.type}: {error.message} (pass --key, set SQUALL_API_KEY"
            " or run `squall login`)"
        )
    return f"{error.type}: {error.message}"


@contextmanager
def session(url: str | None, key: str | None = None) -> Iterator[SquallClient]:
    """A client whose errors end the command with one ``error:`` line and the right exit code.

    ``url`` and ``key`` left unset come from the config file ``squall login`` writes.
    """
    try:
        url, key = resolve(url, key)
    except ConfigFileError as exc:
        fail(str(exc), 2)
    client = SquallClient(url, key=key)
    try:
        yield client
    except SquallError as error:
        trace = error.details.get("traceback")
        if isinstance(trace, str) and trace:
            print(trace.rstrip(), file=sys.stderr)
        fail(describe(error), exit_code(error))
    finally:
        client.close()


def print_json(data: Any, *, compact: bool = False) -> None:
    text = json.dumps(data, ensure_ascii=False) if compact else json.dumps(data, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
