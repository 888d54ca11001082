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

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task
from prefect.cache_policies import DEFAULT, NO_CACHE, CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import FlowRunContext, TaskRunContext
from prefect.futures import PrefectFuture
from prefect.results import get_result_store
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.callables import get_call_parameters

from henpin.amazon import AmazonError, AmazonThrottled, AmazonUnavailable
from henpin.runs import RunCancelled, case_results_key, local_result_exists

log = logging.getLogger(__name__)

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


class CaseStep(Task[P, R]):
    """A step of a case flow whose result is persisted: when the flow runs again (resumed
    after a question or Amazon's answer, or started again after a crash) and the step, called
    with the same inputs, finished before, its result comes straight from the result store.

    Prefect would do the same inside a new task run ("Cached"): a task run, its states, events
    and log lines recorded by the server on every resume, for every step before the point the
    case waited at, all of it work for Prefect's server on every wake of a burst (one feed
    result waking many cases). The key and the store are Prefect's own (the task's cache policy,
    `CaseResults`), so what comes back is what Prefect would have returned; a step not found
    (its inputs changed, it failed, it never ran) goes to Prefect as any task call. The Prefect
    UI shows each step once, as it first ran."""

    def __call__(  # type: ignore[override]
        self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        if not return_state and wait_for is None:
            kept = result_kept(self, get_call_parameters(self.fn, args, kwargs))
            if kept is not None:
                return kept.result
        prefects: Any = super().__call__
        return prefects(*args, return_state=return_state, wait_for=wait_for, **kwargs)


class PolicyStep(CaseStep[P, R]):
    """A step that only computes from its inputs what policy says (the recommendation, the
    refund for a condition, the money of each option): no side effect, nothing to retry or
    time out. Its result is persisted with the case under the key a `CaseStep`'s has, so a
    resumed or restarted run reuses it and takes the same path (a recommendation reads the
    clock). It runs in the flow's own thread, without a task run: a task run costs Prefect's
    server about 16 ms of CPU (three state events, recorded and persisted; bench/server_cost.py,
    docs/scaling.md "What a case costs Prefect's server"). What it decided is on the case's
    timeline (the recommendation is recorded by the store step that follows it), not in the
    Prefect UI's task list. Outside a flow run, or asked for its state, it is a task as any."""

    def __call__(  # type: ignore[override]
        self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        if return_state or wait_for is not None:
            return super().__call__(*args, return_state=return_state, wait_for=wait_for, **kwargs)
        parameters = get_call_parameters(self.fn, args, kwargs)
        found = result_place(self, parameters)
        if found is None:  # outside a flow run: Prefect's own path
            return super().__call__(*args, **kwargs)
        store, key = found
        kept = read_kept(store, key) or self.kept_before_upgrade(parameters)
        if kept is not None:
            return kept.result
        value = self.fn(*args, **kwargs)
        try:
            store.write(obj=value, key=key)
        except Exception as exc:  # as Prefect's engine does with a result it cannot write
            log.warning("could not keep the result of %s: %s", self.name, exc)
        return value

    def kept_before_upgrade(self, parameters: dict[str, Any]) -> Any:
        """The result this step kept when it was a task (`@case_step("<name>",
        timeout_seconds=30)`, until 2026-12-07), for a run waiting across that upgrade: the key
        hashes the step's source, its decorator line included (prefect's `TaskSource`)."""
        source = self.source_code
        if not source:
            return None
        first, _, rest = source.partition("\n")
        indent = first[: len(first) - len(first.lstrip())]
        former = f'{indent}@case_step("{self.name}", timeout_seconds=30)\n{rest}'
        found = result_place(self, parameters, source_code=former)
        return None if found is None else read_kept(*found)


def result_kept(step: Task[..., Any], parameters: dict[str, Any]) -> Any:
    """The result `step` persisted when it last ran with these inputs in this flow run, looked
    up as Prefect's task engine does (prefect 3.9.1 `task_engine.transaction_context`: the
    cache policy's key, the task's result store, an unexpired record); None outside a flow
    run, inside a task, or when there is none. Its `.result` is the step's value."""
    found = result_place(step, parameters)
    return None if found is None else read_kept(*found)


def read_kept(store: Any, key: str) -> Any:
    """The record kept under `key`, None when there is none or it cannot be read (the step
    then runs again, as Prefect's task engine does with an unreadable cached result)."""
    try:
        return store.read(key) if store.exists(key) else None
    except Exception:
        return None


def result_place(
    step: Task[..., Any], parameters: dict[str, Any], *, source_code: str | None = None
) -> tuple[Any, str] | None:
    """The result store and key under which `step`, called with these inputs in this flow
    run, keeps its result (the cache policy's key, the task's store); None outside a flow run,
    inside a task, when the cache is to be refreshed, or when the inputs give no key.
    `source_code`: the key as it was when the step's source read so."""
    flow_run = FlowRunContext.get()
    policy = step.cache_policy
    if (
        flow_run is None
        or flow_run.flow_run is None
        or TaskRunContext.get() is not None
        or not isinstance(policy, CachePolicy)
        or step.refresh_cache
        or (step.refresh_cache is None and PREFECT_TASKS_REFRESH_CACHE.value())
    ):
        return None
    # What the key reads of the task run's context: the task, and the flow run it is part of.
    task = step if source_code is None else SimpleNamespace(source_code=source_code, fn=step.fn)
    context = SimpleNamespace(task=task, task_run=SimpleNamespace(flow_run_id=flow_run.flow_run.id))
    try:
        key = policy.compute_key(
            task_ctx=context,  # type: ignore[arg-type]
            inputs=parameters,
            flow_parameters=flow_run.parameters or {},
        )
        if key is None:
            return None
        store: Any = get_result_store().update_for_task(step, _sync=True)  # type: ignore[call-arg]
    except Exception:  # unhashable inputs: Prefect's own path decides, and logs it
        return None
    return store, key


def case_step(
    name: str,
    *,
    timeout_seconds: float,
    cache_policy: CachePolicy = CASE_RESULTS,
    persist_result: bool | None = None,
    retries: int | None = None,
    retry_delay_seconds: list[float] | None = None,
    retry_condition_fn: Callable[[Task[..., Any], TaskRun, State[Any]], bool] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task of a case flow (`CaseStep` where its result is persisted)."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        kind = Task if cache_policy is NO_CACHE else CaseStep
        return kind(
            fn=fn,
            name=name,
            timeout_seconds=timeout_seconds,
            cache_policy=cache_policy,
            persist_result=persist_result,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            retry_condition_fn=retry_condition_fn,
        )

    return decorate


def policy_step(name: str) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A step that only computes what policy says (`PolicyStep`): its result persisted with
    the case, no task run."""

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return PolicyStep(fn=fn, name=name, cache_policy=CASE_RESULTS, persist_result=True)

    return decorate


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
    return case_step(
        name,
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
    return case_step(
        name,
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


def each(task: Task[[Any], R], items: Iterable[Any], *, in_flight: int) -> list[R]:
    """`task` over `items` through the flow's task runner, results in the order of `items`, as
    `task.map(items).result()` gives them, but with at most `in_flight` of them submitted and
    not yet collected at any moment.

    `map` submits every item at once: a thousand orders found in one ingestion pass were a
    thousand futures, their parameters and task-run contexts alive together beside the case
    runs of a resident runner, and CPython keeps the memory such a peak takes (its small-object
    arenas are handed back only when nothing in them lives; docs/scaling.md). With `in_flight`
    above the task runner's threads, the runner never waits for work.

    A failed item raises when its turn to be collected comes; items after it are not submitted
    (`map` would still have run them): the caller's pass fails and its next pass takes them."""
    results: list[R] = []
    submitted: deque[PrefectFuture[R]] = deque()
    for item in items:
        if len(submitted) == in_flight:
            results.append(submitted.popleft().result())
        submitted.append(task.submit(item))
    results.extend(future.result() for future in submitted)
    return results
