"""Per-endpoint limits shared by a worker's threads: at most N requests in flight, requests and tokens per minute.

Limits hold within one process (every thread that uses the same ``LLMClient``). Several worker processes
each keep their own, so give each process its share of an API's quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class RateLimiter:
    """A token bucket: ``per_minute`` units flow in evenly and at most ``burst`` units are held.

    ``acquire(n)`` waits until n units are there and takes them. A request larger than the bucket waits for
    a full bucket and leaves it in debt, so it goes through and the debt slows those that follow: the
    long-run rate stays ``per_minute``. ``adjust`` settles an estimate once the true amount is known
    (tokens: estimated before the call, counted by the server after).
    """

    def __init__(self, per_minute: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0  # units per second
        self.capacity = float(burst) if burst is not None else float(per_minute)
        if self.capacity <= 0:
            raise ValueError("burst must be positive")
        self._clock = clock
        self._sleep = sleep
        self._level = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, amount: float = 1.0) -> float:
        """Take ``amount`` units, waiting as long as needed; return the seconds waited."""
        needed = min(amount, self.capacity)
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                if self._level >= needed:
                    self._level -= amount
                    return waited
                delay = (needed - self._level) / self.rate
            self._sleep(delay)
            waited += delay

    def adjust(self, delta: float) -> None:
        """Give back (positive) or take more (negative, possibly into debt) units."""
        with self._lock:
            self._refill()
            self._level = min(self.capacity, self._level + delta)


@dataclass
class Permit:
    """One request's place: the tokens it reserved, to be settled with what the server counted."""

    limits: EndpointLimits
    reserved_tokens: float
    waited_s: float

    def settle(self, actual_tokens: float) -> None:
        if self.limits.tokens is not None:
            self.limits.tokens.adjust(self.reserved_tokens - actual_tokens)
        self.reserved_tokens = actual_tokens


class EndpointLimits:
    def __init__(self, *, max_concurrency: int, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, burst_s: float = 10.0) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        # A bucket holds burst_s seconds' worth: requests are spread out rather than sent in a minute's burst.
        self.requests = (RateLimiter(requests_per_minute, burst=max(1.0, requests_per_minute * burst_s / 60))
                         if requests_per_minute else None)
        self.tokens = (RateLimiter(tokens_per_minute, burst=max(1.0, tokens_per_minute * burst_s / 60))
                       if tokens_per_minute else None)
        self._in_flight = 0
        self._count_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def permit(self, estimated_tokens: float) -> Iterator[Permit]:
        """Hold one of the endpoint's slots, once the request and token rates allow one more request."""
        started = time.monotonic()
        with self._slots:
            # Rates are taken once a slot is held, so a request goes out as soon as it is allowed to.
            if self.requests is not None:
                self.requests.acquire(1)
            if self.tokens is not None:
                self.tokens.acquire(estimated_tokens)
            with self._count_lock:
                self._in_flight += 1
            try:
                yield Permit(self, estimated_tokens, time.monotonic() - started)
            finally:
                with self._count_lock:
                    self._in_flight -= 1
