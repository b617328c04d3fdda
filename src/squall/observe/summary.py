"""A per-function summary over a window, from the stored invocation records.

Invocations, errors and their rate, cold starts and duration percentiles come from the
records (so they outlive a restart). Throttles are not stored (a throttled call leaves no
record): they come from the pools' memory of recent throttles, so they restart at zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from squall.model.invocation import InvocationRecord, InvocationStatus


@dataclass
class _Tally:
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    durations: list[float] = field(default_factory=list)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0-100) of ascending ``sorted_values``; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(
    records: Iterable[InvocationRecord],
    functions: Iterable[str],
    throttles: Mapping[str, int],
    *,
    since: float,
    until: float,
) -> dict[str, Any]:
    """One row per function of the app (and any other a record names), by name."""
    tallies: dict[str, _Tally] = {name: _Tally() for name in functions}
    for record in records:
        tally = tallies.setdefault(record.function, _Tally())
        tally.invocations += 1
        if record.status != InvocationStatus.SUCCEEDED:
            tally.errors += 1
        if record.cold:
            tally.cold_starts += 1
        if record.duration_ms is not None:
            tally.durations.append(record.duration_ms)
    rows = []
    for name in sorted(tallies):
        tally = tallies[name]
        durations = sorted(tally.durations)
        rows.append(
            {
                "function": name,
                "invocations": tally.invocations,
                "errors": tally.errors,
                "error_rate": tally.errors / tally.invocations if tally.invocations else 0.0,
                "throttles": throttles.get(name, 0),
                "cold_starts": tally.cold_starts,
                "p50_ms": percentile(durations, 50),
                "p99_ms": percentile(durations, 99),
            }
        )
    return {"since": since, "until": until, "functions": rows}
