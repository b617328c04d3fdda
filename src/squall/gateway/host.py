"""The server's one ASGI app: it serves the current platform and swaps it for a deploy's.

A deploy loads the new bundle in its own zygote first (an app that fails to import or declares
something invalid changes nothing), then closes the gate: requests that arrive wait, those in
flight finish, the platform stops and the new one starts on the same store — queued work,
tables, workflow runs and keys carry over, since they live there. Then the gate opens again.
A new platform that fails to start is replaced by the old code, started again, and the deploy
answers with the error. The other nodes of a cluster find the new deployment when they reload
the versions, and swap to it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from squall.engine.deploy.plan import Plan, diff, merge
from squall.engine.deploy.stages import staged
from squall.engine.platform import Platform, PlatformConfig, Prepared, load_bundle, restore
from squall.gateway.app import API_PREFIX, create_app
from squall.gateway.heap import refreeze

if TYPE_CHECKING:
    from starlette.types import ASGIApp

log = logging.getLogger("squall.deploy")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DRAIN_S = 10.0  # how long a deploy waits for requests in flight before it swaps anyway
DEPLOYS_PATH = f"{API_PREFIX}/deployments"
FOLLOW_S = 1.0  # how often a cluster node looks for a deployment another node made


class Host:
    def __init__(self, config: PlatformConfig, platform: Platform, url: str) -> None:
        self.config = config
        self.platform = platform
        self.url = url
        platform.buckets.base_url = url  # ctx.presign gives full URLs
        self._app: ASGIApp = create_app(platform, host=self)
        self._open = asyncio.Event()
        self._open.set()
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._lock = asyncio.Lock()
        self._stopped = False
        self._served = _deployment(platform)
        self._following: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        # A deploy's own request must not wait for the drain it is waiting for.
        counted = not (scope.get("method") == "POST" and scope.get("path") == DEPLOYS_PATH)
        if counted:
            await self._open.wait()
            self._inflight += 1
            self._idle.clear()
        try:
            await self._app(scope, receive, send)
        finally:
            if counted:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.set()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.config.clustered:
                    self._following = asyncio.create_task(self.follow_deploys())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)
        async with self._lock:
            if not self._stopped:
                self._stopped = True
                await self.platform.stop()

    async def follow_deploys(self) -> None:
        """A cluster node serves what another node deployed: once its platform has reloaded
        the versions and found a newer deployment, it swaps to that code (restored from the
        store), as the node that took the deploy did."""
        while True:
            await asyncio.sleep(FOLLOW_S)
            last = self.platform.versions.book.last
            if last is None or last.seq <= self._served:
                continue
            async with self._lock:
                if self._stopped or last.seq <= self._served:
                    continue
                try:
                    prepared = await restore(
                        self.platform.versions.book, self.platform.stored_bundles
                    )
                    await self._swap(prepared, last.deployed_by)
                except Exception:  # the previous code serves; the next round tries again
                    log.exception("serving deployment %d from another node failed", last.seq)
                    self._served = last.seq  # not again and again; the next deploy is taken

    # --- deploys -------------------------------------------------------------------------

    def plan(self, new: Prepared, prune: bool) -> tuple[Plan, Prepared]:
        """What deploying ``new`` changes, and the code to start for it."""
        current = self.platform
        new = dataclasses.replace(new, manifest=staged(new.manifest, self.config.stage))
        if prune:
            manifest, kept = new.manifest, frozenset[str]()
        else:
            merged, kept_names = merge(current.manifest, new.manifest)
            manifest, kept = merged, frozenset(kept_names)
        book = current.versions.book
        versions, _ = book.changes(
            manifest, new.bundle.hash, new.bundle.app_ref, "plan", kept
        )
        plan = Plan(
            changes=diff(current.manifest, new.manifest, prune),
            new_versions={v.function: v.number for v in versions},
            settings_changed=current.manifest.settings != new.manifest.settings,
        )
        return plan, dataclasses.replace(new, manifest=manifest, kept=kept)

    async def deploy(
        self,
        new: Prepared,
        *,
        prune: bool = False,
        dry_run: bool = False,
        who: str = "local",
        extra: Callable[[Plan], list[Any]] | None = None,
    ) -> Plan:
        """Deploy ``new`` (loaded, not yet serving): swap it in unless ``dry_run`` or nothing
        changes. ``extra(plan)`` gives ops to commit with the deployment (a canary)."""
        async with self._lock:
            try:
                plan, prepared = self.plan(new, prune)
            except BaseException:
                await new.launcher.close()
                raise
            if dry_run or plan.empty:
                await new.launcher.close()
                return plan
            if extra is not None:
                prepared = dataclasses.replace(prepared, extra=extra(plan))
            await self._swap(prepared, who)
            return plan

    async def _swap(self, prepared: Prepared, who: str) -> None:
        old = self.platform
        self._open.clear()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_S)
            await old.quiesce(DRAIN_S)
            await old.stop()
            config = dataclasses.replace(self.config, deployed_by=who)
            try:
                platform = await Platform.start(config, prepared)
            except BaseException:
                log.exception("the deploy's platform failed to start; the previous code serves")
                previous = await load_bundle(old.bundle, self.config.data_dir)
                restored = dataclasses.replace(previous, manifest=old.manifest, kept=old.kept)
                self.platform = await Platform.start(self.config, restored)
                self._install(self.platform)
                raise
            self.platform = platform
            self._install(platform)
            log.info("deployed bundle %s", prepared.bundle.hash)
        finally:
            del old
            refreeze()  # while the gate is closed: the old platform's cycles are collected
            self._open.set()

    def _install(self, platform: Platform) -> None:
        self._served = _deployment(platform)
        platform.buckets.base_url = self.url
        self._app = create_app(platform, host=self)



def _deployment(platform: Platform) -> int:
    """The sequence of the deployment ``platform`` serves (0: none recorded)."""
    last = platform.versions.book.last
    return 0 if last is None else last.seq
