"""The decision mechanism: one recorded winner per question, then the waiting flow run resumes.

An operator (inbox or CLI), the Prefect UI's Resume form and the deadline sweep may all answer
the same question at nearly the same time. The case store's unique (case, step) constraint picks
exactly one winner; the losers get a plain message. The store is the source of truth: a resumed
flow always continues with the recorded winner, whatever input its own resume carried.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from henpin.domain import CaseState
from henpin.questions import Question, check_answer
from henpin.store.db import session_scope
from henpin.store.models import Case, Decision, Event


class DecisionRefused(Exception):
    """The decision cannot be taken; the message says why and what to do, for the operator."""


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
        """What the waiting flow run is resumed with: the choice and who, never the note (free
        text, kept in Prefect's database for good). The resumed flow takes the whole answer
        (note and extra fields too) from the case store."""
        return {"choice": self.choice, "operator": self.operator}


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
) -> RecordedDecision:
    """Store an answer unless one is already stored; return the winner (and whether it is ours)."""
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
            who = "the deadline" if source == "deadline" else operator
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
