"""In-process token-bucket rate limiting keyed by string, and the 429 problem it answers with.

Each key (a principal, a web-to-lead key, a client IP) has a bucket of `burst` tokens refilled at
`rate_per_second`; a request takes one token or is refused with the time until one is back. The
buckets live in this process, so the limit applies per gateway replica. Memory is bounded: past
`max_keys` the least recently used bucket is dropped (that key starts again with a full bucket).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from starlette.responses import Response

from crm_gateway.platform.problems import problem


class RateLimiter:
    """A token bucket per key; safe to share between the event loop and threadpool dependencies."""

    def __init__(self, rate_per_second: float, burst: int, max_keys: int = 100_000) -> None:
        if rate_per_second <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_second must be > 0, burst and max_keys >= 1")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        # key → (tokens left, when they were counted); least recently used first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> float:
        """Take a token for `key`: 0.0 when allowed, else the seconds until a token is available."""
        if now is None:
            now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                tokens = float(self.burst)
            else:
                left, counted_at = bucket
                tokens = min(float(self.burst), left + max(0.0, now - counted_at) * self.rate_per_second)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate_per_second
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def spent(self, key: str, now: float | None = None) -> float:
        """Without taking a token: 0.0 when `key` has one left, else the seconds until it has."""
        if now is None:
            now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return 0.0
            left, counted_at = bucket
            tokens = min(float(self.burst), left + max(0.0, now - counted_at) * self.rate_per_second)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_second

    def __len__(self) -> int:
        return len(self._buckets)


def too_many_requests(retry_after: float, detail: str) -> Response:
    """A 429 problem+json whose Retry-After is `retry_after` rounded up to whole seconds, at least 1."""
    seconds = max(1, math.ceil(retry_after))
    return problem(429, detail, headers={"Retry-After": str(seconds)})
