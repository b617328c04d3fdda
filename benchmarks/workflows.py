"""Code workflows: a 10-step workflow of no-op steps, end to end, beside DBOS Transact.

Squall: ``Platform.start_workflow`` on an in-process platform (SQLite store, real sandboxes).
Each step runs in the workflow's sandbox and is checkpointed through the platform, committed to
SQLite before the workflow goes on. Reported: steps/s with runs started back to back and
``--concurrency`` runs at once, and per-step latency p50 (the time between consecutive step
checkpoints of one run, from the recorded history).

Peer: DBOS Transact (the ``dbos`` package) on SQLite, measured in the same run in a child
process when it is installed: the same workflow (10 ``@DBOS.step`` no-ops in a
``@DBOS.workflow``), one at a time for latency and on ``--concurrency`` threads for
throughput. Without the package the script says so and reports Squall alone.

Not the same durability: Squall's store is SQLite in WAL mode with ``synchronous=NORMAL`` (a
killed process loses nothing committed, a power cut may lose the last commits); DBOS keeps
SQLite's defaults (rollback journal, ``synchronous=FULL``: a sync to disk per commit), which is
much of the gap on this machine. The ratio lines say so.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file

STEPS = 10

APP = f"""
import squall

app = squall.App("bench-workflows")


def noop(i):
    return i


@app.workflow(concurrency={{concurrency}}, min_instances={{concurrency}})
def ten(wf, _):
    for i in range({STEPS}):
        wf.step(noop, i)
    return {STEPS}
"""

DBOS_CHILD = f"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
from dbos import DBOS

DBOS(config={{"name": "bench", "system_database_url": "sqlite:///" + sys.argv[1]}})


@DBOS.step()
def noop(i):
    return i


@DBOS.workflow()
def ten():
    for i in range({STEPS}):
        noop(i)
    return {STEPS}


DBOS.launch()
n, threads = int(sys.argv[2]), int(sys.argv[3])
for _ in range(5):
    ten()
latencies = []
for _ in range(n):
    t = time.perf_counter()
    ten()
    latencies.append(time.perf_counter() - t)
t = time.perf_counter()
with ThreadPoolExecutor(threads) as pool:
    list(pool.map(lambda _: ten(), range(n)))
elapsed = time.perf_counter() - t
print(json.dumps({{"latencies": latencies, "steps_per_s": n * {STEPS} / elapsed}}))
DBOS.destroy()
"""


async def run_squall(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from squall.engine.platform import Platform, PlatformConfig

    app = write_file(tmp / "bench_workflows.py", APP.format(concurrency=args.concurrency))
    platform = await Platform.start(PlatformConfig(app=str(app), data_dir=tmp / "data"))
    try:
        for n in range(5):  # warm the sandboxes
            await platform.start_workflow("ten", None, id=f"warm-{n}")
        await platform.wait_idle()

        for n in range(args.n):  # one at a time: each run's time from start to finish
            await platform.start_workflow("ten", None, id=f"seq-{n}")
            await platform.wait_idle()

        started = time.perf_counter()
        for n in range(args.n):
            await platform.start_workflow("ten", None, id=f"par-{n}")
        await platform.wait_idle()
        concurrent = time.perf_counter() - started

        gaps: list[float] = []
        runs: list[float] = []
        for n in range(args.n):
            run = await platform.workflows.get(f"seq-{n}")
            runs.append(run.updated_at - run.created_at)
            steps = await platform.workflow_history(f"seq-{n}")
            ends = [s.ended_at for s in steps if s.ended_at is not None]
            gaps += [b - a for a, b in itertools.pairwise(ends)]
        failed = [
            r.id for r in await platform.workflows.runs(limit=10 * args.n)
            if r.status != "completed"
        ]
        if failed:
            raise SystemExit(f"{len(failed)} runs did not complete: {failed[:5]}")
    finally:
        await platform.stop()
    return {
        "step_p50_s": percentile(gaps, 50),
        "run_p50_s": percentile(runs, 50),
        "steps_per_s": args.n * STEPS / concurrent,
    }


def run_dbos(args: argparse.Namespace, tmp: Path) -> dict[str, Any] | None:
    if importlib.util.find_spec("dbos") is None:
        log("the dbos package is not installed: no DBOS comparison (pip install dbos)")
        emit("dbos_available", 0, "bool", note="dbos is not installed; Squall measured alone")
        return None
    script = write_file(tmp / "dbos_child.py", DBOS_CHILD)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp / "dbos.sqlite"), str(args.n),
         str(args.concurrency)],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        log(f"DBOS did not run: {done.stderr.strip()[-500:]}")
        emit("dbos_available", 0, "bool", note="dbos failed to run on SQLite here")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer runs (about 20 s)")
    parser.add_argument("-n", type=int, default=None, help="workflow runs per case (200)")
    parser.add_argument("--concurrency", type=int, default=4, help="runs at once")
    args = parser.parse_args()
    args.n = args.n or (40 if args.quick else 200)
    emit_machine("workflows")
    with tempfile.TemporaryDirectory(prefix="squall-bench-workflows-") as tmp_name:
        tmp = Path(tmp_name)
        sys.path.insert(0, tmp_name)
        if not squall_available():
            raise SystemExit("squall.engine.platform does not import")
        log(f"squall: {args.n} runs of {STEPS} no-op steps, sequential then {args.concurrency}"
            " at once")
        squall = asyncio.run(run_squall(args, tmp))
        emit("workflow_step_latency_p50", squall["step_p50_s"] * 1000, "ms", system="squall",
             steps=STEPS, note="between consecutive checkpoints of a run")
        emit("workflow_step_latency_p50_per_run", squall["run_p50_s"] / STEPS * 1000, "ms",
             system="squall", steps=STEPS, note="run time / steps")
        emit("workflow_steps_per_s", squall["steps_per_s"], "steps/s", system="squall",
             concurrency=args.concurrency)
        emit("workflow_run_latency_p50", squall["run_p50_s"] * 1000, "ms", system="squall",
             steps=STEPS, note="start to completed, one run at a time")
        log("dbos: the same workflow on SQLite")
        dbos = run_dbos(args, tmp)
    if dbos is None:
        return
    dbos_run = percentile(dbos["latencies"], 50)
    dbos_p50 = dbos_run / STEPS
    emit("workflow_step_latency_p50", dbos_p50 * 1000, "ms", system="dbos", steps=STEPS,
         note="run time / steps")
    emit("workflow_run_latency_p50", dbos_run * 1000, "ms", system="dbos", steps=STEPS)
    emit("workflow_steps_per_s", dbos["steps_per_s"], "steps/s", system="dbos",
         concurrency=args.concurrency)
    caveat = (
        "dbos syncs SQLite to disk per commit (its defaults); squall runs WAL with"
        " synchronous=NORMAL (safe from a killed process, not from a power cut)"
    )
    emit("workflow_steps_per_s_ratio", ratio(squall["steps_per_s"], dbos["steps_per_s"]), "x",
         vs="dbos", note="squall / dbos, higher is better", caveat=caveat)
    emit("workflow_step_latency_p50_ratio", ratio(squall["run_p50_s"] / STEPS, dbos_p50), "x",
         vs="dbos", note="run time / steps, squall / dbos, lower is better", caveat=caveat)
    emit("workflow_run_latency_p50_ratio", ratio(squall["run_p50_s"], dbos_run), "x",
         vs="dbos", note="squall / dbos, lower is better", caveat=caveat)


if __name__ == "__main__":
    main()
