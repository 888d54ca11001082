"""Henpin's dealings with the Prefect API: start a case's flow run, resume a waiting one.

Deployment names are fixed here, so the runner (`henpin runner`) and the code that starts runs
agree on them.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.client.schemas.responses import SetStateStatus
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry

from henpin.cases.registry import case_type_entry
from henpin.context import current
from henpin.domain import CaseType
from henpin.marketplaces import MARKETPLACES
from henpin.policy.reasons import Phrase, phrase

log = logging.getLogger(__name__)

DEPLOYMENT = "henpin"  # every Henpin flow is served under this deployment name


def deployment_name(case_type: CaseType) -> str:
    """The case type's deployment: its flow (henpin/cases/registry.py) served as `henpin`."""
    return f"{case_type_entry(case_type).flow_name}/{DEPLOYMENT}"


def case_run_name(case_type: CaseType, order_id: str) -> str:
    """The name the Prefect UI shows, e.g. `cancel-request 113-1234567-1234567`."""
    return f"{case_type.value} {order_id}"


def case_run_tags(case_type: CaseType, marketplace_id: str) -> list[str]:
    m = MARKETPLACES.get(marketplace_id)
    return [f"case:{case_type.value}", f"marketplace:{m.country if m else marketplace_id}"]


def start_case_run(
    case_type: CaseType,
    case_id: int,
    order_id: str,
    marketplace_id: str,
    parameters: dict[str, Any],
) -> str:
    """Create the case's flow run (idempotent per order and type: starting twice returns the same run)."""
    run = create_flow_run(
        deployment_name(case_type),
        parameters,
        name=case_run_name(case_type, order_id),
        tags=case_run_tags(case_type, marketplace_id),
        idempotency_key=f"henpin:{case_type.value}:{order_id}",  # one case per order and type
    )
    current().runs_due()
    return str(run.id)


def create_flow_run(
    deployment: str,
    parameters: dict[str, Any],
    *,
    name: str,
    tags: list[str],
    idempotency_key: str,
) -> FlowRun:
    """A Scheduled run of `deployment` ("flow/deployment"), as `run_deployment(timeout=0)` makes
    one, but with its parameters checked once: by the flow, when the run starts.

    Prefect's server otherwise checks them too, against the deployment's JSON schema, each time
    a run is created (prefect/server/api/deployments.py `create_flow_run_from_deployment`; the
    run's `enforce_parameter_schema` overrides the deployment's). That check first validates
    the schema itself and took about 12 ms of the server's one core per case (bench, py-spy),
    for parameters Henpin built from its own typed models a moment before. The flow's check is
    the one that holds: Prefect validates a run's parameters against the flow's signature
    before its body runs, and a run that fails it ends Failed, naming the parameter
    (tests/test_case_registry.py: each case type's flow accepts what its case gives). Runs made
    from the Prefect UI or with `prefect deployment run` are still checked by the server.

    The deployment's id is read once per process and Prefect API (`Context.deployment_ids`),
    not for every run: reading it cost the server a call per case created."""
    from prefect.client.schemas.actions import DeploymentFlowRunCreate
    from prefect.states import Scheduled, to_state_create

    create = DeploymentFlowRunCreate(
        parameters=parameters,
        state=to_state_create(Scheduled()),
        name=name,
        tags=tags,
        idempotency_key=idempotency_key,
        enforce_parameter_schema=False,
    ).model_dump(mode="json", exclude_unset=True)
    known = current().deployment_ids
    with get_client(sync_client=True) as client:
        where = (str(client.api_url), deployment)

        def create_in(deployment_id: UUID) -> FlowRun:
            response = client.request(
                "POST",
                "/deployments/{id}/create_flow_run",
                path_params={"id": deployment_id},
                json=create,
            )
            return FlowRun.model_validate(response.json())

        if where in known:
            try:
                return create_in(known[where])
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 404:
                    raise
                # Deployed again under a new id since it was read (`henpin deploy`): read again.
        known[where] = client.read_deployment_by_name(deployment).id
        return create_in(known[where])


#: Prefect server's refusal of an answer to a run suspended without its schema
#: (prefect/server/api/flow_runs.py, `resume_flow_run`).
SCHEMA_NOT_SAVED = "Run input schema not found"


class ResumeResult:
    RESUMED = "resumed"
    NOT_WAITING = "not-waiting"  # the run is not suspended (yet, or any more)
    FAILED = "failed"


