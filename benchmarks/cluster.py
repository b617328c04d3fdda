"""The distributed backend's durable async no-op throughput and enqueue->start latency, beside
the embedded backend, end to end through the gateway's admin API.

Three systems run one after the other, each on the same app (one ``noop`` function,
``--concurrency`` sandboxes per node, returning ``time.time_ns()``):

* ``embedded``: ``squall up`` on SQLite, one process (the baseline);
* ``distributed_1inv``: ``squall node`` processes on PostgreSQL and NATS JetStream, one
  gateway, one invoker and one scheduler;
* ``distributed_2inv``: the same with two invokers.

Each distributed run gets a fresh PostgreSQL schema and NATS subject prefix, dropped (schema,
CASCADE) and deleted (the ``<PREFIX>_WORK`` and ``<PREFIX>_DELAY`` streams) afterwards.

Load comes from this process: ``--connections`` keep-alive httpx connections, each a closed
loop of ``POST /api/v1/functions/noop/invoke`` with ``X-Squall-Invocation-Type: Event`` (202
once the invocation is durable). After a warm-up, a light phase submits ``--light-n``
invocations one every ``--pace-ms`` from one connection; then a burst of ``-n``. Throughput is
the burst's N over the time from its first submit until no record is ``queued``, ``running``
or ``retrying`` (polled every 20 ms). Outside the timed window every record is read back
(``GET /api/v1/invocations/{id}``), checked to have succeeded, and "handler's
``time.time_ns()`` - the wall clock just before its POST" is its enqueue->start latency.

CPU: the seconds each node's process tree (the node and its zygote and sandboxes), every
``postgres`` and ``nats-server`` process on the machine, and this load generator used during
the burst, per invocation. PostgreSQL and NATS figures include whatever else the machine ran
against them meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import _cluster_floors
import httpx
from _common import emit, emit_machine, log, percentile, ratio, stop_process, write_file
from _distributed import add_server_arguments, remove_run

if TYPE_CHECKING:
    from squall.engine.platform import Platform

FINISHED = ("succeeded", "failed", "dead_lettered")

APP_SOURCE = """\
import time

import squall

app = squall.App("bench-cluster")


