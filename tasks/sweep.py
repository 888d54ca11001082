"""Housekeeping: send Amazon actions, wake cases whose answer is in, apply passed deadlines.

Each function is safe to run at any time and any number of times, from any process: it only
moves cases forward through the same one-winner records the operators use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import func, select

from henpin import outbox
from henpin.context import adapter, policy_in_force, settings, store_url
from henpin.decisions import answered_waiting_cases, record_deadline_answers
from henpin.domain import ActionStatus, CaseState
from henpin.policy.reasons import phrase
from henpin.runs import (
    ResumeResult,
    case_result_files,
    forget_case_results,
    forget_case_run_data,
    read_troubled_runs,
    resume_case_run,
    retry_case_run,
    stranded_because,
)
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event
from henpin.store.purge import PurgeReport, purge_closed_cases
from tasks.ingest import start_case_flow
from tasks.kinds import amazon_task, store_task
from tasks.notifications import send_notifications

log = logging.getLogger(__name__)

UNSTARTED_GRACE = timedelta(minutes=1)
RESTART_EVENT = "run-restarted"


class OutboxRound(BaseModel):
    feeds_sent: int
    actions_finished: int


@amazon_task("send-amazon-actions", fresh=True)
def send_amazon_actions() -> OutboxRound:
    """Reconcile, send pending actions as batched feeds, and record finished feeds' results."""
    url = store_url()
    outbox.reconcile(url, adapter(), settle=timedelta(seconds=settings().outbox_settle_s))
    sent = outbox.send_pending(url, adapter())  # each region's merchant token
    finished = outbox.poll_submitted(url, adapter())
    return OutboxRound(feeds_sent=len(sent), actions_finished=len(finished))


def _resume_all(targets: Sequence[tuple[int, str, dict[str, str] | None]]) -> list[int]:
    resumed = []
    for case_id, flow_run_id, run_input in targets:
        if resume_case_run(flow_run_id, run_input) == ResumeResult.RESUMED:
            resumed.append(case_id)
    return resumed


@store_task("wake-cases-with-amazon-results", fresh=True)
def wake_cases_with_amazon_results() -> list[int]:
    """Resume acting cases all of whose Amazon actions have a recorded result."""
    finished = (ActionStatus.DONE.value, ActionStatus.FAILED.value)
    unfinished = select(Action.case_id).where(
        Action.case_id.is_not(None), Action.status.not_in(finished)
    )  # NOT IN over a NULL would match nothing
    with session_scope(store_url()) as s:
        # One query, not one per acting case.
        rows = s.execute(
            select(Case.id, Case.flow_run_id).where(
                Case.state == CaseState.ACTING.value,
                Case.flow_run_id.is_not(None),
                Case.id.in_(select(Action.case_id)),
                Case.id.not_in(unfinished),
            )
        ).all()
    targets = [(case_id, run_id, None) for case_id, run_id in rows if run_id]
    return _resume_all(targets)


@store_task("apply-passed-deadlines", fresh=True)
def apply_passed_deadlines(now: datetime | None = None) -> list[int]:
    """Answer overdue questions with their named timeout choice, then resume those runs.

    An operator's answer racing the deadline is settled by the decision record: one winner.
    """
    record_deadline_answers(store_url(), now)
    return resume_decided_cases.fn()


@store_task("resume-decided-cases", fresh=True)
def resume_decided_cases() -> list[int]:
    """Resume waiting runs whose question already has a recorded answer (a resume that failed
    or came before the run had suspended)."""
    targets = [
        (case_id, flow_run_id, decision.run_input)
        for case_id, flow_run_id, decision in answered_waiting_cases(store_url())
    ]
    return _resume_all(targets)


@store_task("start-unstarted-cases", fresh=True)
def start_unstarted_cases(now: datetime | None = None) -> list[int]:
    """Start the flow run of a case opened by a process that stopped before starting it."""
    now = now or datetime.now(UTC)
    with session_scope(store_url()) as s:
        rows = s.scalars(
            select(Case).where(
                Case.state == CaseState.OPEN.value,
                Case.flow_run_id.is_(None),
                Case.created_at < now - UNSTARTED_GRACE,
            )
        ).all()
        unstarted = [c.id for c in rows if not c.needs_attention]
    for case_id in unstarted:
        start_case_flow(case_id)
    return unstarted


MAX_RESTARTS = 5  # a run that keeps dying is a bug or a bad order: a person looks


@store_task("restart-stranded-runs", fresh=True)
def restart_stranded_runs(now: datetime | None = None) -> list[int]:
    """Start again the runs of open cases that a dead runner, worker or flow process left
    behind (PENDING, RUNNING long after it died, CRASHED, FAILED). After MAX_RESTARTS the case
    is flagged "needs attention" instead, with the reason on its timeline."""
    # Prefect's few troubled runs first, then their open cases: not every open case each round.
    states = read_troubled_runs()
    if not states:
        return []
    with session_scope(store_url()) as s:
        rows = s.execute(
            select(Case.id, Case.flow_run_id).where(
                Case.state != CaseState.CLOSED.value,
                Case.flow_run_id.in_(list(states)),
                Case.needs_attention.is_(None),
            )
        ).all()
    stale = timedelta(seconds=settings().stale_run_s)
    restarted = []
    for case_id, run_id in rows:
        state = states[str(run_id)]
        stranded = stranded_because(state, now, stale_running=stale)
        if stranded is None:
            continue
        why = stranded.text
        with session_scope(store_url()) as s:
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
            with session_scope(store_url()) as s:
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


@store_task("purge-buyer-data", fresh=True)
def purge_buyer_data(now: datetime | None = None) -> list[int]:
    """Remove buyers' personal data from cases closed longer ago than the policy's retention."""
    days = policy_in_force().retention.buyer_data_days
    return purge_buyer_data_now(store_url(), now or datetime.now(UTC), days).case_ids


def housekeeping_round() -> dict[str, int]:
    """One pass of everything above, outside Prefect (the runner's housekeeper thread).
    The same steps, in the same order, as flows/housekeeping.py (a test holds them equal)."""
    outbox_round = send_amazon_actions.fn()
    return {
        "feeds_sent": outbox_round.feeds_sent,
        "actions_finished": outbox_round.actions_finished,
        "cases_woken": len(wake_cases_with_amazon_results.fn()),
        "deadlines_applied": len(apply_passed_deadlines.fn()),
        "cases_resumed": len(resume_decided_cases.fn()),
        "cases_started": len(start_unstarted_cases.fn()),
        "runs_restarted": len(restart_stranded_runs.fn()),
        "buyer_data_purged": len(purge_buyer_data.fn()),
        "notifications": len(send_notifications.fn()),
    }
