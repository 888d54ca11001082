"""A new case in the case store, in the caller's transaction: the order as the inbox
shows it, and the case's "opened" timeline line."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from henpin.domain import CaseState, CaseType, Order
from henpin.store.models import Case, Event


def order_snapshot(order: Order) -> dict[str, Any]:
    """What the inbox shows of an order: our own Order type, with value and buyer's reason."""
    snap = order.model_dump(mode="json")
    value = order.value
    snap["value"] = value.model_dump(mode="json") if value else None
    snap["buyer_cancel_reason"] = order.buyer_cancel_reason
    for item, data in zip(order.items, snap["items"], strict=True):
        data["value"] = item.value.model_dump(mode="json") if item.value else None
    return snap


def add_case(
    s: Session,
    case_type: CaseType,
    order: Order,
    *,
    note: str,
    details: dict[str, Any],
    parent_case_id: int | None = None,
    event_data: dict[str, Any] | None = None,
) -> Case:
    """A new open case for the order in this transaction, with its "opened" timeline line."""
    case = Case(
        type=case_type.value,
        order_id=order.order_id,
        marketplace_id=order.marketplace_id,
        state=CaseState.OPEN.value,
        order_snapshot=order_snapshot(order),
        details=details,
        parent_case_id=parent_case_id,
    )
    s.add(case)
    s.flush()
    s.add(Event(case_id=case.id, kind="opened", message=note, data=event_data or {}))
    return case
