"""Simulate sensors putting readings onto the iot app's ``readings`` stream over HTTP.

    python examples/iot/load.py --devices 1000 --seconds 30
    python examples/iot/load.py --devices 50 --readings 20 --url http://127.0.0.1:8787

Each device sends readings in order (its ``i``-th after its ``i-1``-th is acknowledged);
devices are spread over ``--workers`` concurrent HTTP clients, each putting one reading per
device it owns per round in batches of up to 500 records. Readings are deterministic
(``celsius(device, i)``): every tenth device runs hot for three readings in every ten, so it
crosses the app's 80 °C threshold once per ten readings. It prints one JSON line a second
(``readings``, ``readings_per_s``) and a summary line at the end. The API key comes from
``--key`` or ``SQUALL_API_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

MAX_BATCH = 500  # records per PUT, the stream API's limit


def device_id(n: int) -> str:
    return f"dev-{n:04d}"


def is_hot(n: int) -> bool:
    return n % 10 == 0


def celsius(n: int, i: int) -> float:
    """Device ``n``'s ``i``-th reading: 20-34.5 °C, or 85-87 °C on a hot device's spikes."""
    if is_hot(n) and i % 10 in (5, 6, 7):
        return 85.0 + i % 10 - 5
    return 20.0 + (n * 7 + i * 13) % 30 / 2


class Counter:
    def __init__(self) -> None:
        self.sent = 0


async def worker(
    http: httpx.AsyncClient, devices: list[int], readings: int | None, deadline: float,
    counter: Counter,
) -> None:
    i = 0
    while (readings is None or i < readings) and time.monotonic() < deadline:
        for start in range(0, len(devices), MAX_BATCH):
            chunk = devices[start : start + MAX_BATCH]
            records = [
                {"partition_key": device_id(n),
                 "data": {"device": device_id(n), "i": i, "celsius": celsius(n, i)}}
                for n in chunk
            ]
            response = await http.post("/api/v1/streams/readings/records",
                                       json={"records": records})
            if response.status_code != 200:
                raise SystemExit(f"put failed: HTTP {response.status_code}: {response.text}")
            counter.sent += len(records)
        i += 1


async def report(counter: Counter, started: float) -> None:
    last = 0
    while True:
        await asyncio.sleep(1)
        sent = counter.sent
        print(json.dumps({"t": round(time.monotonic() - started, 1), "readings": sent,
                          "readings_per_s": sent - last}), flush=True)
        last = sent


async def run(args: argparse.Namespace) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    workers = max(1, min(args.workers, args.devices))
    started = time.monotonic()
    deadline = started + args.seconds if args.seconds else float("inf")
    counter = Counter()
    limits = httpx.Limits(max_connections=workers)
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60,
                                 limits=limits) as http:
        ticker = asyncio.create_task(report(counter, started))
        try:
            await asyncio.gather(*(
                worker(http, list(range(w, args.devices, workers)), args.readings, deadline,
                       counter)
                for w in range(workers)
            ))
        finally:
            ticker.cancel()
    elapsed = time.monotonic() - started
    return {"done": True, "devices": args.devices, "readings": counter.sent,
            "seconds": round(elapsed, 2), "readings_per_s": round(counter.sent / elapsed, 1)}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8787", help="the Squall gateway")
    parser.add_argument("--key", default=os.environ.get("SQUALL_API_KEY"),
                        help="an API key with the publish scope (default: $SQUALL_API_KEY)")
    parser.add_argument("--devices", type=int, default=1000, help="how many devices")
    parser.add_argument("--seconds", type=float, default=None,
                        help="stop after this long (default: 30 unless --readings is given)")
    parser.add_argument("--readings", type=int, default=None,
                        help="stop after this many readings per device")
    parser.add_argument("--workers", type=int, default=16, help="concurrent HTTP clients")
    args = parser.parse_args(argv)
    for name in ("devices", "workers", "readings", "seconds"):
        value = getattr(args, name)
        if value is not None and value <= 0:
            parser.error(f"--{name} must be positive, not {value}")
    if args.seconds is None and args.readings is None:
        args.seconds = 30.0
    return args


def main(argv: list[str]) -> None:
    summary = asyncio.run(run(parse(argv)))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
