"""Ingestion side effects: the search window, opening cases, starting their flow runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select

from henpin.cases.parcels import returning_parcel
from henpin.cases.registry import case_type_entry
from henpin.cases.return_request import CLOSED_AT_AMAZON
from henpin.context import policy_in_force, store_url
from henpin.decisions import record_decision
from henpin.domain import AuthorizationStatus, CaseState, CaseType, Order, ReturnRequest
from henpin.parcel_cases import place_parcel_report
from henpin.policy import Policy
from henpin.policy.reasons import phrase
from henpin.runs import resume_case_run, start_case_run
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Case, Checkpoint, Event, UnreadablePayload
from tasks.cases import attach_flow_run, open_case
from tasks.kinds import store_task
from tasks.orders import UnreadableOrder

FIRST_LOOKBACK = timedelta(days=7)  # how far back the very first poll looks
OVERLAP = timedelta(minutes=10)  # re-read a little of the last window: late-indexed updates


class Opened(BaseModel):
    case_id: int
    order_id: str
    new: bool
    flow_run_id: str | None


@store_task("search-window", fresh=True)
def search_window(name: str, now: datetime, *, before_regions: str | None = None) -> datetime:
    """Orders updated since the last poll (minus an overlap), or a week back the first time.

    `before_regions` names the checkpoint kept before ingestion went region by region: a
    region's first window continues from it."""
    with session_scope(store_url()) as s:
        cp = s.get(Checkpoint, name)
        if cp is None and before_regions is not None:
            cp = s.get(Checkpoint, before_regions)
        return (cp.at - OVERLAP) if cp else now - FIRST_LOOKBACK


@store_task("advance-checkpoint", fresh=True)
def advance_checkpoint(name: str, at: datetime) -> None:
    with session_scope(store_url()) as s:
        cp = s.get(Checkpoint, name)
        if cp is None:
            s.add(Checkpoint(name=name, at=at))
        else:
            cp.at = max(cp.at, at)


def flow_parameters(case: Case, policy: Policy) -> dict[str, Any]:
    """The case flow's parameters, as its case type's entry in the registry builds them."""
    return case_type_entry(case.type).flow_parameters(case, policy)


def start_case_flow(case_id: int) -> str:
    """Start the case's flow run (once: the run's idempotency key is per order and type)."""
    policy = policy_in_force()
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if case.flow_run_id:
            return case.flow_run_id
        parameters = flow_parameters(case, policy)
        case_type, order_id, marketplace_id = (
            CaseType(case.type),
            case.order_id,
            case.marketplace_id,
        )
    flow_run_id = start_case_run(case_type, case_id, order_id, marketplace_id, parameters)
    attach_flow_run(case_id, flow_run_id)
    return flow_run_id


def open_and_start(
    case_type: CaseType,
    order: Order,
    *,
    note: str,
    details: dict[str, Any] | None = None,
    parent_case_id: int | None = None,
) -> Opened:
    """One case per order and type, never two; its flow run starts once."""
    case_id, new = open_case(
        case_type, order, note=note, details=details, parent_case_id=parent_case_id
    )
    flow_run_id = start_case_flow(case_id)
    return Opened(case_id=case_id, order_id=order.order_id, new=new, flow_run_id=flow_run_id)


@store_task("open-cancel-request-case", fresh=True)
def open_cancel_request_case(order: Order) -> Opened:
    """A buyer's cancel request: its case, linked to (and waking) a cancel-by-message case that
    was waiting for exactly this request."""
    waiting_for_it = open_cancel_by_message_case(order.order_id)
    opened = open_and_start(
        CaseType.CANCEL_REQUEST,
        order,
        note=f"Buyer asked to cancel: {order.buyer_cancel_reason or 'no reason given'}",
        parent_case_id=waiting_for_it,
    )
    if waiting_for_it is not None and opened.new:
        _answer_buyer_requested(waiting_for_it, opened.case_id)
    return opened


