"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from henpin.domain import Order
from tasks.amazon import AmazonAdapter
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


@amazon_task("find-buyer-cancel-requests", fresh=True)
def find_buyer_cancel_requests(marketplace_ids: list[str], since: datetime) -> list[Order]:
    """Orders updated since `since` that carry a buyer's cancel request (one paged search)."""
    return [
        order
        for order in adapter().search_orders(marketplace_ids, last_updated_after=since)
        if order.has_buyer_cancel_request
    ]
