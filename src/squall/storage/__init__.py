"""Storage backends behind one contract (see ``protocols``), chosen by URL."""

from __future__ import annotations

from pathlib import Path

from squall.errors import ConfigError
from squall.storage.protocols import Store

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres(url: str | None) -> bool:
    return url is not None and url.split("://", 1)[0].lower() in POSTGRES_SCHEMES


def require_psycopg() -> None:
    """Raise a ConfigError naming the extra when psycopg is not installed."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the PostgreSQL store needs psycopg: install squall[cluster]"
            " (pip install 'squall[cluster]')",
            field="store",
        ) from None


async def open_store(url: str) -> Store:
    """``sqlite:///path/to/squall.db`` (or a plain path) opens the embedded backend;
    ``postgresql://user@host:port/db[?schema=name]`` (or ``postgres://``) PostgreSQL."""
    if url.startswith("sqlite:///") or "://" not in url:
        from squall.storage.sqlite.store import SqliteStore

        path = Path(url.removeprefix("sqlite:///")) if "://" in url else Path(url)
        return await SqliteStore.open(path)
    if is_postgres(url):
        require_psycopg()
        from squall.storage.postgres.store import PostgresStore

        return await PostgresStore.connect(url)
    scheme = url.split("://", 1)[0]
    raise ConfigError(
        f"store URL scheme {scheme!r} is not supported"
        " (use sqlite:///path or postgresql://user@host/db)",
        field="store",
    )
