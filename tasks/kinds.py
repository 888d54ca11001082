"""The two kinds of side-effect task Henpin has, with their retries and timeouts spelled once.

- store tasks write or read the case store: retried briefly (a locked SQLite, a dropped
  PostgreSQL connection), 60 s timeout; never after their run was found cancelled in Prefect.
- Amazon tasks call SP-API through the adapter: retried only when Amazon throttled us or was
  unavailable (a refusal or a conflict is an answer, not a reason to retry), 5 min timeout.

`fresh=True` marks a read that must see the present on every run of a resumed flow (no
caching of its result across the re-run). Its result is not persisted either: nothing reads
it again, and some hold buyers' names and addresses (a page of orders) that would otherwise
stay in Prefect's result storage with no case to purge them with. Results of the other tasks
are persisted, so a resumed or restarted run reuses them (the order as first read, so the
run takes the same path again). Each is filed in its case's own folder of the result storage
(`cases/<case id>/`, `CaseResults`), and the purge deletes that folder with the case's buyer
data (`henpin.runs.forget_case_results`): it does not depend on what the Prefect server
recorded of the run's task runs, which can be incomplete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import DEFAULT, NO_CACHE, CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from henpin.amazon import AmazonError, AmazonThrottled, AmazonUnavailable
from henpin.runs import RunCancelled, case_results_key, local_result_exists

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class CaseResults(CachePolicy):
    """Prefect's default cache key (the task's inputs and source, and the flow run), filed
    under the case's folder of the result storage when the task runs in a case's flow (every
    case flow takes `case_id`). Prefect names a persisted result by its cache key, so the file
    is `<storage>/cases/<case id>/<key>` and the purge finds it by the case alone."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        key = DEFAULT.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
        case_id = flow_parameters.get("case_id")
        if key is None or not isinstance(case_id, int) or isinstance(case_id, bool):
            return key  # outside a case's flow: Prefect's own key
        filed = f"{case_results_key(case_id)}/{key}"
        if local_result_exists(key) and not local_result_exists(filed):
            # Persisted before results were filed by case (a run waiting across the upgrade):
            # reused where it is, so the resumed run takes the path it took.
            return key
        return filed


CASE_RESULTS = CaseResults()


def unless_run_cancelled(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a store task after any failure but a refusal no retry changes: its flow run was
    cancelled in Prefect (`RunCancelled`)."""
    try:
        state.result()
    except RunCancelled:
        return False
    except Exception:
        return True
    return True


def store_task(name: str, *, fresh: bool = False) -> Callable[[Callable[P, R]], Task[P, R]]:
    return task(
        name=name,
        retries=3,
        retry_delay_seconds=[1, 5, 15],
        retry_condition_fn=unless_run_cancelled,
        timeout_seconds=60,
        cache_policy=NO_CACHE if fresh else CASE_RESULTS,
        persist_result=False if fresh else None,
    )


def transient_amazon_error(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when Amazon throttled us or was unavailable; anything else is an answer."""
    try:
        state.result()
    except (AmazonThrottled, AmazonUnavailable):
        return True
    except Exception:
        return False
    return False


def tried_again(error: AmazonError) -> bool:
    """Whether Prefect runs the present Amazon task again after `error`: Amazon throttled us or
    was unavailable (`transient_amazon_error`) and the task has tries left (its `retries`, as
    the task engine counts them: this is run number `run_count`). A read that reports Amazon's
    failure in its result re-raises only then, so its retries stay what they were; outside a
    task run (`.fn`), never."""
    context = TaskRunContext.get()
    if context is None or not isinstance(error, (AmazonThrottled, AmazonUnavailable)):
        return False
    return context.task_run.run_count <= context.task.retries


def amazon_task(name: str, *, fresh: bool = False) -> Callable[[Callable[P, R]], Task[P, R]]:
    return task(
        name=name,
        retries=4,
        retry_delay_seconds=[5, 30, 120, 300],
        retry_condition_fn=transient_amazon_error,
        timeout_seconds=300,
        cache_policy=NO_CACHE if fresh else CASE_RESULTS,
        persist_result=False if fresh else None,
    )


def side_by_side(threads: int) -> TaskRunner[PrefectFuture[Any]]:
    """A flow's task runner that runs at most `threads` of its mapped tasks at once (Prefect's
    default pool has no bound: one thread per task submitted)."""
    return cast(TaskRunner[PrefectFuture[Any]], ThreadPoolTaskRunner(max_workers=threads))
