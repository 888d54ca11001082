"""Reading orders from Amazon (through the adapter), as Prefect tasks with bounded retries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from henpin.amazon import AmazonAuthError, AmazonError, AmazonPayloadError
from henpin.cases.parcels import returning_parcel
from henpin.context import adapter, store_url
from henpin.domain import Order, ReturnRequest
from henpin.store.db import session_scope
from henpin.store.models import Case
from tasks.kinds import amazon_task, case_step, store_task, tried_again


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


class UnreadableOrder(BaseModel):
    """An order Amazon sent in a shape Henpin does not understand, kept as received."""

    order_id: str | None
    marketplace_id: str | None
    problem: str
    payload: Any


class AmazonRead(BaseModel):
    """Whether Amazon answered a read, said in the read's own result (ingestion goes on with
    the other regions, and reads this one again next pass)."""

    login_refused: bool = False  # Amazon refused the region's login: nothing was read
    #: Amazon did not answer (unavailable or throttled past the task's retries, a refused
    #: request, a failed report): why, in the adapter's words. Nothing was read.
    not_answered: str | None = None


class Found(AmazonRead):
    """What one paged order search found: buyer cancel requests, returning parcels, and
    orders that could not be read."""

    cancel_requests: list[Order] = []
    returning_parcels: list[Order] = []
    unreadable: list[UnreadableOrder] = []


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
    except AmazonError as error:
        if tried_again(error):
            raise
        return Found(not_answered=str(error))
    return found


class ReturnRequestsFound(AmazonRead):
    """The return requests of one returns report."""

    requests: list[ReturnRequest] = []


@case_step(
    "ask-for-returns-report", timeout_seconds=60, cache_policy=NO_CACHE, persist_result=False
)
def ask_for_returns_report(marketplace_ids: list[str], since: datetime) -> dict[str, str]:
    """Ask Amazon to start making the returns report `find_return_requests` reads later in the
    same pass, for the same marketplaces and `since`, so that it is made while other work goes
    on (Amazon makes it asynchronously): marketplace → report id, for that read. Only a head
    start: {} when Amazon did not take the request; no retry, as the read asks again and says
    why."""
    try:
        return adapter().ask_for_returns_reports(marketplace_ids, since)
    except AmazonError:
        return {}


@amazon_task("find-return-requests", fresh=True)
def find_return_requests(
    marketplace_ids: list[str], since: datetime, asked: dict[str, str] | None = None
) -> ReturnRequestsFound:
    """Return requests made since `since` (Amazon's returns report, via the Reports API), or
    that Amazon refused the region's login (recorded by the adapter) or did not answer.
    `asked`: the reports `ask_for_returns_report` asked for, read instead of new ones."""
    try:
        found = adapter().returns_since(marketplace_ids, since, asked=asked)
        return ReturnRequestsFound(requests=found)
    except AmazonAuthError:
        return ReturnRequestsFound(login_refused=True)
    except AmazonError as error:
        if tried_again(error):
            raise
        return ReturnRequestsFound(not_answered=str(error))


class OrderNow(AmazonRead):
    """The order as Amazon has it now, or why it could not be read (`not_answered`)."""

    order: Order | None = None


@amazon_task("read-order-now", fresh=True)
def read_order_now(order_id: str, marketplace_id: str | None = None) -> OrderNow:
    """`read_order` outside a case (ingestion opening a return case): its result, with the
    buyer's name and relay address, is not persisted, as no case's purge would reach it."""
    try:
        return OrderNow(order=adapter().get_order(order_id, marketplace_id=marketplace_id))
    except AmazonError as error:
        if tried_again(error):
            raise
        return OrderNow(not_answered=str(error))