def resume_case_run(flow_run_id: str, run_input: dict[str, Any] | None) -> str:
    """Resume a suspended case run; say what happened instead of raising for expected races.

    One call: Prefect's server itself answers "not paused" (ABORT) for a run that is not
    waiting (prefect/server/api/flow_runs.py `resume_flow_run`), so the run is not read first
    (prefect's own `resume_flow_run` reads it first, and so did this, twice). A burst of cases
    woken by one feed result costs one call each. A resumed run is due: this process's
    executor, if it has one, is told at once (`Context.runs_due`)."""
    resumed = _resume(flow_run_id, run_input)
    if resumed == ResumeResult.RESUMED:
        current().runs_due()
    return resumed


def _resume(flow_run_id: str, run_input: dict[str, Any] | None) -> str:
    try:
        with get_client(sync_client=True) as client:
            response = client.resume_flow_run(UUID(flow_run_id), run_input=run_input)
    except ObjectNotFound:
        return ResumeResult.FAILED
    except Exception as exc:  # the Prefect API down or refusing: the sweep will retry
        if _status_code(exc) == 409 and not _still_paused(flow_run_id):
            # Two doors resumed at once (a decision and the housekeeper's sweep of decided
            # cases): the server reads the state without a lock, so both pass its "is it
            # paused?" check, and the loser's answer hits the unique key of the winner's
            # ("Data integrity conflict", prefect/server/api/flow_runs.py `resume_flow_run`)
            # and is rolled back. Both answers come from the same decision in the case store.
            log.info("flow run %s was resumed at the same moment by another door", flow_run_id)
            return ResumeResult.RESUMED
        log.warning("could not resume flow run %s: %s", flow_run_id, exc)
        return ResumeResult.FAILED
    if response.status == SetStateStatus.ACCEPT:
        return ResumeResult.RESUMED
    reason = getattr(response.details, "reason", None) or ""
    if response.status == SetStateStatus.ABORT:
        return ResumeResult.NOT_WAITING  # "Cannot resume a flow run that is not paused."
    if SCHEMA_NOT_SAVED in reason:
        # Prefect suspends a run by setting its state first and saving the answer's schema
        # second (prefect/flow_runs.py `suspend_flow_run`); a process killed in between
        # leaves a run no answer can resume (the server's "Run input schema not found.").
        # Sent back to Scheduled, it runs again from the top and finds the decision in the
        # case store, as a run restarted after a crash does.
        log.warning(
            "flow run %s was suspended without its answer's schema (its process died while "
            "suspending): starting it again",
            flow_run_id,
        )
        return ResumeResult.RESUMED if retry_case_run(flow_run_id) else ResumeResult.FAILED
    log.warning("could not resume flow run %s: %s %s", flow_run_id, response.status.value, reason)
    return ResumeResult.FAILED


def _status_code(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def queued_to_run(flow_run_id: str) -> bool:
    """Whether a run that is not paused is queued to run (Scheduled, such as the "Resuming"
    another door's resume leaves, or Pending): it starts again from the top and finds a
    decision already recorded in the case store, so the case continues now. A Running run may
    be about to suspend without having seen the decision (the sweep resumes it then), and a
    finished one will not continue: neither counts. Read by a decision whose resume was
    answered "not paused"; not by the housekeeper's rounds, which try such runs again anyway."""
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
    except Exception:  # cannot tell: "will continue within a minute" stays true
        return False
    return bool(run.state and run.state.type in (StateType.SCHEDULED, StateType.PENDING))


def _still_paused(flow_run_id: str) -> bool:
    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
    except Exception:  # cannot tell: the caller treats the resume as failed, the sweep retries
        return True
    return bool(run.state and run.state.is_paused())


# --- runs left behind by a process that died ------------------------------------------------------
# A runner or worker killed while starting a run leaves it PENDING; a flow process killed mid-run
# leaves it RUNNING or CRASHED. Prefect starts none of these again by itself. Case flows are
# safe to run again from the top (finished tasks come back from the result store, Amazon
# actions are idempotent in the outbox, answers come from the case store), so the housekeeper
# sends such a run back to Scheduled and a runner or worker picks it up.
STRANDED_PENDING = timedelta(minutes=1)  # starting a run takes seconds
STALE_RUNNING = timedelta(minutes=15)  # the default of HENPIN_STALE_RUN_S
# A crash being reported may be a cancellation the executor is finishing: a resident worker
# that cancels a run's task sees Prefect's engine report the run CRASHED for a moment, then
# sets it CANCELLED. A CRASHED run counts as stranded only once it has stayed so this long.
CRASH_SETTLE = timedelta(seconds=15)


@dataclass(frozen=True)
class RunState:
    type: str  # Prefect's StateType value: RUNNING, PAUSED, CRASHED, ...
    name: str
    since: datetime | None
    message: str = ""  # the state's message, as Prefect keeps it ("" for none)

    @classmethod
    def of(cls, state: State) -> RunState:
        """A run's state as Prefect's API reports it."""
        return cls(state.type.value, state.name or "", state.timestamp, state.message or "")


MOST_TROUBLED = 5_000  # newest first; more than this many stuck runs is a fire, not a sweep


def read_troubled_runs(page: int = 200) -> dict[str, RunState]:
    """Runs of Henpin's deployments that are starting, running, crashed or failed: the only ones
    that can be stranded (waiting, scheduled and finished runs are not asked for). One API call
    per `page` of them, however many cases are open."""
    troubled = [StateType.PENDING, StateType.RUNNING, StateType.CRASHED, StateType.FAILED]
    states: dict[str, RunState] = {}
    with get_client(sync_client=True) as client:
        for offset in range(0, MOST_TROUBLED, page):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=troubled))
                ),
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC,
                limit=page,
                offset=offset,
            )
            for run in runs:
                if run.state is not None:
                    states[str(run.id)] = RunState.of(run.state)
            if len(runs) < page:
                break
    return states


