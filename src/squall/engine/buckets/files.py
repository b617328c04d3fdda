"""Where objects' bytes live, and how they get there without ever being half visible.

    <data dir>/buckets/staging/<random>                 a put being written
    <data dir>/buckets/objects/<bucket>/<xx>/<version>  one file per object version

A put streams into a staging file (MD5 and size counted on the way), fsyncs it and renames
it to its version's final name, which no other put can take; only then is the metadata row
committed, and the row is what makes the object visible. Files are never changed after the
rename, so a reader holding one reads one version whole, and a copy can be a hard link.

``ObjectFiles`` is the embedded backend's ``ObjectBytes`` (``objects.py``); a cluster keeps
the bytes in JetStream instead (``jetstream.py``), staged here all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from squall.model.buckets import object_too_large
from squall.storage.protocols import Op

CHUNK = 1024 * 1024


class ObjectFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging = root / "staging"
        self.objects = root / "objects"

    def make_dirs(self) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def prepare(self) -> int:
        """Make the dirs and remove what puts left staged when the platform stopped."""
        self.make_dirs()
        return clear_staging(self.staging)

    def final_name(self, bucket: str, version: str) -> str:
        """The file of ``version``, relative to the root (its last hex digits spread them)."""
        return f"objects/{bucket}/{version[-2:]}/{version}"

    def path(self, name: str) -> Path:
        return self.root / name

    def stage(self, limit: int) -> StagedFile:
        return StagedFile(self.staging / secrets.token_hex(12), limit)

    async def publish(self, staged: Path, name: str) -> None:
        await asyncio.to_thread(self._publish, staged, name)

    def _publish(self, staged: Path, name: str) -> None:
        """Rename a finished staging file to its final ``name`` (durably)."""
        final = self.path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        _fsync_dir(final.parent)

    async def link(self, source: str, name: str) -> None:
        await asyncio.to_thread(self._link, source, name)

    def _link(self, source: str, name: str) -> None:
        """``name`` with the same bytes as ``source`` (a hard link: files never change)."""
        final = self.path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(self.path(source), final)
        except OSError:
            staged = self.staging / secrets.token_hex(12)
            shutil.copyfile(self.path(source), staged)
            with open(staged, "rb+") as out:
                os.fsync(out.fileno())
            os.replace(staged, final)
        _fsync_dir(final.parent)

    def settle(self, name: str) -> Sequence[Op]:
        return ()  # a file is the put's until its row commits: nothing to settle

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    discard = unlink  # a write whose unit will not commit

    async def remove(self, names: Sequence[str]) -> None:
        for name in names:
            self.unlink(name)

    async def expire(self) -> None:
        """Nothing: a put killed midway leaves a file ``prepare`` or the orphan check finds."""

    async def open(self, name: str) -> BinaryIO:
        return self.path(name).open("rb")

    async def names(self) -> set[str]:
        """Every object file on disk, relative to the root."""
        return {
            str(path.relative_to(self.root))
            for path in self.objects.glob("*/*/*")
            if path.is_file()
        }


def clear_staging(staging: Path) -> int:
    """Remove what puts left in ``staging`` when the platform stopped; return how many."""
    removed = 0
    for leftover in staging.iterdir():
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed


class StagedFile:
    """One put being written: bytes appended, counted against ``limit`` and hashed."""

    def __init__(self, path: Path, limit: int, *, durable: bool = True) -> None:
        self.path = path
        self.limit = limit
        self._durable = durable  # fsync at finish (not for bytes that go on elsewhere)
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def write(self, data: bytes | memoryview) -> None:
        """Append ``data``; over the limit, the file is removed and PayloadTooLarge raised."""
        if self.size + len(data) > self.limit:
            size = self.size + len(data)
            self.abort()
            raise object_too_large(size, self.limit, complete=False)
        assert self._fd is not None, "write after finish or abort"
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._md5.update(data)
        self.size += len(data)

    def finish(self) -> str:
        """fsync and close; returns the MD5 hex of what was written."""
        assert self._fd is not None
        try:
            if self._durable:
                os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None
        return self._md5.hexdigest()

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
