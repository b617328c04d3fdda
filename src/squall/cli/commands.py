"""The ``squall`` command: serve an app, and drive a running platform through its admin API."""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.markup import escape

from squall.cli.archives import archives, replay, replays
from squall.cli.buckets import buckets
from squall.cli.common import (
    JsonOption,
    KeyOption,
    UrlOption,
    console,
    fail,
    print_json,
    session,
)
from squall.cli.cost import cost
from squall.cli.deploys import alias, deploy, deployments, plan, rollback, versions
from squall.cli.dev import dev
from squall.cli.dlq import dlq
from squall.cli.es import es, projections
from squall.cli.events import events, publish
from squall.cli.keys import keys, login
from squall.cli.metrics import metrics
from squall.cli.node import node
from squall.cli.parsing import InputError, parse_duration, parse_since, read_payload
from squall.cli.queues import queues
from squall.cli.render import (
    functions_table,
    invocation_detail,
    invocations_table,
    log_line,
)
from squall.cli.rules import rules
from squall.cli.schedules import schedules
from squall.cli.schemas import schemas
from squall.cli.secrets import secrets
from squall.cli.streams import streams
from squall.cli.tables import tables
from squall.cli.traces import TRACE_ID, traces
from squall.cli.workflows import workflows
from squall.client import Accepted, InvokeResult
from squall.engine.deploy.bundle import MAX_BUNDLE_BYTES
from squall.errors import ConfigError, InvalidInput
from squall.observe.cost import PriceTable

if TYPE_CHECKING:
    from squall.engine.platform import Platform

app = typer.Typer(
    name="squall",
    help="Squall: self-hosted Python serverless. `squall up app.py`, then drive it from here.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(dlq, name="dlq")
app.add_typer(events, name="events")
app.add_typer(rules, name="rules")
app.command()(publish)
app.add_typer(keys, name="keys")
app.add_typer(secrets, name="secrets")
app.command()(login)
app.add_typer(schemas, name="schemas")
app.add_typer(archives, name="archives")
app.add_typer(replays, name="replays")
app.add_typer(schedules, name="schedules")
app.add_typer(queues, name="queues")
app.add_typer(workflows, name="workflows")
app.add_typer(es, name="es")
app.add_typer(projections, name="projections")
app.add_typer(traces, name="traces")
app.command()(replay)
app.add_typer(streams, name="streams")
app.add_typer(buckets, name="buckets")
app.add_typer(tables, name="tables")
app.command()(metrics)
app.command()(cost)
app.command()(deploy)
app.command()(plan)
app.command()(versions)
app.add_typer(alias, name="alias")
app.command()(rollback)
app.command()(deployments)
app.command()(dev)
app.command()(node)

FOLLOW_INTERVAL_S = 0.5
DEFAULT_MAX_SYNC = 6 * 1024 * 1024
DEFAULT_MAX_ASYNC = 256 * 1024
DEFAULT_PRICES = PriceTable()


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class Level(StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


@app.command()
def up(
    app_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[APP]",
            help="app.py path, module:attr or squall.yaml (default: the data dir's last"
            " deployment).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    data_dir: Annotated[Path, typer.Option(help="Where the embedded store lives.")] = Path(
        ".squall"
    ),
    store: Annotated[
        str | None,
        typer.Option(
            envvar="SQUALL_STORE",
            help="Store URL: sqlite:///path (default: squall.db in the data dir) or"
            " postgresql://user@host:port/db[?schema=name] (needs squall[cluster]).",
            show_default=False,
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            envvar="SQUALL_BUS",
            help="Event backbone URL: nats://host:4222 puts async work on NATS JetStream"
            " (needs a postgresql:// --store and squall[cluster]; see `squall node`).",
            show_default=False,
        ),
    ] = None,
    max_sync_payload: Annotated[
        int, typer.Option(min=1, help="Largest sync payload, bytes.")
    ] = DEFAULT_MAX_SYNC,
    max_async_payload: Annotated[
        int, typer.Option(min=1, help="Largest async payload, bytes.")
    ] = DEFAULT_MAX_ASYNC,
    max_bundle_bytes: Annotated[
        int, typer.Option(min=1, help="Largest app directory a deploy may bundle, bytes.")
    ] = MAX_BUNDLE_BYTES,
    sync_wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds a sync call waits for a free sandbox before 429."),
    ] = 2.0,
    retry_base: Annotated[
        float,
        typer.Option(min=0.001, help="First async retry delay, seconds (doubles each time)."),
    ] = 1.0,
    price_requests: Annotated[
        float, typer.Option(min=0, help="Metering: USD per million requests.")
    ] = DEFAULT_PRICES.request_usd_per_million,
    price_gb_second: Annotated[
        float, typer.Option(min=0, help="Metering: USD per GB-second of billed duration.")
    ] = DEFAULT_PRICES.gb_second_usd,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="The platform's own log lines on stderr (default: json unless a TTY)."),
    ] = None,
    log_retention: Annotated[
        str,
        typer.Option(envvar="SQUALL_LOG_RETENTION", help="Keep function log lines this long."),
    ] = "7d",
    trace_retention: Annotated[
        str, typer.Option(envvar="SQUALL_TRACE_RETENTION", help="Keep traces this long.")
    ] = "7d",
    trace_sample: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Share of new traces recorded (children follow)."),
    ] = 1.0,
    stage: Annotated[
        str,
        typer.Option(
            envvar="SQUALL_STAGE",
            help="The stage served: its env vars and secret scope (see App(stages=...)).",
        ),
    ] = "dev",
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            envvar="SQUALL_OTLP_ENDPOINT",
            help="Also export spans over OTLP/HTTP to this collector (http://host:4318).",
        ),
    ] = None,
) -> None:
    """Start the platform for APP and serve it until Ctrl-C or SIGTERM; without APP, serve
    what was last deployed to the data dir (squall deploy --to this platform)."""
    # Imported here so client commands do not pay for the engine and uvicorn.
    from squall.engine.platform import PlatformConfig
    from squall.gateway.server import ListenError, serve
    from squall.observe.log_format import configure

    try:
        log_retention_s = parse_duration(log_retention, "--log-retention")
        trace_retention_s = parse_duration(trace_retention, "--trace-retention")
    except InputError as exc:
        fail(str(exc), 2)
    if otlp_endpoint is not None and not otlp_endpoint.startswith(("http://", "https://")):
        fail(f"--otlp-endpoint {otlp_endpoint!r} is not an http:// or https:// URL", 2)
    configure(log_format.value if log_format else None)

    config = PlatformConfig(
        app=app_ref or "",
        data_dir=data_dir,
        store=store or None,
        bus=bus or None,
        max_sync_payload=max_sync_payload,
        max_async_payload=max_async_payload,
        max_bundle_bytes=max_bundle_bytes,
        sync_wait_s=sync_wait,
        retry_base_s=retry_base,
        prices=PriceTable(price_requests, price_gb_second),
        log_retention_s=log_retention_s,
        trace_retention_s=trace_retention_s,
        trace_sample=trace_sample,
        otlp_endpoint=otlp_endpoint,
        stage=stage,
    )
    # SIGTERM takes the same clean path as Ctrl-C: uvicorn drains, the lifespan stops the platform.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(config, host=host, port=port, on_ready=announce)
    except (ConfigError, InvalidInput) as exc:  # a bad app, or its directory over the limit
        fail(exc.message, 2)
    except ListenError as exc:
        fail(str(exc.strerror), 1)
    except KeyboardInterrupt:
        pass
    console.print("squall stopped")


