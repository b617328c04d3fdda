"""How one delivery attempt to a target ended, and what that means for the next one."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from squall.engine.retry import backoff_delay
from squall.engine.targets.letters import target_letter
from squall.model.targets import RetryPolicy
from squall.storage.protocols import Ack, Bury, Delivery, Op, Retry


@dataclass(frozen=True, slots=True)
class Attempt:
    ok: bool
    retryable: bool = False
    error: dict[str, Any] | None = None
    retry_after_s: float | None = None  # the target asked for this pause (Retry-After)


DELIVERED = Attempt(ok=True)


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float
    cap_s: float
    rng: random.Random

    def delay(self, attempt: int, asked_s: float | None) -> float:
        delay = backoff_delay(attempt, self.base_s, self.cap_s, self.rng)
        return delay if asked_s is None else min(max(delay, asked_s), self.cap_s)


def settle(
    delivery: Delivery,
    attempt: Attempt,
    retry: RetryPolicy,
    dead_letter: bool,
    backoff: Backoff,
    now: float,
) -> list[Op]:
    """Ack; retry later while attempts and event age allow; else bury, or drop.

    ``delivery.attempts`` counts this attempt, so ``max_attempts`` retries follow the
    first one. A failure that cannot succeed on a retry (an HTTP 4xx) is not retried.
    """
    if attempt.ok:
        return [Ack(delivery.id)]
    error = attempt.error or {"type": "DeliveryFailed", "message": "delivery failed"}
    if not attempt.retryable:
        condition = "NotRetryable"
    else:
        delay = backoff.delay(delivery.attempts, attempt.retry_after_s)
        if delivery.attempts > retry.max_attempts:
            condition = "RetriesExhausted"
        elif now + delay - delivery.enqueued_at >= retry.max_event_age_s:
            condition = "EventAgeExceeded"
        else:
            return [Retry(delivery.id, now + delay)]
    if not dead_letter:
        return [Ack(delivery.id)]
    return [Bury(delivery.id, target_letter(delivery, error, condition, now))]
