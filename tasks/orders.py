"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel

from henpin.domain import Order
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
    orders: list[Order]
    unreadable: list[UnreadableOrder] = []


@amazon_task("find-buyer-cancel-requests", fresh=True)
def find_buyer_cancel_requests(marketplace_ids: list[str], since: datetime) -> Found:
    """Orders updated since `since` that carry a buyer's cancel request (one paged search).

    An order that cannot be read does not stop the search: it is returned as unreadable.
    """
    unreadable: list[UnreadableOrder] = []

    def keep(bad: AmazonPayloadError) -> None:
        raw = bad.payload if isinstance(bad.payload, dict) else {}
        channel = raw.get("salesChannel")
        unreadable.append(
            UnreadableOrder(
                order_id=raw.get("orderId"),
                marketplace_id=channel.get("marketplaceId") if isinstance(channel, dict) else None,
                problem=str(bad),
                payload=bad.payload,
            )
        )

    orders = [
        order
        for order in adapter().search_orders(
            marketplace_ids, last_updated_after=since, on_bad_order=keep
        )
        if order.has_buyer_cancel_request
    ]
    return Found(orders=orders, unreadable=unreadable)
