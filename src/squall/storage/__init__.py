"""Storage backends behind one contract (see ``protocols``), chosen by URL."""

from __future__ import annotations

from pathlib import Path

from squall.errors import ConfigError
from squall.storage.protocols import Store


async def open_store(url: str) -> Store:
    """``sqlite:///path/to/squall.db`` (or a plain path) opens the embedded backend."""
    if url.startswith("sqlite:///") or "://" not in url:
        from squall.storage.sqlite.store import SqliteStore

        path = Path(url.removeprefix("sqlite:///")) if "://" in url else Path(url)
        return await SqliteStore.open(path)
    scheme = url.split("://", 1)[0]
    raise ConfigError(
        f"store URL scheme {scheme!r} is not supported (use sqlite:///path)", field="store"
    )
