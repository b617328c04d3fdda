"""``squall deploy|plan|versions|alias|rollback|deployments|canaries``: ship code to a
running platform and steer which version serves."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, console, fail, print_json, session
from squall.engine.deploy.bundle import pack
from squall.errors import SquallError

alias = typer.Typer(
    help="Aliases: names (live, beta, …) pointing at a function version or a weighted split.",
    no_args_is_help=True,
)

AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app file (app.py, squall.yaml).")]
FunctionArg = Annotated[str, typer.Argument(metavar="FUNCTION", help="The function's name.")]
AliasArg = Annotated[str, typer.Argument(metavar="ALIAS", help="The alias's name (live, beta).")]
ToOption = Annotated[
    str | None,
    typer.Option(
        "--to",
        "--url",
        envvar="SQUALL_URL",
        help="The platform to deploy to (default: from `squall login`, else local).",
        show_default=False,
    ),
]
PruneOption = Annotated[
    bool,
    typer.Option("--prune", help="Also remove what the app no longer declares (kept by default)."),
]
ACTION_STYLE = {"add": "green", "change": "yellow", "remove": "red", "keep": "dim"}


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_plan(plan: dict[str, Any]) -> None:
    if plan["empty"]:
        console.print("no changes: the platform already runs this code and config")
        return
    table = Table("", "kind", "name", box=box.SIMPLE_HEAD)
    for change in plan["changes"]:
        action = change["action"]
        style = ACTION_STYLE.get(action, "")
        note = " (gone from the app; --prune removes it)" if action == "keep" else ""
        table.add_row(f"[{style}]{action}[/]", change["kind"], change["name"] + note)
    if plan["changes"]:
        console.print(table)
    for function, number in sorted(plan["new_versions"].items()):
        console.print(f"function {function}: new version {number}")
    if plan["settings_changed"]:
        console.print("app settings change")


def _upload(
    app_ref: str,
    url: str | None,
    key: str | None,
    *,
    prune: bool,
    dry_run: bool,
    canary: dict[str, str] | None = None,
) -> dict[str, Any]:
    with console.status("packing the app's directory…"):
        try:
            bundle, inside = pack(app_ref)
        except SquallError as exc:
            fail(exc.message, 2)
    with session(url, key) as client, console.status(
        f"{'planning' if dry_run else 'deploying'} ({len(bundle) / 1024:.0f} KiB bundle)…"
    ):
        return client.deploy(
            bundle, inside, prune=prune, dry_run=dry_run, canary=canary,
            deployer=getpass.getuser(),
        )


def deploy(
    app_ref: AppArg,
    url: ToOption = None,
    key: KeyOption = None,
    prune: PruneOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing (as `squall plan`).")
    ] = False,
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary",
            help="Send this share of each changed function's traffic to its new version"
            " first (10%), through the `live` alias.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        str, typer.Option("--for", help="How long the canary shifts traffic (30s, 10m, 1h).")
    ] = "10m",
    steps: Annotated[
        int, typer.Option(min=1, max=100, help="Steps from the canary share to all traffic.")
    ] = 1,
    rollback_on: Annotated[
        str,
        typer.Option(
            "--rollback-on", help="Roll the canary back when this fires: error_rate>2%, p99_ms>800."
        ),
    ] = "error_rate>2%",
    as_json: JsonOption = False,
) -> None:
    """Upload APP's directory to a running platform and swap it in (a new version of every
    function whose code or config changed); what the app no longer declares is kept unless
    --prune."""
    options = None
    if canary is not None:
        options = {
            "canary": canary, "for": duration, "steps": str(steps), "rollback_on": rollback_on
        }
    result = _upload(app_ref, url, key, prune=prune, dry_run=dry_run, canary=options)
    if as_json:
        print_json(result)
        return
    _print_plan(result["plan"])
    if result["applied"]:
        console.print(f"deployed: deployment {result['deployment']}, bundle {result['bundle']}")
        for item in result["canaries"]:
            console.print(
                f"canary: {item['function']} {item['start_weight']}% to version"
                f" {item['canary']} (from {item['primary']}) for {item['duration_s']:g} s,"
                f" rolled back on {', '.join(_rule(r) for r in item['rollback_on'])}"
            )
    elif not result["plan"]["empty"]:
        console.print("dry run: nothing changed")


def _rule(rule: dict[str, Any]) -> str:
    if rule["metric"] == "error_rate":
        return f"error_rate>{rule['threshold'] * 100:g}%"
    return f"{rule['metric']}>{rule['threshold']:g}"


def plan(
    app_ref: AppArg,
    url: ToOption = None,
    key: KeyOption = None,
    prune: PruneOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show what deploying APP would add, change and remove, without changing anything."""
    result = _upload(app_ref, url, key, prune=prune, dry_run=True)
    if as_json:
        print_json(result["plan"])
        return
    _print_plan(result["plan"])


