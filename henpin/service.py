"""What the inbox and the CLI do, in one place: list and show cases, decide, manage operators.

The inbox (`ui/`) and `henpin cases ... --json` call these same functions, so what an operator
sees in the browser and what a script reads are the same data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, select
from sqlalchemy import case as sql_case

from henpin.accounts import AccountRefused, Actor, create_operator
from henpin.cases.parcels import ParcelKind
from henpin.decisions import DecisionRefused, check_decidable, record_decision
from henpin.domain import ActionStatus, CaseState, Order
from henpin.marketplaces import MARKETPLACES
from henpin.runs import ResumeResult, resume_case_run
from henpin.store.db import session_scope
from henpin.store.models import Action, Case, Decision, Event


class CaseSummary(BaseModel):
    """One line of the inbox and of `henpin cases list --json`."""

    id: int
    type: str
    order_id: str
    marketplace_id: str
    marketplace: str | None
    state: str
    outcome: str | None
    choices: list[str]
    deadline: datetime | None
    recommendation: dict[str, Any]
    question: dict[str, Any]
    details: dict[str, Any]
    parent_case_id: int | None
    claimed_by: str | None
    needs_attention: str | None
    # The same reason as a code and values (`{kind, code, values}`), for the inbox to word in
    # the operator's language; None when flagged before reasons had codes.
    needs_attention_reason: dict[str, Any] | None = None
    flow_run_id: str | None
    created_at: datetime
    updated_at: datetime


class EventView(BaseModel):
    at: datetime
    kind: str
    message: str
    data: dict[str, Any]


class DecisionView(BaseModel):
    step: str
    choice: str
    note: str
    data: dict[str, Any] = {}
    operator: str
    source: str
    policy_version: str | None
    at: datetime


class ActionView(BaseModel):
    key: str
    kind: str
    feed_type: str
    status: str
    payload: dict[str, Any]
    amazon_feed_id: str | None
    result_code: str | None
    result_message: str | None
    created_at: datetime
    updated_at: datetime
    # A message or e-mail Henpin could not tell was sent: it is never resent alone; a person
    # says whether it went out (inbox case page, or `henpin cases settle-message`).
    uncertain: bool = False


class CaseDetail(CaseSummary):
    """A case with everything that happened to it: `henpin cases show ID --json`."""

    policy_version: str | None
    order: dict[str, Any]
    waiting_step: str | None
    timeout_choice: str | None
    closed_at: datetime | None
    timeline: list[EventView]
    decisions: list[DecisionView]
    actions: list[ActionView]


def _summary(c: Case) -> dict[str, Any]:
    m = MARKETPLACES.get(c.marketplace_id)
    waiting = c.state == CaseState.WAITING
    return {
        "id": c.id,
        "type": c.type,
        "order_id": c.order_id,
        "marketplace_id": c.marketplace_id,
        "marketplace": m.country if m else None,
        "state": c.state,
        "outcome": c.outcome,
        "choices": list(c.choices) if waiting else [],
        "deadline": c.deadline if waiting else None,
        "recommendation": c.recommendation or {},
        "question": (c.question or {}) if waiting else {},
        "details": c.details or {},
        "parent_case_id": c.parent_case_id,
        "claimed_by": c.claimed_by,
        "needs_attention": c.needs_attention,
        "needs_attention_reason": c.needs_attention_reason,
        "flow_run_id": c.flow_run_id,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def deadline_first() -> list[Any]:
    """The inbox's order: waiting cases by deadline (overdue first), then the rest, newest
    first. SQL ORDER BY terms, so a limit keeps the most urgent cases."""
    waiting_deadline = sql_case(
        (and_(Case.state == CaseState.WAITING.value, Case.deadline.is_not(None)), Case.deadline),
        else_=None,
    )
    return [sql_case((waiting_deadline.is_(None), 1), else_=0), waiting_deadline, Case.id.desc()]


def list_cases(store_url: str, *, state: str | None = None, limit: int = 1000) -> list[CaseSummary]:
    """Cases, waiting ones first by deadline (soonest first), then the newest; ordered and cut
    in SQL."""
    with session_scope(store_url) as s:
        q = select(Case)
        if state:
            q = q.where(Case.state == state)
        rows = s.scalars(q.order_by(*deadline_first()).limit(limit))
        return [CaseSummary(**_summary(c)) for c in rows]


def show_case(store_url: str, case_id: int) -> CaseDetail | None:
    from henpin.outbox import SendState  # the outbox owns its actions' states

    with session_scope(store_url) as s:
        c = s.get(Case, case_id)
        if c is None:
            return None
        events = s.scalars(select(Event).where(Event.case_id == case_id).order_by(Event.id)).all()
        decisions = s.scalars(
            select(Decision).where(Decision.case_id == case_id).order_by(Decision.id)
        ).all()
        actions = s.scalars(
            select(Action).where(Action.case_id == case_id).order_by(Action.id)
        ).all()
        return CaseDetail(
            **_summary(c),
            policy_version=c.policy_version,
            order=c.order_snapshot or {},
            waiting_step=c.waiting_step,
            timeout_choice=c.timeout_choice,
            closed_at=c.closed_at,
            timeline=[
                EventView(at=e.at, kind=e.kind, message=e.message, data=e.data) for e in events
            ],
            decisions=[
                DecisionView(
                    step=d.step,
                    choice=d.choice,
                    note=d.note,
                    data=d.data or {},
                    operator=d.operator,
                    source=d.source,
                    policy_version=d.policy_version,
                    at=d.at,
                )
                for d in decisions
            ],
            actions=[
                ActionView(
                    key=a.key,
                    kind=a.kind,
                    feed_type=a.feed_type,
                    status=a.status,
                    payload=a.payload,
                    amazon_feed_id=a.feed.amazon_feed_id if a.feed else None,
                    result_code=a.result_code,
                    result_message=a.result_message,
                    created_at=a.created_at,
                    updated_at=a.updated_at,
                    uncertain=a.status == ActionStatus.SUBMITTED
                    and a.result_code == SendState.UNCERTAIN,
                )
                for a in actions
            ],
        )


class DecisionResult(BaseModel):
    """What happened to an operator's decision, for the inbox and `henpin decide --json`."""

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
    """Record an operator's answer to the case's waiting question and resume its flow run.

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
        resumed = resume_case_run(flow_run_id, rec.run_input) == ResumeResult.RESUMED
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


# --- operators -------------------------------------------------------------------------------


def add_operator(
    store_url: str,
    name: str,
    password: str | None = None,
    role: str = "operator",
    *,
    by: Actor | None = None,
) -> str:
    """Create an operator; returns the password in plain text once (random unless given).

    A name already taken is refused (AccountRefused `name-taken`): a role or password changes
    only by its own command (`accounts.set_role`, `accounts.reset_password`). Name and role are
    checked as the inbox checks them; the addition is audited (by whoever set Henpin up, unless
    `by` says who).
    """
    return create_operator(
        store_url, name, role=role, password=password, by=by or Actor("henpin", "setup", False)
    )


def add_demo_admin(store_url: str, name: str, password: str) -> bool:
    """Demo mode's admin, created on the first `henpin up` only: True when created now. Later
    starts leave it as it is (a password or role an admin changed stays changed)."""
    try:
        add_operator(store_url, name, password, role="admin", by=Actor("henpin up", "demo", False))
    except AccountRefused as refused:
        if refused.code != "name-taken":
            raise
        return False
    return True


__all__ = [
    "CaseDetail",
    "CaseSummary",
    "DecisionRefused",
    "DecisionResult",
    "add_demo_admin",
    "add_operator",
    "decide",
    "list_cases",
    "show_case",
]


class CaseNotOpened(Exception):
    """A case could not be opened; the message says why, for the operator."""


class ReplyPreview(BaseModel):
    """What the buyer will get when a "cancel asked by message" case opens: the first reply, in
    the buyer's language (Amazon's getAttributes, else the marketplace's), from the policy's
    templates."""

    order_id: str
    marketplace_id: str
    marketplace: str
    language: str
    to: str  # Amazon's relay address for the buyer ("" when the order does not show it)
    subject: str
    body: str
    open_case_id: int | None  # this order's case of that type, when one is already open
    # No buyer e-mail from Amazon: the operator will be asked to send it in Seller Central.
    reply_in_seller_central: bool = False


def preview_cancel_by_message(store_url: str, order_id: str) -> ReplyPreview:
    """The reply the cancel-by-message flow would send for this order, before anything is
    opened or sent (the inbox shows it for the operator to check)."""
    from henpin.context import policy_in_force
    from tasks.ingest import open_cancel_by_message_case
    from tasks.messages import buyer_language_for

    order = _message_order(order_id)
    language = buyer_language_for(order).language
    reply = policy_in_force().cancel_by_message.reply(order, language=language)
    m = MARKETPLACES.get(order.marketplace_id)
    return ReplyPreview(
        order_id=order.order_id,
        marketplace_id=order.marketplace_id,
        marketplace=m.name if m else order.marketplace_id,
        language=language,
        to=order.buyer_email or "",
        subject=reply.subject,
        body=reply.body,
        open_case_id=open_cancel_by_message_case(order.order_id, url=store_url),
        reply_in_seller_central=not order.buyer_email,
    )


def _message_order(order_id: str, *, with_packages: bool = False) -> Order:
    """The order a buyer's message is about, from Amazon; CaseNotOpened in words if not."""
    from henpin.amazon import DEFAULT_INCLUDED_DATA, AmazonError
    from henpin.context import adapter

    order_id = order_id.strip()
    if not order_id:
        raise CaseNotOpened("Type the order id (e.g. 113-1234567-1234567).")
    try:
        if with_packages:  # a parcel case shows and keeps where the order's parcels stand
            return adapter().get_order(order_id, (*DEFAULT_INCLUDED_DATA, "PACKAGES"))
        return adapter().get_order(order_id)
    except AmazonError as exc:
        if exc.status == 404:
            raise CaseNotOpened(
                f"Amazon did not return order {order_id}: Amazon has no order with this id. "
                "Check the order id."
            ) from exc
        raise CaseNotOpened(f"Amazon did not return order {order_id}: {exc}") from exc


