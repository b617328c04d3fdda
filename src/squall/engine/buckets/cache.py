"""Objects fetched from a remote object store, kept in local files to be read.

Reads seek (ranged GETs, a sandbox's reads in parts at offsets) and the object store reads
only from the start, so a node fetches an object whole into a file once and serves reads
from it. A name's bytes never change, so a cached file is never stale, only perhaps no
longer referenced: it is dropped when this node removes the object, else in least recently
used order once the cache holds more than ``limit_bytes`` (a reader holding a dropped file
reads it to the end all the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

CACHE_BYTES = 2 * 1024**3

Fill = Callable[[BinaryIO], Awaitable[int]]


class ReadCache:
    def __init__(self, root: Path, limit_bytes: int = CACHE_BYTES) -> None:
        self.root = root
        self.limit_bytes = limit_bytes
        self._filling = root / "filling"
        self._sizes: OrderedDict[str, int] = OrderedDict()  # by name, least recent first
        self._total = 0
        self._fetching: dict[str, asyncio.Future[Path]] = {}

    def prepare(self) -> None:
        """Start empty (what a previous run kept is not accounted for)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._filling.mkdir(parents=True)
        self._sizes.clear()
        self._total = 0

    def path(self, name: str) -> Path:
        return self.root / name.replace("/", "%")  # names are <bucket>/<version>

    def scratch(self) -> Path:
        return self._filling / secrets.token_hex(12)

    def keep(self, name: str, file: Path) -> None:
        """Move ``file`` (its bytes those of ``name``) into the cache."""
        size = file.stat().st_size
        os.replace(file, self.path(name))
        self._total += size - self._sizes.get(name, 0)
        self._sizes[name] = size
        self._sizes.move_to_end(name)
        self._evict(keep=name)

    def drop(self, name: str) -> None:
        size = self._sizes.pop(name, None)
        if size is not None:
            self._total -= size
            with contextlib.suppress(FileNotFoundError):
                self.path(name).unlink()

    async def get(self, name: str, fill: Fill) -> Path:
        """The cached file of ``name``, fetched with ``fill(file)`` if it is not cached (one
        fetch at a time per name)."""
        if name in self._sizes:
            self._sizes.move_to_end(name)
            return self.path(name)
        running = self._fetching.get(name)
        if running is None:
            running = asyncio.ensure_future(self._fetch(name, fill))
            self._fetching[name] = running
            running.add_done_callback(lambda _: self._fetching.pop(name, None))
        return await asyncio.shield(running)

    async def _fetch(self, name: str, fill: Fill) -> Path:
        scratch = self.scratch()
        try:
            with scratch.open("wb") as out:
                await fill(out)
            self.keep(name, scratch)
        finally:
            with contextlib.suppress(FileNotFoundError):
                scratch.unlink()
        return self.path(name)

    def _evict(self, keep: str) -> None:
        for name in list(self._sizes):
            if self._total <= self.limit_bytes:
                return
            if name != keep:
                self.drop(name)
