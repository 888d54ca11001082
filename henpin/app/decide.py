"""Deciding a case: the one door of the inbox (one case or many) and `henpin decide`.

`decide_as` is what both doors call: the door's checks (`henpin.decisions.admit`: an active
operator or admin; a case someone else claimed needs `over_claim`), then `decide` (the answer's
check, one recorded winner per question, resume of the waiting flow run), and the audit log
records it, taken or refused. Each outcome carries a machine-readable `code` and its parameters,
so the inbox words it in the operator's language; `message` keeps the English words for logs and
the CLI. `decide_bulk` runs `decide_as` on each previewed case in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from henpin.app.cases import case_options, option_money
from henpin.decisions import (
    ClaimedByOther,
    DecisionRefused,
    Door,
    DoorClosed,
    admit,
    audit_decision,
    check_decidable,
    find_decision,
    record_decision,
)
from henpin.domain import CaseState
from henpin.questions import Question, check_answer
from henpin.runs import ResumeResult, queued_to_run, resume_case_run
from henpin.store.db import session_scope
from henpin.store.models import Case

#: The doors where an operator decides under their own name.
PERSON_DOORS = (Door.INBOX, Door.CLI)


class DecisionResult(BaseModel):
    """What `decide` came to: recorded (and whether the run resumed at once), or someone's
    earlier answer stands."""

    case_id: int
    accepted: bool
    choice: str
    operator: str
    resumed: bool
    message: str


def decide(
    store_url: str,
    case_id: int,
    *,
    choice: str,
    note: str = "",
    operator: str,
    source: str = "cli",
    fields: dict[str, Any] | None = None,
    seen_step: str | None = None,
) -> DecisionResult:
    """Record an operator's answer to the case's waiting question and resume its flow run: the
    step `decide_as` takes once the door admitted the operator. Alone it checks no role or claim
    and writes no audit line (the bench and tests call it so); the doors call `decide_as`.

    Raises DecisionRefused (with a message for the operator) when the case is not waiting or the
    choice is not one of its choices, or when `seen_step` (the question the operator's form
    showed) is no longer the question asked. When someone else answered first, the result says
    who.
    """
    if not operator.strip():
        raise DecisionRefused("An operator name is required to decide a case.")
    fields = {k: v for k, v in (fields or {}).items() if v not in (None, "")}
    step, flow_run_id = check_decidable(store_url, case_id, choice, note, fields)
    if seen_step is not None and seen_step != step:
        # The form was opened for an earlier question (the case moved on, or asked again after
        # a policy or order change): deciding on what the operator did not see is refused.
        raise DecisionRefused(
            f"Case {case_id} has moved on since you opened it (it now asks '{step}', you saw "
            f"'{seen_step}'). Reload the case and decide again."
        )
    rec = record_decision(
        store_url,
        case_id,
        step,
        choice=choice,
        note=note,
        operator=operator,
        source=source,
        data={k: str(v) for k, v in fields.items()},
    )
    if not rec.won:
        who = "the deadline" if rec.source == "deadline" else rec.operator
        return DecisionResult(
            case_id=case_id,
            accepted=False,
            choice=rec.choice,
            operator=rec.operator,
            resumed=False,
            message=f"Case {case_id} was already decided by {who} ('{rec.choice}') at "
            f"{rec.at:%Y-%m-%d %H:%M} UTC; your decision was not applied.",
        )
    resumed = False
    if flow_run_id:
        outcome = resume_case_run(flow_run_id, rec.run_input)
        # "Not paused": another door (the housekeeper's sweep) may have resumed it first.
        resumed = outcome == ResumeResult.RESUMED or (
            outcome == ResumeResult.NOT_WAITING and queued_to_run(flow_run_id)
        )
    message = (
        f"Decision '{choice}' recorded for case {case_id}; the case continues now."
        if resumed
        else f"Decision '{choice}' recorded for case {case_id}; the case will continue within a minute."
    )
    return DecisionResult(
        case_id=case_id,
        accepted=True,
        choice=choice,
        operator=operator,
        resumed=resumed,
        message=message,
    )


class DecisionCode(StrEnum):
    RESUMED = "resumed"  # recorded; the flow run continued at once
    RECORDED = "recorded"  # recorded; the runner's sweep resumes the run within a minute
    ALREADY_DECIDED = "already-decided"  # someone (or the deadline) answered first
    NOT_WAITING = "not-waiting"
    MOVED_ON = "moved-on"  # the case asks another question than the one the operator saw
    NOT_A_CHOICE = "not-a-choice"
    INVALID_ANSWER = "invalid-answer"  # a note or field is missing or out of bounds
    NO_CASE = "no-case"
    NOT_ALLOWED = "not-allowed"  # viewers and deactivated operators do not decide
    CLAIMED_BY_OTHER = "claimed-by-other"  # not sent: confirm to decide over their claim
    WRONG_TYPE = "wrong-type"  # bulk: not the case type the batch is for
    STORE_ERROR = "store-error"


ACCEPTED = (DecisionCode.RESUMED, DecisionCode.RECORDED)


@dataclass(frozen=True)
class DecisionOutcome:
    """What came of one decision: a code for the operator's language, and the English words."""

    case_id: int
    code: DecisionCode
    choice: str
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.code in ACCEPTED

    @property
    def level(self) -> str:
        """How the inbox shows it: success, warning (someone else's answer stands) or error."""
        if self.accepted:
            return "success"
        if self.code in (DecisionCode.ALREADY_DECIDED, DecisionCode.CLAIMED_BY_OTHER):
            return "warning"
        return "error"


