"""Warm sync invoke: latency and throughput of a no-op function, beside an IPC floor.

Squall: ``await platform.invoke("noop", b"{}")`` against a warm sandbox, from 1 caller and from 8
concurrent callers (each caller loops invoke -> await -> invoke for a fixed time).

Floor: the least a platform that runs handlers out of process can do per call: an asyncio
Protocol in this process writes one length-prefixed (4-byte big-endian) msgpack frame shaped like
Squall's ``Invoke`` over a Unix socketpair to a warm child process; the child (a blocking socket
loop) decodes it and answers with a ``Result``-shaped frame; the parent decodes that and resolves
the caller's future. No storage, no scheduling, no user code.

With 8 callers, Squall runs the function twice: with ``concurrency=2`` (one sandbox per core of
this 2-core box; extra callers wait for a sandbox) and with ``concurrency=8`` (one sandbox per
caller, over-subscribing the CPUs). The floor uses 2 children for 8 callers (4 callers pipeline
frames into each child), the same parallelism as the ``concurrency=2`` case, which is the one
the throughput ratio compares.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from _common import emit, emit_machine, log, percentile, ratio, squall_available, write_file

HEADER = struct.Struct(">I")

# --- the floor -----------------------------------------------------------------------------


class FloorInvoke(msgspec.Struct, tag="Invoke", array_like=True):
    id: int
    payload: bytes
    attempt: int
    timeout_s: float
    trigger: str


class FloorResult(msgspec.Struct, tag="Result", array_like=True):
    id: int
    value: bytes | None
    error: dict[str, Any] | None
    duration_ms: float
    peak_rss_kb: int
    logs: list[Any]


CHILD_SOURCE = r"""
import socket, struct, sys, time
import msgspec

class Invoke(msgspec.Struct, tag="Invoke", array_like=True):
    id: int
    payload: bytes
    attempt: int
    timeout_s: float
    trigger: str

class Result(msgspec.Struct, tag="Result", array_like=True):
    id: int
    value: bytes | None
    error: dict | None
    duration_ms: float
    peak_rss_kb: int
    logs: list

HEADER = struct.Struct(">I")
decode = msgspec.msgpack.Decoder(Invoke).decode
encode = msgspec.msgpack.Encoder().encode
sock = socket.socket(fileno=int(sys.argv[1]))
buf = bytearray(1 << 20)
view = memoryview(buf)
start = end = 0
while True:
    got = sock.recv_into(view[end:])
    if not got:
        break
    end += got
    out = []
    while end - start >= 4:
        (n,) = HEADER.unpack_from(buf, start)
        if end - start < 4 + n:
            break
        msg = decode(view[start + 4 : start + 4 + n])
        start += 4 + n
        t0 = time.perf_counter()
        body = encode(Result(msg.id, b"null", None, (time.perf_counter() - t0) * 1e3, 0, []))
        out.append(HEADER.pack(len(body)) + body)
    if start == end:
        start = end = 0
    elif end == len(buf):
        buf[: end - start] = buf[start:end]
        start, end = 0, end - start
    if out:
        sock.sendall(b"".join(out))
"""


class FloorProtocol(asyncio.BufferedProtocol):
    """Reads straight into a preallocated buffer (``recv_into``), then cuts whole frames."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.start = 0
        self.end = 0
        self.pending: dict[int, asyncio.Future[FloorResult]] = {}
        self.decode = msgspec.msgpack.Decoder(FloorResult).decode

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.end == len(self.buf):  # frames are tiny; the backlog always fits after compaction
            size = self.end - self.start
            self.buf[:size] = self.buf[self.start : self.end]
            self.start, self.end = 0, size
        return self.view[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        buf, start, end = self.buf, self.start, self.end
        while end - start >= 4:
            (n,) = HEADER.unpack_from(buf, start)
            if end - start < 4 + n:
                break
            result = self.decode(self.view[start + 4 : start + 4 + n])
            start += 4 + n
            fut = self.pending.pop(result.id, None)
            if fut is not None and not fut.done():
                fut.set_result(result)
        if start == end:
            start = end = 0
        self.start, self.end = start, end

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("floor child went away"))