def why_stranded(
    state: RunState, now: datetime | None = None, *, stale_running: timedelta = STALE_RUNNING
) -> str | None:
    """Why a case's run will not move again by itself, in words for the case timeline; None
    when it is fine (waiting, scheduled, running briefly, finished)."""
    why = stranded_because(state, now, stale_running=stale_running)
    return None if why is None else why.text


def stranded_because(
    state: RunState, now: datetime | None = None, *, stale_running: timedelta = STALE_RUNNING
) -> Phrase | None:
    """`why_stranded` as a coded phrase (a part of a needs-attention reason)."""
    now = now or datetime.now(UTC)
    age = now - state.since if state.since else timedelta(0)
    if state.type == StateType.CRASHED.value and state.since and age < CRASH_SETTLE:
        return None  # maybe a cancellation being finished (CRASH_SETTLE)
    if state.type in (StateType.CRASHED.value, StateType.FAILED.value):
        return phrase("attention", "run-ended", state=state.name or state.type.lower())
    if state.type == StateType.PENDING.value and age > STRANDED_PENDING:
        return phrase("attention", "run-never-began", seconds=int(age.total_seconds()))
    if state.type == StateType.RUNNING.value and age > stale_running:
        return phrase("attention", "run-running-long", minutes=int(age.total_seconds() // 60))
    return None


# --- runs cancelled in Prefect ------------------------------------------------------------------
# Someone cancelled a case's run in the Prefect UI or API (CANCELLING, then CANCELLED once its
# process, if it had one, stopped). Henpin does not start it again; the housekeeper withdraws the
# Amazon actions it queued but had not sent and hands the case to a person.
CANCELLED_STATES = (StateType.CANCELLING, StateType.CANCELLED)


def read_cancelled_runs(
    run_ids: Collection[str], *, ids_per_call: int = 1_000, page: int = 200
) -> dict[str, RunState]:
    """Which of these runs of Henpin's deployments are cancelling or cancelled, with their
    states. Prefect answers with the cancelled ones only, so this is one API call per
    `ids_per_call` runs asked about (and one more per `page` of cancelled ones among them):
    the cost follows the open cases asked about, not every run Prefect ever kept."""
    return _runs_in_states(run_ids, CANCELLED_STATES, ids_per_call=ids_per_call, page=page)


#: A run in one of these states runs no more (unless someone starts it again).
ENDED_STATES = (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)


def read_ended_runs(run_ids: Collection[str]) -> dict[str, RunState]:
    """Which of these runs of Henpin's deployments have ended, with their states (as
    `read_cancelled_runs`, for `ENDED_STATES`)."""
    return _runs_in_states(run_ids, ENDED_STATES)


def _runs_in_states(
    run_ids: Collection[str],
    types: Collection[StateType],
    *,
    ids_per_call: int = 1_000,
    page: int = 200,
) -> dict[str, RunState]:
    ids = sorted({UUID(i) for i in run_ids})
    states: dict[str, RunState] = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), ids_per_call):
            these = FlowRunFilter(
                id=FlowRunFilterId(any_=ids[start : start + ids_per_call]),
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types))),
            )
            for offset in count(0, page):
                runs = client.read_flow_runs(
                    flow_run_filter=these,
                    deployment_filter=DeploymentFilter(
                        name=DeploymentFilterName(any_=[DEPLOYMENT])
                    ),
                    sort=FlowRunSort.ID_DESC,
                    limit=page,
                    offset=offset,
                )
                for run in runs:
                    if run.state is not None:
                        states[str(run.id)] = RunState.of(run.state)
                if len(runs) < page:
                    break
    return states


