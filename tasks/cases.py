"""Case store side effects of the case flows: open, record, wait, settle a decision, close.

Each is a small Prefect task. Reads that must see the present on every run of a resumed flow
are `fresh`; writes are idempotent, so a flow re-run after resume repeats nothing.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from henpin.context import settings, store_url
from henpin.decisions import (
    DecisionRefused,
    RecordedDecision,
    decide_from_prefect_ui,
    find_decision,
    refused_before,
)
from henpin.domain import CaseState, CaseType, Order, Outcome, ReturnRequest
from henpin.policy.reasons import Phrase
from henpin.questions import Question
from henpin.store.db import session_scope
from henpin.store.models import Case, Event
from henpin.store.opening import add_case, order_snapshot
from tasks.kinds import store_task

log = logging.getLogger(__name__)


def open_case(
    case_type: CaseType,
    order: Order,
    *,
    url: str | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
    parent_case_id: int | None = None,
) -> tuple[int, bool]:
    """Open a case for the order, never two: returns (case id, newly opened)."""
    url = url or store_url()
    try:
        with session_scope(url) as s:
            case = add_case(
                s,
                case_type,
                order,
                note=note or f"Case opened: {case_type.value}",
                details=details or {},
                parent_case_id=parent_case_id,
            )
            return case.id, True
    except IntegrityError:
        with session_scope(url) as s:
            existing = s.scalar(
                select(Case.id).where(Case.type == case_type.value, Case.order_id == order.order_id)
            )
            assert existing is not None
            return existing, False


def attach_flow_run(case_id: int, flow_run_id: str, *, url: str | None = None) -> None:
    with session_scope(url or store_url()) as s:
        case = s.get(Case, case_id)
        if case is not None and case.flow_run_id != flow_run_id:
            case.flow_run_id = flow_run_id


@store_task("record-recommendation")
def record_recommendation(
    case_id: int, order: Order, recommendation: dict[str, Any], policy_version: str
) -> None:
    """Keep what policy recommends, the rule that said so, and the policy version used."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.recommendation = recommendation
        case.policy_version = policy_version
        case.order_snapshot = order_snapshot(order)
        s.add(
            Event(
                case_id=case_id,
                kind="recommendation",
                message=f"Policy recommends '{recommendation.get('action')}' "
                f"(rule {recommendation.get('rule')}): {recommendation.get('reason')}",
                data={"policy_version": policy_version, **recommendation},
            )
        )


@store_task("wait-for-operator")
def mark_waiting(case_id: int, question: Question) -> datetime:
    """The case now waits for a person: the inbox shows the question, its choices and deadline.

    The deadline is fixed here, once: a re-run of the resumed flow reuses this task's result.
    It is `deadline_hours` from now, or the question's own `deadline_at` (Amazon's due time)
    when it has one, but never less than the question's minimum time from now: a question asked
    after Amazon's due time is not answered by the sweep before anyone saw it. Amazon's due time
    is kept as it is in the timeline (`amazon_due`, `overdue_at_amazon`).
    """
    now = datetime.now(UTC)
    deadline = question.answer_by(now)
    amazon: dict[str, Any] = {}
    said = ""
    if question.deadline_at is not None:
        amazon_due = question.deadline_at.astimezone(UTC)
        overdue = question.overdue_at_amazon(now)
        amazon = {"amazon_due": amazon_due.isoformat(), "overdue_at_amazon": overdue}
        said = f"; Amazon's due time {amazon_due:%Y-%m-%d %H:%M} UTC" + (
            ", already passed: overdue at Amazon" if overdue else ""
        )
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state = CaseState.WAITING.value
        case.waiting_step = question.step
        case.choices = list(question.choices)
        case.question = question.model_dump(mode="json")
        case.deadline = deadline
        case.timeout_choice = question.timeout_choice
        s.add(
            Event(
                case_id=case_id,
                kind="waiting",
                message=f"Waiting for an operator: {question.title} (deadline "
                f"{deadline:%Y-%m-%d %H:%M} UTC; then '{question.timeout_choice}'{said})",
                data={
                    "step": question.step,
                    "choices": question.choices,
                    "deadline": deadline.isoformat(),
                    "timeout_choice": question.timeout_choice,  # so the inbox words the line
                    **amazon,
                },
            )
        )
    return deadline


@store_task("find-decision", fresh=True)
def recorded_decision(case_id: int, step: str) -> RecordedDecision | None:
    """An answer already recorded for this question (e.g. given while the flow was starting)."""
    return find_decision(store_url(), case_id, step)


