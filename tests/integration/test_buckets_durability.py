"""A platform killed with SIGKILL in the middle of a large put leaves no visible object, and
its next start removes the staged bytes; objects stored before the kill are all there."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
from support import AUTH, start_squall, wait_for

APP = """\
import squall

app = squall.App("buckets-durable")
app.bucket("uploads")
"""
CHUNK = b"z" * (1024 * 1024)
SIZE = 512 * 1024 * 1024  # declared; the kill comes long before


def test_sigkill_during_a_large_put_leaves_no_object(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    staging = tmp_path / ".squall" / "buckets" / "staging"
    proc, url = start_squall(tmp_path)
    sent = 0
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
            for n in range(20):
                body = f"kept {n}".encode()
                assert (
                    http.put(
                        "/buckets/uploads/object", params={"key": f"kept/{n}"}, content=body
                    ).status_code
                    == 200
                )
            http.put("/buckets/uploads/object", params={"key": "big.bin"}, content=b"old")

        def body() -> Iterator[bytes]:
            nonlocal sent
            while sent < SIZE:
                sent += len(CHUNK)
                yield CHUNK

        def upload() -> None:
            with contextlib.suppress(httpx.TransportError):
                httpx.put(
                    f"{url}/api/v1/buckets/uploads/object",
                    params={"key": "big.bin"},
                    content=body(),
                    headers={**AUTH, "content-length": str(SIZE)},
                    timeout=60,
                )

        thread = threading.Thread(target=upload)
        thread.start()
        wait_for(lambda: sent >= 64 * 1024 * 1024 or None, timeout=30)
        staged = wait_for(lambda: [f for f in staging.iterdir() if f.stat().st_size] or None)
        assert staged
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        thread.join(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert list(staging.iterdir())  # the half-written put is still on disk

    proc, url = start_squall(tmp_path)
    try:
        with httpx.Client(base_url=f"{url}/api/v1", headers=AUTH, timeout=30) as http:
            old = http.get("/buckets/uploads/object", params={"key": "big.bin"})
            assert old.status_code == 200 and old.content == b"old"
            for n in range(20):
                got = http.get("/buckets/uploads/object", params={"key": f"kept/{n}"})
                assert got.content == f"kept {n}".encode()
            assert http.get("/buckets/uploads").json()["objects"] == 21
        assert list(staging.iterdir()) == []
        files = [
            f for f in (tmp_path / ".squall" / "buckets" / "objects").rglob("*") if f.is_file()
        ]
        assert len(files) == 21
        assert hashlib.md5(b"old").hexdigest() in {
            hashlib.md5(f.read_bytes()).hexdigest() for f in files
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
