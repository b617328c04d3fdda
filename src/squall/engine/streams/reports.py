"""Partial batch responses: a handler of a trigger with ``report_batch_item_failures`` may
return ``{"batchItemFailures": [{"itemIdentifier": SEQUENCE}, ...]}`` (as on Lambda).

The records before the first reported sequence count as processed; the batch is retried from
it. A report that names no record of the batch fails the whole batch; an empty one (or any
other result) is a success.
"""

from __future__ import annotations

from typing import Any

import msgspec

from squall.model.streams import StreamRecord


def first_failed(result: bytes | None, batch: list[StreamRecord]) -> tuple[int | None, str]:
    """The index in ``batch`` to retry from (None: all processed), and why."""
    try:
        value: Any = msgspec.json.decode(result) if result else None
    except msgspec.DecodeError:
        return None, ""
    if not isinstance(value, dict) or not value.get("batchItemFailures"):
        return None, ""
    items = value["batchItemFailures"]
    positions = {record.sequence: index for index, record in enumerate(batch)}
    found: list[int] = []
    for item in items if isinstance(items, list) else [items]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if isinstance(identifier, str) and identifier.isdigit():
            identifier = int(identifier)
        if isinstance(identifier, bool) or identifier not in positions:
            return 0, f"batchItemFailures names {identifier!r}, no sequence of the batch"
        found.append(positions[identifier])
    first = min(found)
    return first, f"the function reported sequence {batch[first].sequence} as failed"
