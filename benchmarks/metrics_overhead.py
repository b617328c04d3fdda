"""What metering costs on the hot path: warm invokes with the metrics hook on and off.

One platform, one warm no-op function. Rounds alternate between the invoker's ``observe``
hook as the platform sets it (counters and histograms updated once per finished invocation)
and the hook removed, so drift on this shared machine hits both the same. Reports the p50
latency of one caller, throughput of 4 concurrent callers, the difference, and the hook's
own cost per call measured in a tight loop.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, emit_machine, log, percentile, squall_available, write_file

APP = """
import squall

app = squall.App("bench-metrics")


@app.function(concurrency=4)
def noop(event, ctx):
    return None
"""


async def latency(platform: object, seconds: float) -> list[float]:
    invoke = platform.invoke  # type: ignore[attr-defined]
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        await invoke("noop", b"{}")
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


async def throughput(platform: object, seconds: float, callers: int) -> float:
    invoke = platform.invoke  # type: ignore[attr-defined]
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await invoke("noop", b"{}")
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return done / (time.perf_counter() - start)


async def main(rounds: int, seconds: float) -> None:
    from squall.engine.platform import Platform, PlatformConfig
    from squall.model.invocation import InvocationRecord

    with tempfile.TemporaryDirectory() as tmp:
        app = write_file(Path(tmp) / "app.py", APP)
        platform = await Platform.start(PlatformConfig(app=str(app), data_dir=Path(tmp) / "d"))
        try:
            invoker = platform._invoker
            hook = invoker.observe
            for _ in range(200):  # warm up: sandboxes, caches, label children
                await platform.invoke("noop", b"{}")
            results: dict[str, dict[str, list[float]]] = {
                "on": {"p50": [], "rate": []},
                "off": {"p50": [], "rate": []},
            }
            for n in range(rounds):
                for case in ("on", "off") if n % 2 == 0 else ("off", "on"):
                    invoker.observe = hook if case == "on" else None
                    samples = await latency(platform, seconds)
                    results[case]["p50"].append(percentile(samples, 50))
                    results[case]["rate"].append(await throughput(platform, seconds, 4))
                    log(
                        f"round {n} {case}: p50 {results[case]['p50'][-1]:.1f} us,"
                        f" {results[case]['rate'][-1]:.0f}/s"
                    )
            invoker.observe = hook
            on_p50 = statistics.median(results["on"]["p50"])
            off_p50 = statistics.median(results["off"]["p50"])
            on_rate = statistics.median(results["on"]["rate"])
            off_rate = statistics.median(results["off"]["rate"])
            emit("warm_invoke_p50_metrics_on", on_p50, "us", rounds=rounds)
            emit("warm_invoke_p50_metrics_off", off_p50, "us", rounds=rounds)
            emit("warm_invoke_p50_metrics_overhead", on_p50 - off_p50, "us")
            emit("warm_invokes_per_s_4_callers_metrics_on", on_rate, "1/s")
            emit("warm_invokes_per_s_4_callers_metrics_off", off_rate, "1/s")
            emit("warm_invokes_per_s_metrics_ratio", on_rate / off_rate, "x", goal=">= 0.97")

            [record] = await platform.list_invocations(function="noop", limit=1)
            probe = InvocationRecord(
                **{
                    f: getattr(record, f)
                    for f in record.__struct_fields__  # type: ignore[misc]
                }
            )
            assert hook is not None
            calls = 200_000
            start = time.perf_counter()
            for _ in range(calls):
                hook(probe)
            per_call = (time.perf_counter() - start) / calls * 1e6
            emit("metrics_observe_per_call", per_call, "us", calls=calls)
            scrape_start = time.perf_counter()
            body = await platform.observability.scrape()
            emit(
                "metrics_scrape", (time.perf_counter() - scrape_start) * 1000, "ms", bytes=len(body)
            )
        finally:
            await platform.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="alternating on/off rounds")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 1 s")
    args = parser.parse_args()
    if not squall_available():
        sys.exit("squall is not importable: run with .venv/bin/python")
    emit_machine("metrics_overhead.py")
    if args.quick:
        args.rounds, args.seconds = 2, 1.0
    asyncio.run(main(args.rounds, args.seconds))
