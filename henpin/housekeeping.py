"""What a housekeeping round does, as plain functions of the case store, the outbox and Prefect's
runs: each is given its store, adapter and clock, and is safe to run at any time and any number
of times, from any process. It only moves cases forward through the same one-winner records the
operators use.

tasks/sweep.py wraps each as a Prefect task; flows/housekeeping.py lists the round's steps once,
in order, for the flow and for the runner's housekeeper thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import exists, func, select, update

from henpin import outbox
from henpin.amazon import AmazonAdapter
from henpin.decisions import answered_waiting_cases
from henpin.domain import ActionStatus, CaseState
from henpin.policy.reasons import phrase
from henpin.runs import (
    ResumeResult,
    RunState,
    case_result_files,
    forget_case_results,
    forget_case_run_data,
    read_cancelled_runs,
    read_ended_runs,
    read_troubled_runs,
    resume_case_run,
    retry_case_run,
    stranded_because,
)
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event, utcnow
from henpin.store.purge import PurgeReport, purge_closed_cases

log = logging.getLogger(__name__)

#: A case opened this long ago without a flow run was left by a process that stopped.
UNSTARTED_GRACE = timedelta(minutes=1)
#: The timeline line of a run started again.
RESTART_EVENT = "run-restarted"
MAX_RESTARTS = 5  # a run that keeps dying is a bug or a bad order: a person looks
#: The timeline line of a run cancelled in Prefect.
CANCELLED_EVENT = "run-cancelled"


class OutboxRound(BaseModel):
    feeds_sent: int
    actions_finished: int


def send_amazon_actions(url: str, amazon: AmazonAdapter, *, settle: timedelta) -> OutboxRound:
    """Reconcile, send pending actions as batched feeds (each region's merchant token), and
    record finished feeds' results."""
    outbox.reconcile(url, amazon, settle=settle)
    sent = outbox.send_pending(url, amazon)
    finished = outbox.poll_submitted(url, amazon)
    return OutboxRound(feeds_sent=len(sent), actions_finished=len(finished))


def record_cancelled_runs(url: str) -> list[int]:
    """Cases whose flow run someone cancelled in Prefect (UI or API): withdraw the Amazon
    actions they stored but Henpin has not sent, flag them "needs attention" and say so on
    their timelines. Runs before the sending, so a cancelled run's actions never go.

    Asks Prefect only about the runs of open cases not flagged yet, and of flagged ones still
    holding actions to send (an action stored as its run was being cancelled). Returns the
    cases changed now; a case already handled is not counted again."""
    pending = exists().where(Action.case_id == Case.id, Action.status == ActionStatus.PENDING.value)
    with session_scope(url) as s:
        rows = s.execute(
            select(Case.id, Case.flow_run_id).where(
                Case.state != CaseState.CLOSED.value,
                Case.flow_run_id.is_not(None),
                Case.needs_attention.is_(None) | pending,
            )
        ).all()
    runs = {case_id: str(run_id) for case_id, run_id in rows if run_id}
    if not runs:
        return []
    cancelled = read_cancelled_runs(runs.values())
    return [
        case_id
        for case_id, run_id in runs.items()
        if run_id in cancelled and record_cancelled_run(url, case_id, run_id, cancelled[run_id])
    ]


def record_cancelled_run(url: str, case_id: int, run_id: str, state: RunState) -> bool:
    """One case whose run was cancelled (in `state`), in one transaction: withdraw, flag, say so
    on the timeline. False when there was nothing left to do (another process did it, or the
    case moved on)."""
    with session_scope(url) as s:
        # Written first: the case's row is this transaction's (SQLite: the write lock), so two
        # housekeepers cannot both flag it or both withdraw its actions.
        touched = s.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.flow_run_id == run_id,
                Case.state != CaseState.CLOSED.value,
            )
            .values(updated_at=utcnow())
        )
        if touched.rowcount != 1:  # type: ignore[attr-defined]
            return False
        case = s.get(Case, case_id)
        assert case is not None
        state_name = state.name or state.type.lower()
        withdrawn = outbox.withdraw_pending(
            s, case_id, f"Withdrawn, never sent: the case's flow run was {state_name} in Prefect."
        )
        flagging = case.needs_attention is None
        if not (flagging or withdrawn):
            s.rollback()
            return False
        why = phrase(
            "attention",
            "run-cancelled",
            state=state_name,
            message=state.message or phrase("attention", "no-description").as_json(),
            withdrawn=len(withdrawn),
        )
        if flagging:
            case.flag_attention(why)
        s.add(
            Event(
                case_id=case_id,
                kind=CANCELLED_EVENT,
                message=why.text,
                data={
                    "flow_run_id": run_id,
                    "state": state.name,
                    "state_message": state.message,
                    "withdrawn": withdrawn,
                    "attention": why.as_json(),
                },
            )
        )
    return True


