"""Queues (SQS semantics), their messages and the triggers that drain them into functions.

Validation errors name the queue or function, the field, the value and the allowed range.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from squall.errors import ConfigError, InvalidInput

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
MAX_MESSAGE_BYTES = 256 * 1024  # body plus attributes, as in SQS
DEDUP_WINDOW_S = 300.0
MAX_DELAY_S = 900
MAX_WAIT_S = 20
MAX_RECEIVE_MESSAGES = 10
MAX_VISIBILITY_S = 43200
MAX_FIFO_BATCH = 10
MAX_BATCH = 10  # messages per batch send, as in SQS

# field -> (minimum, maximum), inclusive.
QUEUE_RANGES: dict[str, tuple[int, int]] = {
    "visibility_timeout_s": (0, MAX_VISIBILITY_S),
    "retention_s": (60, 1209600),
    "delay_s": (0, MAX_DELAY_S),
    "max_receive": (1, 1000),
}
TRIGGER_RANGES: dict[str, tuple[int, int]] = {
    "batch_size": (1, 10000),
    "batch_window_s": (0, 300),
    "max_concurrency": (1, 1000),
}


class QueueConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    fifo: bool = False
    visibility_timeout_s: int = 30
    retention_s: int = 345600  # 4 days
    delay_s: int = 0  # every message's delay unless the send names one
    max_receive: int | None = None  # past this many receives: moved to dead_letter (or dropped)
    dead_letter: str | None = None
    content_based_dedup: bool = False  # FIFO: a body's SHA-256 is its dedup id
    origin: str = "app"  # "app" (declared in code, read-only) or "api" (kept in the store)
    created_at: float = 0.0

    def validate(self) -> None:
        if not isinstance(self.name, str) or not QUEUE_NAME_RE.match(self.name):
            raise InvalidInput(
                f"queue name {self.name!r} is invalid: use 1-80 letters, digits, '-', '_'"
                " or '.', starting with a letter or digit",
                field="name",
                value=str(self.name),
            )
        for field in ("fifo", "content_based_dedup"):
            if not isinstance(getattr(self, field), bool):
                raise InvalidInput(
                    f"queue {self.name!r}: {field} must be true or false", field=field
                )
        for field, (low, high) in QUEUE_RANGES.items():
            value = getattr(self, field)
            if value is None and field == "max_receive":
                continue
            _check_range(f"queue {self.name!r}", field, value, low, high)
        if self.content_based_dedup and not self.fifo:
            raise InvalidInput(
                f"queue {self.name!r}: content_based_dedup applies to FIFO queues only",
                field="content_based_dedup",
            )
        if self.dead_letter is not None:
            if not isinstance(self.dead_letter, str) or self.dead_letter == self.name:
                raise InvalidInput(
                    f"queue {self.name!r}: dead_letter={self.dead_letter!r} must name another"
                    " queue",
                    field="dead_letter",
                )
            if self.max_receive is None:
                raise InvalidInput(
                    f"queue {self.name!r}: dead_letter needs max_receive (1-1000), the number"
                    " of receives after which a message moves there",
                    field="max_receive",
                )

    def public(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


def check_dead_letter(queue: QueueConfig, known: dict[str, QueueConfig]) -> None:
    """The dead-letter queue exists and is of the same kind (FIFO or standard)."""
    if queue.dead_letter is None:
        return
    target = known.get(queue.dead_letter)
    if target is None:
        raise InvalidInput(
            f"queue {queue.name!r}: dead_letter={queue.dead_letter!r} names no queue"
            f" (queues: {', '.join(sorted(known)) or 'none'})",
            field="dead_letter",
        )
    if target.fifo != queue.fifo:
        kind = "FIFO" if queue.fifo else "standard"
        raise InvalidInput(
            f"queue {queue.name!r}: its dead-letter queue must be {kind} too",
            field="dead_letter",
        )


class QueueTrigger(msgspec.Struct, frozen=True, kw_only=True):
    """``@app.queue``: batches of ``queue``'s messages run ``function``."""

    queue: str
    function: str
    batch_size: int = 10
    batch_window_s: float = 0  # how long to gather a fuller batch
    max_concurrency: int | None = None  # batches at once; the function's concurrency if None

    def validate(self, queue: QueueConfig | None) -> None:
        where = f"function {self.function!r}"
        for field, (low, high) in TRIGGER_RANGES.items():
            value = getattr(self, field)
            if value is None and field == "max_concurrency":
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if field != "batch_window_s":
                number = number and isinstance(value, int)
            if not number or not low <= value <= high:
                _config_range(where, self.function, field, value, low, high)
        if queue is None:
            raise ConfigError(
                f"{where}: queue={self.queue!r} is not a valid queue name",
                field="queue",
                function=self.function,
                value=repr(self.queue),
            )
        if queue.fifo and self.batch_size > MAX_FIFO_BATCH:
            _config_range(
                f"{where} (FIFO queue {queue.name!r})",
                self.function,
                "batch_size",
                self.batch_size,
                1,
                MAX_FIFO_BATCH,
            )


class QueueMessage(msgspec.Struct, kw_only=True):
    """A message as it is stored and as a receiver gets it (``receipt`` once received)."""

    id: str
    queue: str
    body: bytes  # JSON
    attributes: dict[str, str] = {}
    group_id: str | None = None
    dedup_id: str | None = None
    sent_at: float
    available_at: float
    receive_count: int = 0
    first_received_at: float | None = None
    receipt: str | None = None
    traceparent: str | None = None  # the sender's span (W3C trace context), for tracing

    def public(self) -> dict[str, Any]:
        """What a receiver or a queue trigger's handler gets."""
        return {
            "id": self.id,
            "body": msgspec.json.decode(self.body),
            "attributes": self.attributes,
            "receive_count": self.receive_count,
            "sent_at": self.sent_at,
            "first_received_at": self.first_received_at,
            "group_id": self.group_id,
            "dedup_id": self.dedup_id,
            "receipt": self.receipt,
        }


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    visible: int  # ready to be received
    in_flight: int  # received, not yet deleted, still invisible
    delayed: int  # not yet visible since their send
    oldest_sent_at: float | None  # of any message the queue holds


class SendOutcome(msgspec.Struct, frozen=True):
    id: str
    duplicate: bool  # the dedup id was seen within the window; nothing new was queued


def _check_range(where: str, field: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"{where}: {field}={value!r} is out of range (allowed {low}-{high})",
            field=field,
            value=repr(value),
            allowed=f"{low}-{high}",
        )


def _config_range(
    where: str, function: str, field: str, value: object, low: int, high: int
) -> None:
    raise ConfigError(
        f"{where}: {field}={value!r} is out of range (allowed {low}-{high})",
        field=field,
        function=function,
        value=repr(value),
        allowed=f"{low}-{high}",
    )
