"""HTTP throughput: a hello-world function behind the gateway, beside bare Starlette on uvicorn.

Squall: ``squall up`` serving an app whose only function is bound to ``GET /hello``
(``@app.http("GET /hello")``, ``return {"hello": "world"}``): each request goes through the
gateway's middleware and routing, an invocation in a warm sandbox (IPC to another process) and
back.

Peer: a bare Starlette app on uvicorn answering ``GET /hello`` with ``JSONResponse({"hello":
"world"})`` in-process, with the same uvicorn settings Squall's server uses (one worker,
``loop="asyncio"``, ``http`` left to uvicorn's choice: httptools if installed, else h11 — the
lines say which).

Load: ``wrk`` (``apt-get install wrk``) in its own process on loopback, one thread, keep-alive
connections, 1 and then 64 of them; a Lua ``done()`` hook prints requests, duration, errors and
the latency percentiles as JSON. Without wrk, ``--loadgen python`` runs a small asyncio load
generator in a separate process instead (raw HTTP/1.1 keep-alive, one request in flight per
connection). Each case is warmed up, then measured in alternating slices (bare, Squall, bare,
Squall, …) so background load hits both alike; a case's numbers are the median over its slices.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import (
    emit,
    emit_machine,
    log,
    ratio,
    squall_available,
    squall_up,
    stop_process,
    write_file,
)

ADMIN_KEY = "sq_bench_http_throughput_0123456789abcdef"

SQUALL_APP = """\
import squall

app = squall.App("bench-http")

@app.http("GET /hello")
def hello(request, ctx):
    return {"hello": "world"}
"""

BARE_APP = """\
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/hello", hello, methods=["GET"])])

if __name__ == "__main__":
    # The settings squall.gateway.server passes to uvicorn.Config.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=int(sys.argv[1]), loop="asyncio", log_level="warning",
        lifespan="on",
    )
    uvicorn.Server(config).run()
"""

# wrk's done() hook: one JSON line on stdout (latencies in microseconds).
WRK_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d,'
    .. ' "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

# The fallback load generator: its own process, N keep-alive connections, one request in
# flight on each; prints the same JSON shape as the wrk hook.
PY_LOADGEN = r"""
import asyncio, json, sys, time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns, seconds = int(sys.argv[4]), float(sys.argv[5])
request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
samples, non_2xx, errors = [], 0, 0

async def client(deadline):
    global non_2xx, errors
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            start = time.perf_counter()
            if start >= deadline:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            samples.append(time.perf_counter() - start)
            if not head[9:10] == b"2":
                non_2xx += 1
    except (OSError, asyncio.IncompleteReadError):
        errors += 1
    finally:
        writer.close()

async def main():
    begin = time.perf_counter()
    await asyncio.gather(*(client(begin + seconds) for _ in range(conns)))
    return time.perf_counter() - begin

duration = asyncio.run(main())
samples.sort()
def pct(p):
    return int(samples[min(len(samples) - 1, int(len(samples) * p / 100))] * 1e6) if samples else 0
print(json.dumps({"requests": len(samples), "duration_us": int(duration * 1e6), "non_2xx": non_2xx,
                  "socket_errors": errors, "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
                  "max_us": pct(100)}))
"""


def http_impl() -> str:
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Until ``GET url`` answers 200 (a cold start happens here, not in a measured slice)."""
    import httpx

    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout} s (last: {last})")


@contextmanager
def squall_server(workdir: Path) -> Iterator[str]:
    with squall_up(workdir, SQUALL_APP, ADMIN_KEY) as url:
        wait_http(f"{url}/hello")
        yield url


@contextmanager
def bare_server(workdir: Path) -> Iterator[str]:
    script = write_file(workdir / "bare_app.py", BARE_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), str(port)], cwd=workdir)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/hello")
        yield url
    finally:
        stop_process(proc, signal.SIGTERM)  # uvicorn.run re-raises a SIGINT as KeyboardInterrupt


