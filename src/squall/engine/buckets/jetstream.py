"""Objects' bytes in the cluster's JetStream object store (``storage/nats/objects.py``), so
an object put through one node is read through any other, and by sandboxes on any invoker.

    <data dir>/buckets/staging/<random>     a put being written (this node's alone)
    <data dir>/buckets/cache/<name>         objects this node wrote or read (``cache.py``)

A put is staged in a local file as on the embedded backend, then uploaded under a name no
other put takes (``<bucket>/<version>``), then its row is committed. The upload is claimed
first (``ClaimUpload``, committed before any byte goes out): the claim keeps the sweep off
bytes whose row may still commit, for ``CLAIM_S``, and the row's unit settles it in the same
transaction (``SettleUpload``). A put that fails lets its claim go to the garbage list at
once (``DiscardUpload``); one whose node died is found when the claim expires; a unit that
comes to commit after its claim expired fails instead of referencing swept bytes.

Reads fetch an object whole into the cache and read that file: see ``cache.py`` for why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from squall.engine.buckets.cache import ReadCache
from squall.engine.buckets.files import StagedFile, clear_staging
from squall.storage.buckets import ClaimUpload, DiscardUpload, ExpireUploads, SettleUpload
from squall.storage.nats.objects import JetStreamObjects, ObjectMissing
from squall.storage.protocols import Op, Store

log = logging.getLogger("squall.buckets")

# How long a put may take from its upload to its row's commit: a function's writes are held
# until its invocation ends (900 s at most), then committed.
CLAIM_S = 3600.0


class ObjectsOnJetStream:
    def __init__(self, objects: JetStreamObjects, store: Store, root: Path) -> None:
        self.objects = objects
        self._store = store
        self.staging = root / "staging"
        self.cache = ReadCache(root / "cache")
        self.claim_s = CLAIM_S
        self._discarding: set[asyncio.Future[None]] = set()

    def prepare(self) -> int:
        self.staging.mkdir(parents=True, exist_ok=True)
        self.cache.prepare()
        return clear_staging(self.staging)

    def final_name(self, bucket: str, version: str) -> str:
        return f"{bucket}/{version}"

    def stage(self, limit: int) -> StagedFile:
        # Not fsynced: the bytes are durable once the object store has them.
        return StagedFile(self.staging / secrets.token_hex(12), limit, durable=False)

    async def publish(self, staged: Path, name: str) -> None:
        await self._claim(name)
        try:
            with staged.open("rb") as source:
                await self.objects.put(name, source)
        except BaseException:
            self.discard(name)
            raise
        self.cache.keep(name, staged)  # the writer's node reads it back without a fetch

    async def link(self, source: str, name: str) -> None:
        local = await self._local(source)
        await self._claim(name)
        try:
            with local.open("rb") as file:
                await self.objects.put(name, file)
        except BaseException:
            self.discard(name)
            raise

    async def _claim(self, name: str) -> None:
        await self._store.commit([ClaimUpload(name, time.time() + self.claim_s)])

    def settle(self, name: str) -> Sequence[Op]:
        return (SettleUpload(name),)

    def discard(self, name: str) -> None:
        self.cache.drop(name)
        future = self._store.submit([DiscardUpload(name)])
        self._discarding.add(future)
        future.add_done_callback(self._discarded)

    def _discarded(self, future: asyncio.Future[None]) -> None:
        self._discarding.discard(future)
        if not future.cancelled() and future.exception() is not None:  # the claim expires
            log.warning("letting go of a failed put's bytes failed: %s", future.exception())

    async def remove(self, names: Sequence[str]) -> None:
        for name in names:
            self.cache.drop(name)
            await self.objects.delete(name)

    async def expire(self) -> None:
        if self._discarding:  # this node's discards first, so one sweep takes them
            await asyncio.gather(*self._discarding, return_exceptions=True)
        await self._store.commit([ExpireUploads(time.time())])

    async def open(self, name: str) -> BinaryIO:
        for _ in range(2):  # evicted between the lookup and the open: fetch it again
            path = await self._local(name)
            with contextlib.suppress(FileNotFoundError):
                return path.open("rb")
        raise FileNotFoundError(name)

    async def _local(self, name: str) -> Path:
        try:
            return await self.cache.get(name, lambda out: self.objects.fetch(name, out))
        except ObjectMissing:
            raise FileNotFoundError(name) from None

    async def names(self) -> set[str]:
        return await self.objects.names()
