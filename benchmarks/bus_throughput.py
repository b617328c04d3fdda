"""Event bus throughput: publish -> match -> durable delivery -> no-op function, end to end.

The app has 36 rules of mixed patterns (exact types, numeric ranges, prefixes, anything-but,
exists, booleans, ``$or``) on the default bus, stacked on four functions, plus two cross-cutting
rules (audit, analytics) on two more functions. Every function returns the id of the event it
got. Events are drawn so that each matches exactly one rule (``fanout=1``), or one rule and both
cross-cutting ones (``fanout=3``); the bus's own matcher checks that before anything is timed.

Squall in this process (``mode=platform``): ``--publishers`` concurrent tasks publish the burst
in batches of ``--batch`` events (``Platform.publish``: one durable commit per call, grouped
with the other publishers' commits); throughput is events over the time from the first publish
until ``wait_idle()`` returns. Then every invocation record is read back and checked to have
succeeded, ``fanout`` of them per event. Publish acknowledgement latency is how long a
``publish`` call takes; publish-to-start is the invocation's ``start`` in its record minus the
wall-clock time its event's publish returned. A light phase publishes one event every
``--pace-ms`` for latencies without a queue.

Squall over HTTP (``mode=http``): ``squall up`` on the same app; the burst as CloudEvents
batch-mode requests (``POST /api/v1/events``, ``application/cloudevents-batch+json``,
``--batch`` events each) over ``--http-connections`` keep-alive connections; done once no
record is queued or retrying, after which every record is checked through the admin API.

Peers, in the same run: Celery and Dramatiq on the local Redis (``_peers.py``), the producer
sending one no-op task per event; a peer has no rules, so the producer does the routing by
picking the task. Ratios compare events/s with ``fanout=1``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    emit,
    emit_machine,
    log,
    percentile,
    ratio,
    squall_available,
    squall_up,
    write_file,
)
from _peers import Result, add_peer_arguments, run_celery, run_dramatiq

GOAL = ">=5000"
ADMIN_KEY = "sq_bench_bus_throughput_0123456789abcdef"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
FUNCTIONS = ("billing", "shipping", "inventory", "notify")
CROSS_CUTTING = (("audit", {"data": {"audit": [True]}}), ("analytics", {"data": {"vip": [True]}}))
NOUNS = ("order", "cart", "payment", "refund", "invoice", "parcel")
TYPES = [f"shop.{noun}.{verb}" for noun in NOUNS for verb in ("created", "updated")]
REGIONS = [f"eu-{n}" for n in range(6)] + [f"us-{n}" for n in range(6)]
SOURCES = ("web/checkout", "web/account", "mobile/ios", "mobile/android", "pos/store-7")

Acks = dict[str, tuple[float, float]]  # event id -> (wall time before publish, after its ack)


def type_rules(group: int, event_type: str) -> list[dict[str, Any]]:
    """Three rules on one event type that split its events between them."""
    base: dict[str, Any] = {"type": [event_type]}
    over_100 = [{"numeric": [">=", 100]}]
    if group % 3 == 0:  # numeric ranges, a prefix and anything-but
        return [
            {**base, "data": {"total": [{"numeric": ["<", 100]}]}},
            {**base, "data": {"total": over_100, "region": [{"prefix": "eu-"}]}},
            {**base, "data": {"total": over_100, "region": [{"anything-but": {"prefix": "eu-"}}]}},
        ]
    if group % 3 == 1:  # exists and exact values
        return [
            {**base, "data": {"coupon": [{"exists": True}]}},
            {**base, "data": {"coupon": [{"exists": False}], "channel": ["app"]}},
            {**base, "data": {"coupon": [{"exists": False}], "channel": ["push", "sms"]}},
        ]
    return [  # source prefixes and $or
        {**base, "source": [{"prefix": "web/"}]},
        {**base, "source": [{"prefix": "mobile/"}], "data": {"channel": ["app"]}},
        {
            **base,
            "$or": [
                {"source": [{"prefix": "pos/"}]},
                {"source": [{"prefix": "mobile/"}], "data": {"channel": ["push", "sms"]}},
            ],
        },
    ]


def rules() -> list[tuple[str, dict[str, Any]]]:
    """(function, pattern) for every rule of the app."""
    found: list[tuple[str, dict[str, Any]]] = []
    for group, event_type in enumerate(TYPES):
        for pattern in type_rules(group, event_type):
            found.append((FUNCTIONS[len(found) % len(FUNCTIONS)], pattern))
    return found + list(CROSS_CUTTING)


def app_source(concurrency: int) -> str:
    by_function: dict[str, list[dict[str, Any]]] = {}
    for function, pattern in rules():
        by_function.setdefault(function, []).append(pattern)
    lines = ["import squall", "", 'app = squall.App("bench-bus")', ""]
    for function, patterns in by_function.items():
        lines += ["", *(f"@app.on(pattern={pattern!r})" for pattern in patterns)]
        lines += [
            f"@app.function(concurrency={concurrency}, keep_alive_s=3600, timeout_s=60)",
            f"def {function}(event, ctx):",
            '    return event["id"]',
            "",
        ]
    return "\n".join(lines)


def make_events(first: int, count: int, fanout: bool, seed: int) -> list[dict[str, Any]]:
    """``count`` events (ids from ``first``), checked to match 1 rule of the app (or 3)."""
    from squall.engine.router import Matcher

    matcher = Matcher()
    for n, (_, pattern) in enumerate(rules()):
        matcher.add(f"r{n}", pattern)
    matcher.rebalance()
    rng = random.Random(seed)
    events = []
    for n in range(first, first + count):
        data: dict[str, Any] = {
            "order_id": f"o-{n:08d}",
            "total": round(rng.uniform(1, 400), 2),
            "region": rng.choice(REGIONS),
            "channel": rng.choice(("app", "push", "sms")),
            "lines": [
                {"sku": f"sku-{rng.randrange(5000):05d}", "qty": rng.randrange(1, 4)}
                for _ in range(2)
            ],
            "audit": fanout,
            "vip": fanout,
        }
        if rng.random() < 0.3:
            data["coupon"] = "SAVE10"
        events.append(
            {
                "specversion": "1.0",
                "id": f"ev-{n:08d}",
                "source": rng.choice(SOURCES),
                "type": rng.choice(TYPES),
                "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "datacontenttype": "application/json",
                "data": data,
            }
        )
    want = 3 if fanout else 1
    wrong = [ev["id"] for ev in events if len(matcher.match(ev)) != want]
    if wrong:
        raise AssertionError(f"{len(wrong)} events do not match {want} rules: {wrong[:3]}")
    return events


@dataclass
class BusRun:
    """One burst or light phase of published events and what came of them."""

    mode: str  # "platform" or "http"
    events: int
    fanout: int
    elapsed_s: float = 0.0
    publish_s: float = 0.0
    ack_ms: list[float] = field(default_factory=list)  # one per publish call or request
    to_start_ms: list[float] = field(default_factory=list)  # publish ack -> invocation start
    send_to_start_ms: list[float] = field(default_factory=list)  # before publish -> start
    not_delivered: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s else 0.0

    def _extra(self, **more: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {"mode": self.mode, **more, **self.config}
        if self.not_delivered:
            extra["not_delivered"] = self.not_delivered
        return extra

    def report_burst(self) -> None:
        extra = self._extra(load="burst", fanout=self.fanout, events=self.events)
        goal = {"goal": GOAL} if self.fanout == 1 else {}
        deliveries = {"deliveries_per_s": round(self.throughput * self.fanout)}
        emit("squall_bus_throughput", self.throughput, "events/s", **goal, **extra, **deliveries)
        publish_rate = self.events / self.publish_s if self.publish_s else 0.0
        emit("squall_bus_publish_rate", publish_rate, "events/s", **extra)
        for p in (50, 99):
            emit(f"squall_bus_publish_ack_p{p}", percentile(self.ack_ms, p), "ms", **extra)
        if self.to_start_ms:
            for p in (50, 99):
                value = percentile(self.to_start_ms, p)
                emit(f"squall_bus_publish_to_start_p{p}_under_burst", value, "ms", **extra)

    def report_light(self) -> None:
        extra = self._extra(load="light", samples=len(self.to_start_ms))
        for p in (50, 99):
            emit(f"squall_bus_publish_ack_p{p}", percentile(self.ack_ms, p), "ms", batch=1, **extra)
        for p in (50, 99):
            value = percentile(self.to_start_ms, p)
            emit(f"squall_bus_publish_to_start_p{p}", value, "ms", **extra)
        value = percentile(self.send_to_start_ms, 50)
        emit("squall_bus_send_to_start_p50", value, "ms", **extra)


def check(run: BusRun, acks: Acks, found: list[Any]) -> None:
    """Latencies from the records of ``run``'s events; count deliveries that did not happen."""
    succeeded: Counter[str] = Counter()
    for record in found:
        event_id = json.loads(record.result) if record.result else None
        if event_id not in acks or record.status != "succeeded" or record.start is None:
            continue
        succeeded[event_id] += 1
        sent, acked = acks[event_id]
        run.to_start_ms.append((record.start - acked) * 1e3)
        run.send_to_start_ms.append((record.start - sent) * 1e3)
    run.not_delivered = sum(max(0, run.fanout - succeeded[event_id]) for event_id in acks)


