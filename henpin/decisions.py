"""The decision mechanism: one recorded winner per question, then the waiting flow run resumes.

An operator (inbox or CLI), the Prefect UI's Resume form and the deadline sweep may all answer
the same question at nearly the same time. The case store's unique (case, step) constraint picks
exactly one winner; the losers get a plain message. The store is the source of truth: a resumed
flow always continues with the recorded winner, whatever input its own resume carried.

Every door passes the same checks before anything is recorded (`admit`, then
`check_decidable`), and its decision, taken or refused, goes in the audit log:

- the inbox and `henpin decide` (`henpin.app.decide.decide_as`): the name must be an active
  operator or admin; a case someone else claimed needs "decide anyway" (`--over-claim`);
- the Prefect UI's Resume form (`decide_from_prefect_ui`, run by the waiting flow): nobody is
  named there, so the form's words never say who decided; it is recorded as `prefect-ui`, only
  while the door is switched on (HENPIN_PREFECT_UI_DECISIONS), never over someone's claim;
- the deadline: only `record_deadline_answers` (the housekeeping sweep) records it, and only the
  question's own timeout choice once its deadline has passed. No name or source typed at a door
  can stand in for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from henpin.accounts import AuditAction, audit, find_operator
from henpin.domain import CaseState
from henpin.questions import Question, check_answer
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision, Event


class Door(StrEnum):
    """Where a decision came in: stored as the decision's `source`."""

    INBOX = "inbox"
    CLI = "cli"
    PREFECT_UI = "prefect-ui"
    DEADLINE = "deadline"  # recorded by `record_deadline_answers` only


#: The name a Prefect UI answer is recorded under: the Resume form cannot say who filled it in.
PREFECT_UI_OPERATOR = "prefect-ui"
#: The timeline line of an answer the Prefect UI door refused (one per question asked).
REFUSED_ANSWER_EVENT = "invalid-answer"
#: The name the deadline's answers are recorded under.
DEADLINE_OPERATOR = "deadline"


class DecisionRefused(Exception):
    """The decision cannot be taken; the message says why and what to do, for the operator."""


class DoorClosed(DecisionRefused):
    """This door may not decide: not an active operator or admin, or the Prefect UI's door is
    switched off. `role` is the name's role ("?" when there is no such operator)."""

    def __init__(self, message: str, role: str = "?") -> None:
        super().__init__(message)
        self.role = role


