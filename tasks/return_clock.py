"""Return-request side effects on the case: Amazon's authorization and Amazon's refund clock."""

from __future__ import annotations

from datetime import datetime

from henpin.cases import return_request as texts
from henpin.context import store_url
from henpin.domain import Order, ReturnRequest
from henpin.marketplaces import MARKETPLACES
from henpin.policy import ReturnRequestPolicy
from henpin.store.db import session_scope
from henpin.store.models import Case, Event
from tasks.kinds import store_task


@store_task("note-authorized-by-amazon")
def note_authorized_by_amazon(case_id: int, ret: ReturnRequest) -> None:
    """Keep on the case that Amazon authorized the return itself (no question was asked)."""
    message, details = texts.authorized_by_amazon(ret)
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        if (case.details or {}).get("authorization") == details["authorization"]:
            return
        case.details = {**(case.details or {}), **details}
        s.add(Event(case_id=case_id, kind="authorized-by-amazon", message=message, data=details))


@store_task("start-refund-clock")
def start_refund_clock(
    case_id: int,
    ret: ReturnRequest,
    order: Order,
    policy: ReturnRequestPolicy,
    received_at: datetime,
    source: str,
) -> datetime:
    """Fix Amazon's refund deadline on the case, once: `refund_deadline_business_days` business
    days from when the item came back, counted in the marketplace's local time. A deadline
    already on the case stays as it is (later steps never push it back)."""
    known = MARKETPLACES.get(order.marketplace_id)
    due = policy.refund_deadline(received_at, known.time_zone if known else "UTC")
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        assert case is not None
        fixed = (case.details or {}).get("refund_due")
        if fixed:
            return datetime.fromisoformat(fixed)
        message, details = texts.refund_clock(ret, order, received_at, due, source)
        case.details = {**(case.details or {}), **details}
        s.add(Event(case_id=case_id, kind="refund-clock", message=message, data=details))
    return due