class LoadGen:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.lua = write_file(workdir / "report.lua", WRK_LUA)
        self.py = write_file(workdir / "loadgen.py", PY_LOADGEN)

    def run(self, url: str, connections: int, seconds: float) -> dict[str, Any]:
        if self.kind == "wrk":
            cmd = [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(self.lua),
                f"{url}/hello",
            ]
        else:
            host, _, port = url.removeprefix("http://").partition(":")
            cmd = [
                sys.executable,
                str(self.py),
                host,
                port,
                "/hello",
                str(connections),
                str(seconds),
            ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        line = next(ln for ln in reversed(result.stdout.splitlines()) if ln.startswith("{"))
        data: dict[str, Any] = json.loads(line)
        data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
        return data


def measure(
    load: LoadGen, urls: dict[str, str], connections: int, slices: int, seconds: float
) -> dict[str, dict[str, float]]:
    """Alternating slices per system; the median of each number over the slices."""
    for name, url in urls.items():
        log(f"warm-up {name}, {connections} connection(s)")
        load.run(url, connections, 2)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for i in range(slices):
        for name, url in urls.items():
            data = load.run(url, connections, seconds)
            log(
                f"slice {i + 1}/{slices} {name} c={connections}: {data['rps']:.0f} req/s,"
                f" p50 {data['p50_us']} us, p99 {data['p99_us']} us"
            )
            runs[name].append(data)
    summary: dict[str, dict[str, float]] = {}
    for name, slices_of in runs.items():
        summary[name] = {
            "rps": statistics.median(d["rps"] for d in slices_of),
            "p50_ms": statistics.median(d["p50_us"] for d in slices_of) / 1000,
            "p90_ms": statistics.median(d["p90_us"] for d in slices_of) / 1000,
            "p99_ms": statistics.median(d["p99_us"] for d in slices_of) / 1000,
            "requests": sum(d["requests"] for d in slices_of),
            "non_2xx": sum(d["non_2xx"] for d in slices_of),
            "socket_errors": sum(d["socket_errors"] for d in slices_of),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter slices (~30 s in all)")
    parser.add_argument("--slices", type=int, default=3, help="measured slices per system")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one slice")
    parser.add_argument(
        "--connections", default="1,64", help="comma-separated connection counts (default 1,64)"
    )
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or the built-in asyncio one",
    )
    args = parser.parse_args()
    if args.quick:
        args.slices, args.seconds = 2, 3.0
    if not squall_available():
        sys.exit("squall is not importable from this interpreter")
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    if kind == "wrk" and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk), use --loadgen python")

    emit_machine("http_throughput")
    impl = http_impl()
    with tempfile.TemporaryDirectory(prefix="squall-bench-http-") as tmp:
        root = Path(tmp)
        (root / "squall").mkdir()
        (root / "bare").mkdir()
        load = LoadGen(kind, root)
        with bare_server(root / "bare") as bare_url, squall_server(root / "squall") as squall_url:
            urls = {"bare_starlette": bare_url, "squall": squall_url}
            for connections in (int(c) for c in args.connections.split(",")):
                results = measure(load, urls, connections, args.slices, args.seconds)
                common = {
                    "connections": connections,
                    "loadgen": kind,
                    "http": impl,
                    "slices": args.slices,
                    "slice_s": args.seconds,
                }
                for name, r in results.items():
                    extra = {**common, "requests": int(r["requests"])}
                    if r["non_2xx"] or r["socket_errors"]:
                        extra["non_2xx"] = int(r["non_2xx"])
                        extra["socket_errors"] = int(r["socket_errors"])
                    emit(f"{name}_http_throughput", r["rps"], "req/s", **extra)
                    emit(f"{name}_http_latency_p50", r["p50_ms"], "ms", **extra)
                    emit(f"{name}_http_latency_p99", r["p99_ms"], "ms", **extra)
                squall, bare = results["squall"], results["bare_starlette"]
                emit(
                    "http_throughput_ratio_squall_vs_bare",
                    ratio(squall["rps"], bare["rps"]),
                    "x",
                    goal=">= 0.6",
                    **common,
                )
                emit(
                    "http_latency_p50_ratio_squall_vs_bare",
                    ratio(squall["p50_ms"], bare["p50_ms"]),
                    "x",
                    note="smaller is better",
                    **({"goal_squall_p50_ms": "<= 1"} if connections == 1 else {}),
                    **common,
                )


if __name__ == "__main__":
    main()