def _why_refused(
    store_url: str, case_id: int, choice: str, seen_step: str | None, refused: DecisionRefused
) -> tuple[DecisionCode, dict[str, Any]]:
    """Name the reason `decide` refused, by looking at the case as it is now."""
    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return DecisionCode.NO_CASE, {}
        if c.state != CaseState.WAITING or not c.waiting_step:
            return DecisionCode.NOT_WAITING, {"state": c.state, "outcome": c.outcome}
        if seen_step is not None and seen_step != c.waiting_step:
            return DecisionCode.MOVED_ON, {"step": c.waiting_step, "seen": seen_step}
        if choice not in c.choices:
            return DecisionCode.NOT_A_CHOICE, {"choices": list(c.choices)}
        return DecisionCode.INVALID_ANSWER, {"detail": str(refused)}


def decide_as(
    store_url: str,
    case_id: int,
    *,
    choice: str,
    operator: str,
    note: str = "",
    fields: dict[str, Any] | None = None,
    seen_step: str | None = None,
    over_claim: bool = False,
    where: str = "",
    source: str = Door.INBOX,
) -> DecisionOutcome:
    """Decide a case as an operator, from the inbox (signed in) or the command line (`source`
    "cli"): the door's checks (`henpin.decisions.admit`: an active operator or admin; a claim by
    someone else needs `over_claim`), then `henpin.app.decide.decide` (the answer's check, one
    recorded winner, resume), and the audit log records it, taken or refused."""
    door = Door(source)
    if door not in PERSON_DOORS:  # the Prefect UI and the deadline have doors of their own
        raise ValueError(f"decide_as is the door of named operators, not of {door}")
    outcome = _decide(
        store_url,
        case_id,
        choice=choice,
        operator=operator,
        note=note,
        fields=fields,
        seen_step=seen_step,
        over_claim=over_claim,
        door=door,
    )
    if outcome.code != DecisionCode.STORE_ERROR:
        detail = {"choice": choice, "result": outcome.code.value, "step": seen_step or None}
        detail["claimed_by"] = outcome.params.get("claimed_by")
        audit_decision(
            store_url,
            case_id,
            actor=operator,
            accepted=outcome.accepted,
            where=where or source,
            detail=detail,
        )
    return outcome


def _decide(
    store_url: str,
    case_id: int,
    *,
    choice: str,
    operator: str,
    note: str,
    fields: dict[str, Any] | None,
    seen_step: str | None,
    over_claim: bool,
    door: Door,
) -> DecisionOutcome:
    try:
        try:
            admitted = admit(
                store_url, case_id, door=door, operator=operator, over_claim=over_claim
            )
        except DoorClosed as closed:
            params = {"role": closed.role}
            return DecisionOutcome(case_id, DecisionCode.NOT_ALLOWED, choice, params, str(closed))
        except ClaimedByOther as claimed:
            params = {"claimed_by": claimed.holder}
            code = DecisionCode.CLAIMED_BY_OTHER
            return DecisionOutcome(case_id, code, choice, params, str(claimed))
        with session_scope(store_url) as s:
            step = s.scalar(select(Case.waiting_step).where(Case.id == case_id))
        params = {"claimed_by": admitted.over_claim_of} if admitted.over_claim_of else {}
        try:
            result = decide(
                store_url,
                case_id,
                choice=choice,
                note=note,
                operator=admitted.operator,
                source=door,
                fields=fields,
                seen_step=seen_step,
            )
        except DecisionRefused as refused:
            code, why = _why_refused(store_url, case_id, choice, seen_step, refused)
            return DecisionOutcome(case_id, code, choice, {**params, **why}, str(refused))
        if not result.accepted:
            winner = find_decision(store_url, case_id, seen_step or step or "")
            at = winner.at if winner else None
            by_deadline = winner is not None and winner.source == Door.DEADLINE
            return DecisionOutcome(
                case_id,
                DecisionCode.ALREADY_DECIDED,
                choice,
                {
                    **params,
                    "who": result.operator,
                    "winner": result.choice,
                    "at": at,
                    "by_deadline": by_deadline,
                },
                result.message,
            )
        code = DecisionCode.RESUMED if result.resumed else DecisionCode.RECORDED
        return DecisionOutcome(case_id, code, choice, params, result.message)
    except SQLAlchemyError as exc:
        return DecisionOutcome(
            case_id, DecisionCode.STORE_ERROR, choice, {"error": type(exc).__name__}
        )


