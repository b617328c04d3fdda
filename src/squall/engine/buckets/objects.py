"""Where objects' bytes are kept: the small interface the bucket service writes and reads
them through, and the choice of implementation by the kind of store.

- ``ObjectFiles`` (``files.py``): files under ``<data dir>/buckets`` (the embedded backend,
  one process owns them);
- ``ObjectsOnJetStream`` (``jetstream.py``): the cluster's JetStream object store, which
  every node reaches (the distributed backend, ``BrokeredStore``).

Either way a put is staged in a local file first, ``publish`` makes it the bytes of a name no
other put takes, and only the unit that commits the object's row (with ``settle``'s ops)
makes it visible; ``discard`` lets go of bytes whose unit will not commit, ``remove`` deletes
what the store's garbage list names, and ``expire`` hands puts that died midway to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from squall.engine.buckets.files import ObjectFiles, StagedFile
from squall.storage.protocols import Op, Store


class ObjectBytes(Protocol):
    def prepare(self) -> int:
        """Make the local dirs; remove what this node's puts left staged. Returns how many."""
        ...

    def final_name(self, bucket: str, version: str) -> str: ...

    def stage(self, limit: int) -> StagedFile: ...

    async def publish(self, staged: Path, name: str) -> None:
        """Make a finished staging file the bytes of ``name`` (the staging file is gone)."""
        ...

    async def link(self, source: str, name: str) -> None:
        """``name`` with the same bytes as ``source``."""
        ...

    def settle(self, name: str) -> Sequence[Op]:
        """Ops for the unit whose row references ``name``."""
        ...

    def discard(self, name: str) -> None:
        """The bytes of a write whose unit will not commit."""
        ...

    async def remove(self, names: Sequence[str]) -> None:
        """Delete the bytes of ``names`` (from the store's garbage list)."""
        ...

    async def expire(self) -> None:
        """Add the bytes of puts that died between ``publish`` and their commit to the
        garbage list, once no commit can reference them any more."""
        ...

    async def open(self, name: str) -> BinaryIO:
        """The bytes of ``name`` as a file open for reading (FileNotFoundError if gone)."""
        ...

    async def names(self) -> set[str]:
        """Every name whose bytes are kept."""
        ...


def object_bytes(store: Store, root: Path) -> ObjectBytes:
    """Files under ``root`` beside the embedded store; the JetStream object store beside
    the distributed one (with ``root`` for staging and a read cache)."""
    if not store.exclusive:
        from squall.storage.nats.brokered import BrokeredStore

        if isinstance(store, BrokeredStore):
            from squall.engine.buckets.jetstream import ObjectsOnJetStream

            return ObjectsOnJetStream(store.objects, store, root)
    return ObjectFiles(root)
