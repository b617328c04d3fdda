"""``squall workflows``: start runs, list them, show one with its step timeline, cancel."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from squall.cli.common import JsonOption, KeyOption, UrlOption, console, fail, print_json, session
from squall.cli.parsing import InputError, read_payload
from squall.model.workflows import WORKFLOW_ID_RE, RunStatus

workflows = typer.Typer(
    help="Durable code workflows: start runs, follow their steps, cancel them.",
    no_args_is_help=True,
)

RunArg = Annotated[str, typer.Argument(metavar="ID", help="The workflow run's id.")]
STATUSES = ", ".join(s.value for s in RunStatus)


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


@workflows.command()
def start(
    name: Annotated[str, typer.Argument(metavar="WORKFLOW", help="The workflow to run.")],
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="The input: JSON, @file.json, or - for stdin."),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option("--id", help="The run's id, its idempotency key (default: a new one)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Start a run of WORKFLOW; starting an id that exists shows that run."""
    value: Any = None
    if input is not None:
        try:
            value = json.loads(read_payload(input, sys.stdin.buffer, "--input"))
        except InputError as exc:
            fail(str(exc), 2)
    if run_id is not None and not WORKFLOW_ID_RE.match(run_id):
        fail(f"--id {run_id!r} must be 1-128 letters, digits or ._:@- characters", 2)
    with session(url, key) as client:
        run, created = client.start_workflow(name, value, run_id)
    if as_json:
        print_json(run)
        return
    verb = "started" if created else "exists already:"
    console.print(f"{verb} {run['workflow']} run {run['id']} ({run['status']})", markup=False)


@workflows.command("ls")
def list_(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only runs of this workflow.")
    ] = None,
    status: Annotated[str | None, typer.Option(help=f"Only runs in this status ({STATUSES}).")]
    = None,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=1000, help="How many.")]
    = 50,
    cursor: Annotated[
        str | None, typer.Option(help="Show the page after this run id (next_cursor).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List workflow runs, newest first."""
    if status is not None and status not in RunStatus.__members__.values():
        fail(f"--status {status!r} is not one of {STATUSES}", 2)
    with session(url, key) as client:
        page = client.workflow_runs(workflow, status, limit, cursor)
    if as_json:
        print_json(page)
        return
    if not page["runs"]:
        console.print("no workflow runs")
        return
    table = Table("id", "workflow", "status", "created", "updated", "replays",
                  box=box.SIMPLE_HEAD)
    for run in page["runs"]:
        table.add_row(run["id"], run["workflow"], run["status"], _time(run["created_at"]),
                      _time(run["updated_at"]), str(run["replays"]))
    console.print(table, markup=False)
    if page["next_cursor"]:
        console.print(f"more: --cursor {page['next_cursor']}", markup=False)


def _timeline(steps: list[dict[str, Any]]) -> Table:
    table = Table("#", "step", "kind", "status", "attempts", "started", "ended", "output / error",
                  box=box.SIMPLE_HEAD)
    for step in steps:
        error = step.get("error")
        if error:
            outcome = f"{error.get('type')}: {error.get('message')}"
        elif step["kind"] == "sleep":
            outcome = f"until {_time(step.get('wake_at'))}"
        elif step["status"] == "waiting":
            timeout = step.get("wake_at")
            outcome = "waiting" + (f" until {_time(timeout)}" if timeout else "")
        else:
            outcome = _short(step.get("output"))
        table.add_row(str(step["seq"]), step["name"], step["kind"], step["status"],
                      str(step["attempts"]), _time(step["started_at"]),
                      _time(step.get("ended_at")), outcome)
    return table


@workflows.command()
def show(
    run_id: RunArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Show a run: its status, result or error, and its step timeline."""
    with session(url, key) as client:
        run = client.workflow_run(run_id)
        steps = client.workflow_history(run_id)
    if as_json:
        print_json({**run, "steps": steps})
        return
    console.print(f"{run['workflow']} run {run['id']}: {run['status']}", markup=False)
    console.print(f"input: {_short(run['input'], 200)}", markup=False)
    if run["status"] == RunStatus.COMPLETED:
        console.print(f"result: {_short(run['result'], 200)}", markup=False)
    elif run.get("error"):
        error = run["error"]
        console.print(f"error: {error.get('type')}: {error.get('message')}", markup=False)
    for failure in run.get("compensation_errors") or []:
        console.print(f"compensation {failure.get('step')} failed: {failure.get('message')}",
                      markup=False)
    if steps:
        console.print(_timeline(steps), markup=False)


@workflows.command()
def history(
    run_id: RunArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """A run's steps in order: name, kind, status, attempts, times, output or error."""
    with session(url, key) as client:
        steps = client.workflow_history(run_id)
    if as_json:
        print_json({"run_id": run_id, "steps": steps})
        return
    if not steps:
        console.print("no steps yet")
        return
    console.print(_timeline(steps), markup=False)


@workflows.command()
def cancel(
    run_id: RunArg, as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """Cancel a run: its next step raises WorkflowCancelled and its compensations run."""
    with session(url, key) as client:
        run = client.cancel_workflow(run_id)
    if as_json:
        print_json(run)
        return
    state = run["status"] if RunStatus(run["status"]).finished else "cancelling"
    console.print(f"{run['workflow']} run {run['id']}: {state}", markup=False)
