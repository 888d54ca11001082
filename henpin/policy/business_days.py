"""Counting business days, as Amazon does for the refund deadline after a return is received."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TypeVar

_Day = TypeVar("_Day", bound=date)  # a date, or a datetime (which keeps its time and zone)

SATURDAY = 5


def is_business_day(day: date) -> bool:
    """Monday to Friday. Public holidays differ per marketplace and are not skipped."""
    return day.weekday() < SATURDAY


def add_business_days(start: _Day, n: int) -> _Day:
    """`n` business days after `start`: each step moves to the next weekday, skipping Saturday
    and Sunday; a datetime keeps its time of day and zone.

    An item received on Friday with 2 business days to refund is due on Tuesday; one received on
    Saturday or Sunday is also due on Tuesday (Monday is the first business day after it).
    With n = 0 the answer is `start` itself. The weekday is the one `start` has in its own time
    zone, so pass the marketplace's local time where the two differ.
    """
    if n < 0:
        raise ValueError(f"cannot count {n} business days; give 0 or more")
    day = start
    for _ in range(n):
        day += timedelta(days=1)
        while not is_business_day(day):
            day += timedelta(days=1)
    return day
