"""Token buckets: ``rate`` tokens a second refill a bucket holding at most ``burst``.

One limiter holds a bucket per key (an API key id, a route); ``take`` spends a token or says
how long until one is available. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from squall.errors import ConfigError, TooManyRequests
from squall.model.http import RateLimit

MAX_BUCKETS = 100_000  # past this, full (idle) buckets are forgotten: they hold no state


class RateLimiter:
    __slots__ = ("_buckets", "_clock", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)) or burst < 1:
            raise ConfigError(
                f"rate limit {rate}/s with burst {burst} is invalid (rate > 0, burst >= 1)",
                field="rate_limit",
            )
        self.rate = float(rate)
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    @classmethod
    def of(
        cls, limit: RateLimit | None, *, clock: Callable[[], float] = time.monotonic
    ) -> RateLimiter | None:
        return None if limit is None else cls(limit.rate, limit.burst, clock=clock)

    def take(self, key: str) -> float | None:
        """Spend a token for ``key``: None if one was there, else seconds until there is one."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= MAX_BUCKETS and key not in self._buckets:
                self._forget_full(now)
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def check(self, key: str, what: str) -> None:
        """``take``, raising ``TooManyRequests`` (with ``retry_after`` seconds) when empty."""
        wait = self.take(key)
        if wait is not None:
            raise TooManyRequests(
                f"rate limit of {self.rate:g} requests/s (burst {self.burst}) exceeded for"
                f" {what}; retry in {wait:.2f} s",
                retry_after=retry_after(wait),
            )

    def _forget_full(self, now: float) -> None:
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[key]


def retry_after(wait: float) -> int:
    """``Retry-After`` takes whole seconds; round up so a client that obeys it succeeds."""
    return max(1, math.ceil(wait))
