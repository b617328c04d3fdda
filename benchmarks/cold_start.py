"""Cold start: time from invoke to handler start when no sandbox is warm.

Squall: before every run ``scale_to_zero("noop")`` closes the function's idle sandboxes, then
``invoke("noop")`` has to get a new one (forked from the app's zygote). The handler returns
``time.monotonic_ns()`` as its first act; CLOCK_MONOTONIC is system-wide on Linux, so handler
start minus the caller's clock just before ``invoke`` is the cold-start latency as the caller
sees it (queueing, fork, sandbox setup, function init, IPC). Reported for two app files: one
whose module imports only the standard library (and squall), and one whose module also imports
numpy at the top. Runs are GAP_S apart, like scale-from-zero after idleness: the zygote then
has a pre-forked spare parked (a burst of cold starts faster than that forks directly).

Peer: what you pay without a zygote, starting a fresh interpreter per cold start:
``python -c "import <app module>; <handler>(...)"`` in a subprocess (same interpreter, same
venv, same module, same handler), measured from just before ``Popen`` to the handler's own
``monotonic_ns()``, which the child prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file

GAP_S = 0.05  # between cold starts

APPS: dict[str, str] = {
    "stdlib": """\
import json
import time

import squall

app = squall.App("bench-cold-stdlib")


@app.function(concurrency=1, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return time.monotonic_ns()
""",
    "numpy": """\
import time

import numpy as np

import squall

app = squall.App("bench-cold-numpy")
ZEROS = np.zeros(16)


@app.function(concurrency=1, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return time.monotonic_ns()
""",
}


def module_name(kind: str) -> str:
    return f"cold_app_{kind}"


def fresh_interpreter(app_dir: Path, kind: str, runs: int) -> list[int]:
    code = (
        f"import sys, {module_name(kind)} as m; "
        "sys.stdout.write(str(m.noop({}, None))); sys.stdout.flush()"
    )
    cmd = [sys.executable, "-c", code]
    out: list[int] = []
    for _ in range(runs):
        t0 = time.monotonic_ns()
        proc = subprocess.run(cmd, cwd=app_dir, capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"fresh interpreter failed: {proc.stderr.decode()[-2000:]}")
        out.append(int(proc.stdout) - t0)
    return out


async def squall_cold(
    app_path: Path, data_dir: Path, runs: int
) -> tuple[list[int], list[float], dict[str, int]]:
    """Cold-start latencies (ns), the sandboxes' reported init_ms, and anomaly counts."""
    from squall.engine.platform import Platform, PlatformConfig

    platform = await Platform.start(PlatformConfig(app=str(app_path), data_dir=data_dir))
    latencies: list[int] = []
    counts = {"not_cold": 0, "failed": 0}
    init_ms: list[float] = []
    try:
        for _ in range(3):  # the first sandbox of a fresh platform is not what we measure
            await platform.invoke("noop", b"{}")
        for _ in range(runs):
            await platform.scale_to_zero("noop")
            # Isolated cold starts: spaced like scale-from-zero after idleness, which
            # gives the zygote time to park a fresh spare (SQUALL_SPARE_SANDBOXES).
            await asyncio.sleep(GAP_S)
            t0 = time.monotonic_ns()
            rec = await platform.invoke("noop", b"{}")
            if rec.status != "succeeded" or rec.result is None:
                counts["failed"] += 1
                if counts["failed"] == 1:
                    log(f"squall: invoke failed: status={rec.status} error={rec.error}")
                continue
            if not rec.cold:
                counts["not_cold"] += 1
            if rec.init_ms is not None:
                init_ms.append(rec.init_ms)
            latencies.append(int(json.loads(rec.result)) - t0)
    finally:
        await platform.stop()
    return latencies, init_ms, counts


def report(name: str, kind: str, samples: list[int], **extra: object) -> None:
    for stat in (50, 99):
        value = percentile(samples, stat) / 1e6
        emit(f"{name}_p{stat}", value, "ms", module=kind, runs=len(samples), **extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 15 s instead of about 1 min")
    parser.add_argument("--runs", type=int, default=None, help="Squall cold starts per app (200)")
    parser.add_argument(
        "--peer-runs", type=int, default=None, help="fresh interpreters per app (100)"
    )
    args = parser.parse_args()
    runs = args.runs or (40 if args.quick else 200)
    peer_runs = args.peer_runs or (15 if args.quick else 100)
    have_squall = squall_available()
    if not have_squall:
        log("squall.engine.platform does not import yet; measuring the peer only")

    emit_machine("cold_start")
    with tempfile.TemporaryDirectory(prefix="squall-bench-cold-") as tmp_name:
        tmp = Path(tmp_name)
        for kind, source in APPS.items():
            app_path = write_file(tmp / f"{module_name(kind)}.py", source)
            log(f"fresh interpreter, {kind}: {peer_runs} runs")
            fresh_interpreter(tmp, kind, 2)  # page cache and .pyc files, off the clock
            fresh = fresh_interpreter(tmp, kind, peer_runs)
            report("fresh_interpreter_cold_start", kind, fresh)
            if not have_squall:
                continue
            log(f"squall, {kind}: {runs} cold starts")
            cold, init_ms, counts = asyncio.run(
                squall_cold(app_path, tmp / f"data-{kind}", runs)
            )
            extra: dict[str, object] = {k: v for k, v in counts.items() if v}
            if init_ms:
                extra["init_ms_p50"] = round(percentile(init_ms, 50), 3)
            report("squall_cold_start", kind, cold, **extra)
            emit(
                "cold_start_speedup_vs_fresh_interpreter",
                ratio(percentile(fresh, 50), percentile(cold, 50)),
                "x",
                module=kind,
                stat="p50",
                goal=">=20",
            )
            emit(
                "cold_start_speedup_vs_fresh_interpreter",
                ratio(percentile(fresh, 99), percentile(cold, 99)),
                "x",
                module=kind,
                stat="p99",
            )


if __name__ == "__main__":
    main()
