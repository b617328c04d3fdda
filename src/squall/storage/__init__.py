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


def require_nats() -> None:
    """Raise a ConfigError naming the extra when nats-py is not installed."""
    try:
        import nats  # noqa: F401
    except ImportError:
        raise ConfigError(
            "the NATS JetStream bus needs nats-py: install squall[cluster]"
            " (pip install 'squall[cluster]')",
            field="bus",
        ) from None


def check_bus(bus: str) -> str:
    if not bus.startswith(("nats://", "tls://")):
        raise ConfigError(
            f"bus URL {bus!r} is not supported (use nats://host:4222 or tls://host:4222)",
            field="bus",
        )
    return bus


async def open_store(url: str, bus: str | None = None) -> Store:
    """``sqlite:///path/to/squall.db`` (or a plain path) opens the embedded backend;
    ``postgresql://user@host:port/db[?schema=name]`` (or ``postgres://``) PostgreSQL.

    With ``bus`` (``nats://host:4222``) the store is a cluster node's: PostgreSQL for state
    and NATS JetStream for the functions' deliveries (see ``storage.nats.brokered``)."""
    if bus is not None:
        check_bus(bus)
        if not is_postgres(url):
            raise ConfigError(
                "a NATS bus needs a PostgreSQL store that every node shares"
                " (--store postgresql://user@host/db)",
                field="store",
            )
        require_psycopg()
        require_nats()
        from squall.storage.nats.brokered import BrokeredStore
        from squall.storage.nats.bus_url import parse_bus

        return await BrokeredStore.connect_brokered(url, parse_bus(bus))
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
