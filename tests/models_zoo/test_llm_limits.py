"""The token bucket behind requests/min and tokens/min, on a controlled clock, and under real threads."""

from __future__ import annotations

import threading
import time

import pytest

from models_zoo.llm.limits import EndpointLimits, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_lets_a_burst_through_then_paces_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(60, burst=3, clock=clock, sleep=clock.sleep)  # one a second, three at once
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(1.0)
    assert limiter.acquire() == pytest.approx(1.0)
    clock.now += 10  # idle time refills, but never past the burst
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(1.0)


def test_a_request_larger_than_the_bucket_goes_through_and_leaves_debt() -> None:
    clock = Clock()
    tokens = RateLimiter(600, burst=100, clock=clock, sleep=clock.sleep)  # 10 tokens a second
    assert tokens.acquire(250) == 0  # a full bucket lets it through...
    assert tokens.acquire(10) == pytest.approx(16.0)  # ...and the next waits for the debt: (150 + 10) / 10


def test_adjust_settles_an_estimate_with_the_true_count() -> None:
    clock = Clock()
    tokens = RateLimiter(600, burst=100, clock=clock, sleep=clock.sleep)
    tokens.acquire(80)
    tokens.adjust(80 - 20)  # the server counted 20, not 80: give 60 back
    assert tokens.acquire(80) == 0
    tokens.adjust(80 - 200)  # it counted 200: take 120 more
    assert tokens.acquire(10) == pytest.approx(13.0)  # level was -120: (10 + 120) / 10


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        EndpointLimits(max_concurrency=0)


def test_permit_holds_at_most_max_concurrency_slots_across_threads() -> None:
    limits = EndpointLimits(max_concurrency=2)
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        with limits.permit(estimated_tokens=10):
            with lock:
                seen.append(limits.in_flight)
            time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 6 and max(seen) == 2
    assert limits.in_flight == 0
