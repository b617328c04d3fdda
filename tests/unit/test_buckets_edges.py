"""Byte ranges, presigned URL signatures, on_object's rule, bucket permissions, and sandbox
calls held in an invocation's effects."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from squall.app import App
from squall.engine.buckets.calls import answer
from squall.engine.buckets.service import Buckets
from squall.engine.buckets.uploads import ABANDONED_S
from squall.engine.effects import Effects
from squall.errors import AccessDenied, ConfigError, Forbidden, InvalidInput, NotFound
from squall.gateway.ranges import RangeNotSatisfiable, parse_range
from squall.model.buckets import BucketConfig
from squall.model.cloudevent import CloudEvent
from squall.model.config import FunctionConfig
from squall.security.presign import Presigner
from squall.storage import open_store


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=9-3", None),
        ("bytes=1-2,4-5", None),
        ("lines=1-2", None),
        ("bytes=-", None),
    ],
)
def test_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, 100)
    assert caught.value.status == 416 and caught.value.details["size"] == 100


def test_presigned_urls_verify_only_what_was_signed(tmp_path: Path) -> None:
    signer = Presigner.load(tmp_path)
    assert (tmp_path / "presign.key").stat().st_mode & 0o777 == 0o600
    path, expires = signer.url("GET", "uploads", "a b/c.jpg", 60, now=1000)
    assert path.startswith("/_squall/buckets/uploads/a%20b/c.jpg?expires=1060&signature=")
    signature = path.rsplit("=", 1)[1]
    signer.verify("GET", "uploads", "a b/c.jpg", str(expires), signature, now=1059)
    for method, bucket, key, when, now in (
        ("PUT", "uploads", "a b/c.jpg", expires, 1000),
        ("GET", "other", "a b/c.jpg", expires, 1000),
        ("GET", "uploads", "a b/d.jpg", expires, 1000),
        ("GET", "uploads", "a b/c.jpg", expires + 1, 1000),
        ("GET", "uploads", "a b/c.jpg", expires, 1061),
    ):
        with pytest.raises(Forbidden):
            signer.verify(method, bucket, key, str(when), signature, now=now)
    with pytest.raises(Forbidden):
        Presigner.load(tmp_path / "other").verify(
            "GET", "uploads", "a b/c.jpg", str(expires), signature, now=1000
        )
    assert Presigner.load(tmp_path)._signature("GET", "b", "k", 1) == signer._signature(
        "GET", "b", "k", 1
    )
    with pytest.raises(InvalidInput) as caught:
        signer.url("DELETE", "uploads", "k", 60)
    assert caught.value.field == "method"
    with pytest.raises(InvalidInput) as caught:
        signer.url("GET", "uploads", "k", 8 * 86400)
    assert caught.value.field == "expires_s"


def test_on_object_is_a_rule_on_the_default_bus_with_prefix_and_suffix() -> None:
    app = App("t")
    app.bucket("uploads")

    @app.on_object("uploads", events=["created", "removed"], prefix="p/", suffix=".jpg")
    def handler(event: Any, ctx: Any) -> None: ...

    [rule] = app.manifest().rules
    assert rule.bus == "default"
    assert rule.pattern == {
        "type": ["squall.object.created", "squall.object.removed"],
        "data": {"bucket": ["uploads"], "key": [{"prefix": "p/"}]},
        "subject": [{"suffix": ".jpg"}],
    }
    assert app.manifest().buckets == [BucketConfig(name="uploads")]


def test_bad_declarations() -> None:
    app = App("t")
    with pytest.raises(ConfigError) as caught:
        app.bucket("Uploads")
    assert caught.value.field == "bucket"
    app.bucket("uploads")
    with pytest.raises(ConfigError, match="declared twice"):
        app.bucket("uploads")
    with pytest.raises(ConfigError) as caught:
        app.bucket("small", max_object_bytes=0)
    assert caught.value.field == "max_object_bytes"
    with pytest.raises(ConfigError) as caught:
        app.on_object("uploads", events=["changed"])
    assert caught.value.field == "events"
    FunctionConfig(name="f", permissions=("bucket:uploads", "bucket.read:x")).validate()
    with pytest.raises(ConfigError):
        FunctionConfig(name="f", permissions=("bucket.write:uploads",)).validate()


# --- sandbox calls ---------------------------------------------------------------------------


def _no_events(events: Sequence[CloudEvent]) -> tuple[list[Any], Any]:
    return [], lambda: None


@pytest.fixture
async def platform(tmp_path: Path, store_url: str) -> AsyncIterator[Any]:
    store = await open_store(store_url)
    buckets = Buckets(store, tmp_path, [BucketConfig(name="uploads")], _no_events, "t")
    await buckets.load()
    yield SimpleNamespace(buckets=buckets, store=store)
    await store.close()


WRITER = FunctionConfig(name="writer", permissions=("bucket:uploads",))
READER = FunctionConfig(name="reader", permissions=("bucket.read:uploads",))


async def _call(
    platform: Any, caller: FunctionConfig, op: str, effects: Effects | None = None, **args: Any
) -> Any:
    body = await answer(platform, caller, caller.name, op, {"bucket": "uploads", **args}, effects)
    return body if op == "bucket.read" else msgspec.json.decode(body)


async def test_permissions_name_the_action(platform: Any) -> None:
    await _call(platform, WRITER, "bucket.put", key="k", data=b"x")
    assert (await _call(platform, READER, "bucket.head", key="k"))["size"] == 1
    assert await _call(platform, READER, "bucket.read", key="k") == b"x"
    with pytest.raises(AccessDenied) as caught:
        await _call(platform, READER, "bucket.put", key="k", data=b"y")
    assert caught.value.details == {"function": "reader", "action": "bucket", "resource": "uploads"}
    assert 'permissions=["bucket:uploads"]' in caught.value.message
    with pytest.raises(AccessDenied) as caught:
        await _call(platform, FunctionConfig(name="none"), "bucket.list")
    assert caught.value.details["action"] == "bucket.read"


async def test_an_upload_in_parts_held_in_effects_then_discarded(platform: Any) -> None:
    effects = Effects()
    upload = await _call(platform, WRITER, "bucket.begin", effects, key="big", size=10)
    await _call(platform, WRITER, "bucket.part", effects, upload=upload, data=b"hello")
    await _call(platform, WRITER, "bucket.part", effects, upload=upload, data=b"world")
    info = await _call(platform, WRITER, "bucket.complete", effects, upload=upload)
    assert info["size"] == 10
    seen = await _call(platform, WRITER, "bucket.read", effects, key="big", start=5, length=5)
    assert seen == b"world"
    with pytest.raises(NotFound):
        await _call(platform, WRITER, "bucket.head", key="big")  # not committed
    effects.ops()
    effects.discarded()
    with pytest.raises(NotFound):
        await _call(platform, WRITER, "bucket.head", key="big")
    objects = platform.buckets.files.objects
    assert [p for p in objects.rglob("*") if p.is_file()] == []


async def test_an_upload_in_parts_committed_with_its_effects(platform: Any) -> None:
    effects = Effects()
    upload = await _call(platform, WRITER, "bucket.begin", effects, key="big")
    await _call(platform, WRITER, "bucket.part", effects, upload=upload, data=b"abc")
    await _call(platform, WRITER, "bucket.complete", effects, upload=upload)
    assert await _call(platform, WRITER, "bucket.delete", effects, key="big") is True
    await _call(platform, WRITER, "bucket.put", effects, key="big", data=b"final")
    await platform.store.commit(effects.ops())
    effects.committed()
    assert await _call(platform, READER, "bucket.read", key="big") == b"final"
    with pytest.raises(NotFound):
        await _call(platform, WRITER, "bucket.part", upload=upload, data=b"late")


async def test_an_abandoned_upload_is_dropped_with_its_staging_file(platform: Any) -> None:
    upload = await _call(platform, WRITER, "bucket.begin", key="left")
    await _call(platform, WRITER, "bucket.part", upload=upload, data=b"half")
    staging = platform.buckets.files.staging
    assert len(list(staging.iterdir())) == 1
    assert platform.buckets.uploads.expire() == 0
    assert platform.buckets.uploads.expire(now=time.monotonic() + ABANDONED_S + 1) == 1
    assert list(staging.iterdir()) == []
    with pytest.raises(NotFound):
        await _call(platform, WRITER, "bucket.complete", upload=upload)
