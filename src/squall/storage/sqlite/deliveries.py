"""How a delivery is written: shared by ``Enqueue`` and the ops that enqueue as a part of
their own work (a workflow start enqueues only when its run is new)."""

from __future__ import annotations

from typing import Any

import msgspec

from squall.storage.protocols import Delivery

ENQUEUE_SQL = (
    "INSERT OR IGNORE INTO deliveries (id, queue, payload, invocation_id, attempts,"
    " enqueued_at, available_at, headers, dedup_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

_pack = msgspec.msgpack.encode


def delivery_row(delivery: Delivery, dedup_key: str | None) -> tuple[Any, ...]:
    return (
        delivery.id,
        delivery.queue,
        delivery.payload,
        delivery.invocation_id,
        delivery.attempts,
        delivery.enqueued_at,
        delivery.available_at,
        _pack(delivery.headers),
        dedup_key,
    )
