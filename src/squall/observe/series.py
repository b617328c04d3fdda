"""Time series for the dashboard: invocations, errors, cold starts, p50/p99 and cost per bucket.

Computed from the stored invocation records created in the window, like the summary and the
cost report, so they outlive a restart. Buckets are ``step`` seconds wide and aligned to
``since``; a bucket without invocations has zero counts and null percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from squall.errors import InvalidInput
from squall.model.invocation import InvocationRecord, InvocationStatus
from squall.observe.cost import PriceTable, invocation_cost
from squall.observe.summary import percentile

MAX_POINTS = 1440  # a day at one point a minute; more would not fit a chart anyway
MIN_STEP_S = 1.0


@dataclass
class _Bucket:
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    cost_usd: float = 0.0
    durations: list[float] = field(default_factory=list)

    def add(self, record: InvocationRecord, prices: PriceTable) -> None:
        self.invocations += 1
        if record.status != InvocationStatus.SUCCEEDED:
            self.errors += 1
        if record.cold:
            self.cold_starts += 1
        if record.duration_ms is not None:
            self.durations.append(record.duration_ms)
        self.cost_usd += invocation_cost(record, prices)

    def point(self, start: float) -> dict[str, Any]:
        durations = sorted(self.durations)
        return {
            "t": start,
            "invocations": self.invocations,
            "errors": self.errors,
            "cold_starts": self.cold_starts,
            "p50_ms": percentile(durations, 50),
            "p99_ms": percentile(durations, 99),
            "cost_usd": self.cost_usd,
        }


def check_step(since: float, until: float, step: float) -> int:
    """The number of buckets ``step`` cuts the window into; InvalidInput if too few or many."""
    if not step >= MIN_STEP_S:  # NaN too
        raise InvalidInput(f"step={step!r} must be at least {MIN_STEP_S:g} s", field="step")
    if since > until:
        raise InvalidInput(f"since={since!r} is after until={until!r}", field="since")
    if not math.isfinite(until - since):
        raise InvalidInput(f"the window {since!r} to {until!r} is too long", field="since")
    count = max(1, -int(-(until - since) // step))  # ceil, and one bucket for an empty window
    if count > MAX_POINTS:
        raise InvalidInput(
            f"step={step:g} cuts the {until - since:g} s window into {count} points (at most"
            f" {MAX_POINTS}): use a larger step or a shorter window",
            field="step",
        )
    return count


def series(
    records: Iterable[InvocationRecord],
    *,
    since: float,
    until: float,
    step: float,
    prices: PriceTable,
    function: str | None = None,
) -> dict[str, Any]:
    """One point per ``step`` from ``since``: what the invocations created in it did."""
    count = check_step(since, until, step)
    buckets = [_Bucket() for _ in range(count)]
    for record in records:
        if function is not None and record.function != function:
            continue
        index = int((record.created_at - since) // step)
        if 0 <= index < count:
            buckets[index].add(record, prices)
    return {
        "since": since,
        "until": until,
        "step": step,
        "function": function,
        "points": [bucket.point(since + i * step) for i, bucket in enumerate(buckets)],
    }
