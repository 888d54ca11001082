"""Client-side rate limiting: stay inside Amazon's usage plans so Henpin rarely sees a 429.

Amazon meters each SP-API operation with a token bucket (a rate of requests per second and a
burst). Henpin keeps its own bucket per operation and per endpoint, shaped like Amazon's, and
waits for a token before each call. One `RateLimiter` is shared by every thread of a process;
several processes (workers) each keep their own and rely on the 429 handling in the adapter.

Time comes from injected `clock` and `sleep` functions so tests never really wait.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """An operation's usage plan: `rate` requests per second refill a bucket of `burst` tokens."""

    rate: float
    burst: int


# The default usage plans, as the official models state them (emulator/spapi_models).
# tests/test_amazon_adapter.py checks this table against the models' descriptions.
OPERATION_QUOTAS: dict[str, Quota] = {
    "searchOrders": Quota(rate=0.0056, burst=20),
    "getOrder": Quota(rate=0.5, burst=30),
    "createFeedDocument": Quota(rate=0.5, burst=15),
    "createFeed": Quota(rate=0.0083, burst=15),
    "getFeed": Quota(rate=2.0, burst=15),
    "getFeeds": Quota(rate=0.0222, burst=10),
    "getFeedDocument": Quota(rate=0.0222, burst=10),
    "cancelFeed": Quota(rate=2.0, burst=15),
    "createReport": Quota(rate=0.0167, burst=15),
    "getReport": Quota(rate=2.0, burst=15),
    "getReports": Quota(rate=0.0222, burst=10),
    "getReportDocument": Quota(rate=0.0167, burst=15),
    "getMessagingActionsForOrder": Quota(rate=1.0, burst=5),
    "createConfirmDeliveryDetails": Quota(rate=1.0, burst=5),
    "createUnexpectedProblem": Quota(rate=1.0, burst=5),
    "createConfirmOrderDetails": Quota(rate=1.0, burst=5),
    "GetAttributes": Quota(rate=1.0, burst=5),
    "listFinancialEventsByOrderId": Quota(rate=0.5, burst=30),
}


class QuotaExhausted(Exception):
    """Waiting for a token would take longer than the caller allows."""

    def __init__(self, operation: str, wait_s: float) -> None:
        super().__init__(f"{operation}: next request allowed in {wait_s:.1f} s")
        self.operation = operation
        self.wait_s = wait_s


class TokenBucket:
    """One usage plan's bucket. Not thread-safe on its own: `RateLimiter` holds the lock."""

    def __init__(self, quota: Quota, now: float) -> None:
        self.rate = quota.rate
        self.burst = quota.burst
        self.tokens = float(quota.burst)  # may go negative: tokens promised to waiting callers
        self.updated = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
        self.updated = now

    def wait_for(self, tokens: float = 1.0) -> float:
        """Seconds until `tokens` would be available (after a refill)."""
        missing = tokens - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate


class RateLimiter:
    """Token buckets per (endpoint, operation), thread-safe; shared by one process.

    `scale` multiplies every rate: an emulator whose clock runs N times faster than real time
    refills N times faster, so pass `scale=N` there. Real Amazon: 1.
    """

    def __init__(
        self,
        quotas: dict[str, Quota] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        scale: float = 1.0,
    ) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.quotas = dict(OPERATION_QUOTAS if quotas is None else quotas)
        self.clock = clock
        self.sleep = sleep
        self.scale = scale
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, endpoint: str, operation: str, now: float) -> TokenBucket:
        key = (endpoint, operation)
        bucket = self._buckets.get(key)
        if bucket is None:
            quota = self.quotas.get(operation)
            if quota is None:
                raise KeyError(f"no usage plan known for SP-API operation {operation!r}")
            bucket = TokenBucket(Quota(quota.rate * self.scale, quota.burst), now)
            self._buckets[key] = bucket
        bucket.refill(now)
        return bucket

    def acquire(self, operation: str, endpoint: str = "", *, max_wait_s: float = math.inf) -> float:
        """Take one token, sleeping until it is there; return the seconds waited.

        Raises `QuotaExhausted` (without taking a token) when the wait would exceed `max_wait_s`,
        so a caller can come back later instead of blocking a worker for minutes.
        """
        with self._lock:
            now = self.clock()
            bucket = self._bucket(endpoint, operation, now)
            wait = bucket.wait_for()
            if wait > max_wait_s:
                raise QuotaExhausted(operation, wait)
            bucket.tokens -= 1.0  # reserved now; the refill pays it back while we sleep
        if wait > 0:
            self.sleep(wait)
        return wait

    def time_until_available(self, operation: str, endpoint: str = "", tokens: int = 1) -> float:
        """Seconds until `tokens` requests could start; for senders that plan around quotas."""
        with self._lock:
            return self._bucket(endpoint, operation, self.clock()).wait_for(tokens)

    def throttled(self, operation: str, endpoint: str = "") -> float:
        """Amazon answered 429: its bucket is empty, so empty ours; return the refill time."""
        with self._lock:
            bucket = self._bucket(endpoint, operation, self.clock())
            bucket.tokens = min(bucket.tokens, 0.0)
            return bucket.wait_for()

    def observe_rate(self, operation: str, endpoint: str, rate: float) -> None:
        """Adopt the account's real rate from an `x-amzn-RateLimit-Limit` header."""
        if rate <= 0 or not math.isfinite(rate):
            return
        with self._lock:
            bucket = self._bucket(endpoint, operation, self.clock())
            bucket.rate = rate * self.scale
