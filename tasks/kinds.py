"""The two kinds of side-effect task Henpin has, with their retries and timeouts spelled once.

- store tasks write or read the case store: retried briefly (a locked SQLite, a dropped
  PostgreSQL connection), 60 s timeout.
- Amazon tasks call SP-API through the adapter: retried only when Amazon throttled us or was
  unavailable (a refusal or a conflict is an answer, not a reason to retry), 5 min timeout.

`fresh=True` marks a read that must see the present on every run of a resumed flow (no
caching of its result across the re-run). Its result is not persisted either: nothing reads
it again, and some hold buyers' names and addresses (a page of orders) that would otherwise
stay in Prefect's result storage with no case to purge them with. Results of the other tasks
are persisted, so a resumed or restarted run reuses them; those of a case's run are deleted
when the case's buyer data is purged (`henpin.runs.forget_case_run_data`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import DEFAULT, NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

P = ParamSpec("P")
R = TypeVar("R")


def store_task(name: str, *, fresh: bool = False) -> Callable[[Callable[P, R]], Task[P, R]]:
    return task(
        name=name,
        retries=3,
        retry_delay_seconds=[1, 5, 15],
        timeout_seconds=60,
        cache_policy=NO_CACHE if fresh else DEFAULT,
        persist_result=False if fresh else None,
    )


def transient_amazon_error(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when Amazon throttled us or was unavailable; anything else is an answer."""
    from tasks.amazon import AmazonThrottled, AmazonUnavailable

    try:
        state.result()
    except (AmazonThrottled, AmazonUnavailable):
        return True
    except Exception:
        return False
    return False


def amazon_task(name: str, *, fresh: bool = False) -> Callable[[Callable[P, R]], Task[P, R]]:
    return task(
        name=name,
        retries=4,
        retry_delay_seconds=[5, 30, 120, 300],
        retry_condition_fn=transient_amazon_error,
        timeout_seconds=300,
        cache_policy=NO_CACHE if fresh else DEFAULT,
        persist_result=False if fresh else None,
    )
