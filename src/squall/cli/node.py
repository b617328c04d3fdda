"""``squall node``: one process of a cluster, sharing PostgreSQL and NATS JetStream."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from squall.cli.common import console, fail
from squall.errors import ConfigError, InvalidInput

if TYPE_CHECKING:
    from squall.engine.platform import Platform

ROLES_HELP = (
    "What this node does, comma-separated: gateway (HTTP, sync invokes), invoker (async work"
    " from JetStream), scheduler (a candidate coordinator: ticks and once-per-cluster duties)."
)


def node(
    app_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[APP]",
            help="app.py path, module:attr or squall.yaml (the same on every node).",
            show_default=False,
        ),
    ] = None,
    roles: Annotated[str, typer.Option(envvar="SQUALL_ROLES", help=ROLES_HELP)] = (
        "gateway,invoker,scheduler"
    ),
    store: Annotated[
        str,
        typer.Option(
            envvar="SQUALL_STORE",
            help="The shared PostgreSQL: postgresql://user@host:port/db[?schema=name].",
            show_default=False,
        ),
    ] = "",
    bus: Annotated[
        str,
        typer.Option(
            envvar="SQUALL_BUS", help="The shared NATS JetStream: nats://host:4222.",
            show_default=False,
        ),
    ] = "",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    data_dir: Annotated[
        Path, typer.Option(help="This node's own files: bundles, environments, keys.")
    ] = Path(".squall"),
    stage: Annotated[
        str, typer.Option(envvar="SQUALL_STAGE", help="The stage served (see `squall up`).")
    ] = "dev",
    retry_base: Annotated[
        float,
        typer.Option(min=0.001, help="First async retry delay, seconds (doubles each time)."),
    ] = 1.0,
) -> None:
    """Run one node of a cluster: every node shares one PostgreSQL (--store) and one NATS
    JetStream (--bus) and serves the same app; run any number of each role. Non-gateway
    nodes serve only /healthz and /readyz on --port."""
    from squall.engine.node import parse_roles
    from squall.engine.platform import PlatformConfig
    from squall.gateway.server import ListenError, serve
    from squall.observe.log_format import configure
    from squall.storage import is_postgres
    from squall.storage.nats.bus_url import parse_bus

    try:
        chosen = parse_roles(roles)
        if not is_postgres(store):
            raise ConfigError(
                "--store must name the cluster's PostgreSQL (postgresql://user@host/db)"
                " or SQUALL_STORE be set",
                field="store",
            )
        parse_bus(bus)
    except ConfigError as exc:
        fail(f"{exc.message} (--{exc.field})" if exc.field else exc.message, 2)
    configure(None)
    config = PlatformConfig(
        app=app_ref or "",
        data_dir=data_dir,
        store=store,
        bus=bus,
        roles=chosen,
        stage=stage,
        retry_base_s=retry_base,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(config, host=host, port=port, on_ready=_announce_node)
    except (ConfigError, InvalidInput) as exc:
        fail(exc.message, 2)
    except ListenError as exc:
        fail(str(exc.strerror), 1)
    except KeyboardInterrupt:
        pass
    console.print("squall node stopped")


def _announce_node(platform: Platform, url: str) -> None:
    from squall.cli.commands import announce
    from squall.engine.node import GATEWAY

    roles = ",".join(sorted(platform.config.roles))
    console.print(f"squall node: roles {roles}", soft_wrap=True, markup=False)
    if GATEWAY in platform.config.roles:
        announce(platform, url)
        return
    console.print(f"squall: app {platform.manifest.app} node is up", markup=False)
    console.print(f"  health     {url}/healthz", soft_wrap=True)
    console.print("press Ctrl-C to stop")