@store_task("open-return-request-case", fresh=True)
def open_return_request_case(ret: ReturnRequest, order: Order) -> Opened:
    """A return request from the Return Center: one case per order."""
    return open_and_start(
        CaseType.RETURN_REQUEST,
        order,
        note=f"Return requested ({ret.reason_code or 'no reason code'}): "
        f"{ret.buyer_comment or 'no comment'}",
        details={"return": ret.model_dump(mode="json"), "buyer_comment": ret.buyer_comment},
    )


#: Questions of a return case that Amazon's returns report can answer.
AUTHORIZE_STEP = "authorize-return"
RECEIPT_STEPS = ("item-received", "item-received-after-reminder")


@store_task("returns-report-since", fresh=True)
def returns_report_since(since: datetime, marketplace_ids: list[str] | None = None) -> datetime:
    """Where the returns report of `marketplace_ids` (None: all) must start: at `since`, or
    earlier, at the request of the oldest open return case of those marketplaces, so that its
    later rows (authorized, delivered) are read too. (Amazon's report covers at most 60 days;
    the adapter says so when it has to cut.)"""
    with session_scope(store_url()) as s:
        query = select(Case).where(
            Case.type == CaseType.RETURN_REQUEST.value, Case.state != CaseState.CLOSED.value
        )
        if marketplace_ids is not None:
            query = query.where(Case.marketplace_id.in_(marketplace_ids))
        cases = s.scalars(query).all()
        requested = [
            ReturnRequest.model_validate(c.details["return"]).requested_at
            for c in cases
            if (c.details or {}).get("return")
        ]
    known = [moment for moment in requested if moment is not None]
    return min([since, *known])


@store_task("follow-return-request", fresh=True)
def follow_return_request(ret: ReturnRequest) -> bool:
    """A report row for an order that already has a return case: keep the report's news on the
    case, and answer the question it settles. True when the case exists (nothing to open).

    - Amazon's status says authorized while the case asks to authorize: answered "authorized"
      (it was settled in Seller Central). Closed: answered "closed_at_amazon" (not "declined":
      Amazon also closes a request after a returnless refund, on completion, or 50 days
      without action, help WQ95DQ9UW4EF49F); the flow looks at what was refunded.
    - a return delivery date while the case waits for the item: answered "received", with the
      delivery date (the refund clock starts from it).
    """
    with session_scope(store_url()) as s:
        case = s.scalar(
            select(Case).where(
                Case.type == CaseType.RETURN_REQUEST.value, Case.order_id == ret.order_id
            )
        )
        if case is None:
            return False
        stored = (case.details or {}).get("return")
        if case.state == CaseState.CLOSED.value or not stored:
            return True
        known = ReturnRequest.model_validate(stored)
        if (known.rma_id and ret.rma_id and known.rma_id != ret.rma_id) or (
            known.sku and ret.sku and known.sku != ret.sku
        ):
            return True  # another item or request of the order: this case follows its own
        news = known.model_copy(
            update={
                "status": ret.status or known.status,
                "in_policy": ret.in_policy if ret.in_policy is not None else known.in_policy,
                "return_delivery_date": ret.return_delivery_date or known.return_delivery_date,
                "refunded_amount": ret.refunded_amount or known.refunded_amount,
            }
        )
        case_id, step = case.id, case.waiting_step
        if news != known:
            case.details = {**(case.details or {}), "amazon_report": news.model_dump(mode="json")}
    settled = {
        AuthorizationStatus.AUTHORIZED: "authorized",
        AuthorizationStatus.CLOSED: CLOSED_AT_AMAZON,
    }.get(news.authorization_status)
    if step == AUTHORIZE_STEP and settled is not None:
        record_decision(
            store_url(),
            case_id,
            step,
            choice=settled,
            note=f"Amazon's returns report shows the request {news.status}.",
            operator="amazon",
            source="system",
        )
    if step in RECEIPT_STEPS and news.return_delivery_date is not None:
        delivered = news.return_delivery_date
        record_decision(
            store_url(),
            case_id,
            step,
            choice="received",
            note=f"Amazon's returns report shows the item delivered on {delivered:%Y-%m-%d}.",
            operator="amazon",
            source="system",
            data={"return_delivery_date": delivered.isoformat()},
        )
    return True