def announce(platform: Platform, url: str) -> None:
    manifest = platform.manifest
    console.print(f"squall: app [bold]{escape(manifest.app)}[/] (version {manifest.version}) is up")
    console.print(f"  gateway    {url}", soft_wrap=True)
    console.print(f"  admin API  {url}/api/v1", soft_wrap=True)
    console.print(f"  dashboard  {url}/ui/  (sign in with an API key)", soft_wrap=True)
    functions = [
        {**msgspec.structs.asdict(fn), "stats": platform.function_stats(fn.name)}
        for fn in platform.functions()
    ]
    console.print(functions_table(functions))
    for route in manifest.routes:
        auth = "" if route.auth == "none" else f"  ({route.auth})"
        line = f"  {route.method:<7} {url}{route.path}  -> {route.function}{auth}"
        console.print(line, soft_wrap=True, markup=False)
    for schedule in platform.scheduler.describe(1):
        upcoming = schedule["next_fires"][0] if schedule["next_fires"] else "none"
        line = (
            f"  schedule {schedule['name']}  {schedule['expression']}  -> {schedule['function']},"
            f" next {upcoming}"
        )
        console.print(line, soft_wrap=True, markup=False)
    if platform.bootstrap_key is not None:  # first start only: the platform keeps its hash
        line = f"  admin key  {platform.bootstrap_key}  (shown this once: save it, `squall login`)"
        console.print(line, soft_wrap=True, markup=False)
    console.print("press Ctrl-C to stop")
    sys.stdout.flush()


