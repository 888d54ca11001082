"""Usage plans: Amazon throttles each operation per application with a token bucket.

Each (operation, LWA client) pair has a bucket holding up to ``burst`` requests that refills at
``rate`` requests per second of simulated time. A request finding the bucket empty is answered
429 QuotaExceeded; every request that gets past authentication spends a token, whatever its
outcome, as on Amazon.

For benchmarks only, the usage plans can be *lifted* (`henpin emulator --usage-plans lifted`):
every request is allowed and ``x-amzn-RateLimit-Limit`` states the lifted rate, so a client that
adopts the header (Henpin's adapter does) stops pacing itself too. That is not Amazon: it shows
what the engine around the SP-API can carry, not what a seller's account allows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from emulator.spec import UsagePlan


@dataclass
class TokenBucket:
    """Remaining requests of one operation for one application."""

    plan: UsagePlan
    tokens: float
    updated: datetime

    def try_take(self, now: datetime) -> bool:
        """Refill for the simulated time elapsed, then spend one request if one is left."""
        elapsed = max(0.0, (now - self.updated).total_seconds())
        self.tokens = min(float(self.plan.burst), self.tokens + elapsed * self.plan.rate)
        self.updated = max(now, self.updated)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


#: The names `--usage-plans` takes: Amazon's (the default) or lifted (benchmarks only).
USAGE_PLANS = ("amazon", "lifted")
#: What a lifted plan states in ``x-amzn-RateLimit-Limit`` (requests per second).
LIFTED_RATE = 10_000.0


class RateLimiter:
    """All buckets of the emulated SP-API, keyed by operation and LWA client id. With `lifted`
    (benchmarks only) every request is allowed and each plan states `LIFTED_RATE`."""

    def __init__(self, plans: dict[str, UsagePlan], *, lifted: bool = False) -> None:
        self.lifted = lifted
        self.plans = (
            {
                op: UsagePlan(LIFTED_RATE, max(plan.burst, int(LIFTED_RATE)))
                for op, plan in plans.items()
            }
            if lifted
            else plans
        )
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def plan(self, operation: str) -> UsagePlan | None:
        """The operation's usage plan, None if the operation is not throttled."""
        return self.plans.get(operation)

    def allow(self, operation: str, client_id: str, now: datetime) -> bool:
        """Spend one request of the operation's quota; False means throttle (429)."""
        plan = self.plans.get(operation)
        if plan is None or self.lifted:
            return True
        with self._lock:
            bucket = self._buckets.get((operation, client_id))
            if bucket is None:
                bucket = TokenBucket(plan, float(plan.burst), now)
                self._buckets[(operation, client_id)] = bucket
            return bucket.try_take(now)

    def reset(self) -> None:
        """Refill every bucket (by forgetting them)."""
        with self._lock:
            self._buckets.clear()
