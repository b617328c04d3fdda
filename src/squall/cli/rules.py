"""``squall rules``: list, show, put, delete, enable and disable event rules; list buses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload

rules = typer.Typer(help="Event rules, their targets, and buses.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The rule's name.")]
KINDS = {"function": "function", "bus": "bus", "http": "url", "queue": "queue"}  # kind -> field


@rules.command("list")
def list_(
    bus: Annotated[str | None, typer.Option(help="Only the rules on this bus.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List the rules: name, bus, state, origin, targets and pattern."""
    with session(url, key) as client:
        listed = [rule for rule in client.rules() if bus is None or rule["bus"] == bus]
    if as_json:
        print_json({"rules": listed})
    elif listed:
        console.print(rules_table(listed))
    else:
        console.print("no rules")


@rules.command()
def show(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show one rule, its pattern and its targets in full."""
    with session(url, key) as client:
        rule = client.rule(name)
    if as_json:
        print_json(rule)
        return
    state = "enabled" if rule["enabled"] else "disabled"
    console.print(
        f"{rule['name']}  bus={rule['bus']}  {state}  origin={rule['origin']}", markup=False
    )
    if rule["description"]:
        console.print(rule["description"], markup=False)
    console.print("pattern: " + json.dumps(rule["pattern"], indent=2), markup=False)
    for target in rule["targets"]:
        console.print(f"target {target['id']}: " + json.dumps(target, indent=2), markup=False)


@rules.command()
def put(
    name: NameArg,
    pattern: Annotated[
        str | None,
        typer.Option(
            "--pattern", "-p", help="The event pattern: JSON, @file.json, or - for stdin."
        ),
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Match this event type (added to the pattern).")
    ] = None,
    bus: Annotated[str, typer.Option(help="The bus the rule is on.")] = "default",
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            help=(
                "function:NAME, bus:NAME, http:URL, queue:NAME or a JSON object; repeat for"
                " several."
            ),
            show_default=False,
        ),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option(help="A JSON list of targets (with transforms, retry policies, …)."),
    ] = None,
    description: Annotated[str, typer.Option(help="What the rule is for.")] = "",
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    create: Annotated[
        bool, typer.Option("--create", help="Fail if a rule of this name exists.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Create or replace a rule: its whole pattern and all of its targets."""
    try:
        body = rule_body(name, pattern, event_type, bus, target or [], targets_file)
    except InputError as exc:
        fail(str(exc), 2)
    body.update(description=description, enabled=not disabled)
    with session(url, key) as client:
        if create:
            saved, created = client.create_rule(body), True
        else:
            saved, created = client.put_rule(name, body)
    if as_json:
        print_json(saved)
        return
    verb = "created" if created else "replaced"
    console.print(f"rule {name} {verb}: {_targets(saved['targets'])}", markup=False)


@rules.command()
def delete(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Delete a rule made through the API (the app's own rules are changed in its code)."""
    with session(url, key) as client:
        client.delete_rule(name)
    if as_json:
        print_json({"deleted": name})
    else:
        console.print(f"rule {name} deleted", markup=False)


@rules.command()
def enable(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Enable a rule: it matches events again."""
    _set_enabled(name, True, as_json, url, key)


@rules.command()
def disable(
    name: NameArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Disable a rule: it matches nothing until enabled."""
    _set_enabled(name, False, as_json, url, key)


@rules.command()
def buses(as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None) -> None:
    """List the buses and how many rules are on each."""
    with session(url, key) as client:
        listed = client.buses()
    if as_json:
        print_json({"buses": listed})
        return
    table = Table("bus", "rules", "enabled", box=box.SIMPLE_HEAD)
    for bus in listed:
        table.add_row(escape(bus["name"]), str(bus["rules"]), str(bus["enabled_rules"]))
    console.print(table)


def _set_enabled(name: str, enabled: bool, as_json: bool, url: str | None, key: str | None) -> None:
    with session(url, key) as client:
        rule = client.update_rule(name, {"enabled": enabled})
    if as_json:
        print_json(rule)
    else:
        console.print(f"rule {name} {'enabled' if enabled else 'disabled'}", markup=False)


def rule_body(
    name: str,
    pattern: str | None,
    event_type: str | None,
    bus: str,
    targets: list[str],
    targets_file: Path | None,
) -> dict[str, Any]:
    """The JSON body of ``put``; ``InputError`` names the option that is wrong."""
    full: Any = {}
    if pattern is not None:
        full = json.loads(read_payload(pattern, sys.stdin.buffer, "--pattern"))
        if not isinstance(full, dict):
            raise InputError("--pattern must be a JSON object")
    if event_type is not None:
        if "type" in full:
            raise InputError("give the event type either with --type or in --pattern, not both")
        full["type"] = [event_type]
    if not full:
        raise InputError("a rule needs --pattern or --type")
    listed: list[Any] = []
    if targets_file is not None:
        listed = json.loads(read_payload(f"@{targets_file}", sys.stdin.buffer, "--targets-file"))
        if not isinstance(listed, list):
            raise InputError("--targets-file must hold a JSON list of targets")
    listed += [parse_target(spec, len(listed) + i) for i, spec in enumerate(targets)]
    return {"name": name, "bus": bus, "pattern": full, "targets": listed}


def parse_target(spec: str, index: int) -> dict[str, Any]:
    """``function:NAME``, ``bus:NAME``, ``http:URL``, ``queue:NAME`` or a JSON object, as a
    target object."""
    if spec.lstrip().startswith("{"):
        target = json.loads(read_payload(spec, sys.stdin.buffer, "--target"))
        if not isinstance(target, dict):  # pragma: no cover - '{' opens an object
            raise InputError(f"--target {spec!r} must be a JSON object")
        return target
    kind, _, value = spec.partition(":")
    if kind not in KINDS or not value:
        raise InputError(
            f"--target {spec!r} (targets[{index}]) is not function:NAME, bus:NAME, http:URL,"
            " queue:NAME or a JSON object"
        )
    return {"kind": kind, KINDS[kind]: value}


def rules_table(listed: list[dict[str, Any]]) -> Table:
    table = Table("name", "bus", "state", "origin", "targets", "pattern", box=box.SIMPLE_HEAD)
    for rule in listed:
        table.add_row(
            escape(rule["name"]),
            escape(rule["bus"]),
            "enabled" if rule["enabled"] else "disabled",
            rule["origin"],
            escape(_targets(rule["targets"])),
            escape(json.dumps(rule["pattern"])),
        )
    return table


def _targets(targets: list[dict[str, Any]]) -> str:
    shown = [f"{t['kind']}:{t.get(KINDS.get(t['kind'], 'id'))}" for t in targets]
    return ", ".join(shown) or "no targets"
