"""Hot reload for ``squall dev``: watch the app's directory, deploy each edit as it lands.

A reload is an ordinary local deploy with ``prune`` (the file on disk is the whole truth in
development): the edited directory is snapshotted, loaded in its own zygote, and swapped in
behind the gate, so queued work, tables and workflow runs carry over and an edit that does not
import leaves the running code serving. Edits are debounced briefly, so a save that touches a
few files is one reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from squall.engine.deploy.bundle import Ignored, split_app_ref
from squall.engine.deploy.plan import Plan
from squall.engine.platform import prepare
from squall.errors import SquallError
from squall.gateway.host import Host

log = logging.getLogger("squall.dev")

DEBOUNCE_MS = 100

Report = Callable[[Plan | SquallError, float], None]


async def reload_forever(host: Host, app_ref: str, report: Report) -> None:
    """Redeploy ``app_ref`` on every change under its directory; ``report(plan or error,
    seconds the reload took)`` after each."""
    root, _ = split_app_ref(app_ref)
    data_dir = host.config.data_dir.resolve()
    default = DefaultFilter(ignore_paths=[data_dir])

    def bundled(change: Change, path: str) -> bool:
        # Only what a bundle holds triggers a reload (a log file beside the app does not);
        # the ignore file is read again each time, so editing it takes effect at once.
        return default(change, path) and not Ignored(root).path(Path(path))

    async for _changes in awatch(root, watch_filter=bundled, debounce=DEBOUNCE_MS):
        began = time.monotonic()
        try:
            prepared = await prepare(app_ref, host.config.data_dir, host.config.max_bundle_bytes)
            plan = await host.deploy(prepared, prune=True, who="dev")
        except SquallError as exc:
            report(exc, time.monotonic() - began)
            continue
        report(plan, time.monotonic() - began)