@store_task("open-returning-parcel-case", fresh=True)
def open_returning_parcel_case(order: Order) -> Opened:
    """A parcel coming back: an address problem goes to the address-error flow, a refused or
    unclaimed one to the refused-delivery flow; one parcel case per order (henpin/parcel_cases.py):
    a later reason is recorded on the order's case, or hands a waiting refused case over."""
    kind = returning_parcel(order)
    assert kind is not None, "only orders with a returning parcel come here"
    placed = place_parcel_report(order, kind, url=store_url())
    if placed.resume_run:  # the handed-over case's run ends with its recorded answer
        resume_case_run(placed.resume_run, placed.resume_input)
    flow_run_id = start_case_flow(placed.case_id)
    return Opened(
        case_id=placed.case_id, order_id=order.order_id, new=placed.new, flow_run_id=flow_run_id
    )


def open_cancel_by_message_case(order_id: str, *, url: str | None = None) -> int | None:
    """The order's "cancel asked by message" case while it is open (one per order), if any."""
    with session_scope(url or store_url()) as s:
        return s.scalar(
            select(Case.id).where(
                Case.type == CaseType.CANCEL_BY_MESSAGE.value,
                Case.order_id == order_id,
                Case.state != CaseState.CLOSED.value,
            )
        )


def _answer_buyer_requested(message_case_id: int, request_case_id: int) -> None:
    """Tell the cancel-by-message case its wait is over (the housekeeper resumes its run)."""
    with session_scope(store_url()) as s:
        case = s.get(Case, message_case_id)
        step = case.waiting_step if case else None
    if step and step.startswith("buyer-request-"):
        record_decision(
            store_url(),
            message_case_id,
            step,
            choice="buyer_requested",
            note=f"The buyer's cancel request arrived: case {request_case_id}.",
            operator="henpin",
            source="system",
        )


@store_task("flag-unreadable-order", fresh=True)
def flag_unreadable_order(case_type: CaseType, bad: UnreadableOrder) -> int | None:
    """Open (or find) the order's case flagged "needs attention", keeping Amazon's raw payload.

    Without an order id there is no case to flag: the problem goes to the audit log.
    """
    why = phrase("attention", "unreadable-order", problem=bad.problem)
    problem = why.text
    if not bad.order_id:
        # The payload may name the buyer: it goes where the purge reaches, not into the
        # append-only audit log, whose entry names it.
        with session_scope(store_url()) as s:
            kept = UnreadablePayload(source="ingest", problem=bad.problem, payload=bad.payload)
            s.add(kept)
            s.flush()
            s.add(
                AuditEntry(
                    actor="system",
                    action="unreadable-order",
                    source="ingest",
                    detail={"problem": bad.problem, "payload_id": kept.id},
                )
            )
        return None
    with session_scope(store_url()) as s:
        case = s.scalar(
            select(Case).where(Case.type == case_type.value, Case.order_id == bad.order_id)
        )
        if case is None:
            case = Case(
                type=case_type.value,
                order_id=bad.order_id,
                marketplace_id=bad.marketplace_id or "unknown",
            )
            s.add(case)
            s.flush()
        if case.needs_attention != problem:
            case.flag_attention(why)
            case.details = {**(case.details or {}), "raw_payload": bad.payload}
            s.add(
                Event(
                    case_id=case.id,
                    kind="needs-attention",
                    message=problem,
                    data={"attention": why.as_json()},
                )
            )
        return case.id