class FloorChild:
    """A warm child process that answers frames over a Unix socketpair."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.protocol: FloorProtocol | None = None
        self.encode = msgspec.msgpack.Encoder().encode

    async def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD_SOURCE, str(child.fileno())],
            pass_fds=[child.fileno()],
        )
        child.close()
        loop = asyncio.get_running_loop()
        _, self.protocol = await loop.create_unix_connection(FloorProtocol, sock=parent)

    async def call(self, payload: bytes = b"{}") -> FloorResult:
        protocol = self.protocol
        assert protocol is not None and protocol.transport is not None
        call_id = next(self._ids)
        body = self.encode(FloorInvoke(call_id, payload, 1, 30.0, "sync"))
        fut: asyncio.Future[FloorResult] = asyncio.get_running_loop().create_future()
        protocol.pending[call_id] = fut
        protocol.transport.write(HEADER.pack(len(body)) + body)
        return await fut

    async def stop(self) -> None:
        if self.protocol is not None and self.protocol.transport is not None:
            self.protocol.transport.close()  # the child reads EOF and exits
        if self.proc is not None:
            for _ in range(500):
                if self.proc.poll() is not None:
                    return
                await asyncio.sleep(0.01)
            self.proc.kill()
            self.proc.wait()


# --- the driver ----------------------------------------------------------------------------


@dataclass
class Run:
    latencies_ns: list[int] = field(default_factory=list)
    errors: int = 0
    elapsed_s: float = 0.0
    first_error: str = ""

    @property
    def throughput(self) -> float:
        return len(self.latencies_ns) / self.elapsed_s if self.elapsed_s else 0.0


async def drive(
    call_for: Callable[[int], Callable[[], Awaitable[object]]],
    callers: int,
    duration_s: float,
    run: Run | None = None,
) -> Run:
    """``callers`` closed loops, each calling as fast as it is answered, for ``duration_s``.

    Samples are appended to ``run`` (a fresh one unless given), so slices accumulate.
    """
    run = run if run is not None else Run()
    deadline = time.perf_counter() + duration_s
    clock = time.perf_counter_ns

    async def caller(i: int) -> None:
        call = call_for(i)
        lat = run.latencies_ns
        while time.perf_counter() < deadline:
            t0 = clock()
            try:
                await call()
            except Exception as exc:  # a throttled or failed call is counted, not timed
                run.errors += 1
                if not run.first_error:
                    run.first_error = f"{type(exc).__name__}: {exc}"[:200]
                continue
            lat.append(clock() - t0)

    t_start = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(callers)))
    run.elapsed_s += time.perf_counter() - t_start
    return run


def report(name: str, run: Run, callers: int, **extra: Any) -> None:
    lat = run.latencies_ns
    common: dict[str, Any] = {"callers": callers, "samples": len(lat), **extra}
    if run.errors:
        common["errors"] = run.errors
        common["first_error"] = run.first_error
    emit(f"{name}_p50", percentile(lat, 50) / 1e3, "us", **common)
    emit(f"{name}_p99", percentile(lat, 99) / 1e3, "us", **common)
    emit(f"{name}_throughput", run.throughput, "invocations/s", **common)


@dataclass
class Case:
    name: str
    call_for: Callable[[int], Callable[[], Awaitable[object]]]
    extra: dict[str, Any]
    run: Run = field(default_factory=Run)


async def measure(
    cases: list[Case], callers: int, warmup_s: float, duration_s: float, slices: int
) -> None:
    """Warm every case up, then measure them in alternating slices.

    Interleaving means a burst of background load on the machine hits every case about
    equally, which keeps the ratios honest on a shared box.
    """
    names = ", ".join(f"{c.name}{c.extra}" for c in cases)
    log(f"{callers} caller(s): {names}; warm-up {warmup_s}s each, measure {duration_s}s each")
    for case in cases:
        await drive(case.call_for, callers, warmup_s)
    gc.collect()
    for _ in range(slices):
        for case in cases:
            await drive(case.call_for, callers, duration_s / slices, case.run)
    for case in cases:
        report(case.name, case.run, callers, **case.extra)


APP_SOURCE = """\
import squall

app = squall.App("bench-warm")


@app.function(concurrency=2, keep_alive_s=3600, timeout_s=60)
def noop(event, ctx):
    return None


@app.function(concurrency=8, keep_alive_s=3600, timeout_s=60)
def noop8(event, ctx):
    return None
"""


async def main_async(args: argparse.Namespace) -> None:
    emit_machine("warm_invoke")
    have_squall = squall_available()
    if not have_squall:
        log("squall.engine.platform does not import yet; measuring the floor only")
    children = [FloorChild(), FloorChild()]
    for child in children:
        await child.start()
    floor1 = Case("floor_ipc_roundtrip", lambda i: children[0].call, {"children": 1})
    floor8 = Case("floor_ipc_roundtrip", lambda i: children[i % 2].call, {"children": 2})
    platform: Any = None
    with tempfile.TemporaryDirectory(prefix="squall-bench-warm-") as tmp:
        try:
            if not have_squall:
                await measure([floor1], 1, args.warmup, args.duration, args.slices)
                await measure([floor8], 8, args.warmup, args.duration, args.slices)
                return
            from squall.engine.platform import Platform, PlatformConfig

            app_path = write_file(Path(tmp) / "warm_app.py", APP_SOURCE)
            config = PlatformConfig(app=str(app_path), data_dir=Path(tmp) / "data")
            platform = await Platform.start(config)
            for fn in ("noop", "noop8"):
                rec = await platform.invoke(fn, b"{}")
                if rec.status != "succeeded":
                    log(f"squall: {fn} failed: status={rec.status} error={rec.error}")
                    return

            async def noop() -> None:
                await platform.invoke("noop", b"{}")

            async def noop8() -> None:
                await platform.invoke("noop8", b"{}")

            sq1 = Case("squall_warm_invoke", lambda i: noop, {"concurrency": 2})
            sq8c2 = Case("squall_warm_invoke", lambda i: noop, {"concurrency": 2})
            sq8c8 = Case("squall_warm_invoke", lambda i: noop8, {"concurrency": 8})
            await measure([floor1, sq1], 1, args.warmup, args.duration, args.slices)
            await measure([floor8, sq8c2, sq8c8], 8, args.warmup, args.duration, args.slices)
        finally:
            if platform is not None:
                await platform.stop()
            for child in children:
                await child.stop()

    one, fl_one = sq1.run.latencies_ns, floor1.run.latencies_ns
    emit(
        "warm_invoke_p50_ratio_vs_floor",
        ratio(percentile(one, 50), percentile(fl_one, 50)),
        "x",
        callers=1,
        goal="<=3",
    )
    emit(
        "warm_invoke_p99_ratio_vs_floor",
        ratio(percentile(one, 99), percentile(fl_one, 99)),
        "x",
        callers=1,
    )
    emit(
        "warm_invoke_throughput_ratio_floor_vs_squall",
        ratio(floor8.run.throughput, sq8c2.run.throughput),
        "x",
        callers=8,
        concurrency=2,
        children=2,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 15 s instead of about 45 s")
    parser.add_argument("--duration", type=float, default=None, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per case")
    parser.add_argument("--slices", type=int, default=5, help="alternations between cases")
    args = parser.parse_args()
    if args.duration is None:
        args.duration = 2.0 if args.quick else 6.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