def open_cancel_by_message(
    store_url: str, order_id: str, *, buyer_message: str, operator: str
) -> CaseSummary:
    """Open a "cancel asked by message" case from the buyer's e-mail (SP-API cannot read buyer
    messages: an operator brings them in). Its flow replies to the buyer and waits."""
    from henpin.domain import CaseType
    from tasks.ingest import open_and_start

    if not buyer_message.strip():
        raise CaseNotOpened("Paste the buyer's message: the case keeps their words.")
    order = _message_order(order_id)
    opened = open_and_start(
        CaseType.CANCEL_BY_MESSAGE,
        order,
        note=f"{operator} opened this case from the buyer's message.",
        details={"buyer_message": buyer_message.strip(), "opened_by": operator},
    )
    with session_scope(store_url) as s:
        case = s.get(Case, opened.case_id)
        assert case is not None
        return CaseSummary(**_summary(case))


# --- a parcel coming back that Amazon does not know about ---------------------------------------


class ParcelPreview(BaseModel):
    """The order an operator is about to open a parcel case for, and whether it can be."""

    order_id: str
    marketplace_id: str
    marketplace: str
    fulfillment_status: str
    kind: ParcelKind
    case_type: str
    value: dict[str, Any] | None
    items: list[dict[str, Any]]
    packages: list[dict[str, Any]]
    problem: str | None  # why it cannot be opened (names the case in the way), else None
    blocking_case_id: int | None


