"""A parcel coming back that Amazon does not know about: preview and open a refused/unclaimed
or address-error case by order id (the inbox's form and `henpin cases open-parcel`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from henpin.accounts import AuditAction, audit, find_operator
from henpin.app.cases import CaseNotOpened, CaseSummary, case_summary, order_from_amazon
from henpin.cases.parcels import ParcelKind
from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES
from henpin.store.db import session_scope
from henpin.store.models import Case


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

    order = order_from_amazon(order_id, with_packages=True)
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
    from henpin.parcel_cases import parcel_case_refusal
    from henpin.store.opening import order_snapshot

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
    from henpin.cases.parcels import parcel_kind
    from henpin.parcel_cases import ParcelCaseRefused, open_parcel_case_for
    from tasks.ingest import start_case_flow

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
        summary = CaseSummary(**case_summary(case))
    audit(
        store_url,
        operator,
        AuditAction.CASE_OPENED,
        target=f"case {case_id}",
        where=where,
        detail={**detail, "type": summary.type},
    )
    return summary