# --- squall, in process ----------------------------------------------------------------------


async def run_platform(args: argparse.Namespace, tmp: Path) -> list[BusRun]:
    from squall.engine.platform import Platform, PlatformConfig
    from squall.model.cloudevent import CloudEvent

    app_path = write_file(tmp / "bus_app.py", app_source(args.concurrency))
    platform = await Platform.start(PlatformConfig(app=str(app_path), data_dir=tmp / "data"))
    functions = [fn.name for fn in platform.functions()]
    config = {"rules": len(platform.rules()), "concurrency": args.concurrency}

    async def publish(batch: list[dict[str, Any]], acks: Acks) -> float:
        sent, t0 = time.time(), time.perf_counter()
        await platform.publish([CloudEvent.from_json_dict(e) for e in batch])
        took, acked = time.perf_counter() - t0, time.time()
        for e in batch:
            acks[e["id"]] = (sent, acked)
        return took * 1e3

    async def new_records(since: float) -> list[Any]:
        found = []
        for function in functions:
            for record in await platform.list_invocations(function=function, limit=10**7):
                if record.created_at >= since:
                    found.append(record)
        return found

    runs: list[BusRun] = []
    try:
        log("platform: warm-up")
        warm = make_events(10**7, 300, False, seed=1) + make_events(10**7 + 300, 100, True, 2)
        for start in range(0, len(warm), 100):
            await publish(warm[start : start + 100], {})
        await platform.wait_idle(timeout=120)

        gc.collect()
        log(f"platform: light phase, {args.light_n} events {args.pace_ms:.0f} ms apart")
        light = BusRun("platform", args.light_n, 1, config=config)
        acks: Acks = {}
        since = time.time()
        for ev in make_events(0, args.light_n, False, seed=3):
            light.ack_ms.append(await publish([ev], acks))
            await asyncio.sleep(args.pace_ms / 1e3)
        await platform.wait_idle(timeout=60)
        check(light, acks, await new_records(since))
        light.report_light()
        runs.append(light)

        first = args.light_n
        for fanout, count in ((False, args.n), (True, args.fanout_n)):
            events = make_events(first, count, fanout, seed=4 + fanout)
            first += count
            settings = {"batch": args.batch, "publishers": args.publishers}
            run = BusRun("platform", count, 3 if fanout else 1, config={**config, **settings})
            acks = {}
            batches = [events[i : i + args.batch] for i in range(0, count, args.batch)]

            async def publisher(
                mine: list[list[dict[str, Any]]], run: BusRun = run, acks: Acks = acks
            ) -> None:
                for batch in mine:
                    run.ack_ms.append(await publish(batch, acks))

            gc.collect()
            log(f"platform: burst of {count} events, fanout {run.fanout}")
            since = time.time()
            t0 = time.perf_counter()
            await asyncio.gather(
                *(publisher(batches[k :: args.publishers]) for k in range(args.publishers))
            )
            run.publish_s = time.perf_counter() - t0
            await platform.wait_idle(timeout=600)
            run.elapsed_s = time.perf_counter() - t0
            log(f"platform: {run.throughput:.0f} events/s; reading back the records")
            check(run, acks, await new_records(since))
            run.report_burst()
            runs.append(run)
    finally:
        await platform.stop()
    return runs


