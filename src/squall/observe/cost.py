"""Metering: what invocations cost, computed from their stored records.

Each invocation that ran is one request and ``memory_mb / 1024 * billed_ms / 1000``
GB-seconds, priced by a ``PriceTable`` (AWS Lambda's public x86 prices by default). The
figures come from the store's records, so they survive a restart and match the billed
durations exactly. An invocation that never ran (no sandbox could start) has no
``billed_ms`` and costs nothing. A record is kept per invocation, not per attempt: a retried
async invocation is metered as its last attempt.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from squall.errors import InvalidInput
from squall.model.invocation import InvocationRecord

BY = ("function", "day")
DAY_S = 86400


@dataclass(frozen=True)
class PriceTable:
    """USD prices: per million requests, and per GB-second of billed duration."""

    request_usd_per_million: float = 0.20
    gb_second_usd: float = 0.0000166667

    def __post_init__(self) -> None:
        for name in ("request_usd_per_million", "gb_second_usd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidInput(f"{name}={value!r} must be a price >= 0", field=name)

    def public(self) -> dict[str, float]:
        return {
            "request_usd_per_million": self.request_usd_per_million,
            "gb_second_usd": self.gb_second_usd,
        }


def gb_seconds(record: InvocationRecord) -> float:
    """The record's billed compute: memory (GB) * billed duration (s); 0 if it never ran."""
    if record.billed_ms is None:
        return 0.0
    return record.memory_mb / 1024 * record.billed_ms / 1000


def metered(record: InvocationRecord) -> bool:
    return record.billed_ms is not None


def invocation_cost(record: InvocationRecord, prices: PriceTable) -> float:
    if not metered(record):
        return 0.0
    return prices.request_usd_per_million / 1_000_000 + gb_seconds(record) * prices.gb_second_usd


@dataclass
class Usage:
    requests: int = 0
    gb_seconds: float = 0.0
    billed_ms: int = 0

    def add(self, record: InvocationRecord) -> None:
        if not metered(record):
            return
        self.requests += 1
        self.gb_seconds += gb_seconds(record)
        self.billed_ms += record.billed_ms or 0

    def priced(self, prices: PriceTable) -> dict[str, Any]:
        request_usd = self.requests * prices.request_usd_per_million / 1_000_000
        compute_usd = self.gb_seconds * prices.gb_second_usd
        return {
            "requests": self.requests,
            "billed_ms": self.billed_ms,
            "gb_seconds": self.gb_seconds,
            "request_usd": request_usd,
            "compute_usd": compute_usd,
            "total_usd": request_usd + compute_usd,
        }


def check_by(by: object) -> str:
    if by not in BY:
        raise InvalidInput(f"by={by!r} is not one of {', '.join(BY)}", field="by")
    return str(by)


def day_of(record: InvocationRecord) -> str:
    """The UTC day an invocation is billed to: when it ended (or was created)."""
    at = record.end or record.start or record.created_at
    return time.strftime("%Y-%m-%d", time.gmtime(at))


def cost_report(
    records: Iterable[InvocationRecord],
    *,
    by: str,
    since: float,
    until: float,
    prices: PriceTable,
) -> dict[str, Any]:
    """Usage and cost of ``records`` grouped ``by`` function or UTC day, with a total."""
    groups: dict[str, Usage] = {}
    total = Usage()
    for record in records:
        key = record.function if by == "function" else day_of(record)
        groups.setdefault(key, Usage()).add(record)
        total.add(record)
    return {
        "by": by,
        "since": since,
        "until": until,
        "prices": prices.public(),
        "rows": [{by: key, **groups[key].priced(prices)} for key in sorted(groups)],
        "total": total.priced(prices),
    }
