"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from henpin.domain import Order
from tasks.amazon import AmazonAdapter, AmazonThrottled, AmazonUnavailable
from tasks.store import settings


@cache
def adapter() -> AmazonAdapter:
    """One adapter per process, so its rate limiter and token cache are shared."""
    return AmazonAdapter(settings())


def transient_amazon_error(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only when Amazon throttled us or was unavailable; anything else is an answer."""
    try:
        state.result()
    except (AmazonThrottled, AmazonUnavailable):
        return True
    except Exception:
        return False
    return False


AMAZON_TASK: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": [5, 30, 120, 300],
    "retry_condition_fn": transient_amazon_error,
    "timeout_seconds": 300,
}


@task(name="read-order", **AMAZON_TASK)
def read_order(order_id: str) -> Order:
    """The order as Amazon has it now (status, items, cancel request)."""
    return adapter().get_order(order_id)


@task(name="find-buyer-cancel-requests", cache_policy=NO_CACHE, **AMAZON_TASK)
def find_buyer_cancel_requests(marketplace_ids: list[str], since: datetime) -> list[Order]:
    """Orders updated since `since` that carry a buyer's cancel request (one paged search)."""
    return [
        order
        for order in adapter().search_orders(marketplace_ids, last_updated_after=since)
        if order.has_buyer_cancel_request
    ]
