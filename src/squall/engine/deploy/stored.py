"""Bundles in the store, for the nodes of a cluster: every node has a data dir of its own.

A deploy through one gateway snapshots (or unpacks) its bundle into that gateway's data dir
only. So where the store is shared (``store.exclusive`` is False: PostgreSQL beside NATS)
the bundle's archive is committed with the versions made of it (``keep``), and a node that
needs a bundle it lacks — a version's pool starting, a node restoring the last deployment,
a version or alias seen on refresh (``prefetch``) — unpacks the stored archive into its own
``bundles/``, checked against the bundle's hash. Dependency environments are built where
they are needed, from the bundle's requirements, as on one machine.

The embedded store lives in the data dir itself, beside ``bundles/``: an archive there would
be a second copy nothing reads (and ``squall dev`` makes a bundle per saved edit), so an
exclusive store keeps none.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from squall.engine.deploy.bundle import Bundle, archive, existing, unpack
from squall.errors import SquallError
from squall.storage.deploys import PutBundle
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.deploy")


class StoredBundles:
    def __init__(self, store: Store, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._store = store
        self.shared = not store.exclusive
        self._fetching: dict[str, asyncio.Task[Bundle | None]] = {}

    async def keep(self, bundle: Bundle) -> list[Op]:
        """The op that stores ``bundle``'s archive, to commit with the versions made of it
        (none when the store is this node's alone or has the archive already)."""
        if not self.shared or await self._store.has_bundle(bundle.hash):
            return []
        data = await asyncio.to_thread(archive, bundle)
        return [PutBundle(bundle.hash, data, time.time())]

    async def find(self, content: str, app_ref: str) -> Bundle | None:
        """Bundle ``content`` in this node's data dir, unpacked from the store if need be
        (None: neither has it)."""
        found = existing(self.data_dir, content, app_ref)
        if found is not None or not self.shared:
            return found
        return await asyncio.shield(self._fetch_once(content, app_ref))

    def _fetch_once(self, content: str, app_ref: str) -> asyncio.Task[Bundle | None]:
        """The fetch of ``content`` under way, or a new one: one per bundle at a time."""
        task = self._fetching.get(content)
        if task is None:
            task = self._fetching[content] = asyncio.create_task(self._fetch(content, app_ref))
            task.add_done_callback(lambda _: self._fetching.pop(content, None))
            task.add_done_callback(_report)
        return task

    async def _fetch(self, content: str, app_ref: str) -> Bundle | None:
        try:
            data = await self._store.get_bundle(content)
            if data is None:
                return None
            # Its uploader checked it against its own limit; the hash check stands for the rest.
            bundle = await asyncio.to_thread(
                unpack, data, app_ref, self.data_dir, sys.maxsize, expect=content
            )
        except SquallError:
            raise
        except Exception as exc:  # the store is away, the disk full: the calls fail, retried
            raise SquallError(
                f"bundle {content} could not be fetched from the store: {exc}",
                field="bundle",
                bundle=content,
            ) from exc
        log.info("unpacked bundle %s from the store (%d bytes)", content, len(data))
        return bundle

    def prefetch(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Fetch, in the background, the (bundle, app_ref) pairs this node lacks, so the
        first call of a new version does not wait for its code."""
        if not self.shared:
            return
        for content, app_ref in dict(wanted).items():
            if content not in self._fetching and not existing(self.data_dir, content, app_ref):
                self._fetch_once(content, app_ref)

    async def close(self) -> None:
        tasks = list(self._fetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _report(task: asyncio.Task[Bundle | None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:  # a pool that needs it tries again, and says why
        log.warning("fetching a bundle from the store failed: %s", error)