@store_task("settle-decision", fresh=True)
def settle_decision(
    case_id: int, question: Question, answer: dict[str, Any]
) -> RecordedDecision | None:
    """Make the answer the flow was resumed with the recorded one, unless another answer won.

    An answer given in the Prefect UI's Resume form reaches Henpin only here, so it passes the
    Prefect UI door's checks here (`decide_from_prefect_ui`: switched on, no one else's claim,
    the question's answer check; recorded as `prefect-ui`, audited), None when it is refused:
    the question is asked again. Answers given in the inbox, CLI or by the deadline sweep were
    checked and recorded before resuming, and the recorded one always wins.
    """
    step = question.step
    decision = find_decision(store_url(), case_id, step)
    if decision is None:
        if refused_before(store_url(), case_id, step):
            return None  # this run, started again, meets an answer it refused already
        try:
            decision = decide_from_prefect_ui(
                store_url(), case_id, step, answer, enabled=settings().prefect_ui_decisions
            )
        except DecisionRefused as refused:
            _tell_prefect_ui(f"This answer was refused: {refused} The question is asked again.")
            return None
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if case.waiting_step == step:
            case.state = CaseState.OPEN.value
            case.waiting_step = None
            case.choices = []
            case.question = {}
    return decision


def _tell_prefect_ui(text: str) -> None:
    """A line in the flow run's log, which the Prefect UI shows under the run."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        get_run_logger().warning(text)
    except MissingContextError:
        log.warning(text)


@store_task("mark-acting")
def mark_acting(case_id: int, what: str) -> None:
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.state = CaseState.ACTING.value
        s.add(Event(case_id=case_id, kind="acting", message=what))


@store_task("close-case")
def close_case(case_id: int, outcome: Outcome, message: str) -> Outcome:
    """End the case with one outcome (idempotent: a closed case keeps its first outcome) and
    attach its summary to the run. A case the outbox closed on Amazon's word (`run_to_finish`)
    is this run's to finish: it ends with the outcome recorded then."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if not case.close(outcome.value, message):
            outcome = Outcome(case.outcome) if case.outcome else outcome
            message = (
                s.scalar(
                    select(Event.message)
                    .where(Event.case_id == case_id, Event.kind == "closed")
                    .order_by(Event.id.desc())
                    .limit(1)
                )
                or message
            )
        case.run_to_finish = False
        summary = case_summary_markdown(case, outcome, message)
    publish_case_summary(case_id, summary)
    return outcome


def case_summary_markdown(case: Case, outcome: Outcome, message: str) -> str:
    """What the Prefect UI shows on the case's run: the case, its decisions, its outcome.

    Prefect keeps artifacts for good and renders them as markdown: only what Henpin wrote goes
    in (no operator notes, no reasons that may quote the buyer); the inbox has the rest."""
    inbox = settings().inbox_url
    lines = [
        f"# {case.type} {case.order_id}",
        f"**Outcome: {outcome.value}** — {message}",
        "",
        f"- Case {case.id}, marketplace {case.marketplace_id}, policy {case.policy_version}",
    ]
    rule = (case.recommendation or {}).get("rule")
    if rule:
        lines.append(f"- Policy rule: `{rule}`")
    for d in case.decisions:
        lines.append(f"- Decision `{d.step}`: **{d.choice}** by `{d.operator}` ({d.source})")
    if inbox:
        lines.append(f"\n[Open the case in the inbox]({inbox.rstrip('/')}/case?case={case.id})")
    return "\n".join(lines)


def publish_case_summary(case_id: int, markdown: str) -> None:
    """Attach the summary to the running flow run as a markdown artifact (best effort: the
    case is closed in the store whatever the Prefect API says)."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None:
        return
    with contextlib.suppress(Exception):
        create_markdown_artifact(
            markdown=markdown, key=f"case-{case_id}", description="Henpin case summary"
        )


@store_task("read-return-request")
def read_return_request(case_id: int) -> ReturnRequest:
    """The return request the case was opened with (the buyer's comment included), from the
    case store: it is not a flow-run parameter, since Prefect keeps those for good. Its
    persisted result goes when the case's buyer data is purged."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return ReturnRequest.model_validate(case.details["return"])


@store_task("record-details")
def record_details(case_id: int, details: dict[str, Any]) -> None:
    """Keep case-type facts on the case (merged into what is there): shown in the inbox."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        case.details = {**(case.details or {}), **details}


@store_task("flag-attention")
def flag_attention(case_id: int, reason: Phrase, *, clear: bool = False) -> None:
    """Flag the case for a person (the inbox's "needs attention"), with why, in its timeline;
    `clear`: take that flag off again (a person answered), leaving any other flag."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if clear:
            if case.needs_attention == reason.text:
                case.flag_attention(None)
            return
        if case.needs_attention == reason.text:
            return
        case.flag_attention(reason)
        s.add(
            Event(
                case_id=case_id,
                kind="needs-attention",
                message=reason.text,
                data={"attention": reason.as_json()},
            )
        )