def _shipped_order(order_id: str) -> Order:
    """The order of a parcel case: it must exist at Amazon and have shipped."""
    from henpin.domain import FulfillmentStatus

    order = _message_order(order_id, with_packages=True)
    shipped = (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED)
    if order.fulfillment_status not in shipped:
        raise CaseNotOpened(
            f"Order {order.order_id} has not shipped (Amazon says "
            f"{order.fulfillment_status.value}): a parcel case needs a parcel. For a cancel, "
            "wait for the buyer's request or open a case from their message."
        )
    return order


def preview_parcel_case(store_url: str, order_id: str, kind: ParcelKind) -> ParcelPreview:
    """What opening a refused/unclaimed or address-error case for this order would start
    from, before anything is opened (the inbox shows it for the operator to check)."""
    from henpin.cases.parcels import case_type_for, parcel_kind
    from tasks.cases import order_snapshot
    from tasks.parcels import parcel_case_refusal

    order = _shipped_order(order_id)
    refusal = parcel_case_refusal(order, parcel_kind(kind), url=store_url)
    snap = order_snapshot(order)
    m = MARKETPLACES.get(order.marketplace_id)
    return ParcelPreview(
        order_id=order.order_id,
        marketplace_id=order.marketplace_id,
        marketplace=m.name if m else order.marketplace_id,
        fulfillment_status=order.fulfillment_status.value,
        kind=kind,
        case_type=case_type_for(parcel_kind(kind)).value,
        value=snap["value"],
        items=snap["items"],
        packages=snap.get("packages") or [],
        problem=str(refusal) if refusal else None,
        blocking_case_id=refusal.case_id if refusal else None,
    )


def open_parcel_case(
    store_url: str,
    order_id: str,
    *,
    kind: ParcelKind,
    operator: str,
    note: str = "",
    where: str = "",
) -> CaseSummary:
    """Open a refused/unclaimed or address-error case by order id, for a carrier that told
    Amazon nothing: the one door of the inbox and `henpin cases open-parcel`. The operator must
    be an active operator or admin; the order must exist and have shipped; the order must have
    no open parcel case, no parcel case that refunded, and no case of this type. Opened or
    refused, it goes in the audit log."""
    from henpin.accounts import AuditAction, audit, find_operator
    from henpin.cases.parcels import parcel_kind
    from tasks.ingest import start_case_flow
    from tasks.parcels import ParcelCaseRefused, open_parcel_case_for

    detail: dict[str, Any] = {"order_id": order_id.strip(), "kind": kind}
    try:
        who = find_operator(store_url, operator)
        if who is None or not who.active or not who.can_decide:
            raise CaseNotOpened(
                f"{operator or 'Nobody'} may not open cases: only an active operator or admin "
                "of the inbox can."
            )
        order = _shipped_order(order_id)
        case_id = open_parcel_case_for(
            order, parcel_kind(kind), operator=operator, note=note, url=store_url
        )
    except (CaseNotOpened, ParcelCaseRefused) as exc:
        audit(
            store_url,
            operator,
            AuditAction.CASE_OPEN_REFUSED,
            target=f"order {detail['order_id']}",
            where=where,
            detail={**detail, "problem": str(exc)[:300]},
        )
        raise CaseNotOpened(str(exc)) from exc
    start_case_flow(case_id)
    with session_scope(store_url) as s:
        case = s.get(Case, case_id)
        assert case is not None
        summary = CaseSummary(**_summary(case))
    audit(
        store_url,
        operator,
        AuditAction.CASE_OPENED,
        target=f"case {case_id}",
        where=where,
        detail={**detail, "type": summary.type},
    )
    return summary
