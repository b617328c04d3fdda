"""Dead letters of bus and HTTP targets, and how they are queued again.

They sit in the platform's dead-letter store beside those of functions, listed under the
owner ``rule:<rule name>`` (no function name holds a ':'). The error names the rule, the
target and the last failure (``condition`` says why delivery stopped), and ``delivery``
keeps the queue and headers it takes to redrive the letter.
"""

from __future__ import annotations

from typing import Any

import msgspec

from squall.model.invocation import DeadLetter
from squall.storage.protocols import Delivery, Enqueue, Op, TakeDeadLetter

OWNER_PREFIX = "rule:"


def owner(rule: str) -> str:
    return f"{OWNER_PREFIX}{rule}"


def is_target_letter(letter: DeadLetter) -> bool:
    return letter.function.startswith(OWNER_PREFIX) and isinstance(
        letter.error.get("delivery"), dict
    )


def target_letter(
    delivery: Delivery, error: dict[str, Any], condition: str, now: float
) -> DeadLetter:
    headers = delivery.headers
    return DeadLetter(
        id=delivery.id,
        function=owner(headers["rule"]),
        invocation_id=delivery.id,
        payload=delivery.payload,
        error={
            **error,
            "condition": condition,
            "rule": headers["rule"],
            "target": msgspec.json.decode(headers["target"]),
            "delivery": {"queue": delivery.queue, "headers": dict(headers)},
        },
        attempts=delivery.attempts,
        enqueued_at=delivery.enqueued_at,
        failed_at=now,
    )


def redrive_ops(letter: DeadLetter, now: float) -> tuple[list[Op], str]:
    """Ops that take ``letter`` and queue its delivery afresh, and the queue to wake.

    The delivery keeps its id, so a bus target forwards the event under the same id as
    the first time (a forward that did land is then dropped as a duplicate).
    """
    saved: Any = letter.error["delivery"]
    delivery = Delivery(
        id=letter.id,
        queue=str(saved["queue"]),
        payload=letter.payload,
        invocation_id=letter.invocation_id,
        enqueued_at=now,
        available_at=now,
        headers={str(k): str(v) for k, v in saved["headers"].items()},
    )
    return [TakeDeadLetter(letter.id), Enqueue(delivery)], delivery.queue
