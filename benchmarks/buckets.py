"""Object put and get throughput (MB/s) through the buckets HTTP API and from a function.

Squall: a real ``squall up``; objects of 1 MB and 100 MB are PUT through
``/api/v1/buckets/{bucket}/object`` (streamed from memory in 1 MiB chunks) and read back with a
streamed GET, ``--repeat`` times each; a function puts and gets the 1 MB and 100 MB object with
``ctx.buckets`` (8 MiB parts over the sandbox channel). Every put is durable when it answers
(staging file fsynced, renamed, metadata committed).

Floor, in the same run: ``shutil.copyfile`` of a file of the same size into the same data dir,
plus an fsync of the copy for the put (a put is durable; a copy alone is not), and a plain read
of the file for the get. ``*_ratio_vs_floor`` is Squall over the floor.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from _common import emit, emit_machine, log, ratio, squall_available, squall_up

ADMIN_KEY = "sq_bench-buckets-0123456789abcdefghijklmnopqrstuv"
APP = """\
import time
import squall

app = squall.App("bench-buckets")
app.bucket("bench")


@app.function(permissions=["bucket:bench"], timeout_s=300, memory_mb=2048)
def roundtrip(event, ctx):
    data = b"f" * event["size"]
    bucket = ctx.buckets["bench"]
    start = time.perf_counter()
    bucket.put("from-function", data)
    put_s = time.perf_counter() - start
    start = time.perf_counter()
    got = bucket.get("from-function")
    get_s = time.perf_counter() - start
    assert got.size == len(data)
    return {"put_s": put_s, "get_s": get_s}
"""
MB = 1_000_000
CHUNK = 1024 * 1024


def _body(size: int) -> bytes:
    return (os.urandom(CHUNK) * (size // CHUNK + 1))[:size]


def http_put_get(url: str, size: int, repeat: int) -> tuple[float, float]:
    """Median seconds of one PUT and one GET of ``size`` bytes."""
    data = _body(size)
    puts, gets = [], []
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=f"{url}/api/v1", headers=headers, timeout=300) as http:
        for n in range(repeat):
            view = memoryview(data)

            def chunks(view: memoryview = view) -> object:
                for start in range(0, len(view), CHUNK):
                    yield bytes(view[start : start + CHUNK])

            start = time.perf_counter()
            response = http.put(
                "/buckets/bench/object",
                params={"key": f"o-{size}-{n}"},
                content=chunks(),  # type: ignore[arg-type]
                headers={"content-length": str(size)},
            )
            puts.append(time.perf_counter() - start)
            response.raise_for_status()
            start = time.perf_counter()
            received = 0
            with http.stream("GET", "/buckets/bench/object", params={"key": f"o-{size}-{n}"}) as r:
                for chunk in r.iter_raw(CHUNK):
                    received += len(chunk)
            gets.append(time.perf_counter() - start)
            assert received == size
    return statistics.median(puts), statistics.median(gets)


def floor(tmp: Path, size: int, repeat: int) -> tuple[float, float]:
    source = tmp / f"floor-src-{size}"
    source.write_bytes(_body(size))
    copies, reads = [], []
    for n in range(repeat):
        target = tmp / f"floor-dst-{size}-{n}"
        start = time.perf_counter()
        shutil.copyfile(source, target)
        with open(target, "rb+") as out:
            os.fsync(out.fileno())
        copies.append(time.perf_counter() - start)
        start = time.perf_counter()
        with open(target, "rb") as file:
            while file.read(CHUNK):
                pass
        reads.append(time.perf_counter() - start)
        target.unlink()
    return statistics.median(copies), statistics.median(reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median kept)")
    parser.add_argument("--sizes", default="1,100", help="object sizes, MB, comma separated")
    args = parser.parse_args()
    emit_machine("buckets")
    if not squall_available():
        raise SystemExit("squall is not installed in this environment")
    sizes = [int(float(s) * MB) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="squall-bench-buckets-") as name:
        tmp = Path(name)
        with squall_up(tmp / "up", APP, ADMIN_KEY) as url:
            for size in sizes:
                label = f"{size // MB}mb"
                log(f"{label}: HTTP put/get x{args.repeat}")
                put_s, get_s = http_put_get(url, size, args.repeat)
                copy_s, read_s = floor(tmp / "up", size, args.repeat)
                mb = size / MB
                for verb, squall_s, floor_s in (("put", put_s, copy_s), ("get", get_s, read_s)):
                    ours, base = mb / squall_s, mb / floor_s
                    emit(f"bucket_http_{verb}_{label}", ours, "MB/s", size_bytes=size)
                    emit(
                        f"floor_{verb}_{label}",
                        base,
                        "MB/s",
                        size_bytes=size,
                        floor="shutil.copyfile + fsync" if verb == "put" else "file read",
                    )
                    emit(f"bucket_http_{verb}_{label}_ratio_vs_floor", ratio(ours, base), "x")
                log(f"{label}: from a function")
                with httpx.Client(
                    base_url=f"{url}/api/v1",
                    timeout=300,
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                ) as http:
                    http.post("/functions/roundtrip/invoke", json={"size": 1}).raise_for_status()
                    timed = http.post("/functions/roundtrip/invoke", json={"size": size}).json()
                emit(f"bucket_function_put_{label}", mb / timed["put_s"], "MB/s", size_bytes=size)
                emit(f"bucket_function_get_{label}", mb / timed["get_s"], "MB/s", size_bytes=size)
                emit(
                    f"bucket_function_put_{label}_ratio_vs_floor",
                    ratio(mb / timed["put_s"], mb / copy_s),
                    "x",
                )


if __name__ == "__main__":
    main()