@app.function(concurrency={concurrency}, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return time.time_ns()
"""

ADMIN_KEY = "sq_bench-admin-key-" + secrets.token_hex(16)
MASTER_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
ASYNC = {"X-Squall-Invocation-Type": "Event", "Content-Type": "application/json"}
INVOKE = "/api/v1/functions/noop/invoke"
PENDING = ("queued", "running", "retrying")
SQUALL = str(Path(sys.executable).parent / "squall")
CLK_TCK = os.sysconf("SC_CLK_TCK")

SYSTEMS = {
    "embedded": None,
    "distributed_1inv": {"gw": "gateway", "inv1": "invoker", "sch": "scheduler"},
    "distributed_2inv": {"gw": "gateway", "inv1": "invoker", "inv2": "invoker", "sch": "scheduler"},
}


# --- CPU accounting --------------------------------------------------------------------


def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, comm, utime + stime in s) of every process we may read."""
    stats: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        rest = raw[raw.rindex(")") + 2 :].split()
        # after comm: state ppid ... utime (14th field overall) stime (15th)
        stats[int(entry)] = (int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return stats


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each group's process trees, and of PostgreSQL and NATS."""
    stats = _proc_stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> float:
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid in stats:
                total += stats[pid][2]
            todo.extend(children.get(pid, ()))
        return total

    out = {name: sum(tree(pid) for pid in pids) for name, pids in groups.items()}
    # This process and its own children (a gateway node's zygote), not the nodes it started.
    # Its own share is read to the nanosecond: in clock ticks (10 ms) a short burst that
    # submits from here can round to no CPU at all.
    me = os.getpid()
    own_ticks = stats[me][2] if me in stats else 0.0
    out["bench"] = tree(me) - own_ticks + time.process_time() - sum(out.values())
    out["postgres"] = sum(s for _, comm, s in stats.values() if comm in ("postgres", "postmaster"))
    out["nats"] = sum(s for _, comm, s in stats.values() if comm == "nats-server")
    return out


# --- the systems -----------------------------------------------------------------------


class Target(Protocol):
    """Where invocations are submitted and their records read."""

    async def submit(self) -> tuple[str, int, int]:
        """One async invoke: its id, the wall clock before the call, the call's latency (ns)."""
        ...

    async def wait_idle(self, submitted: list[tuple[str, int, int]], timeout: float) -> None:
        """Until every invocation is finished."""
        ...

    async def outcome(self, invocation_id: str) -> tuple[str, int | None]:
        """The record's status and, when it succeeded, the handler's ``time.time_ns()``."""
        ...


class PlatformTarget:
    """The platform in this process: the embedded one, or a cluster's gateway node."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    async def submit(self) -> tuple[str, int, int]:
        sent = time.time_ns()
        record = await self.platform.invoke_async("noop", b"{}")
        return record.id, sent, time.time_ns() - sent

    async def wait_idle(self, submitted: list[tuple[str, int, int]], timeout: float) -> None:
        # Embedded: nothing leased or queued. A gateway node: nothing on the streams (a
        # delivery leaves the work-queue stream when its invoker acks it, after the commit).
        await self.platform.wait_idle(timeout)

    async def outcome(self, invocation_id: str) -> tuple[str, int | None]:
        record = await self.platform.get_invocation(invocation_id)
        if record.status != "succeeded" or record.result is None:
            return record.status, None
        return record.status, int(record.result)


class HttpTarget:
    """The gateway's admin API."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def submit(self) -> tuple[str, int, int]:
        sent = time.time_ns()
        response = await self.http.post(INVOKE, content=b"{}", headers=ASYNC)
        acked = time.time_ns()
        if response.status_code != 202:
            raise RuntimeError(f"invoke answered {response.status_code}: {response.text[:500]}")
        return str(response.json()["invocation_id"]), sent, acked - sent

    async def wait_idle(self, submitted: list[tuple[str, int, int]], timeout: float) -> None:
        # The last few submitted finish about last; only then ask whether anything of the
        # function is still pending (a scan of its records: too dear to poll all along).
        deadline = time.monotonic() + timeout
        last = [inv_id for inv_id, _, _ in submitted[-8:]]
        while time.monotonic() < deadline:
            if last:
                status, _ = await self.outcome(last[-1])
                if status in FINISHED:
                    last.pop()
                    continue
            elif not await self._pending():
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"invocations still pending after {timeout:.0f} s")

    async def _pending(self) -> bool:
        for status in PENDING:
            page = await self.http.get(
                "/api/v1/invocations", params={"function": "noop", "status": status, "limit": 1}
            )
            page.raise_for_status()
            if page.json()["invocations"]:
                return True
        return False

    async def outcome(self, invocation_id: str) -> tuple[str, int | None]:
        response = await self.http.get(f"/api/v1/invocations/{invocation_id}")
        response.raise_for_status()
        record = response.json()
        status = str(record["status"])
        return status, int(record["result"]) if status == "succeeded" else None


@dataclass
class Running:
    target: Target
    groups: dict[str, list[int]]  # CPU group -> root pids of its process trees
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Node:
    name: str
    roles: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path
    url: str = ""


def _spawn(command: list[str], cwd: Path, logs: Path, env: dict[str, str]) -> Node:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "node.out", logs / "node.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            command, cwd=cwd, stdout=stdout, stderr=stderr, env={**os.environ, **env}
        )
    return Node(logs.name, "", proc, out, err)


def _wait_url(node: Node) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise RuntimeError(
                f"{node.name} exited {node.proc.returncode}: {node.err.read_text()[-2000:]}"
            )
        for line in node.out.read_text().splitlines():
            words = line.split()
            if words and words[0] in ("gateway", "health"):
                return words[-1].removesuffix("/healthz")
        time.sleep(0.05)
    raise RuntimeError(f"{node.name} did not start within 90 s: {node.err.read_text()[-2000:]}")


@contextlib.asynccontextmanager
async def http_target(url: str, connections: int) -> AsyncIterator[HttpTarget]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as http:
        yield HttpTarget(http)


