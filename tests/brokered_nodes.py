"""Several cluster nodes' stores in one test process: each a BrokeredStore of its own on one
PostgreSQL schema and one JetStream subject prefix, both fresh and removed afterwards.

    @pytest.fixture
    async def nodes() -> AsyncIterator[Opener]:
        async with brokered_nodes() as open_node:
            yield open_node
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from backends import drop, new_schema_url
from cluster_nodes import remove_streams
from nats_service import NATS_URL, fresh_prefix

from squall.storage import open_store
from squall.storage.nats.brokered import BrokeredStore

Opener = Callable[[], Awaitable[BrokeredStore]]


@asynccontextmanager
async def brokered_nodes(
    prepare: Callable[[BrokeredStore], Awaitable[None]] | None = None,
) -> AsyncIterator[Opener]:
    """``await open_node()`` opens one more node's store (``prepare``d before it is given)."""
    url, prefix = new_schema_url(), fresh_prefix()
    opened: list[BrokeredStore] = []

    async def open_node() -> BrokeredStore:
        store = await open_store(url, bus=f"{NATS_URL}?prefix={prefix}&storage=memory")
        assert isinstance(store, BrokeredStore)
        opened.append(store)
        if prepare is not None:
            await prepare(store)
        return store

    try:
        yield open_node
    finally:
        for store in opened:
            await store.close()
        drop(url)
        await remove_streams(NATS_URL, prefix)
