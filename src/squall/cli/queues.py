"""``squall queues``: create queues, send and receive messages, purge, redrive dead letters."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload

queues = typer.Typer(
    help="Queues: send, receive, purge and redrive messages.", no_args_is_help=True
)

NameArgument = Annotated[str, typer.Argument(help="The queue's name.")]


@queues.command("ls")
def list_(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the queues with their visible, in-flight and delayed messages."""
    with session(url, key) as client:
        listed = client.queues()
    if as_json:
        print_json({"queues": listed})
    elif not listed:
        console.print("no queues")
    else:
        console.print(_table(listed))


@queues.command()
def show(
    name: NameArgument, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show one queue: its settings, depth, in-flight count and oldest message's age."""
    with session(url, key) as client:
        found = client.queue(name)
    if as_json:
        print_json(found)
    else:
        console.print(_table([found]))


@queues.command()
def create(
    name: NameArgument,
    fifo: Annotated[bool, typer.Option("--fifo", help="Strict order per message group.")] = False,
    visibility_timeout: Annotated[
        int | None, typer.Option("--visibility-timeout", help="Seconds a received message hides.")
    ] = None,
    retention: Annotated[
        int | None, typer.Option("--retention", help="Seconds a message is kept (60-1209600).")
    ] = None,
    delay: Annotated[
        int | None, typer.Option("--delay", help="Seconds before a new message is visible.")
    ] = None,
    max_receive: Annotated[
        int | None, typer.Option("--max-receive", help="Receives before the dead-letter queue.")
    ] = None,
    dead_letter: Annotated[
        str | None, typer.Option("--dead-letter", help="The dead-letter queue (exists already).")
    ] = None,
    content_dedup: Annotated[
        bool, typer.Option("--content-dedup", help="FIFO: dedup by the body's hash.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create a queue, kept by the platform across restarts."""
    with session(url, key) as client:
        created = client.create_queue(
            name,
            fifo=fifo or None,
            visibility_timeout_s=visibility_timeout,
            retention_s=retention,
            delay_s=delay,
            max_receive=max_receive,
            dead_letter=dead_letter,
            content_based_dedup=content_dedup or None,
        )
    if as_json:
        print_json(created)
    else:
        kind = "FIFO queue" if created["fifo"] else "queue"
        console.print(f"created {kind} {created['name']}", markup=False)


@queues.command()
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete a queue made through the API or CLI, and every message it holds."""
    _confirm(yes, f"delete queue {name!r} and its messages")
    with session(url, key) as client:
        client.delete_queue(name)
    console.print(f"deleted queue {name}", markup=False)


@queues.command()
def send(
    name: NameArgument,
    data: Annotated[
        str, typer.Option("--data", "-d", help="The body: JSON, @file or - for stdin.")
    ] = "null",
    group: Annotated[
        str | None, typer.Option("--group", help="Message group (FIFO queues).")
    ] = None,
    dedup: Annotated[
        str | None, typer.Option("--dedup", help="Dedup id (FIFO queues, 5 minutes).")
    ] = None,
    delay: Annotated[int | None, typer.Option("--delay", help="Seconds (0-900).")] = None,
    attribute: Annotated[
        list[str] | None, typer.Option("--attribute", "-a", help="NAME=VALUE, repeatable.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Send a message; prints its id once the platform has committed it."""
    try:
        body = json.loads(read_payload(data, sys.stdin.buffer))
    except InputError as exc:
        fail(str(exc), 2)
    attributes = dict(_attribute(a) for a in attribute or [])
    with session(url, key) as client:
        sent = client.send_message(
            name,
            body,
            attributes=attributes or None,
            delay_s=delay,
            group_id=group,
            dedup_id=dedup,
        )
    if as_json:
        print_json(sent)
    else:
        note = " (duplicate: not queued again)" if sent["duplicate"] else ""
        console.print(f"{sent['id']}{note}", markup=False)


@queues.command()
def receive(
    name: NameArgument,
    max_messages: Annotated[int, typer.Option("--max", "-n", help="At most (1-10).")] = 1,
    wait: Annotated[float, typer.Option("--wait", help="Long polling: seconds (0-20).")] = 0,
    visibility: Annotated[
        int | None, typer.Option("--visibility", help="Seconds the messages hide (default: the"
                                 " queue's visibility timeout).")
    ] = None,
    delete: Annotated[
        bool, typer.Option("--delete", help="Delete each message once printed.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Receive messages (with their receipts); they hide until deleted or the timeout ends."""
    with session(url, key) as client:
        messages = client.receive_messages(
            name, max_messages=max_messages, wait_s=wait, visibility_s=visibility
        )
        if delete:
            for message in messages:
                client.delete_message(name, message["receipt"])
    if as_json:
        print_json({"messages": messages})
        return
    if not messages:
        console.print("no messages")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("id", "body", "group", "receives", "receipt"):
        table.add_column(column)
    for m in messages:
        table.add_row(
            m["id"],
            json.dumps(m["body"]),
            m["group_id"] or "",
            str(m["receive_count"]),
            "(deleted)" if delete else m["receipt"],
        )
    console.print(table)


@queues.command("delete-message")
def delete_message(
    name: NameArgument,
    receipt: Annotated[str, typer.Argument(help="The receipt of the latest receive.")],
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete a received message by its receipt."""
    with session(url, key) as client:
        client.delete_message(name, receipt)
    console.print("deleted")


@queues.command()
def purge(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Delete every message of a queue."""
    _confirm(yes, f"purge every message of queue {name!r}")
    with session(url, key) as client:
        client.purge_queue(name)
    console.print(f"purged queue {name}", markup=False)


@queues.command()
def redrive(
    name: Annotated[str, typer.Argument(help="The dead-letter queue.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Move a dead-letter queue's messages back to the queues they came from."""
    with session(url, key) as client:
        moved = client.redrive_queue(name)
    if as_json:
        print_json(moved)
        return
    parts = ", ".join(f"{n} to {q}" for q, n in sorted(moved["moved"].items()))
    console.print(f"moved {moved['total']} messages" + (f" ({parts})" if parts else ""),
                  markup=False)


def _confirm(yes: bool, what: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"this would {what}: pass --yes", 2)
    typer.confirm(f"Really {what}?", abort=True)


def _attribute(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name:
        fail(f"--attribute {spec!r} is not NAME=VALUE", 2)
    return name, value


def _table(listed: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("name", "kind", "visible", "in flight", "delayed", "oldest", "dead letter"):
        table.add_column(column)
    for q in listed:
        age = q["oldest_age_s"]
        table.add_row(
            q["name"],
            "fifo" if q["fifo"] else "standard",
            str(q["visible"]),
            str(q["in_flight"]),
            str(q["delayed"]),
            "" if age is None else f"{age:.1f}s",
            f"{q['dead_letter']} after {q['max_receive']}" if q["dead_letter"] else "",
        )
    return table
