"""tasks/kinds.py `each`: a task over many items through the flow's task runner, with only a
few submitted at a time (ingestion's thousand orders are not a thousand futures at once)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest


@pytest.mark.e2e
def test_each_submits_no_more_than_in_flight_and_keeps_the_order(prefect_server: Any) -> None:
    from prefect import flow, task

    from tasks.kinds import each, side_by_side

    started: list[int] = []
    lock = threading.Lock()

    @task(name="slow-first", cache_policy=None, persist_result=False)
    def slow_first(i: int) -> int:
        with lock:
            started.append(i)
        if i == 0:
            # Items 1 and 2 are in flight beside this one and finish; until this one is
            # collected, item 3 is not submitted (with `map`, all 30 would run meanwhile).
            deadline = time.monotonic() + 10
            while not {1, 2} <= set(started) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.5)
            with lock:
                seen_while_first_ran.extend(started)
        return i * 10

    seen_while_first_ran: list[int] = []

    @flow(name="each-in-flight", task_runner=side_by_side(2))
    def over_thirty() -> list[int]:
        return each(slow_first, range(30), in_flight=3)

    assert over_thirty() == [i * 10 for i in range(30)]
    assert sorted(seen_while_first_ran) == [0, 1, 2]
    assert sorted(started) == list(range(30))


@pytest.mark.e2e
def test_each_raises_the_failure_of_an_item_and_submits_none_after_it(
    prefect_server: Any,
) -> None:
    from prefect import flow, task

    from tasks.kinds import each, side_by_side

    started: list[int] = []

    @task(name="fails-at-five", cache_policy=None, persist_result=False)
    def fails_at_five(i: int) -> int:
        started.append(i)
        if i == 5:
            raise ValueError("order 5 is unreadable")
        return i

    @flow(name="each-failure", task_runner=side_by_side(1))
    def over_twenty() -> list[int]:
        return each(fails_at_five, range(20), in_flight=2)

    with pytest.raises(ValueError, match="order 5 is unreadable"):
        over_twenty()
    # One thread, two in flight: when 5 fails, 6 was submitted, 7 never was.
    assert max(started) <= 6
