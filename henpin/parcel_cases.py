"""One parcel case per order, whoever opens it and however the parcel's reason changes.

A returning parcel is case 4 (refused or unclaimed delivery) or case 5 (address error). The
seller's guide owes different things for them: for a refused or unclaimed parcel nothing is
refunded until the buyer asks, then the item price only; for a parcel back because of the
buyer's address, the seller first asks the buyer to confirm the address, then reships, refunds
in part by agreement, or cancels as buyer-caused for a reorder (the referral fee comes back).
The address case is the more specific one and protects the seller's money, so:

- refused/unclaimed first, an address problem later: the address-error case takes over. The
  refused case, while it waits for an operator (nothing refunded or queued) on a question whose
  answer can say `handed_over`, is closed as `handed-to-address-error` naming the new case; the
  new case links to it and keeps its history. A refused case that is refunding carries on and
  records the report instead: so does one whose refund Henpin held back and a person now
  decides on (that answer, check again or escalate, has no hand-over).
- an address problem first, refused/unclaimed later: the same parcel on its way back; the
  address case keeps it and records the new status.
- a parcel case closed with a refund is never followed by another parcel case: the report is
  recorded on it and it is flagged "needs attention".

Every change runs in one transaction that first takes a per-order lock (PostgreSQL advisory
lock; SQLite's single writer lock), so ingestion, an operator and a second ingestion run cannot
open two parcel cases for one order between their check and their insert.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import exists, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from henpin.cases import parcels as texts
from henpin.cases.answers import OperatorAnswer
from henpin.cases.parcels import PARCEL_CASE_TYPES, ReturningParcel, case_type_for
from henpin.cases.refund_outcomes import HeldRefundDecision
from henpin.cases.refused_delivery import HANDED_OVER, RefundAsked, RefusedRefundConfirmation
from henpin.domain import ActionKind, ActionStatus, CaseState, CaseType, Order, Outcome
from henpin.policy.reasons import Phrase
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Event
from henpin.store.opening import add_case

REFUND_OUTCOMES = {
    Outcome.REFUNDED_IN_FULL.value,
    Outcome.REFUNDED_PARTLY.value,
    Outcome.KEEP_ITEM_REFUNDED.value,
    Outcome.CANCELLED_FOR_REORDER.value,
    Outcome.REFUNDED_BY_AMAZON.value,
    Outcome.ALREADY_REFUNDED.value,
}

#: What a waiting refused-delivery case can be asked: its own questions (flows/refused_delivery.py)
#: and the shared refund step's question on a refund Henpin held back (flows/steps.py).
REFUSED_CASE_ANSWERS: tuple[type[OperatorAnswer], ...] = (
    RefundAsked,
    RefusedRefundConfirmation,
    HeldRefundDecision,
)


class Placement(BaseModel):
    """Where a parcel report went: the order's parcel case, and what changed."""

    case_id: int
    new: bool  # a case was opened (its flow run is to be started)
    handed_over_from: int | None = None  # the refused case this one took over
    resume_run: str | None = None  # that case's suspended run, to be resumed with `resume_input`
    resume_input: dict[str, Any] | None = None
    flagged: bool = False  # a refunded case got the report: nothing new was opened


class ParcelCaseRefused(Exception):
    """An operator cannot open this parcel case; the message names the case in the way."""

    def __init__(self, message: str, case_id: int | None = None) -> None:
        super().__init__(message)
        self.case_id = case_id


def lock_order(s: Session, order_id: str) -> None:
    """Hold the order's parcel lock until this transaction ends (commit or rollback)."""
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        digest = hashlib.blake2b(f"henpin-parcel:{order_id}".encode(), digest_size=8).digest()
        key = int.from_bytes(digest, "big", signed=True)
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    elif dialect == "sqlite":
        # SQLite has one writer. A write as the transaction's first statement takes the write
        # lock now (pysqlite begins the transaction right before it), so the checks below see
        # every committed case and no one else writes until this transaction ends.
        s.execute(update(Case).where(Case.id == -1).values(state=Case.state))
    else:
        raise RuntimeError(f"no parcel lock for a {dialect} case store")


def _refunded(s: Session, case: Case) -> bool:
    """The case refunded the buyer (or has a refund on its way to Amazon)."""
    if case.outcome in REFUND_OUTCOMES:
        return True
    return bool(
        s.scalar(
            select(
                exists().where(
                    Action.case_id == case.id,
                    Action.kind == ActionKind.REFUND.value,
                    Action.status != ActionStatus.FAILED.value,
                )
            )
        )
    )


