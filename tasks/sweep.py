"""Housekeeping: send Amazon actions, wake cases whose answer is in, apply passed deadlines.

Each function is safe to run at any time and any number of times, from any process: it only
moves cases forward through the same one-winner records the operators use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select

from henpin.decisions import answered_waiting_cases, record_deadline_answers
from henpin.domain import ActionStatus, CaseState
from henpin.runs import (
    ResumeResult,
    read_troubled_runs,
    resume_case_run,
    retry_case_run,
    why_stranded,
)
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Event
from tasks import outbox
from tasks.ingest import start_case_flow
from tasks.kinds import amazon_task, store_task
from tasks.notifications import send_notifications
from tasks.orders import adapter
from tasks.policy import policy_in_force
from tasks.store import settings, store_url

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
        why = why_stranded(state, now, stale_running=stale)
        if why is None:
            continue
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
                case.needs_attention = (
                    f"Henpin stopped restarting this case after {MAX_RESTARTS} restarts: {why}. "
                    "Look at its flow run in the Prefect UI."
                )
                s.add(
                    Event(
                        case_id=case_id,
                        kind="needs-attention",
                        message=case.needs_attention,
                        data={"flow_run_id": run_id},
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


PERSONAL_KEYS = ("buyer_name", "buyer_email", "confirmed_address", "buyer_message", "buyer_comment")


def _without_personal_data(data: Any) -> Any:
    """A copy with buyers' names, e-mail and postal addresses and their own words removed."""
    if isinstance(data, dict):
        return {
            k: ("(purged)" if k in PERSONAL_KEYS and v else _without_personal_data(v))
            for k, v in data.items()
            if k not in ("raw_payload", "buyer", "recipient")
        }
    if isinstance(data, list):
        return [_without_personal_data(v) for v in data]
    return data


@store_task("purge-buyer-data", fresh=True)
def purge_buyer_data(now: datetime | None = None) -> list[int]:
    """Remove buyers' personal data from cases closed longer ago than the policy's retention."""
    now = now or datetime.now(UTC)
    keep_days = policy_in_force().retention.buyer_data_days
    cutoff = now - timedelta(days=keep_days)
    purged = []
    with session_scope(store_url()) as s:
        due = s.scalars(
            select(Case).where(
                Case.state == CaseState.CLOSED.value,
                Case.closed_at < cutoff,
                Case.personal_data_purged_at.is_(None),
            )
        ).all()
        for case in due:
            case.order_snapshot = _without_personal_data(case.order_snapshot)
            case.details = _without_personal_data(case.details)
            case.personal_data_purged_at = now
            for event in case.events:
                event.data = _without_personal_data(event.data)
            for decision in case.decisions:
                decision.data = _without_personal_data(decision.data)
            purged.append(case.id)
    return purged


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
