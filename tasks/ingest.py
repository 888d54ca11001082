"""Ingestion side effects: the search window, opening cases, starting their flow runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select

from henpin.domain import CaseType, Order
from henpin.runs import start_case_run
from henpin.store.db import session_scope
from henpin.store.models import AuditEntry, Case, Checkpoint, Event
from tasks.cases import attach_flow_run, open_case
from tasks.kinds import store_task
from tasks.orders import UnreadableOrder
from tasks.policy import policy_in_force
from tasks.store import store_url

FIRST_LOOKBACK = timedelta(days=7)  # how far back the very first poll looks
OVERLAP = timedelta(minutes=10)  # re-read a little of the last window: late-indexed updates


class Opened(BaseModel):
    case_id: int
    order_id: str
    new: bool
    flow_run_id: str | None


@store_task("search-window", fresh=True)
def search_window(name: str, now: datetime) -> datetime:
    """Orders updated since the last poll (minus an overlap), or a week back the first time."""
    with session_scope(store_url()) as s:
        cp = s.get(Checkpoint, name)
        return (cp.at - OVERLAP) if cp else now - FIRST_LOOKBACK


@store_task("advance-checkpoint", fresh=True)
def advance_checkpoint(name: str, at: datetime) -> None:
    with session_scope(store_url()) as s:
        cp = s.get(Checkpoint, name)
        if cp is None:
            s.add(Checkpoint(name=name, at=at))
        else:
            cp.at = max(cp.at, at)


def start_cancel_request_case(case_id: int, order: Order) -> str:
    """Start the case's flow run with the policy in force now (typed, with its version)."""
    policy = policy_in_force()
    flow_run_id = start_case_run(
        CaseType.CANCEL_REQUEST,
        case_id,
        order.order_id,
        order.marketplace_id,
        {
            "case_id": case_id,
            "order_id": order.order_id,
            "policy": policy.cancel_request.model_dump(mode="json"),
            "policy_version": policy.version,
        },
    )
    attach_flow_run(case_id, flow_run_id)
    return flow_run_id


@store_task("open-cancel-request-case", fresh=True)
def open_cancel_request_case(order: Order) -> Opened:
    """One case per order, never two; its flow run starts once (idempotency key per case)."""
    case_id, new = open_case(
        CaseType.CANCEL_REQUEST,
        order,
        note=f"Buyer asked to cancel: {order.buyer_cancel_reason or 'no reason given'}",
    )
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        started = case.flow_run_id
    if started:
        return Opened(case_id=case_id, order_id=order.order_id, new=new, flow_run_id=started)
    flow_run_id = start_cancel_request_case(case_id, order)
    return Opened(case_id=case_id, order_id=order.order_id, new=new, flow_run_id=flow_run_id)


@store_task("flag-unreadable-order", fresh=True)
def flag_unreadable_order(case_type: CaseType, bad: UnreadableOrder) -> int | None:
    """Open (or find) the order's case flagged "needs attention", keeping Amazon's raw payload.

    Without an order id there is no case to flag: the problem goes to the audit log.
    """
    problem = f"Amazon sent this order in a shape Henpin cannot read: {bad.problem}"
    if not bad.order_id:
        with session_scope(store_url()) as s:
            s.add(
                AuditEntry(
                    actor="system",
                    action="unreadable-order",
                    source="ingest",
                    detail={"problem": bad.problem, "payload": bad.payload},
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
            case.needs_attention = problem
            case.details = {**(case.details or {}), "raw_payload": bad.payload}
            s.add(Event(case_id=case.id, kind="needs-attention", message=problem))
        return case.id


def utcnow() -> datetime:
    return datetime.now(UTC)
