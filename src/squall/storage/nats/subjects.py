"""How queue names become NATS subjects and consumer names.

A queue such as ``fn:resize`` lives on subject ``<prefix>.work.fn.resize`` (``:`` separates
subject tokens) and is read by the durable consumer ``fn~3Aresize``. Characters NATS does not
allow in a token or a name (``.``, ``*``, ``>``, spaces, ``/`` …) and ``~`` itself are
escaped as ``~XX`` (their UTF-8 bytes in hex), so distinct queues never share a subject or a
consumer.
"""

from __future__ import annotations

import re

from squall.errors import ConfigError

_SAFE = re.compile(r"[A-Za-z0-9_-]")
_PREFIX = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def escape(text: str) -> str:
    return "".join(
        ch if _SAFE.fullmatch(ch) else "".join(f"~{b:02X}" for b in ch.encode()) for ch in text
    )


def check_prefix(prefix: str) -> str:
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"subject prefix {prefix!r} must be dot-separated tokens of a-z, 0-9, '_' or '-'",
            field="prefix",
        )
    return prefix


def queue_tokens(queue: str) -> str:
    """``fn:resize`` → ``fn.resize``: the subject tokens of a queue, below a prefix."""
    parts = queue.split(":")
    if not queue or any(not part for part in parts):
        raise ConfigError(
            f"queue name {queue!r} must be non-empty ':'-separated parts", field="queue"
        )
    return ".".join(escape(part) for part in parts)


def consumer_name(queue: str) -> str:
    queue_tokens(queue)  # the same rule for what a queue name may be
    return escape(queue)


def stream_name(prefix: str, kind: str) -> str:
    """``squall`` + ``work`` → ``SQUALL_WORK``."""
    return f"{prefix.replace('.', '_').replace('-', '_')}_{kind}".upper()
