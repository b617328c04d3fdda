"""Buckets from functions on a real platform: ctx.buckets puts and gets (in parts past the
channel's frame size), permissions, object events triggering @app.on_object with a prefix and
a suffix, and what a failed invocation wrote being thrown away."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

APP = """
import hashlib
import io
import squall

app = squall.App("objects")
app.bucket("uploads")
app.bucket("thumbs")


@app.function(permissions=["bucket:uploads", "bucket.read:thumbs"], timeout_s=60,
              memory_mb=1024)
def writer(event, ctx):
    b = ctx.buckets["uploads"]
    if event["op"] == "put":
        info = b.put(event["key"], event["text"].encode(), content_type="text/plain",
                     metadata={"by": "writer"})
        return {"etag": info.etag, "size": info.size, "seen": b.get(event["key"]).body.decode()}
    if event["op"] == "big":
        data = bytes(range(256)) * (event["size"] // 256)
        source = io.BytesIO(data) if event.get("file") else data
        info = b.put(event["key"], source)
        got = b.get(event["key"])
        part = b.get(event["key"], range=(10, 19)).body
        return {"etag": info.etag, "md5": hashlib.md5(got.body).hexdigest(),
                "size": got.size, "part": list(part)}
    if event["op"] == "misc":
        b.put("m/1.txt", b"one")
        copied = b.copy("m/1.txt", "m/2.txt")
        listed = b.list("m/")
        head = b.head("m/2.txt")
        deleted = b.delete("m/1.txt")
        url = b.presign("m/2.txt", expires_s=60)
        return {"copied": copied.key, "listed": [o["key"] for o in listed["objects"]],
                "etag": head.etag, "deleted": deleted, "url": url,
                "after": [o["key"] for o in b.list("m/")["objects"]]}
    if event["op"] == "thumbs-write":
        ctx.buckets["thumbs"].put("x", b"no")
    if event["op"] == "fail":
        b.put(event["key"], b"never")
        raise RuntimeError("the invocation fails after its put")
    return None


@app.function()
def intruder(event, ctx):
    try:
        ctx.buckets["uploads"].get("a")
    except squall.AccessDenied as exc:
        return exc.details
    return None


@app.on_object("uploads", events=["created"], prefix="photos/", suffix=".jpg")
def thumbnail(event, ctx):
    return {"key": event["data"]["key"], "type": event["type"], "etag": event["data"]["etag"]}


@app.on_object("uploads", events=["removed"])
def removed(event, ctx):
    return event["data"]["key"]
"""


def _result(record: Any) -> Any:
    assert record.error is None, record.error
    return msgspec.json.decode(record.result)


async def _invoke(p: Any, function: str, event: Any) -> Any:
    return _result(await p.invoke(function, msgspec.json.encode(event)))


async def test_puts_and_gets_from_a_function(platform: Any) -> None:
    p = await platform(APP)
    out = await _invoke(p, "writer", {"op": "put", "key": "notes/a.txt", "text": "hello"})
    assert out == {"etag": hashlib.md5(b"hello").hexdigest(), "size": 5, "seen": "hello"}
    stored, data = await p.buckets.read("uploads", "notes/a.txt")
    assert data == b"hello" and stored.info.metadata == {"by": "writer"}
    assert stored.info.content_type == "text/plain"


@pytest.mark.parametrize("file", [False, True])
async def test_objects_past_the_frame_size_go_in_parts(platform: Any, file: bool) -> None:
    p = await platform(APP)
    size = 20 * 1024 * 1024  # 20 MiB: three parts each way
    data = bytes(range(256)) * (size // 256)
    out = await _invoke(p, "writer", {"op": "big", "key": "big.bin", "size": size, "file": file})
    assert out["etag"] == out["md5"] == hashlib.md5(data).hexdigest()
    assert out["size"] == size and out["part"] == list(range(10, 20))


async def test_copy_list_head_delete_presign(platform: Any) -> None:
    p = await platform(APP)
    out = await _invoke(p, "writer", {"op": "misc"})
    assert out["copied"] == "m/2.txt" and out["listed"] == ["m/1.txt", "m/2.txt"]
    assert out["etag"] == hashlib.md5(b"one").hexdigest() and out["deleted"] is True
    assert "/_squall/buckets/uploads/m/2.txt?expires=" in out["url"]
    assert out["after"] == ["m/2.txt"]


async def test_permissions(platform: Any) -> None:
    p = await platform(APP)
    denied = await _invoke(p, "intruder", None)
    assert denied == {"function": "intruder", "action": "bucket.read", "resource": "uploads"}
    record = await p.invoke("writer", msgspec.json.encode({"op": "thumbs-write"}))
    assert (
        record.error is not None and "may not write to bucket 'thumbs'" in record.error["message"]
    )


async def test_object_events_trigger_on_object_by_prefix_and_suffix(
    platform: Any, eventually: Any
) -> None:
    p = await platform(APP)
    for key in ("photos/a.jpg", "photos/b.png", "other/c.jpg", "photos/deep/d.jpg"):
        await p.buckets.put("uploads", key, b"img")
    await p.buckets.delete_object("uploads", "other/c.jpg")
    await p.wait_idle()

    async def ran(function: str, count: int) -> list[Any] | None:
        runs = await p.list_invocations(function=function, limit=100)
        done = [r for r in runs if r.status == "succeeded"]
        return done if len(done) >= count else None

    thumbs = await eventually(lambda: ran("thumbnail", 2))
    results = sorted(msgspec.json.decode(r.result)["key"] for r in thumbs)
    assert results == ["photos/a.jpg", "photos/deep/d.jpg"]
    assert {msgspec.json.decode(r.result)["type"] for r in thumbs} == {"squall.object.created"}
    [gone] = await eventually(lambda: ran("removed", 1))
    assert msgspec.json.decode(gone.result) == "other/c.jpg"
    await p.wait_idle()
    assert len(await p.list_invocations(function="thumbnail", limit=100)) == 2


async def test_a_failed_invocation_leaves_no_object_and_no_event(platform: Any) -> None:
    p = await platform(APP)
    record = await p.invoke("writer", msgspec.json.encode({"op": "fail", "key": "photos/x.jpg"}))
    assert record.error is not None
    await p.wait_idle()
    assert (await p.buckets.list_objects("uploads")).objects == []
    assert await p.list_invocations(function="thumbnail") == []
    await p.buckets.sweep()
    assert await p.buckets.files.names() == set()  # files, or the cluster's object store
