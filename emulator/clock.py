"""Simulated time: Amazon's clock as the emulator shows it.

Feed processing and throttling happen in simulated time, which runs ``time_scale`` times faster
than the wall clock and can be jumped forward, so tests and demos never sleep to see a feed
finish or a quota refill. Simulated time never runs backwards.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    """The wall-clock time, timezone-aware."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Amazon's ISO 8601 spelling of a time: UTC, whole seconds, ``Z`` suffix."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_precise(moment: datetime) -> str:
    """ISO 8601 with milliseconds, as the Feeds API prints times."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time as clients send it (``Z`` or an offset; naive means UTC)."""
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class SimulatedClock:
    """A clock that runs ``time_scale`` times faster than the wall clock and can be advanced."""

    def __init__(self, time_scale: float = 1.0, start: datetime | None = None) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self._anchor_simulated = start or utc_now()
        self._anchor_monotonic = time.monotonic()

    def now(self) -> datetime:
        """The current simulated time."""
        with self._lock:
            elapsed = (time.monotonic() - self._anchor_monotonic) * self.time_scale
            return self._anchor_simulated + timedelta(seconds=elapsed)

    def advance(self, seconds: float) -> datetime:
        """Jump simulated time forward; returns the new simulated time."""
        if seconds < 0:
            raise ValueError("simulated time cannot go backwards")
        with self._lock:
            self._anchor_simulated += timedelta(seconds=seconds)
        return self.now()

    def resume_from(self, saved: datetime) -> None:
        """After a restart, continue from a saved simulated time if it is ahead of the wall clock."""
        with self._lock:
            elapsed = (time.monotonic() - self._anchor_monotonic) * self.time_scale
            current = self._anchor_simulated + timedelta(seconds=elapsed)
            if saved > current:
                self._anchor_simulated += saved - current
