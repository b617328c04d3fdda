"""Streams and consumers made idempotently: created when missing, left alone when they
match, updated when a setting we own changed (several platform processes start at once,
and each one ensures the same objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from squall.errors import ConfigError

if TYPE_CHECKING:
    from nats.js.api import ConsumerConfig, StreamConfig
    from nats.js.client import JetStreamContext


@dataclass(frozen=True, kw_only=True)
class StreamSpec:
    name: str
    subjects: list[str]
    duplicate_window_s: float
    replicas: int = 1
    memory: bool = False  # tests and throwaway clusters; a platform keeps its queues on disk
    # A work queue drops a message once it is acked; a log (limits retention) keeps every
    # message for ``max_age_s`` and serves reads by sequence (direct get).
    log: bool = False
    max_age_s: float = 0.0  # 0: kept until acked (a work queue) or forever


def stream_config(spec: StreamSpec) -> StreamConfig:
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig

    return StreamConfig(
        name=spec.name,
        subjects=spec.subjects,
        retention=RetentionPolicy.LIMITS if spec.log else RetentionPolicy.WORK_QUEUE,
        storage=StorageType.MEMORY if spec.memory else StorageType.FILE,
        num_replicas=spec.replicas,
        duplicate_window=spec.duplicate_window_s,
        max_age=spec.max_age_s or None,
        allow_direct=True if spec.log else None,
    )


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> str:
    """Make the stream match ``spec``; return ``created``, ``updated`` or ``unchanged``."""
    from nats.js.errors import BadRequestError, NotFoundError

    wanted = stream_config(spec)
    try:
        have = (await js.stream_info(spec.name)).config
    except NotFoundError:
        try:
            await js.add_stream(wanted)
            return "created"
        except BadRequestError:  # another process created it meanwhile: compare with that
            have = (await js.stream_info(spec.name)).config
    for fixed in ("retention", "storage"):
        if getattr(have, fixed) != getattr(wanted, fixed):
            raise ConfigError(
                f"stream {spec.name} exists with {fixed}={getattr(have, fixed)!s}, which cannot"
                f" change to {getattr(wanted, fixed)!s}; delete the stream or use another prefix",
                field=fixed,
            )
    same = (
        sorted(have.subjects or []) == sorted(spec.subjects)
        and have.duplicate_window == wanted.duplicate_window
        and (have.num_replicas or 1) == spec.replicas
        and (have.max_age or 0.0) == spec.max_age_s
        and bool(have.allow_direct) == spec.log
    )
    if same:
        return "unchanged"
    await js.update_stream(wanted)
    return "updated"


_OWNED = ("filter_subject", "ack_wait", "max_deliver", "max_ack_pending", "ack_policy")


async def ensure_consumer(js: JetStreamContext, stream: str, wanted: ConsumerConfig) -> str:
    """Make the durable consumer ``wanted.durable_name`` match; same results as above."""
    from nats.js.errors import NotFoundError

    assert wanted.durable_name is not None
    try:
        have = (await js.consumer_info(stream, wanted.durable_name)).config
    except NotFoundError:
        await js.add_consumer(stream, wanted)
        return "created"
    if all(getattr(have, name) == getattr(wanted, name) for name in _OWNED):
        return "unchanged"
    # Creating a durable that exists with other editable settings updates it.
    await js.add_consumer(stream, wanted)
    return "updated"