# --- squall, over HTTP -----------------------------------------------------------------------


async def run_http(args: argparse.Namespace, tmp: Path) -> BusRun:
    import httpx

    workdir = tmp / "http"
    workdir.mkdir()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": BATCH_MEDIA_TYPE}
    connections = args.http_connections
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    settings = {"batch": args.batch, "connections": connections, "concurrency": args.concurrency}
    run = BusRun("http", args.http_n, 1, config={"rules": len(rules()), **settings})
    with squall_up(workdir, app_source(args.concurrency), ADMIN_KEY) as url:
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=60
        ) as http:

            async def post(batch: list[dict[str, Any]]) -> float:
                t0 = time.perf_counter()
                response = await http.post("/api/v1/events", content=json.dumps(batch))
                took = time.perf_counter() - t0
                if response.status_code != 202:
                    raise RuntimeError(f"publish: {response.status_code} {response.text[:500]}")
                return took * 1e3

            async def settled(timeout: float) -> None:
                deadline = time.monotonic() + timeout
                while True:
                    pending = 0
                    for status in ("queued", "retrying"):
                        page = await http.get(
                            "/api/v1/invocations", params={"status": status, "limit": "1"}
                        )
                        pending += len(page.json()["invocations"])
                    if not pending:
                        return
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"deliveries still pending after {timeout} s")
                    await asyncio.sleep(0.02)

            log("http: warm-up")
            warm = make_events(10**7, 400, False, seed=1)
            await asyncio.gather(*(post(warm[i : i + 100]) for i in range(0, 400, 100)))
            await settled(120)

            events = make_events(0, args.http_n, False, seed=6)
            batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]

            async def sender(mine: list[list[dict[str, Any]]]) -> None:
                for batch in mine:
                    run.ack_ms.append(await post(batch))

            gc.collect()
            log(f"http: burst of {len(events)} events over {connections} connections")
            since = time.time()
            t0 = time.perf_counter()
            await asyncio.gather(*(sender(batches[k::connections]) for k in range(connections)))
            run.publish_s = time.perf_counter() - t0
            await settled(600)
            run.elapsed_s = time.perf_counter() - t0
            log(f"http: {run.throughput:.0f} events/s; checking the records")
            succeeded = 0
            for function in FUNCTIONS:
                cursor: str | None = None
                while True:
                    params = {"function": function, "limit": "1000"}
                    if cursor:
                        params["before"] = cursor
                    page = (await http.get("/api/v1/invocations", params=params)).json()
                    for row in page["invocations"]:
                        if row["created_at"] >= since and row["status"] == "succeeded":
                            succeeded += 1
                    cursor = page["next"]
                    if not cursor:
                        break
            run.not_delivered = len(events) - succeeded
    return run


