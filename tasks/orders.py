"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from henpin.amazon import AmazonAuthError, AmazonPayloadError
from henpin.cases.parcels import returning_parcel
from henpin.context import adapter, store_url
from henpin.domain import Order, ReturnRequest
from henpin.store.db import session_scope
from henpin.store.models import Case
from tasks.kinds import amazon_task, store_task


@amazon_task("read-order")
def read_order(order_id: str, marketplace_id: str | None = None) -> Order:
    """The order as Amazon has it now (status, items, cancel request); `marketplace_id`, when
    known, says which region to ask."""
    return adapter().get_order(order_id, marketplace_id=marketplace_id)


@store_task("order-as-opened")
def order_as_opened(case_id: int) -> Order | None:
    """The order as it was read when the case was opened, kept with the case in the case store
    (`cases.order_snapshot`, purged with the case's buyer data): ingestion's searchOrders with
    includedData, its getOrder of a return request's order, or the getOrder of an operator
    opening the case by order id. None when the case keeps no readable order.

    Persisted like `read_order` (its result holds the buyer's name, and goes when the case's
    run data is purged): a resumed run sees the order it started from."""
    with session_scope(store_url()) as s:
        case = s.get(Case, case_id)
        kept = case is not None and case.personal_data_purged_at is None
        snapshot = dict(case.order_snapshot or {}) if case is not None and kept else {}
    if not snapshot:
        return None
    try:
        return Order.model_validate(snapshot)
    except ValueError:  # an older or damaged snapshot: read the order from Amazon instead
        return None


def order_of_case(case_id: int, order_id: str, marketplace_id: str | None) -> Order:
    """The order a case starts from: the one read when the case was opened, so the case does
    not call getOrder again for what ingestion (or the operator's open) already read; from
    Amazon only when the case keeps none. Flows read the order again right before acting
    (e.g. `queue_cancellation_if_unchanged`): that safety read stays."""
    return order_as_opened(case_id) or read_order(order_id, marketplace_id)


@amazon_task("read-order-after-answer")
def read_order_after(order_id: str, marketplace_id: str | None, answer_step: str) -> Order:
    """The order as Amazon had it right after the operator answered `answer_step` (e.g. "I
    shipped the other items"). One read per answer, kept: a resumed flow re-run sees what it
    saw then, so it takes the same path again."""
    return adapter().get_order(order_id, marketplace_id=marketplace_id)


#: The same read outside a case (ingestion opening a return case): its result, with the buyer's
#: name and relay address, is not persisted, as no case's purge would reach it.
read_order_now = read_order.with_options(
    name="read-order-now", cache_policy=NO_CACHE, persist_result=False
)


class UnreadableOrder(BaseModel):
    """An order Amazon sent in a shape Henpin does not understand, kept as received."""

    order_id: str | None
    marketplace_id: str | None
    problem: str
    payload: Any


class Found(BaseModel):
    """What one paged order search found: buyer cancel requests, returning parcels, and
    orders that could not be read."""

    cancel_requests: list[Order] = []
    returning_parcels: list[Order] = []
    unreadable: list[UnreadableOrder] = []
    login_refused: bool = False  # Amazon refused the region's login: nothing was read


SCAN_DATA = ("CANCELLATION", "FULFILLMENT", "PROCEEDS", "PROMOTION", "BUYER", "PACKAGES")


@amazon_task("scan-updated-orders", fresh=True)
def scan_updated_orders(marketplace_ids: list[str], since: datetime) -> Found:
    """Orders updated since `since`, in one paged searchOrders with includedData (never one
    getOrder per order): those with a buyer cancel request, and those whose parcel is coming
    back. An order that cannot be read does not stop the scan: it is returned as unreadable."""
    found = Found()

    def keep(bad: AmazonPayloadError) -> None:
        raw = bad.payload if isinstance(bad.payload, dict) else {}
        channel = raw.get("salesChannel")
        found.unreadable.append(
            UnreadableOrder(
                order_id=raw.get("orderId"),
                marketplace_id=channel.get("marketplaceId") if isinstance(channel, dict) else None,
                problem=str(bad),
                payload=bad.payload,
            )
        )

    try:
        for order in adapter().search_orders(
            marketplace_ids, last_updated_after=since, included_data=SCAN_DATA, on_bad_order=keep
        ):
            if order.has_buyer_cancel_request:
                found.cancel_requests.append(order)
            if returning_parcel(order) is not None:
                found.returning_parcels.append(order)
    except AmazonAuthError:
        return Found(login_refused=True)  # recorded by the adapter; `henpin status` shows it
    return found


@amazon_task("find-return-requests", fresh=True)
def find_return_requests(marketplace_ids: list[str], since: datetime) -> list[ReturnRequest] | None:
    """Return requests made since `since` (Amazon's returns report, via the Reports API);
    None when Amazon refuses the region's login (recorded by the adapter)."""
    try:
        return adapter().returns_since(marketplace_ids, since)
    except AmazonAuthError:
        return None