def _note_report(
    s: Session,
    case: Case,
    report: dict[str, Any],
    message: str,
    attention: Phrase | None = None,
) -> bool:
    """Keep a report on the case (details.parcel_reports) and its timeline, once per reason
    (ingestion sees an order again on every pass that overlaps its update). True when new."""
    reports = list((case.details or {}).get("parcel_reports") or [])
    seen = {(r.get("kind"), r.get("detailed_status"), r.get("source")) for r in reports}
    if (report["kind"], report["detailed_status"], report["source"]) in seen:
        return False
    at = datetime.now(UTC).isoformat()
    case.details = {**(case.details or {}), "parcel_reports": [*reports, {**report, "at": at}]}
    data = report if attention is None else {**report, "attention": attention.as_json()}
    s.add(Event(case_id=case.id, kind="parcel-report", message=message, data=data))
    return True


def _insert(
    s: Session,
    case_type: CaseType,
    order: Order,
    report: dict[str, Any],
    *,
    details: dict[str, Any],
    note: str,
    parent: Case | None = None,
) -> Case:
    at = datetime.now(UTC).isoformat()
    return add_case(
        s,
        case_type,
        order,
        note=note,
        details={**details, "parcel_reports": [{**report, "at": at}]},
        parent_case_id=parent.id if parent else None,
        event_data=report,
    )


def _history(s: Session, case: Case) -> dict[str, Any]:
    decisions = s.scalars(select(Decision).where(Decision.case_id == case.id).order_by(Decision.id))
    events = s.scalars(select(Event).where(Event.case_id == case.id).order_by(Event.id))
    return texts.history_of(
        {"case_id": case.id, "type": case.type, "details": case.details or {}},
        [
            {"step": d.step, "choice": d.choice, "operator": d.operator, "at": d.at.isoformat()}
            for d in decisions
        ],
        [{"at": e.at.isoformat(), "kind": e.kind, "message": e.message} for e in events],
    )


def _can_hand_over(refused: Case) -> bool:
    """The refused case's waiting question is one whose answer can say `handed_over`, so its
    suspended run accepts Henpin's answer. The answer is told by what the question offers and
    times out to, as each answer declares its choices; a question no answer (or more than one
    kind of answer) fits is not answered for the operator."""
    offered = set(refused.choices or [])
    fits = [
        answer
        for answer in REFUSED_CASE_ANSWERS
        if offered <= set(answer.labels)
        and (refused.timeout_choice is None or refused.timeout_choice in answer.choices())
    ]
    return bool(offered) and bool(fits) and all(HANDED_OVER in a.choices() for a in fits)


def _hand_over(s: Session, refused: Case, order: Order, report: dict[str, Any]) -> Placement | None:
    """Close the waiting refused case as handed over and open the address case that takes
    over, in this transaction. None when an answer to its question was recorded first (the
    operator's answer stands; the report is then only recorded)."""
    step = refused.waiting_step
    assert step is not None
    try:
        with s.begin_nested():
            s.add(
                Decision(
                    case_id=refused.id,
                    step=step,
                    choice=HANDED_OVER,
                    note="The parcel came back because of the address.",
                    operator="henpin",
                    source="system",
                    policy_version=refused.policy_version,
                )
            )
    except IntegrityError:
        return None
    history = _history(s, refused)
    new = _insert(
        s,
        CaseType.ADDRESS_ERROR,
        order,
        report,
        details={"handed_over_from": history},
        note=texts.taken_over_note(refused.id, report),
        parent=refused,
    )
    message = texts.handed_over_note(new.id, report)
    s.add(
        Event(
            case_id=refused.id,
            kind="decision",
            message=f"henpin chose '{HANDED_OVER}'",
            data={"step": step, "choice": HANDED_OVER, "source": "system", "operator": "henpin"},
        )
    )
    refused.close(Outcome.HANDED_TO_ADDRESS_ERROR.value, message, handed_to_case=new.id)
    return Placement(
        case_id=new.id,
        new=True,
        handed_over_from=refused.id,
        resume_run=refused.flow_run_id,
        resume_input={"choice": HANDED_OVER, "note": message},
    )


def _address_reported(s: Session, refused: Case, order: Order, report: dict[str, Any]) -> Placement:
    """An address problem reported for an order whose parcel case is refused/unclaimed."""
    if refused.state == CaseState.WAITING.value and refused.waiting_step:
        if not _can_hand_over(refused):
            why = "its refund was held back and a person decides on it"
        elif (handed := _hand_over(s, refused, order, report)) is not None:
            return handed
        else:
            why = "an operator answered its question first"
    elif refused.state == CaseState.ACTING.value:
        why = "it is already acting (a refund may be on its way)"
    elif refused.state != CaseState.CLOSED.value:
        why = "its flow is between two steps"
    elif _refunded(s, refused):
        flag = texts.refunded_flag(report, refused.outcome)
        if _note_report(s, refused, report, flag.text, flag):
            refused.flag_attention(flag)
        return Placement(case_id=refused.id, new=False, flagged=True)
    else:  # closed without a refund: the address case starts afresh, linked, with its history
        new = _insert(
            s,
            CaseType.ADDRESS_ERROR,
            order,
            report,
            details={"follows": _history(s, refused)},
            note=f"{texts.opened_note(report)} "
            + texts.follows_note(refused.id, refused.type, refused.outcome),
            parent=refused,
        )
        return Placement(case_id=new.id, new=True)
    _note_report(s, refused, report, texts.kept_note(report, why))
    return Placement(case_id=refused.id, new=False)


