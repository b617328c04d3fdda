"""Token buckets on a fake clock: bursts, refill, per-key isolation, Retry-After rounding."""

from __future__ import annotations

import pytest

from squall.errors import ConfigError, TooManyRequests
from squall.security.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_token_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert limiter.take("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert limiter.take("a") is None
    assert limiter.take("a") == pytest.approx(0.5)


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 2, clock=clock)
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)][:2] == [None, None]
    assert limiter.take("a") is not None


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None


def test_check_raises_with_whole_seconds_to_wait() -> None:
    limiter = RateLimiter(0.5, 1, clock=Clock())
    limiter.check("k", "key k")
    with pytest.raises(TooManyRequests) as info:
        limiter.check("k", "key k")
    assert info.value.status == 429
    assert info.value.details["retry_after"] == 2
    assert "key k" in info.value.message
    assert retry_after(0.01) == 1
    assert retry_after(1.2) == 2


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0), (float("inf"), 1)])
def test_bad_limits_are_config_errors(rate: float, burst: int) -> None:
    with pytest.raises(ConfigError):
        RateLimiter(rate, burst)
