"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel

from henpin.cases.parcels import returning_parcel
from henpin.domain import Order, ReturnRequest
from tasks.amazon import AmazonAdapter, AmazonPayloadError
from tasks.kinds import amazon_task
from tasks.store import settings


@cache
def adapter() -> AmazonAdapter:
    """One adapter per process, so its rate limiter and token cache are shared."""
    return AmazonAdapter(settings())


@amazon_task("read-order")
def read_order(order_id: str) -> Order:
    """The order as Amazon has it now (status, items, cancel request)."""
    return adapter().get_order(order_id)


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


SCAN_DATA = ("CANCELLATION", "FULFILLMENT", "PROCEEDS", "BUYER", "PACKAGES")


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

    for order in adapter().search_orders(
        marketplace_ids, last_updated_after=since, included_data=SCAN_DATA, on_bad_order=keep
    ):
        if order.has_buyer_cancel_request:
            found.cancel_requests.append(order)
        if returning_parcel(order) is not None:
            found.returning_parcels.append(order)
    return found


@amazon_task("find-return-requests", fresh=True)
def find_return_requests(marketplace_ids: list[str], since: datetime) -> list[ReturnRequest]:
    """Return requests made since `since` (Amazon's returns report, via the Reports API)."""
    return adapter().returns_since(marketplace_ids, since)