@contextlib.asynccontextmanager
async def embedded(tmp: Path, args: argparse.Namespace) -> AsyncIterator[Running]:
    from squall.engine.platform import Platform, PlatformConfig

    workdir = tmp / "embedded"
    app = write_file(workdir / "app" / "app.py", APP_SOURCE.format(concurrency=args.concurrency))
    config: dict[str, Any] = {"store": "sqlite", "nodes": 1, "via": args.via}
    if args.via == "platform":
        platform = await Platform.start(PlatformConfig(app=str(app), data_dir=workdir / "data"))
        try:
            yield Running(PlatformTarget(platform), {}, config)
        finally:
            await platform.stop()
        return
    node = _spawn(
        [SQUALL, "up", "app.py", "--port", "0", "--data-dir", str(workdir / "data")],
        app.parent,
        workdir / "up",
        {"SQUALL_ADMIN_KEY": ADMIN_KEY},
    )
    try:
        url = _wait_url(node)
        async with http_target(url, args.connections) as target:
            yield Running(target, {"platform": [node.proc.pid]}, config)
    finally:
        stop_process(node.proc)


@contextlib.asynccontextmanager
async def distributed(
    tmp: Path, name: str, layout: dict[str, str], args: argparse.Namespace
) -> AsyncIterator[Running]:
    """The nodes of ``layout`` on a fresh schema and prefix, both removed afterwards; with
    ``--via platform`` the gateway is this process."""
    from squall.engine.platform import Platform, PlatformConfig

    tag = secrets.token_hex(5)
    schema, prefix = f"bench_{tag}", f"bench{tag}"
    store = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
    bus = f"{args.nats}?prefix={prefix}"
    app = write_file(tmp / name / "app" / "app.py", APP_SOURCE.format(concurrency=args.concurrency))
    env = {"SQUALL_ADMIN_KEY": ADMIN_KEY, "SQUALL_MASTER_KEY": MASTER_KEY}
    invokers = sum(1 for roles in layout.values() if roles == "invoker")
    config: dict[str, Any] = {
        "store": "postgresql+nats", "nodes": len(layout), "invokers": invokers, "via": args.via,
        "schema": schema, "prefix": prefix,
    }  # fmt: skip
    nodes: list[Node] = []
    platform: Platform | None = None
    try:
        for node_name, roles in layout.items():
            if roles == "gateway" and args.via == "platform":
                continue
            data = tmp / name / "nodes" / node_name  # outside the app's directory
            node = _spawn(
                [SQUALL, "node", "app.py", "--roles", roles, "--port", "0",
                 "--data-dir", str(data), "--store", store, "--bus", bus],
                app.parent, data, env,
            )  # fmt: skip
            node.roles = roles
            nodes.append(node)
        for node in nodes:
            node.url = _wait_url(node)
        groups: dict[str, list[int]] = {}
        for node in nodes:
            groups.setdefault(node.roles, []).append(node.proc.pid)
        if args.via == "platform":
            os.environ.update(env)
            platform = await Platform.start(
                PlatformConfig(
                    app=str(app),
                    data_dir=tmp / name / "nodes" / "bench-gateway",
                    store=store,
                    bus=bus,
                    roles=frozenset({"gateway"}),
                )
            )
            yield Running(PlatformTarget(platform), groups, config)
        else:
            gateway = next(node.url for node in nodes if node.roles == "gateway")
            async with http_target(gateway, args.connections) as target:
                yield Running(target, groups, config)
    finally:
        if platform is not None:
            await platform.stop()
        for node in nodes:
            if node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            stop_process(node.proc, signal.SIGTERM)
        await remove_run(store, args.nats, prefix)


# --- load ------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    n: int
    config: dict[str, Any]
    elapsed_s: float = 0.0
    submit_s: float = 0.0
    failed: int = 0
    light_ns: list[int] = field(default_factory=list)
    light_ack_ns: list[int] = field(default_factory=list)
    burst_ns: list[int] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.n / self.elapsed_s if self.elapsed_s else 0.0


