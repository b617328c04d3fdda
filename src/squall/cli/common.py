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

from squall.client import PlatformUnreachable, SquallClient
from squall.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    SquallError,
)

USAGE_ERRORS = (ConfigError, Conflict, InvalidInput, NotFound, PayloadTooLarge)

# Piped output goes to scripts and pagers, not an 80-column terminal: do not squeeze tables.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="SQUALL_URL", help="Where the platform listens.", show_default=True
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
    return f"{error.type}: {error.message}"


@contextmanager
def session(url: str) -> Iterator[SquallClient]:
    """A client whose errors end the command with one ``error:`` line and the right exit code."""
    client = SquallClient(url)
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
