"""Backoff for async retries: exponential, capped, with equal jitter."""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Delay before attempt ``attempt + 1``; half fixed, half random, so retries spread out."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(0, attempt - 1), 64))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
