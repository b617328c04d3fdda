"""Matcher throughput: events/s with 10, 1,000 and 10,000 rules of mixed operators.

Squall's Matcher (one index per bus, candidates confirmed by compiled patterns) beside the
naive evaluation of every rule's compiled pattern against every event, in the same run.
Rules mix exact values, prefixes, numeric ranges, anything-but, exists and $or over a few
fields; events are drawn from the same vocabularies, so each matches a handful of rules.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from typing import Any

from _common import emit, emit_machine, log, ratio

from squall.engine.router import Matcher, compile_pattern

TYPES = [f"order.{verb}" for verb in ("placed", "paid", "shipped", "cancelled", "returned")]
REGIONS = [f"eu-{n}" for n in range(20)] + [f"us-{n}" for n in range(20)]
SKUS = [f"sku-{n:05d}" for n in range(5000)]


def rule(rng: random.Random, n: int) -> dict[str, Any]:
    kind = n % 6
    if kind == 0:
        return {"type": [rng.choice(TYPES)], "data": {"sku": [rng.choice(SKUS)]}}
    if kind == 1:
        return {
            "data": {"sku": [{"prefix": rng.choice(SKUS)[:8]}], "region": [rng.choice(REGIONS)]}
        }
    if kind == 2:
        low = rng.randrange(0, 900)
        return {
            "type": [rng.choice(TYPES)],
            "data": {"total": [{"numeric": [">=", low, "<", low + 50]}], "sku": [rng.choice(SKUS)]},
        }
    if kind == 3:
        return {
            "data": {
                "region": [{"anything-but": rng.sample(REGIONS, 3)}],
                "sku": [rng.choice(SKUS)],
            }
        }
    if kind == 4:
        return {"data": {"sku": [rng.choice(SKUS)], "coupon": [{"exists": True}]}}
    return {
        "$or": [
            {"data": {"sku": [rng.choice(SKUS)]}},
            {"data": {"region": [rng.choice(REGIONS)], "vip": [True]}},
        ]
    }


def event(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sku": rng.choice(SKUS),
        "region": rng.choice(REGIONS),
        "total": rng.randrange(0, 1000),
        "vip": rng.random() < 0.05,
        "lines": [{"sku": rng.choice(SKUS), "qty": rng.randrange(1, 5)} for _ in range(3)],
    }
    if rng.random() < 0.3:
        data["coupon"] = "SAVE10"
    return {
        "specversion": "1.0",
        "id": str(rng.random()),
        "source": "bench",
        "type": rng.choice(TYPES),
        "data": data,
    }


def naive_matcher(compiled: list[Any]) -> Any:
    """Every rule's compiled pattern against the event, one by one."""
    return lambda ev: [p for p in compiled if p.matches(ev)]


def rate(run: Any, events: list[dict[str, Any]], seconds: float) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for ev in events:
            run(ev)
        done += len(events)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 10 s instead of about 40 s")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    emit_machine("match")
    rng = random.Random(7)
    events = [event(rng) for _ in range(2000)]
    per_event_us: dict[int, float] = {}
    for count in (10, 1_000, 10_000):
        rules = [rule(rng, n) for n in range(count)]
        matcher = Matcher()
        for n, pattern in enumerate(rules):
            matcher.add(f"r{n}", pattern)
        matcher.rebalance()
        compiled = [compile_pattern(p) for p in rules]
        gc.collect()
        gc.freeze()  # the rules live as long as the bus: keep them out of the collector's way
        log(f"{count} rules")
        squall = rate(matcher.match, events, seconds)
        naive = rate(naive_matcher(compiled), events[:200], seconds / 2)
        gc.unfreeze()
        per_event_us[count] = 1e6 / squall
        emit("matcher_throughput", round(squall), "events/s", rules=count)
        emit("naive_throughput", round(naive), "events/s", rules=count)
        emit("matcher_speedup_vs_naive", ratio(squall, naive), "x", rules=count)
    emit(
        "matcher_time_per_event_ratio_10000_vs_10_rules",
        ratio(per_event_us[10_000], per_event_us[10]),
        "x",
        goal="<=1.5",
    )


if __name__ == "__main__":
    main()