class ClaimedByOther(DecisionRefused):
    """Someone else claimed the case; deciding over it needs saying so on purpose."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class RecordedDecision:
    case_id: int
    step: str
    choice: str
    note: str
    operator: str
    source: str
    at: datetime
    won: bool  # False when another answer had already been recorded for this question
    data: dict[str, Any] = field(default_factory=dict)  # the form's extra fields

    @property
    def run_input(self) -> dict[str, Any]:
        """What the waiting flow run is resumed with: the choice only. Not who (the Prefect UI
        cannot say; the store records it) and never the note (free text, kept in Prefect's
        database for good). The resumed flow takes the whole answer (who, note and extra fields)
        from the case store."""
        return {"choice": self.choice}


def _as_recorded(d: Decision, won: bool) -> RecordedDecision:
    return RecordedDecision(
        d.case_id, d.step, d.choice, d.note, d.operator, d.source, d.at, won, dict(d.data or {})
    )


def find_decision(store_url: str, case_id: int, step: str) -> RecordedDecision | None:
    with session_scope(store_url) as s:
        d = s.scalar(select(Decision).where(Decision.case_id == case_id, Decision.step == step))
        return _as_recorded(d, won=True) if d else None


def answered_waiting_cases(store_url: str) -> list[tuple[int, str, RecordedDecision]]:
    """Waiting cases whose current question already has a recorded answer: (case id, flow run
    id, the answer). One query, not one per waiting case: with 10,000 cases waiting, per-case
    lookups took 9 s of every housekeeping round (bench P3); this takes milliseconds."""
    with session_scope(store_url) as s:
        rows = s.execute(
            select(Case.id, Case.flow_run_id, Decision)
            .join(Decision, (Decision.case_id == Case.id) & (Decision.step == Case.waiting_step))
            .where(Case.state == CaseState.WAITING.value, Case.flow_run_id.is_not(None))
            .order_by(Case.id)
        ).all()
        return [
            (case_id, run_id, _as_recorded(d, won=True)) for case_id, run_id, d in rows if run_id
        ]


#: What only the deadline sweep holds: `record_decision` records a deadline answer only with it.
_DEADLINE_SWEEP = object()


def record_decision(
    store_url: str,
    case_id: int,
    step: str,
    *,
    choice: str,
    note: str,
    operator: str,
    source: str,
    data: dict[str, Any] | None = None,
    capability: object = None,
) -> RecordedDecision:
    """Store an answer unless one is already stored; return the winner (and whether it is ours).

    The doors call this after their checks (`admit`, `check_decidable`). A deadline answer is
    recorded only by `record_deadline_answers`, which alone holds the capability for it."""
    if source == Door.DEADLINE and capability is not _DEADLINE_SWEEP:
        raise ValueError("the deadline's answer is recorded only by record_deadline_answers()")
    try:
        with session_scope(store_url) as s:
            case = s.get(Case, case_id)
            d = Decision(
                case_id=case_id,
                step=step,
                choice=choice,
                note=note,
                operator=operator,
                source=source,
                data=data or {},
                policy_version=case.policy_version if case else None,
            )
            s.add(d)
            s.flush()
            who = "the deadline" if source == Door.DEADLINE else operator
            s.add(
                Event(
                    case_id=case_id,
                    kind="decision",
                    message=f"{who} chose '{choice}'" + (f": {note}" if note else ""),
                    data={
                        "step": step,
                        "choice": choice,
                        "source": source,
                        "operator": operator,
                        **(data or {}),
                    },
                )
            )
            return _as_recorded(d, won=True)
    except IntegrityError:
        existing = find_decision(store_url, case_id, step)
        if existing is None:  # pragma: no cover - the constraint fired, so a row exists
            raise
        return dataclasses.replace(existing, won=False)


def record_deadline_answers(store_url: str, now: datetime | None = None) -> list[int]:
    """Answer every question whose deadline has passed with its own timeout choice (its named
    timeout path); returns the cases answered now. The one way a deadline answer is recorded:
    the choice and the time come from the waiting case itself, never from a caller, so nothing
    typed at a door (an operator named "deadline", say) can record one."""
    now = now or datetime.now(UTC)
    with session_scope(store_url) as s:
        overdue = s.execute(
            select(Case.id, Case.waiting_step, Case.timeout_choice).where(
                Case.state == CaseState.WAITING.value, Case.deadline < now
            )
        ).all()
    answered = []
    for case_id, step, choice in overdue:
        if not (step and choice):
            continue
        recorded = record_decision(
            store_url,
            case_id,
            step,
            choice=choice,
            note="No operator answered before the deadline.",
            operator=DEADLINE_OPERATOR,
            source=Door.DEADLINE,
            capability=_DEADLINE_SWEEP,
        )
        if recorded.won:
            answered.append(case_id)
    return answered


def check_decidable(
    store_url: str, case_id: int, choice: str, note: str = "", fields: dict[str, Any] | None = None
) -> tuple[str, str | None]:
    """The waiting question's step and flow run, or DecisionRefused in words an operator reads."""
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        if case is None:
            raise DecisionRefused(f"There is no case {case_id}.")
        if case.state != CaseState.WAITING or not case.waiting_step:
            raise DecisionRefused(
                f"Case {case_id} is not waiting for a decision (it is {case.state}"
                + (f", outcome {case.outcome}" if case.outcome else "")
                + "). Reload the inbox."
            )
        if choice not in case.choices:
            allowed = ", ".join(case.choices)
            raise DecisionRefused(
                f"'{choice}' is not a choice for case {case_id}; use one of: {allowed}."
            )
        if case.question:
            problem = check_answer(
                Question.model_validate(case.question), choice, note, fields or {}
            )
            if problem:
                raise DecisionRefused(problem)
        return case.waiting_step, case.flow_run_id


# --- the doors' checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Admission:
    """Who a door's decision is recorded as, and whose claim it goes over (if anyone's)."""

    operator: str
    over_claim_of: str | None = None


def _not_allowed(name: str, role: str | None, active: bool) -> str:
    if role is None:
        return (
            f"{name!r} is not an operator of Henpin: a decision needs the name of an active "
            "operator or admin (see the inbox's Operators page)."
        )
    if not active:
        return f"{name!r} is deactivated: an admin reactivates them before they decide again."
    return f"{name!r} is a {role}: a {role} reads cases but does not decide; an operator or admin does."