class RunCancelled(RuntimeError):
    """The flow run asking to store an Amazon action was cancelled in Prefect: nothing is
    stored, so nothing of it reaches Amazon."""


def refuse_if_cancelled(flow_run_id: str | None, what: str) -> None:
    """Raise `RunCancelled` when the flow run is cancelling or cancelled in Prefect (one API
    call); outside a flow run (`None`), nothing to check."""
    if flow_run_id is None:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    if run.state is not None and run.state.type in CANCELLED_STATES:
        raise RunCancelled(
            f"flow run {run.name} ({flow_run_id}) is {run.state.name or run.state.type.value} "
            f"in Prefect: Henpin does not store {what} for Amazon"
        )


def retry_case_run(flow_run_id: str) -> bool:
    """Send a stranded run back to Scheduled (AwaitingRetry); a runner or worker starts it."""
    try:
        with get_client(sync_client=True) as client:
            retry: State[Any] = AwaitingRetry()
            result = client.set_flow_run_state(UUID(flow_run_id), retry, force=True)
    except Exception as exc:  # the Prefect API down: the next round tries again
        log.warning("could not restart flow run %s: %s", flow_run_id, exc)
        return False
    if result.status != SetStateStatus.ACCEPT:
        return False
    current().runs_due()
    return True


# --- what Prefect keeps of a case, forgotten with the buyer's data -----------------------------
# A case's flow run carries ids only as parameters, and its pause descriptions hold no buyer
# data; but the results its tasks persisted (the order as read, with the buyer's name and relay
# address, so a resumed run reuses them) and the answers typed into the Prefect UI's Resume form
# stay in Prefect until deleted. The purge deletes both when it purges the case. It finds the
# results by the case's folder (every file there) and by what the run's states point to; the
# folder alone is complete: the server records task runs from events sent in the background by
# the flow's process, and its list of them can fall short of what ran.


#: The folder of Prefect's result storage holding each case's persisted task results, one
#: sub-folder per case (`tasks.kinds.CaseResults` names the files so).
CASE_RESULTS_FOLDER = "cases"


def case_results_key(case_id: int) -> str:
    """Where a case's task results are kept, relative to the result storage."""
    return f"{CASE_RESULTS_FOLDER}/{int(case_id)}"


def _local_storage() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().results.local_storage_path)


def local_result_exists(key: str) -> bool:
    """Whether a result is persisted under this key in the local result storage."""
    return (_local_storage() / key).is_file()


def case_result_files(case_id: int) -> int:
    """How many persisted task results the case's folder holds."""
    folder = _local_storage() / case_results_key(case_id)
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def forget_case_results(case_id: int) -> int:
    """Delete the case's folder of persisted task results; how many files it held."""
    folder = _local_storage() / case_results_key(case_id)
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    removed = 0
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    shutil.rmtree(folder, ignore_errors=True)
    return removed


@dataclass(frozen=True)
class ForgottenRun:
    result_files: int  # persisted result files deleted
    run_inputs: int  # run inputs (Resume-form answers, pause descriptions) deleted


def _result_file(data: Any) -> Path | None:
    """The local file a persisted result lives in; None for no result or one kept elsewhere
    (a storage block: not Henpin's layout)."""
    if isinstance(data, dict):
        key, block = data.get("storage_key"), data.get("storage_block_id")
    else:
        key, block = getattr(data, "storage_key", None), getattr(data, "storage_block_id", None)
    if not key or block is not None:
        return None
    path = Path(str(key))
    return path if path.is_absolute() else _local_storage() / path


def forget_case_run_data(flow_run_id: str, page: int = 200) -> ForgottenRun:
    """Delete the persisted task results and run inputs of a finished case's flow run.

    Raises when the Prefect API cannot be reached, so the purge tries again next round."""
    files: set[Path] = set()
    with get_client(sync_client=True) as client:
        run_id = UUID(flow_run_id)
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:
            return ForgottenRun(0, 0)
        if run.state is not None and (found := _result_file(run.state.data)):
            files.add(found)
        only_this_run = FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        for offset in count(0, page):
            task_runs = client.read_task_runs(
                flow_run_filter=only_this_run, limit=page, offset=offset
            )
            files |= {f for t in task_runs if t.state and (f := _result_file(t.state.data))}
            if len(task_runs) < page:
                break
        inputs = client.filter_flow_run_input(run_id, "", 10_000, set())
        for kept in inputs:
            client.delete_flow_run_input(run_id, kept.key)
    removed = 0
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return ForgottenRun(result_files=removed, run_inputs=len(inputs))