def place_parcel_report(order: Order, kind: ReturningParcel, *, url: str) -> Placement:
    """Ingestion saw the order's parcel coming back: open its case, or record the report on
    the case it already has, or hand a refused case over to an address case."""
    report = texts.parcel_report(order, kind, operator=None)
    wanted = case_type_for(kind)
    with session_scope(url) as s:
        lock_order(s, order.order_id)
        cases = _parcel_cases(s, order.order_id)
        address = cases.get(CaseType.ADDRESS_ERROR)
        refused = cases.get(CaseType.REFUSED_DELIVERY)
        if address is not None:  # the address case keeps the parcel, whatever comes next
            _note_report(s, address, report, texts.new_report_note(report))
            return Placement(case_id=address.id, new=False)
        if refused is not None and wanted == CaseType.REFUSED_DELIVERY:
            _note_report(s, refused, report, texts.new_report_note(report))
            return Placement(case_id=refused.id, new=False)
        if refused is not None:
            return _address_reported(s, refused, order, report)
        case = _insert(
            s,
            wanted,
            order,
            report,
            details={"refused": kind == "refused"} if wanted == CaseType.REFUSED_DELIVERY else {},
            note=texts.opened_note(report),
        )
        return Placement(case_id=case.id, new=True)


def _parcel_cases(s: Session, order_id: str) -> dict[CaseType, Case]:
    """The order's parcel cases by type (one per type, by the store's unique constraint),
    locked for this transaction where the database can."""
    rows = s.scalars(
        select(Case)
        .where(Case.order_id == order_id, Case.type.in_([t.value for t in PARCEL_CASE_TYPES]))
        .with_for_update()
    ).all()
    return {CaseType(c.type): c for c in rows}


def _refusal(
    s: Session, cases: dict[CaseType, Case], wanted: CaseType, order_id: str
) -> ParcelCaseRefused | None:
    """Why an operator cannot open a `wanted` case for the order, naming the case in the way."""
    for case in cases.values():
        if case.state != CaseState.CLOSED.value:
            return ParcelCaseRefused(
                f"Order {order_id} already has an open parcel case: case {case.id} "
                f"({case.type}, {case.state}). Work on that case instead.",
                case.id,
            )
    for case in cases.values():
        if _refunded(s, case):
            return ParcelCaseRefused(
                f"Order {order_id}'s parcel case {case.id} ({case.type}) already refunded the "
                f"buyer ({case.outcome or 'refund under way'}): a new parcel case could refund "
                "twice. Check the order in Seller Central.",
                case.id,
            )
    if (same := cases.get(wanted)) is not None:
        return ParcelCaseRefused(
            f"Order {order_id} already had a {wanted.value} case: case {same.id} (closed: "
            f"{same.outcome or 'no outcome'}). Henpin keeps one case per order and type.",
            same.id,
        )
    return None


def parcel_case_refusal(
    order: Order, kind: ReturningParcel, *, url: str
) -> ParcelCaseRefused | None:
    """Would an operator be refused a parcel case of this kind for the order? (a preview: the
    opening itself checks again under the order's lock)."""
    with session_scope(url) as s:
        rows = s.scalars(
            select(Case).where(
                Case.order_id == order.order_id,
                Case.type.in_([t.value for t in PARCEL_CASE_TYPES]),
            )
        ).all()
        cases = {CaseType(c.type): c for c in rows}
        return _refusal(s, cases, case_type_for(kind), order.order_id)


def open_parcel_case_for(
    order: Order, kind: ReturningParcel, *, operator: str, note: str, url: str
) -> int:
    """An operator opens the order's parcel case (the carrier told Amazon nothing). Refused
    (ParcelCaseRefused, naming the case in the way) when the order already has an open parcel
    case, a parcel case that refunded, or a case of this type."""
    report = texts.parcel_report(order, kind, operator=operator)
    wanted = case_type_for(kind)
    with session_scope(url) as s:
        lock_order(s, order.order_id)
        cases = _parcel_cases(s, order.order_id)
        if (refused := _refusal(s, cases, wanted, order.order_id)) is not None:
            raise refused
        before = next(iter(cases.values()), None)
        details: dict[str, Any] = {"opened_by": operator}
        if wanted == CaseType.REFUSED_DELIVERY:
            details["refused"] = kind == "refused"
        if before is not None:
            details["follows"] = _history(s, before)
        words = f"{operator} opened this case by order id. {texts.opened_note(report)}"
        if before is not None:
            words += " " + texts.follows_note(before.id, before.type, before.outcome)
        if note.strip():
            words += f" Note: {note.strip()}"
        case = _insert(s, wanted, order, report, details=details, note=words, parent=before)
        return case.id
