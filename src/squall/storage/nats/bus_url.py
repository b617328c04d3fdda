"""The bus URL: ``nats://host:4222[?prefix=squall&replicas=3&storage=file]``.

``prefix`` names the subjects and streams (``<prefix>.work.>``, ``<PREFIX>_WORK``), so
several clusters (or test runs) can share one NATS; ``replicas`` is the streams' replica
count (3 on a clustered JetStream); ``storage`` is ``file`` (the default: deliveries
survive a server restart) or ``memory``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit, urlunsplit

from squall.errors import ConfigError
from squall.storage.nats.connect import ConnectOptions
from squall.storage.nats.queue import JetStreamConfig

KNOWN = ("prefix", "replicas", "storage")


def parse_bus(url: str) -> JetStreamConfig:
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ConfigError(
            f"bus URL {url!r} is not supported (use nats://host:4222 or tls://host:4222)",
            field="bus",
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = sorted(set(query) - set(KNOWN))
    if unknown:
        raise ConfigError(
            f"bus URL parameter {unknown[0]!r} is not known (known: {', '.join(KNOWN)})",
            field="bus",
        )
    storage = query.get("storage", "file")
    if storage not in ("file", "memory"):
        raise ConfigError(
            f"bus URL storage={storage!r} must be file or memory", field="bus"
        )
    try:
        replicas = int(query.get("replicas", "1"))
    except ValueError:
        raise ConfigError(
            f"bus URL replicas={query['replicas']!r} is not a whole number", field="bus"
        ) from None
    server = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    return JetStreamConfig(
        connect=ConnectOptions(url=server),
        prefix=query.get("prefix", "squall"),
        replicas=replicas,
        memory=storage == "memory",
    )
