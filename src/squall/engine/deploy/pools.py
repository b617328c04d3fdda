"""Sandbox pools per function version, with a zygote per bundle.

The deployed manifest's versions (each function's newest) get their pools at start, forked
from the zygote that loaded the deploy; an older version (an alias, a canary's primary, a
workflow run pinned to the code it started on) gets its pool the first time a call needs it,
from a zygote started on that version's bundle (unpacked from the store first when this
node lacks it: a version deployed through another node of a cluster, see ``stored``). Pools
of versions nothing has called for a while are closed by ``reap``, and a zygote with no pool
left goes with them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from squall.engine.deploy.stored import StoredBundles
from squall.engine.deploy.versions import VersionBook
from squall.errors import NotFound
from squall.model.config import FunctionConfig
from squall.runtime.launcher import Launcher
from squall.runtime.pool import Pool
from squall.runtime.zygotes import start_launchers

log = logging.getLogger("squall.deploy")

MakePool = Callable[[FunctionConfig, Launcher], Pool]
IDLE_VERSION_S = 600.0  # an older version's pool with nothing running closes after this


class VersionPools:
    def __init__(
        self,
        book: VersionBook,
        current: dict[str, Pool],
        serving: dict[str, int],
        bundle: str,
        launcher: Launcher,
        make_pool: MakePool,
        bundles: StoredBundles,
    ) -> None:
        self.book = book
        self._current = current  # function -> the pool of the deployed version
        self._serving = serving  # function -> the deployed version's number
        self._bundle = bundle
        self._make_pool = make_pool
        self._bundles = bundles
        self._launchers: dict[str, Launcher] = {bundle: launcher}
        self._starting: dict[str, asyncio.Task[Launcher]] = {}
        self._others: dict[tuple[str, int], Pool] = {}
        self._used: dict[tuple[str, int], float] = {}

    def serving(self, function: str) -> int | None:
        """The version the deployment serves ``function`` with (aliases aside)."""
        return self._serving.get(function)

    def choose(self, function: str, qualifier: str | None = None) -> int:
        return self.book.choose(function, qualifier)

    def ready(self, function: str, number: int) -> Pool | None:
        """The version's pool when it exists (no waiting): the hot path's lookup."""
        if self._serving.get(function) == number:
            return self._current.get(function)
        pool = self._others.get((function, number))
        if pool is not None:
            self._used[(function, number)] = time.monotonic()
        return pool

    async def pool(self, function: str, number: int) -> Pool:
        found = self.ready(function, number)
        if found is not None:
            return found
        version = self.book.get(function, number)
        launcher = await self._launcher(version.bundle, version.app_ref)
        key = (function, number)
        found = self._others.get(key)  # another call made it while this one waited
        if found is None:
            found = self._others[key] = self._make_pool(version.config, launcher)
            found.version = number
        self._used[key] = time.monotonic()
        return found

    async def adopt(self, function: str) -> None:
        """Start the pool of ``function``'s deployed version, which lives in an older
        bundle (a deploy without prune kept the function)."""
        number = self._serving[function]
        version = self.book.get(function, number)
        launcher = await self._launcher(version.bundle, version.app_ref)
        pool = self._current[function] = self._make_pool(version.config, launcher)
        pool.version = number

    async def _launcher(self, bundle: str, app_ref: str) -> Launcher:
        launcher = self._launchers.get(bundle)
        if launcher is not None:
            return launcher
        task = self._starting.get(bundle)
        if task is None:
            task = self._starting[bundle] = asyncio.create_task(self._start(bundle, app_ref))
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(bundle, None)

    async def _start(self, bundle: str, app_ref: str) -> Launcher:
        found = await self._bundles.find(bundle, app_ref)
        data_dir = self._bundles.data_dir
        if found is None:
            also = " and from the store" if self._bundles.shared else ""
            raise NotFound(
                f"bundle {bundle} is gone from {data_dir / 'bundles'}{also}: its versions"
                " cannot start (deploy them again)",
                bundle=bundle,
            )
        launcher, _ = await start_launchers(found.app_path, data_dir)
        log.info("started the zygote of bundle %s for an older version", bundle)
        self._launchers[bundle] = launcher
        return launcher

    def prefetch(self) -> None:
        """Fetch the code of the versions calls can reach that this node lacks (a deploy
        through another node), before the first call waits for it."""
        self._bundles.prefetch((v.bundle, v.app_ref) for v in self.book.reachable())

    def exit_status(self, pid: int) -> int | None:
        """How sandbox ``pid`` ended, from whichever zygote forked it (None: not known yet)."""
        for launcher in self._launchers.values():
            status = launcher.exit_status(pid)
            if status is not None:
                return status
        return None

    def all(self) -> list[Pool]:
        return [*self._current.values(), *self._others.values()]

    def of(self, function: str) -> list[Pool]:
        pools = [self._current[function]] if function in self._current else []
        return pools + [pool for (fn, _), pool in self._others.items() if fn == function]

    async def reap(self, now: float | None = None) -> None:
        """Close older versions' pools idle for IDLE_VERSION_S, then zygotes left unused."""
        now = time.monotonic() if now is None else now
        for key, pool in list(self._others.items()):
            if not pool.busy and now - self._used.get(key, now) > IDLE_VERSION_S:
                pool.close()
                del self._others[key], self._used[key]
        needed = {self._bundle} | {self.book.get(fn, n).bundle for fn, n in self._others}
        for bundle in list(self._launchers):
            if bundle not in needed:
                await self._launchers.pop(bundle).close()

    async def close(self) -> None:
        for pool in self.all():
            pool.close()
        for task in self._starting.values():
            task.cancel()
        for launcher in self._launchers.values():
            await launcher.close()
        await self._bundles.close()