def admit(
    store_url: str,
    case_id: int,
    *,
    door: Door,
    operator: str = "",
    over_claim: bool = False,
    prefect_ui_decisions: bool = True,
) -> Admission:
    """The identity, role and claim checks every door passes before its answer is looked at.

    Inbox and CLI: `operator` must be an active operator or admin. Prefect UI: the door must be
    switched on (`prefect_ui_decisions`); the answer is recorded as `prefect-ui`, whatever the
    form said. A case someone else claimed is decided over only with `over_claim` (the inbox's
    "decide anyway", `henpin decide --over-claim`); the Prefect UI never decides over a claim.
    The deadline is no door here (`record_deadline_answers`). Refusals: `DoorClosed`,
    `ClaimedByOther`."""
    if door == Door.DEADLINE:
        raise DoorClosed("The deadline's answer is recorded only by the deadline sweep.")
    if door == Door.PREFECT_UI:
        if not prefect_ui_decisions:
            raise DoorClosed(
                "Decisions in the Prefect UI are switched off (HENPIN_PREFECT_UI_DECISIONS=false): "
                "decide in the inbox or with `henpin decide`."
            )
        name = PREFECT_UI_OPERATOR
    else:
        who = find_operator(store_url, operator)
        if who is None or not who.active or not who.can_decide:
            role = who.role if who else None
            raise DoorClosed(_not_allowed(operator, role, bool(who and who.active)), role or "?")
        name = who.name
    with session_scope(store_url) as s:
        holder = s.scalar(
            select(Case.claimed_by).where(Case.id == case_id, Case.state != CaseState.CLOSED)
        )
    if not holder or holder == name:
        return Admission(name)
    if over_claim and door != Door.PREFECT_UI:
        return Admission(name, over_claim_of=holder)
    if door == Door.PREFECT_UI:
        raise ClaimedByOther(
            f"Case {case_id} is claimed by {holder}: an answer in the Prefect UI does not decide "
            f"over a claim. Decide in the inbox, or ask {holder}.",
            holder,
        )
    raise ClaimedByOther(
        f"Case {case_id} is claimed by {holder}: decide anyway on purpose (the inbox's "
        '"decide anyway", `henpin decide --over-claim`) or ask them.',
        holder,
    )


def audit_decision(
    store_url: str,
    case_id: int,
    *,
    actor: str,
    accepted: bool,
    where: str,
    detail: dict[str, Any],
) -> None:
    """A decision taken or refused at any door, in the audit log."""
    audit(
        store_url,
        actor,
        AuditAction.DECISION if accepted else AuditAction.DECISION_REFUSED,
        target=f"case {case_id}",
        where=where,
        detail={k: v for k, v in detail.items() if v is not None},
    )


def refused_before(store_url: str, case_id: int, step: str) -> bool:
    """Whether the answer a run was resumed with for this question was refused already: a flow
    run starts again from the top after each resume and meets its earlier answers again; each
    is judged once (so it is audited once, and never taken later when things changed)."""
    with session_scope(store_url) as s:
        seen = s.scalars(
            select(Event.data).where(Event.case_id == case_id, Event.kind == REFUSED_ANSWER_EVENT)
        ).all()
    return any((data or {}).get("step") == step for data in seen)


def decide_from_prefect_ui(
    store_url: str, case_id: int, step: str, answer: dict[str, Any], *, enabled: bool
) -> RecordedDecision:
    """An answer typed in the Prefect UI's Resume form (or sent with Prefect's resume API),
    which reaches Henpin only inside the resumed flow: the Prefect UI door's checks, the
    question's answer check, then record it as `prefect-ui` and audit it. DecisionRefused when
    it is refused, after the case's timeline and the audit log say why: the flow asks again."""
    choice = str(answer.get("choice") or "")
    note = str(answer.get("note") or "")
    # A run suspended by an older Henpin still has an `operator` field in its form: ignored.
    fields = {
        k: str(v)
        for k, v in answer.items()
        if k not in ("choice", "note", "operator") and v not in (None, "")
    }
    detail: dict[str, Any] = {"choice": choice, "step": step}
    typed = str(answer.get("operator") or "")
    if typed and typed != PREFECT_UI_OPERATOR:
        detail["operator_typed"] = typed[:60]  # recorded, not trusted
    try:
        admit(store_url, case_id, door=Door.PREFECT_UI, prefect_ui_decisions=enabled)
        waiting, _ = check_decidable(store_url, case_id, choice, note, fields)
        if waiting != step:
            raise DecisionRefused(f"Case {case_id} now asks '{waiting}', not '{step}'.")
    except DecisionRefused as refused:
        with session_scope(store_url) as s:
            s.add(
                Event(
                    case_id=case_id,
                    kind=REFUSED_ANSWER_EVENT,
                    message=f"An answer from the Prefect UI was refused: {refused} Asking again.",
                    data={"step": step, **fields, "choice": choice, "source": Door.PREFECT_UI},
                )
            )
        audit_decision(
            store_url,
            case_id,
            actor=PREFECT_UI_OPERATOR,
            accepted=False,
            where=Door.PREFECT_UI,
            detail={**detail, "result": str(refused)[:200]},
        )
        raise
    recorded = record_decision(
        store_url,
        case_id,
        step,
        choice=choice,
        note=note,
        operator=PREFECT_UI_OPERATOR,
        source=Door.PREFECT_UI,
        data=fields,
    )
    result = "recorded" if recorded.won else f"already decided by {recorded.operator}"
    audit_decision(
        store_url,
        case_id,
        actor=PREFECT_UI_OPERATOR,
        accepted=recorded.won,
        where=Door.PREFECT_UI,
        detail={**detail, "result": result},
    )
    return recorded