async def burst(target: Target, n: int, callers: int) -> list[tuple[str, int, int]]:
    """``n`` invocations from ``callers`` closed loops (submit, await, submit again)."""
    done: list[tuple[str, int, int]] = []
    left = n

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            done.append(await target.submit())

    await asyncio.gather(*(caller() for _ in range(min(callers, n))))
    return done


async def latencies(
    target: Target, submitted: list[tuple[str, int, int]], readers: int
) -> tuple[list[int], int]:
    """Handler start minus submit time of each succeeded record, and how many did not."""
    semaphore = asyncio.Semaphore(readers)
    out: list[int] = []
    failed = 0

    async def one(inv_id: str, sent: int) -> None:
        nonlocal failed
        async with semaphore:
            _, started = await target.outcome(inv_id)
        if started is None:
            failed += 1
        else:
            out.append(started - sent)

    await asyncio.gather(*(one(inv_id, sent) for inv_id, sent, _ in submitted))
    return out, failed


async def measure(name: str, running: Running, args: argparse.Namespace) -> Result:
    callers = args.connections if args.via == "http" else args.callers
    config = {**running.config, "concurrency": args.concurrency, "callers": callers}
    result = Result(name, args.n, config)
    target = running.target
    log(f"{name}: warm-up, {args.warmup} invocations")
    await target.wait_idle(await burst(target, args.warmup, callers), 120)

    log(f"{name}: light phase, {args.light_n} invocations {args.pace_ms:.0f} ms apart")
    light: list[tuple[str, int, int]] = []
    for _ in range(args.light_n):
        light.append(await target.submit())
        await asyncio.sleep(args.pace_ms / 1e3)
    await target.wait_idle(light, 120)
    result.light_ns, failed = await latencies(target, light, args.connections)
    result.light_ack_ns = [ack for _, _, ack in light]
    result.failed += failed

    log(f"{name}: burst of {args.n} from {callers} callers")
    gc.collect()
    before = cpu_snapshot(running.groups)
    t0 = time.perf_counter()
    submitted = await burst(target, args.n, callers)
    result.submit_s = time.perf_counter() - t0
    await target.wait_idle(submitted, 600)
    result.elapsed_s = time.perf_counter() - t0
    after = cpu_snapshot(running.groups)
    result.cpu_s = {key: after[key] - before[key] for key in after}
    log(f"{name}: {result.throughput:.0f}/s; reading back {len(submitted)} records")
    result.burst_ns, failed = await latencies(target, submitted, args.connections)
    result.failed += failed
    return result


def report(result: Result) -> None:
    extra: dict[str, Any] = {"n": result.n, **result.config}
    if result.failed:
        extra["not_succeeded"] = result.failed
    name = result.name
    emit(f"{name}_async_throughput", result.throughput, "invocations/s", **extra)
    emit(
        f"{name}_async_submit_rate",
        result.n / result.submit_s if result.submit_s else 0.0,
        "invocations/s",
        **extra,
    )
    if result.light_ns:
        for p in (50, 99):
            emit(
                f"{name}_async_enqueue_to_start_p{p}",
                percentile(result.light_ns, p) / 1e6,
                "ms",
                load="light",
                samples=len(result.light_ns),
                **result.config,
            )
        emit(
            f"{name}_async_submit_ack_p50",
            percentile(result.light_ack_ns, 50) / 1e6,
            "ms",
            load="light",
            samples=len(result.light_ack_ns),
            **result.config,
        )
    if result.burst_ns:
        emit(
            f"{name}_async_enqueue_to_start_p50_under_burst",
            percentile(result.burst_ns, 50) / 1e6,
            "ms",
            load="burst",
            samples=len(result.burst_ns),
            **extra,
        )
    per = {key: round(seconds * 1e3 / result.n, 3) for key, seconds in result.cpu_s.items()}
    emit(
        f"{name}_cpu_per_invocation",
        sum(per.values()),
        "ms",
        load="burst",
        burst_s=round(result.elapsed_s, 3),
        **per,
    )


