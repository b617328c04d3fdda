"""``squall dev``: serve an app and redeploy it on every edit (hot reload)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from squall.cli.common import console, fail
from squall.errors import ConfigError, SquallError

if TYPE_CHECKING:
    from squall.engine.deploy.plan import Plan
    from squall.engine.platform import Platform
    from squall.gateway.host import Host


def dev(
    app_ref: Annotated[
        str, typer.Argument(metavar="APP", help="app.py path or squall.yaml.")
    ],
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port.")] = 8787,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    data_dir: Annotated[Path, typer.Option(help="Where the embedded store lives.")] = Path(
        ".squall"
    ),
    stage: Annotated[
        str, typer.Option(envvar="SQUALL_STAGE", help="The stage served (see `squall up`).")
    ] = "dev",
) -> None:
    """Serve APP like `squall up`, and redeploy it each time a file in its directory changes:
    changed functions get new versions; queued work and state carry over; an edit that fails
    to import is reported and the running code keeps serving."""
    from squall.engine.platform import PlatformConfig
    from squall.gateway.reload import reload_forever
    from squall.gateway.server import ListenError, serve
    from squall.observe.log_format import configure

    configure("text")
    config = PlatformConfig(app=app_ref, data_dir=data_dir, deployed_by="dev", stage=stage)

    async def watch(served: Host) -> None:
        await reload_forever(served, app_ref, _report)

    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        serve(config, host=host, port=port, on_ready=_announce_dev, background=watch)
    except ConfigError as exc:
        fail(exc.message, 2)
    except ListenError as exc:
        fail(str(exc.strerror), 1)
    except KeyboardInterrupt:
        pass
    console.print("squall stopped")


def _announce_dev(platform: Platform, url: str) -> None:
    from squall.cli.commands import announce

    announce(platform, url)
    console.print("watching for changes (squall dev)")


def _report(outcome: Plan | SquallError, seconds: float) -> None:
    if isinstance(outcome, SquallError):
        console.print(
            f"[red]reload failed[/] after {seconds:.2f} s, the previous code keeps serving:"
            f" {outcome.message}",
            soft_wrap=True,
        )
        return
    if outcome.empty:
        return
    versions = ", ".join(f"{fn} v{n}" for fn, n in sorted(outcome.new_versions.items()))
    changed = [f"{c.action} {c.kind[:-1] if c.kind.endswith('s') else c.kind} {c.name}"
               for c in outcome.changes]
    console.print(
        f"reloaded in {seconds:.2f} s: {versions or 'config only'}"
        + (f" ({'; '.join(changed)})" if changed else ""),
        soft_wrap=True,
    )
