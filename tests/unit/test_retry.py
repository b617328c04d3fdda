"""Backoff for async retries: exponential, capped, equal jitter."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.engine.retry import backoff_delay


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 256.0), (10, 300.0), (50, 300.0)],
)
def test_bounds(attempt: int, ceiling: float) -> None:
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(500)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    # jitter actually spreads the delays over the upper half
    assert min(delays) < ceiling * 0.6
    assert max(delays) > ceiling * 0.9


def test_extremes_of_the_rng() -> None:
    class Fixed(random.Random):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

        def uniform(self, a: float, b: float) -> float:
            return a + (b - a) * self.value

    assert backoff_delay(3, 0.5, 100.0, Fixed(0.0)) == 1.0
    assert backoff_delay(3, 0.5, 100.0, Fixed(1.0)) == 2.0
    assert backoff_delay(30, 0.5, 100.0, Fixed(1.0)) == 100.0
    assert backoff_delay(30, 0.5, 100.0, Fixed(0.0)) == 50.0


def test_huge_attempt_does_not_overflow() -> None:
    assert 150.0 <= backoff_delay(10_000, 1.0, 300.0, random.Random(1)) <= 300.0


@given(
    attempt=st.integers(0, 200),
    base=st.floats(0.001, 60),
    cap=st.floats(0.001, 3600),
    seed=st.integers(0, 2**32),
)
def test_always_within_half_ceiling_and_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = backoff_delay(attempt, base, cap, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling
    assert delay <= cap