async def run(name: str, tmp: Path, args: argparse.Namespace) -> Result:
    layout = SYSTEMS[name]
    system = embedded(tmp, args) if layout is None else distributed(tmp, name, layout, args)
    log(f"{name}: starting")
    async with system as running:
        return await measure(name, running, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds each")
    parser.add_argument("-n", type=int, default=None, help="invocations per burst (4000)")
    parser.add_argument("--light-n", type=int, default=None, help="light-phase invocations (200)")
    parser.add_argument("--pace-ms", type=float, default=5.0, help="light-phase spacing")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up invocations (200)")
    parser.add_argument(
        "--via",
        choices=["platform", "http"],
        default="platform",
        help="submit through the platform in this process (the embedded one, or a gateway node)"
        " or the gateway's admin API over HTTP",
    )
    parser.add_argument(
        "--callers", type=int, default=256, help="concurrent submitters with --via platform"
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="HTTP connections (and record readers)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="noop's sandboxes per node")
    add_server_arguments(parser)
    parser.add_argument("--only", choices=list(SYSTEMS), action="append", help="run only these")
    parser.add_argument(
        "--floor-n",
        type=int,
        default=None,
        help="PostgreSQL commits (x5 JetStream publishes) of the floor (1000; 0: skip it)",
    )
    args = parser.parse_args()
    if args.n is None:
        args.n = 300 if args.quick else 4000
    if args.light_n is None:
        args.light_n = 30 if args.quick else 200
    if args.warmup is None:
        args.warmup = 40 if args.quick else 200
    if args.floor_n is None:
        args.floor_n = 100 if args.quick else 1000

    emit_machine("cluster")
    floor = None
    if args.floor_n > 0:
        log(f"floor: {args.floor_n} PostgreSQL commits, {args.floor_n * 5} JetStream publishes")
        floor = _cluster_floors.measure(args.postgres, args.nats, args.floor_n)
        emit("floor_postgres_commit_p50", floor.commit_p50_ms, "ms", connections=1)
        emit("floor_postgres_commit_rate", floor.commit_rate, "commits/s", connections=1)
        emit("floor_postgres_commit_rate", floor.commit_rate_parallel, "commits/s", connections=4)
        emit("floor_jetstream_publish_ack_p50", floor.publish_ack_p50_ms, "ms", in_flight=1)
        emit("floor_jetstream_publish_rate", floor.publish_rate, "messages/s", in_flight=256)
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="squall-bench-cluster-") as tmp_name:
        for name in SYSTEMS:
            if args.only and name not in args.only:
                continue
            results[name] = asyncio.run(run(name, Path(tmp_name), args))
            report(results[name])

    base, one, two = (results.get(name) for name in SYSTEMS)
    if floor is not None:
        for other in (one, two):
            if other is None or not other.light_ack_ns:
                continue
            emit(
                "cluster_submit_ack_p50_ratio_vs_floor",
                ratio(
                    percentile(other.light_ack_ns, 50) / 1e6,
                    floor.commit_p50_ms + floor.publish_ack_p50_ms,
                ),
                "x",
                load="light",
                invokers=other.config["invokers"],
                via=args.via,
                note="floor: one PostgreSQL commit, then one JetStream publish; 1 is the floor",
            )
    if one is not None and two is not None:
        emit(
            "cluster_async_throughput_ratio_2_invokers_vs_1",
            ratio(two.throughput, one.throughput),
            "x",
            note="all nodes, PostgreSQL, NATS and the load share this machine's cores",
        )
    if base is not None:
        for other in (one, two):
            if other is None:
                continue
            invokers = other.config["invokers"]
            emit(
                "cluster_async_throughput_ratio_distributed_vs_embedded",
                ratio(other.throughput, base.throughput),
                "x",
                invokers=invokers,
            )
            emit(
                "cluster_enqueue_to_start_p50_ratio_distributed_over_embedded",
                ratio(percentile(other.light_ns, 50), percentile(base.light_ns, 50)),
                "x",
                load="light",
                invokers=invokers,
                note="smaller is better; 1 is the embedded backend's latency",
            )


if __name__ == "__main__":
    main()
