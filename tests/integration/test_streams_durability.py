"""A stream survives SIGKILL: every acknowledged record is kept, and its consumers resume from
their last checkpoint, redelivering at most the batch that was in flight."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from support import AUTH, start_squall, stop, wait_for, wait_until_gone

COUNT = 400
BATCH = 10

APP = """
import os
import time

import squall

app = squall.App("durable-streams")
app.stream_resource("log", shards=2)


@app.stream("log", batch_size={batch}, starting_position="trim_horizon")
def consume(event, ctx):
    for record in event["records"]:
        time.sleep(0.01)  # slower than the puts, so a backlog builds
        line = f"{{record['shard']}}:{{record['sequence']}}\\n"
        fd = os.open({out!r}, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
"""


def _put_all(url: str) -> set[tuple[int, int]]:
    acked: set[tuple[int, int]] = set()
    with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
        for start in range(0, COUNT, 50):
            records = [{"data": n, "partition_key": f"k{n % 7}"} for n in range(start, start + 50)]
            response = http.post("/streams/log/records", json={"records": records})
            assert response.status_code == 200, response.text
            acked |= {(r["shard"], r["sequence"]) for r in response.json()["records"]}
    return acked


def _lines(out: Path) -> list[tuple[int, int]]:
    if not out.exists():
        return []
    return [
        (int(shard), int(seq))
        for shard, seq in (line.split(":") for line in out.read_text().splitlines())
    ]


def test_sigkill_keeps_records_and_consumers_resume_from_their_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "consumed.txt"
    (tmp_path / "app.py").write_text(APP.format(out=str(out), batch=BATCH))
    data = tmp_path / "data"
    first, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        acked = _put_all(url)
        assert len(acked) == COUNT
        wait_for(lambda: True if len(_lines(out)) >= 3 * BATCH else None, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = _lines(out)
    assert len(before) < COUNT, "everything was consumed before the kill: the test proves nothing"
    assert wait_until_gone(tmp_path, data, {os.getpid()}, timeout=5) == {}

    second, url = start_squall(tmp_path, "--data-dir", str(data))
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
            kept = set()
            for shard in (0, 1):
                page = http.get(f"/streams/log/shards/{shard}/records", params={"limit": 1000})
                kept |= {(shard, r["sequence"]) for r in page.json()["records"]}
            assert kept == acked  # nothing acknowledged was lost, nothing invented
        deadline = time.monotonic() + 60
        while not acked <= set(_lines(out)):
            assert time.monotonic() < deadline, f"{len(acked - set(_lines(out)))} never consumed"
            time.sleep(0.1)
    finally:
        stop(second)
    consumed = _lines(out)
    for shard in (0, 1):
        seqs = [seq for s, seq in consumed if s == shard]
        # In order within each run; the restart goes back at most over the batch in flight.
        drops = [i for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
        assert len(drops) <= 1, (shard, drops)
        for i in drops:
            assert seqs[i - 1] - seqs[i] < BATCH, (shard, seqs[i - 1], seqs[i])
        assert sorted(set(seqs)) == sorted(seq for s, seq in acked if s == shard)
    assert len(consumed) - COUNT <= 2 * BATCH  # redelivered: at most one batch per shard
