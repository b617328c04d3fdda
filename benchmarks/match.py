"""Matcher throughput: events/s with 10, 1,000 and 10,000 rules of mixed operators.

Squall's Matcher (one automaton per bus) beside the naive evaluation of every rule's
compiled pattern against every event, in the same run. Rules mix exact values, prefixes,
numeric ranges, anything-but, exists and $or over a few fields. Two series:

- ``mixed``: events are drawn from the same vocabularies as all the rules, so the more
  rules, the more each event matches (0.002 rules per event at 10 rules, about 3 at 10,000):
  the time per event grows with what the matcher must find, not only with the rule count.
- ``bystanders``: the same 10 rules meet every event, and the other rules (same shapes and
  operators, same fields) name SKUs and regions the events never hold — as on a real bus,
  where most rules are about other events. Each event matches the same rules at every size,
  so the ratio of times per event measures what the rule count alone costs.
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
# What bystander rules name instead: values no generated event holds.
OTHER_REGIONS = [f"ap-{n}" for n in range(40)]
OTHER_SKUS = [f"item-{n:05d}" for n in range(5000)]
HOT_SKUS = SKUS[:5]  # what the bystanders series' events and its 10 matching rules use


def rule(
    rng: random.Random, n: int, skus: list[str] = SKUS, regions: list[str] = REGIONS
) -> dict[str, Any]:
    kind = n % 6
    if kind == 0:
        return {"type": [rng.choice(TYPES)], "data": {"sku": [rng.choice(skus)]}}
    if kind == 1:
        return {
            "data": {"sku": [{"prefix": rng.choice(skus)[:8]}], "region": [rng.choice(regions)]}
        }
    if kind == 2:
        low = rng.randrange(0, 900)
        return {
            "type": [rng.choice(TYPES)],
            "data": {"total": [{"numeric": [">=", low, "<", low + 50]}], "sku": [rng.choice(skus)]},
        }
    if kind == 3:
        return {
            "data": {
                "region": [{"anything-but": rng.sample(regions, 3)}],
                "sku": [rng.choice(skus)],
            }
        }
    if kind == 4:
        return {"data": {"sku": [rng.choice(skus)], "coupon": [{"exists": True}]}}
    return {
        "$or": [
            {"data": {"sku": [rng.choice(skus)]}},
            {"data": {"region": [rng.choice(regions)], "vip": [True]}},
        ]
    }


def event(rng: random.Random, skus: list[str] = SKUS) -> dict[str, Any]:
    data: dict[str, Any] = {
        "sku": rng.choice(skus),
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


def rules_for(series: str, count: int, rng: random.Random) -> list[dict[str, Any]]:
    if series == "mixed":
        return [rule(rng, n) for n in range(count)]
    hot = random.Random(1)  # the same 10 rules at every size
    return [rule(hot, n, HOT_SKUS) for n in range(10)] + [
        rule(rng, n, OTHER_SKUS, OTHER_REGIONS) for n in range(10, count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about 20 s instead of about 80 s")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 4.0
    emit_machine("match")
    for series in ("mixed", "bystanders"):
        rng = random.Random(7)
        skus = SKUS if series == "mixed" else HOT_SKUS
        events = [event(rng, skus) for _ in range(2000)]
        per_event_us: dict[int, float] = {}
        for count in (10, 1_000, 10_000):
            rules = rules_for(series, count, rng)
            matcher = Matcher()
            for n, pattern in enumerate(rules):
                matcher.add(f"r{n}", pattern)
            compiled = [compile_pattern(p) for p in rules]
            matched = sum(len(matcher.match(ev)) for ev in events) / len(events)
            gc.collect()
            gc.freeze()  # the rules live as long as the bus: keep them out of the collector's way
            log(f"{series}: {count} rules, {matched:.3f} matches per event")
            squall = rate(matcher.match, events, seconds)
            naive = rate(naive_matcher(compiled), events[:200], seconds / 2)
            gc.unfreeze()
            per_event_us[count] = 1e6 / squall
            tags = {"rules": count, "series": series}
            emit("matcher_throughput", round(squall), "events/s", **tags, goal=">=100000")
            emit("naive_throughput", round(naive), "events/s", **tags)
            emit("matcher_speedup_vs_naive", ratio(squall, naive), "x", **tags)
            emit("matches_per_event", round(matched, 3), "rules", **tags)
        emit(
            "matcher_time_per_event_ratio_10000_vs_10_rules",
            ratio(per_event_us[10_000], per_event_us[10]),
            "x",
            series=series,
            goal="<=1.5",
        )


if __name__ == "__main__":
    main()