#: Resumes at once: one finished feed can wake dozens of cases, and each resume is two calls to
#: the Prefect API; one after another they took seconds each on a busy runner (bench P1 burst).
RESUMES_AT_ONCE = 8


def resume_all(targets: Sequence[tuple[int, str, dict[str, Any] | None]]) -> list[int]:
    """Resume each (case, flow run, answer), several at once; the cases whose run was resumed,
    in the order given."""
    if len(targets) <= 1:
        results = [resume_case_run(run_id, run_input) for _, run_id, run_input in targets]
    else:
        with ThreadPoolExecutor(min(RESUMES_AT_ONCE, len(targets))) as pool:
            results = list(pool.map(lambda t: resume_case_run(t[1], t[2]), targets))
    return [
        t[0] for t, result in zip(targets, results, strict=True) if result == ResumeResult.RESUMED
    ]


def wake_cases_with_amazon_results(url: str) -> list[int]:
    """Resume the runs of acting cases all of whose Amazon actions have a recorded result, and
    of the cases the outbox closed when Amazon confirmed their action (`run_to_finish`): each
    run ends its case's record. A closed case's run that has ended some other way (crashed or
    cancelled after the close) is not asked for again."""
    finished = (ActionStatus.DONE.value, ActionStatus.FAILED.value)
    unfinished = select(Action.case_id).where(
        Action.case_id.is_not(None), Action.status.not_in(finished)
    )  # NOT IN over a NULL would match nothing
    with session_scope(url) as s:
        # One query, not one per acting case.
        rows = s.execute(
            select(Case.id, Case.flow_run_id, Case.run_to_finish).where(
                (Case.state == CaseState.ACTING.value) | Case.run_to_finish.is_(True),
                Case.flow_run_id.is_not(None),
                Case.id.in_(select(Action.case_id)),
                Case.id.not_in(unfinished),
            )
        ).all()
    woken = resume_all([(case_id, run_id, None) for case_id, run_id, _ in rows if run_id])
    left = {
        str(run_id): case_id for case_id, run_id, closed in rows if closed and case_id not in woken
    }
    if left:
        try:
            ended = read_ended_runs(left)
        except Exception as exc:  # the Prefect API down: asked again next round
            log.warning("could not read the runs of %s closed case(s): %s", len(left), exc)
            return woken
        with session_scope(url) as s:
            s.execute(
                update(Case)
                .where(Case.id.in_([left[run_id] for run_id in ended]))
                .values(run_to_finish=False)
            )
    return woken


def resume_decided_cases(url: str) -> list[int]:
    """Resume waiting runs whose question already has a recorded answer (a resume that failed
    or came before the run had suspended)."""
    return resume_all(
        [
            (case_id, flow_run_id, decision.run_input)
            for case_id, flow_run_id, decision in answered_waiting_cases(url)
        ]
    )


def unstarted_cases(url: str, now: datetime) -> list[int]:
    """Open cases without a flow run, opened by a process that stopped before starting it
    (not those flagged "needs attention": a person looks at them first)."""
    with session_scope(url) as s:
        rows = s.scalars(
            select(Case).where(
                Case.state == CaseState.OPEN.value,
                Case.flow_run_id.is_(None),
                Case.created_at < now - UNSTARTED_GRACE,
            )
        ).all()
        return [c.id for c in rows if not c.needs_attention]