# --- peers and main ----------------------------------------------------------------------------


def report_peer(result: Result) -> None:
    extra: dict[str, Any] = {"n": result.n, **result.config}
    name = result.name
    emit(f"{name}_task_per_event_throughput", result.throughput, "events/s", **extra)
    light = result.light_latencies_ns
    if light:
        value = percentile(light, 50) / 1e6
        emit(f"{name}_task_per_event_send_to_start_p50", value, "ms", load="light", **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 20 s instead of 1-2 min")
    parser.add_argument("-n", type=int, default=None, help="events per burst, fanout 1 (20000)")
    parser.add_argument("--fanout-n", type=int, default=None, help="events, fanout 3 (6000)")
    parser.add_argument("--http-n", type=int, default=None, help="events over HTTP (10000)")
    parser.add_argument("--peer-n", type=int, default=None, help="tasks per peer (5000)")
    parser.add_argument("--batch", type=int, default=100, help="events per publish or request")
    parser.add_argument("--publishers", type=int, default=4, help="concurrent publish calls")
    parser.add_argument("--http-connections", type=int, default=4)
    parser.add_argument("--light-n", type=int, default=None, help="light-phase events (200)")
    parser.add_argument("--pace-ms", type=float, default=5.0, help="light-phase spacing")
    parser.add_argument("--concurrency", type=int, default=1, help="sandboxes per function")
    add_peer_arguments(parser)
    parser.add_argument(
        "--only",
        choices=["platform", "http", "celery", "dramatiq"],
        action="append",
        help="run only these",
    )
    args = parser.parse_args()
    quick = args.quick
    args.n = args.n or (3000 if quick else 20000)
    args.fanout_n = args.fanout_n or (1000 if quick else 6000)
    args.http_n = args.http_n or (2000 if quick else 10000)
    args.peer_n = args.peer_n or (1000 if quick else 5000)
    args.light_n = args.light_n or (50 if quick else 200)
    only = set(args.only or ["platform", "http", "celery", "dramatiq"])

    emit_machine("bus_throughput")
    squall: dict[str, BusRun] = {}
    peers: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="squall-bench-bus-") as tmp_name:
        tmp = Path(tmp_name)
        sys.path.insert(0, tmp_name)
        if only & {"platform", "http"} and not squall_available():
            log("squall.engine.platform does not import yet; skipping Squall")
            only -= {"platform", "http"}
        if "platform" in only:
            light, single, _ = asyncio.run(run_platform(args, tmp))
            squall["platform"], squall["light"] = single, light
        if "http" in only:
            squall["http"] = asyncio.run(run_http(args, tmp))
            squall["http"].report_burst()
        pace_s = args.pace_ms / 1e3
        if "dramatiq" in only:
            peers["dramatiq"] = run_dramatiq(args, tmp, args.peer_n, args.light_n, pace_s)
            report_peer(peers["dramatiq"])
        if "celery" in only:
            peers["celery"] = run_celery(args, tmp, args.peer_n, args.light_n, pace_s)
            report_peer(peers["celery"])

    for peer, result in peers.items():
        for mode in ("platform", "http"):
            if mode in squall:
                value = ratio(squall[mode].throughput, result.throughput)
                emit(f"bus_throughput_ratio_squall_vs_{peer}", value, "x", mode=mode, fanout=1)
        if "light" in squall and result.light_latencies_ns:
            value = ratio(
                percentile(result.light_latencies_ns, 50) / 1e6,
                percentile(squall["light"].send_to_start_ms, 50),
            )
            emit(f"bus_send_to_start_p50_ratio_{peer}_vs_squall", value, "x", load="light")


if __name__ == "__main__":
    main()