def versions(
    function: FunctionArg,
    as_json: JsonOption = False,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """List FUNCTION's versions with their hash, deploy time and who deployed them."""
    with session(url, key) as client:
        listed = client.versions(function)
        aliases = client.aliases(function)
    if as_json:
        print_json({**listed, "aliases": aliases})
        return
    table = Table("version", "hash", "bundle", "deployed (UTC)", "by", "", box=box.SIMPLE_HEAD)
    pointing: dict[int, list[str]] = {}
    for item in aliases:
        pointing.setdefault(item["version"], []).append(item["name"])
        if item["canary"] is not None and item["weight"]:
            pointing.setdefault(item["canary"], []).append(f"{item['name']} {item['weight']}%")
    for item in listed["versions"]:
        marks = pointing.get(item["version"], [])
        if item["version"] == listed["serving"]:
            marks = ["deployed", *marks]
        table.add_row(
            str(item["version"]), item["hash"][:12], item["bundle"][:12],
            _time(item["deployed_at"]), item["deployed_by"], ", ".join(marks),
        )
    console.print(table)


@alias.command("set")
def set_alias(
    function: FunctionArg,
    name: AliasArg,
    version: Annotated[int, typer.Option("--version", min=1, help="The version it names.")],
    canary: Annotated[
        int | None,
        typer.Option("--canary", min=1, help="A second version taking --weight percent."),
    ] = None,
    weight: Annotated[
        int, typer.Option("--weight", min=0, max=100, help="The canary's share, percent.")
    ] = 0,
    as_json: JsonOption = False,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """Point alias NAME of FUNCTION at a version (blue/green: one switch), or split it."""
    with session(url, key) as client:
        result = client.set_alias(function, name, version, canary, weight)
    if as_json:
        print_json(result)
        return
    console.print(_describe_alias(result))


def _describe_alias(item: dict[str, Any]) -> str:
    target = f"version {item['version']}"
    if item["canary"] is not None and item["weight"]:
        target = (
            f"version {item['version']} ({100 - item['weight']}%) +"
            f" version {item['canary']} ({item['weight']}%)"
        )
    return f"{item['function']}:{item['name']} -> {target}"


@alias.command("ls")
def list_aliases(
    function: FunctionArg,
    as_json: JsonOption = False,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """List FUNCTION's aliases."""
    with session(url, key) as client:
        listed = client.aliases(function)
    if as_json:
        print_json({"aliases": listed})
        return
    if not listed:
        console.print(f"{function} has no aliases: calls go to its newest version")
    for item in listed:
        console.print(_describe_alias(item))


@alias.command("rm")
def remove_alias(
    function: FunctionArg,
    name: AliasArg,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """Remove alias NAME of FUNCTION."""
    with session(url, key) as client:
        client.delete_alias(function, name)
    console.print(f"removed {function}:{name}")


def rollback(
    function: FunctionArg,
    name: Annotated[str, typer.Option("--alias", help="The alias to roll back.")] = "live",
    as_json: JsonOption = False,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """Point FUNCTION's alias back at the version before (a running canary: at its primary)."""
    with session(url, key) as client:
        result = client.rollback(function, name)
    if as_json:
        print_json(result)
        return
    console.print(f"rolled back: {_describe_alias(result)}")


def deployments(
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
    url: ToOption = None,
    key: KeyOption = None,
) -> None:
    """List deployments, newest first, with the versions each served."""
    with session(url, key) as client:
        listed = client.deployments(limit)
        canaries = client.canaries()
    if as_json:
        print_json({"deployments": listed, "canaries": canaries})
        return
    table = Table("#", "deployed (UTC)", "by", "bundle", "versions", box=box.SIMPLE_HEAD)
    for item in listed:
        served = ", ".join(f"{fn}:{n}" for fn, n in sorted(item["versions"].items()))
        table.add_row(
            str(item["seq"]), _time(item["deployed_at"]), item["deployed_by"],
            item["bundle"][:12], served,
        )
    console.print(table)
    for item in canaries:
        console.print(
            f"canary {item['function']}: {item['primary']} -> {item['canary']}"
            f" {item['status']}{': ' + item['reason'] if item['reason'] else ''}"
        )