def restart_stranded_runs(url: str, *, now: datetime | None, stale_running: timedelta) -> list[int]:
    """Start again the runs of open cases that a dead runner, worker or flow process left
    behind (PENDING, RUNNING longer than `stale_running`, CRASHED for `CRASH_SETTLE`, FAILED;
    never a cancelled one, which is `record_cancelled_runs`'s). After MAX_RESTARTS
    the case is flagged "needs attention" instead, with the reason on its timeline."""
    # Prefect's few troubled runs first, then their open cases: not every open case each round.
    states = read_troubled_runs()
    if not states:
        return []
    with session_scope(url) as s:
        rows = s.execute(
            select(Case.id, Case.flow_run_id).where(
                Case.state != CaseState.CLOSED.value,
                Case.flow_run_id.in_(list(states)),
                Case.needs_attention.is_(None),
            )
        ).all()
    restarted = []
    for case_id, run_id in rows:
        state = states[str(run_id)]
        stranded = stranded_because(state, now, stale_running=stale_running)
        if stranded is None:
            continue
        why = stranded.text
        with session_scope(url) as s:
            case = s.get(Case, case_id)
            if case is None or case.state == CaseState.CLOSED.value:
                continue
            before = s.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.case_id == case_id, Event.kind == RESTART_EVENT)
            )
            if (before or 0) >= MAX_RESTARTS:
                case.flag_attention(
                    phrase(
                        "attention",
                        "restarts-stopped",
                        restarts=MAX_RESTARTS,
                        why=stranded.as_json(),
                    )
                )
                s.add(
                    Event(
                        case_id=case_id,
                        kind="needs-attention",
                        message=case.needs_attention,
                        data={"flow_run_id": run_id, "attention": case.needs_attention_reason},
                    )
                )
                continue
        if retry_case_run(str(run_id)):
            with session_scope(url) as s:
                s.add(
                    Event(
                        case_id=case_id,
                        kind=RESTART_EVENT,
                        message=f"Henpin started the case again: {why}.",
                        data={"flow_run_id": run_id, "state": state.name},
                    )
                )
            restarted.append(case_id)
    return restarted


def purge_buyer_data_now(
    url: str, now: datetime, retention_days: int, *, dry_run: bool = False
) -> PurgeReport:
    """Buyers' personal data out of cases closed longer ago than the retention, in the case
    store and in Prefect (the case's folder of persisted task results, and every result file
    and Resume-form answer its flow run points to). A case whose Prefect side cannot be
    reached now is left whole for the next round, so nothing is half purged.
    A dry run changes nothing and says what would go."""
    plan = purge_closed_cases(url, now, retention_days, dry_run=True)
    if dry_run:
        with session_scope(url) as s:
            runs = s.scalar(
                select(func.count())
                .select_from(Case)
                .where(Case.id.in_(plan.case_ids), Case.flow_run_id.is_not(None))
            )
        plan.places["prefect_runs"] = runs or 0
        plan.places["result_files"] = sum(case_result_files(c) for c in plan.case_ids)
        return plan
    with session_scope(url) as s:
        run_ids = dict(
            s.execute(select(Case.id, Case.flow_run_id).where(Case.id.in_(plan.case_ids))).all()
        )
    ready, files, inputs = [], 0, 0
    for case_id in plan.case_ids:
        run_id = run_ids.get(case_id)
        try:
            if run_id:
                forgotten = forget_case_run_data(run_id)
                files, inputs = files + forgotten.result_files, inputs + forgotten.run_inputs
            files += forget_case_results(case_id)
        except Exception as exc:  # the Prefect API down, storage unwritable: next round
            log.warning("case %s: its flow run's data is purged next round: %s", case_id, exc)
            continue
        ready.append(case_id)
    report = purge_closed_cases(url, now, retention_days, only=ready)
    report.places |= {"prefect_runs": len(ready), "result_files": files, "run_inputs": inputs}
    return report