@dataclass(frozen=True)
class BulkLine:
    """One case of a bulk decision, as previewed: what the choice will do, or why it cannot."""

    case_id: int
    order_id: str
    marketplace_id: str
    case_type: str
    step: str | None  # the question the preview saw (a case that moves on is then refused)
    recommended: str | None
    deadline: datetime | None
    order_value: dict[str, Any] | None
    money: dict[str, Any]  # the money of the chosen option, when the case type computes it
    claimed_by: str | None  # someone else's claim, shown before confirming
    problem: DecisionCode | None = None
    detail: str = ""

    @property
    def ready(self) -> bool:
        return self.problem is None


def preview_bulk(
    store_url: str,
    case_ids: Sequence[int],
    *,
    case_type: str,
    choice: str,
    note: str,
    operator: str,
) -> list[BulkLine]:
    """What deciding `choice` on each case would do, without deciding anything."""
    lines = []
    with session_scope(store_url) as s:
        found = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(list(case_ids))))}
        for case_id in case_ids:
            c = found.get(case_id)
            if c is None:
                lines.append(
                    BulkLine(
                        case_id,
                        "?",
                        "?",
                        "?",
                        None,
                        None,
                        None,
                        None,
                        {},
                        None,
                        DecisionCode.NO_CASE,
                    )
                )
                continue
            question = c.question or {}
            problem, detail = None, ""
            if c.type != case_type:
                problem = DecisionCode.WRONG_TYPE
            elif c.state != CaseState.WAITING or not c.waiting_step:
                problem = DecisionCode.NOT_WAITING
            elif choice not in c.choices:
                problem = DecisionCode.NOT_A_CHOICE
            elif question:
                detail = check_answer(Question.model_validate(question), choice, note, {}) or ""
                problem = DecisionCode.INVALID_ANSWER if detail else None
            options = case_options(c.details or {}, c.recommendation or {}, question)
            holder = c.claimed_by if c.claimed_by != operator else None
            lines.append(
                BulkLine(
                    case_id=c.id,
                    order_id=c.order_id,
                    marketplace_id=c.marketplace_id,
                    case_type=c.type,
                    step=c.waiting_step,
                    recommended=question.get("recommended")
                    or (c.recommendation or {}).get("action"),
                    deadline=c.deadline if c.state == CaseState.WAITING else None,
                    order_value=(c.order_snapshot or {}).get("value"),
                    money=option_money(options, choice),
                    claimed_by=holder,
                    problem=problem,
                    detail=detail,
                )
            )
    return lines


def decide_bulk(
    store_url: str,
    lines: Sequence[BulkLine],
    *,
    choice: str,
    note: str,
    operator: str,
    over_claims: bool = False,
    where: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> list[DecisionOutcome]:
    """Decide the previewed cases one after another (never in parallel: SQLite has one writer,
    and each decision resumes its own flow run); one outcome per case, in preview order.
    `progress(done, total)` is told after each case (the inbox shows a progress bar)."""
    outcomes: list[DecisionOutcome] = []
    for line in lines:
        if progress is not None:
            progress(len(outcomes), len(lines))
        if not line.ready:
            assert line.problem is not None
            outcomes.append(
                DecisionOutcome(line.case_id, line.problem, choice, {"detail": line.detail})
            )
            continue
        outcomes.append(
            decide_as(
                store_url,
                line.case_id,
                choice=choice,
                operator=operator,
                note=note,
                seen_step=line.step,
                over_claim=over_claims,
                where=where,
            )
        )
    if progress is not None:
        progress(len(outcomes), len(lines))
    return outcomes