@app.command()
def invoke(
    name: Annotated[str, typer.Argument(help="Function to invoke.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help="JSON payload, @file.json, or - for stdin. Default: null."
        ),
    ] = None,
    run_async: Annotated[
        bool, typer.Option("--async", help="Queue it and print the invocation id.")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", "-k", help="Repeat calls run once.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Invoke a function and print its result (exit 1 if the invocation failed)."""
    try:
        payload = read_payload(data, sys.stdin.buffer) if data is not None else b""
    except InputError as exc:
        fail(str(exc), 2)
    outcome: InvokeResult | Accepted
    with session(url, key) as client:
        if run_async:
            outcome = client.invoke_async(name, payload, idempotency_key=idempotency_key)
        else:
            outcome = client.invoke(name, payload, idempotency_key=idempotency_key)
    if isinstance(outcome, Accepted):
        if as_json:
            print_json(dataclasses.asdict(outcome))
        else:
            print(outcome.invocation_id, flush=True)
        return
    result: Any = outcome.json() if outcome.is_json else outcome.body.decode("utf-8", "replace")
    if as_json:
        print_json(
            {
                "invocation_id": outcome.invocation_id,
                "status_code": outcome.status_code,
                "content_type": outcome.content_type,
                "cold": outcome.cold,
                "duration_ms": outcome.duration_ms,
                "result": result,
            }
        )
        return
    if sys.stderr.isatty():
        cold = "cold" if outcome.cold else "warm"
        print(f"{outcome.invocation_id} · {cold} · {outcome.duration_ms} ms", file=sys.stderr)
    if outcome.is_json:
        print_json(result)
    else:
        sys.stdout.write(result if result.endswith("\n") else result + "\n")


@app.command("ls")
def list_functions(
    as_json: JsonOption = False, url: UrlOption = None, key: KeyOption = None
) -> None:
    """List the app's functions with their limits and warm/busy sandboxes."""
    with session(url, key) as client:
        functions = client.functions()
    if as_json:
        print_json({"functions": functions})
    else:
        console.print(functions_table(functions))


@app.command()
def invocations(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this function.")] = None,
    status: Annotated[
        str | None, typer.Option(help="queued, running, retrying, succeeded, failed, …")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    before: Annotated[
        str | None, typer.Option(help="Page: only invocations older than this id.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """List recent invocations, newest first. `squall invocation ID` shows one."""
    with session(url, key) as client:
        page = client.invocations(name, status=status, limit=limit, before=before)
    if as_json:
        print_json(page)
        return
    console.print(invocations_table(page["invocations"]))
    if page.get("next"):
        console.print(f"[dim]more: --before {page['next']}[/]", soft_wrap=True)


@app.command()
def invocation(
    invocation_id: Annotated[str, typer.Argument(metavar="ID", help="Invocation id.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Show one invocation: status, timings, result or error, and its captured logs."""
    with session(url, key) as client:
        record = client.invocation(invocation_id)
    if as_json:
        print_json(record)
        return
    console.print(invocation_detail(record))
    for line in record.get("logs") or []:
        console.print(log_line(line, with_source=False), soft_wrap=True)


@app.command()
def logs(
    name: Annotated[str | None, typer.Argument(metavar="NAME", help="Only this function.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    since: Annotated[str | None, typer.Option(help="30s, 10m, 1h, 2d or an ISO 8601 time.")] = None,
    level: Annotated[Level | None, typer.Option(help="Lowest level to show.")] = None,
    grep: Annotated[str | None, typer.Option(help="Only lines containing this text.")] = None,
    invocation_id: Annotated[
        str | None, typer.Option("--invocation", help="Only this invocation's lines.")
    ] = None,
    trace: Annotated[
        str | None, typer.Option("--trace", help="Only lines written in this trace (its id).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Print captured stdout, stderr and logger lines, oldest first; -f follows until Ctrl-C."""
    try:
        since_ts = parse_since(since) if since is not None else None
    except InputError as exc:
        fail(str(exc), 2)
    if trace is not None and not TRACE_ID.fullmatch(trace):
        fail(f"--trace {trace!r} is not a trace id (32 lower-case hex digits)", 2)
    after: int | None = None
    try:
        with session(url, key) as client:
            while True:
                page = client.logs(
                    name,
                    invocation_id=invocation_id,
                    since=since_ts,
                    after=after,
                    level=level.value if level else None,
                    grep=grep,
                    trace=trace,
                )
                for row in page["logs"]:
                    if as_json:
                        print_json(row, compact=True)
                    else:
                        console.print(log_line(row), soft_wrap=True)
                moved = page["next"] is not None and page["next"] != after
                after = page["next"] if moved else after
                if not moved:
                    if not follow:
                        return
                    time.sleep(FOLLOW_INTERVAL_S)
    except KeyboardInterrupt:
        return


def main() -> None:
    app(prog_name="squall")
