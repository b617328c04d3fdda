"""Everything a platform keeps on JetStream under one subject prefix, and removing it all
(tests, benchmarks, decommissioning a platform).

Under prefix ``squall``: the streams ``SQUALL_WORK`` and ``SQUALL_DELAY``, the user queues'
KV buckets (``KV_SQUALL_WORK_*``), the buckets' object store (``OBJ_SQUALL_OBJECTS``) and a
stream per app stream shard (``SQUALL_LOG_*``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from squall.storage.nats.messages import bucket_streams
from squall.storage.nats.subjects import stream_name

if TYPE_CHECKING:
    from nats.aio.client import Client


def fixed_streams(prefix: str) -> list[str]:
    """The streams of ``prefix`` whose names do not depend on the app (all but the logs)."""
    work = stream_name(prefix, "work")
    return [
        work,
        stream_name(prefix, "delay"),
        *bucket_streams(work),
        f"OBJ_{stream_name(prefix, 'objects')}",
    ]


async def delete_prefix(nc: Client, prefix: str) -> None:
    """Delete every stream, bucket and object store of ``prefix``, with what they hold."""
    from nats.js.errors import NotFoundError

    from squall.storage.nats.logs import JetStreamLog

    js = nc.jetstream()
    for name in fixed_streams(prefix):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    await JetStreamLog(nc, prefix=prefix, duplicate_window_s=1).delete_all()
