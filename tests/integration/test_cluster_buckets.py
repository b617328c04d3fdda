"""Bucket objects on a cluster: bytes put through one gateway are read (whole, in ranges,
as HEAD, through a presigned URL) and copied through the other, and a function running on
the invoker node reads them with ``ctx.buckets`` — no node shares a data dir with another,
the bytes live in JetStream's object store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest
from cluster_nodes import cluster, wait_until
from support import AUTH

pytestmark = pytest.mark.timeout(240)

APP = """
import hashlib
import json
import os
import squall

app = squall.App("cluster-buckets")
app.bucket("photos")

@app.function(permissions=["bucket.read:photos"], timeout_s=60, memory_mb=512)
def reader(event, ctx):
    got = ctx.buckets["photos"].get(event["key"])
    part = ctx.buckets["photos"].get(event["key"], range=(10, 19)).body
    seen = {"md5": hashlib.md5(got.body).hexdigest(), "size": got.size,
            "part": list(part), "node": os.environ["TEST_NODE"]}
    with open({out!r}, "a") as f:
        f.write(json.dumps(seen) + "\\n")
"""
DATA = bytes(range(256)) * (5 * 1024 * 4)  # 5 MiB: several object store chunks


def test_an_object_put_through_one_gateway_is_read_everywhere(tmp_path: Path) -> None:
    out = tmp_path / "read.jsonl"
    with cluster(tmp_path) as running:
        (running.app_dir / "app.py").write_text(APP.replace("{out!r}", repr(str(out))))
        running.env["SQUALL_PRESIGN_KEY"] = "one-key-for-every-gateway"
        running.start_all({"gw1": "gateway", "gw2": "gateway", "work": "invoker,scheduler"})
        api = "/api/v1/buckets/photos"
        with (
            httpx.Client(base_url=running.nodes["gw1"].url, headers=AUTH, timeout=60) as one,
            httpx.Client(base_url=running.nodes["gw2"].url, headers=AUTH, timeout=60) as two,
        ):
            put = one.put(f"{api}/object", params={"key": "a/big.bin"}, content=DATA,
                          headers={"Content-Type": "application/x-test"})  # fmt: skip
            assert put.status_code == 200, f"{put.text}\n{running.logs()}"
            etag = put.json()["etag"]

            whole = two.get(f"{api}/object", params={"key": "a/big.bin"})
            assert whole.status_code == 200, whole.text
            assert whole.content == DATA and whole.headers["etag"] == f'"{etag}"'
            ranged = two.get(
                f"{api}/object", params={"key": "a/big.bin"}, headers={"Range": "bytes=-7"}
            )
            assert ranged.status_code == 206 and ranged.content == DATA[-7:]
            head = two.head(f"{api}/object", params={"key": "a/big.bin"})
            assert head.headers["content-length"] == str(len(DATA))

            copied = two.post(f"{api}/copy", json={"key": "a/big.bin", "to_key": "b/copy.bin"})
            assert copied.status_code == 201, copied.text
            again = one.get(
                f"{api}/object", params={"key": "b/copy.bin"}, headers={"Range": "bytes=3-5"}
            )
            assert again.status_code == 206 and again.content == DATA[3:6]

            signed = one.post(f"{api}/presign", json={"key": "a/big.bin", "expires_s": 60})
            assert signed.status_code == 200, signed.text
            path = signed.json()["url"].split("/", 3)[3]
            fetched = httpx.get(f"{running.nodes['gw2'].url}/{path}", timeout=60)
            assert fetched.status_code == 200 and fetched.content == DATA

            # Async: an invoker runs it (a sync invoke runs on the gateway it came to).
            ran = two.post(
                "/api/v1/functions/reader/invoke",
                json={"key": "a/big.bin"},
                headers={"X-Squall-Invocation-Type": "Event"},
            )
            assert ran.status_code == 202, ran.text
            wait_until(lambda: out.exists() and out.read_text().endswith("\n"), 60, running.logs)
            assert json.loads(out.read_text()) == {
                "md5": hashlib.md5(DATA).hexdigest(),
                "size": len(DATA),
                "part": list(DATA[10:20]),
                "node": "work",
            }

            assert one.delete(f"{api}/object", params={"key": "a/big.bin"}).status_code == 200
            gone = two.get(f"{api}/object", params={"key": "a/big.bin"})
            assert gone.status_code == 404, gone.text
