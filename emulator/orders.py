"""Orders API 2026-01-01: ``searchOrders`` and ``getOrder``, as the seller's software reads orders.

Orders are stored whole (every dataset). An answer carries the base fields always and each
optional dataset only when ``includedData`` asks for it, e.g. a buyer's cancel request
(``orderItems[].cancellation``) only with ``CANCELLATION``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from emulator.buyer_contact import restricted
from emulator.clock import iso, parse_time
from emulator.errors import invalid_input, not_found
from emulator.regions import visible
from emulator.runtime import emulator_of, query_list, sp_api_call

ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")
FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY",
    "PENDING",
    "UNSHIPPED",
    "PARTIALLY_SHIPPED",
    "SHIPPED",
    "CANCELLED",
    "UNFULFILLABLE",
)
FULFILLED_BY = ("MERCHANT", "AMAZON")
#: Optional datasets: which order-level and item-level fields each ``includedData`` value adds.
ORDER_DATASETS: dict[str, tuple[str, ...]] = {
    "BUYER": ("buyer",),
    "RECIPIENT": ("recipient",),
    "PROCEEDS": ("proceeds",),
    "EXPENSE": (),
    "PROMOTION": (),
    "CANCELLATION": (),
    "FULFILLMENT": ("fulfillment",),
    "PACKAGES": ("packages",),
    "TAX": ("tax",),
    "PAYMENT": ("payment",),
    "FULFILLMENT_ORDERS": ("fulfillmentOrders",),
}
ITEM_DATASETS: dict[str, tuple[str, ...]] = {
    "PROCEEDS": ("proceeds",),
    "EXPENSE": ("expense",),
    "PROMOTION": ("promotion",),
    "CANCELLATION": ("cancellation",),
    "FULFILLMENT": ("fulfillment",),
    "TAX": ("tax",),
}
INCLUDED_DATA = tuple(ORDER_DATASETS)
OPTIONAL_ORDER_FIELDS = frozenset(f for fields in ORDER_DATASETS.values() for f in fields)
OPTIONAL_ITEM_FIELDS = frozenset(f for fields in ITEM_DATASETS.values() for f in fields)
#: The model: an explicit createdBefore/lastUpdatedBefore must be at least two minutes old.
BEFORE_MARGIN = timedelta(minutes=2)


def project(order: dict[str, Any], included: Iterable[str]) -> dict[str, Any]:
    """The order as the API answers it: base fields plus the requested datasets only."""
    wanted = set(included)
    keep_order = {f for name in wanted for f in ORDER_DATASETS.get(name, ())}
    keep_item = {f for name in wanted for f in ITEM_DATASETS.get(name, ())}
    answer = {
        key: copy.deepcopy(value)
        for key, value in order.items()
        if key not in OPTIONAL_ORDER_FIELDS or key in keep_order
    }
    answer["orderItems"] = [
        {
            key: copy.deepcopy(value)
            for key, value in item.items()
            if key not in OPTIONAL_ITEM_FIELDS or key in keep_item
        }
        for item in order.get("orderItems", [])
    ]
    return answer


def fulfillment_status(order: dict[str, Any]) -> str | None:
    """The order's fulfillment status (PENDING, UNSHIPPED, SHIPPED, CANCELLED, ...)."""
    status: str | None = order.get("fulfillment", {}).get("fulfillmentStatus")
    return status


def marketplace_of(order: dict[str, Any]) -> str | None:
    """The marketplace the order was placed in."""
    marketplace: str | None = order.get("salesChannel", {}).get("marketplaceId")
    return marketplace


def _enum_list(request: Request, name: str, allowed: Iterable[str]) -> list[str]:
    values = query_list(request, name)
    allowed_values = set(allowed)
    bad = [v for v in values if v not in allowed_values]
    if bad:
        raise invalid_input(
            f"Invalid value {bad[0]!r} for {name}.", f"Allowed values: {', '.join(allowed)}."
        )
    return values


def _time_param(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_time(raw)
    except ValueError:
        raise invalid_input(f"{name} must be an ISO 8601 date-time, got {raw!r}.") from None


@dataclass(frozen=True)
class OrderSearch:
    """The filters of one searchOrders request."""

    by_update: bool  # lastUpdatedAfter/Before instead of createdAfter/Before
    after: datetime
    before: datetime
    fulfillment_statuses: tuple[str, ...]
    marketplace_ids: tuple[str, ...]
    fulfilled_by: tuple[str, ...]

    def matches(self, order: dict[str, Any]) -> bool:
        """Does the order pass every filter?"""
        moment = parse_time(order["lastUpdatedTime" if self.by_update else "createdTime"])
        if not self.after <= moment <= self.before:
            return False
        if self.fulfillment_statuses and fulfillment_status(order) not in self.fulfillment_statuses:
            return False
        if self.marketplace_ids and marketplace_of(order) not in self.marketplace_ids:
            return False
        fulfilled_by = order.get("fulfillment", {}).get("fulfilledBy")
        return not self.fulfilled_by or fulfilled_by in self.fulfilled_by

    def sort_key(self, order: dict[str, Any]) -> tuple[datetime, str]:
        """Oldest first, so pages stay stable while new orders arrive."""
        moment = parse_time(order["lastUpdatedTime" if self.by_update else "createdTime"])
        return moment, order["orderId"]

    def fingerprint(self) -> str:
        """Identifies the filters, so a paginationToken cannot be reused for another search."""
        text = json.dumps(
            [
                self.by_update,
                iso(self.after),
                sorted(self.fulfillment_statuses),
                sorted(self.marketplace_ids),
                sorted(self.fulfilled_by),
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode_token(offset: int, before: datetime, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "b": iso(before), "f": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, datetime, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return int(data["o"]), parse_time(data["b"]), str(data["f"])
    except (ValueError, KeyError, TypeError):
        raise invalid_input("Invalid paginationToken.") from None


def parse_search(request: Request, now: datetime) -> tuple[OrderSearch, int, int, list[str]]:
    """Validate searchOrders' parameters as the model states them.

    Returns the search, the page offset, the page size and the requested datasets.
    """
    created_after = _time_param(request, "createdAfter")
    created_before = _time_param(request, "createdBefore")
    updated_after = _time_param(request, "lastUpdatedAfter")
    updated_before = _time_param(request, "lastUpdatedBefore")
    if (created_after is None) == (updated_after is None):
        raise invalid_input("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
    if created_after is not None and (updated_after or updated_before):
        raise invalid_input("lastUpdatedAfter/lastUpdatedBefore cannot be used with createdAfter.")
    if updated_after is not None and created_before is not None:
        raise invalid_input("createdBefore cannot be used with lastUpdatedAfter.")
    by_update = updated_after is not None
    after = updated_after if by_update else created_after
    explicit_before = updated_before if by_update else created_before
    assert after is not None
    name = "lastUpdatedBefore" if by_update else "createdBefore"
    if explicit_before is not None:
        if explicit_before < after:
            raise invalid_input(
                f"{name} must be equal to or after {name.replace('Before', 'After')}."
            )
        if explicit_before > now - BEFORE_MARGIN:
            raise invalid_input(
                f"{name} must be at least two minutes before the time of the request."
            )
    page_size_raw = request.query_params.get("maxResultsPerPage", "100")
    try:
        page_size = int(page_size_raw)
    except ValueError:
        raise invalid_input("maxResultsPerPage must be an integer between 1 and 100.") from None
    if not 1 <= page_size <= 100:
        raise invalid_input("maxResultsPerPage must be between 1 and 100.")
    marketplace_ids = query_list(request, "marketplaceIds")
    if len(marketplace_ids) > 50:
        raise invalid_input("marketplaceIds accepts at most 50 values.")
    search = OrderSearch(
        by_update=by_update,
        after=after,
        before=explicit_before or now,
        fulfillment_statuses=tuple(
            _enum_list(request, "fulfillmentStatuses", FULFILLMENT_STATUSES)
        ),
        marketplace_ids=tuple(marketplace_ids),
        fulfilled_by=tuple(_enum_list(request, "fulfilledBy", FULFILLED_BY)),
    )
    included = _enum_list(request, "includedData", INCLUDED_DATA)
    offset = 0
    token = request.query_params.get("paginationToken")
    if token:
        offset, before, fingerprint = _decode_token(token)
        if fingerprint != search.fingerprint():
            raise invalid_input(
                "paginationToken does not match this request's other parameters.",
                "Send the same parameters as the request that returned the token.",
            )
        # The first page fixed the upper bound; later pages keep it so pages do not shift.
        search = OrderSearch(
            search.by_update,
            search.after,
            before,
            search.fulfillment_statuses,
            search.marketplace_ids,
            search.fulfilled_by,
        )
    return search, offset, page_size, included


def search_orders(
    orders: Iterable[dict[str, Any]],
    search: OrderSearch,
    offset: int,
    page_size: int,
    included: list[str],
) -> dict[str, Any]:
    """One page of a searchOrders answer (SearchOrdersResponse)."""
    found = sorted((o for o in orders if search.matches(o)), key=search.sort_key)
    page = found[offset : offset + page_size]
    answer: dict[str, Any] = {"orders": [project(order, included) for order in page]}
    if offset + page_size < len(found):
        next_token = _encode_token(offset + page_size, search.before, search.fingerprint())
        answer["pagination"] = {"nextToken": next_token}
    answer["lastUpdatedBefore" if search.by_update else "createdBefore"] = iso(search.before)
    return answer


def get_order(
    orders: dict[str, dict[str, Any]], order_id: str, included: list[str]
) -> dict[str, Any]:
    """A getOrder answer (GetOrderResponse)."""
    if not ORDER_ID.match(order_id):
        raise invalid_input(
            f"Invalid orderId {order_id!r}.", "An Amazon order id has the form 123-1234567-1234567."
        )
    order = orders.get(order_id)
    if order is None:
        raise not_found(f"Order {order_id} was not found.")
    return {"order": project(order, included)}


def router() -> APIRouter:
    """searchOrders and getOrder."""
    routes = APIRouter()

    @routes.get("/orders/2026-01-01/orders")
    async def search_orders_route(request: Request) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            search, offset, page_size, included = parse_search(request, now)
            # Each region has its own orders: a JP order is not at the NA endpoint.
            orders = (
                o for o in emulator.state.orders.values() if visible(request, [marketplace_of(o)])
            )
            return 200, restricted(
                search_orders(orders, search, offset, page_size, included),
                emulator.state.orders,
                emulator.state.application_roles,
            )

        return await sp_api_call(request, "searchOrders", operation)

    @routes.get("/orders/2026-01-01/orders/{order_id}")
    async def get_order_route(request: Request, order_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            included = _enum_list(request, "includedData", INCLUDED_DATA)
            order = emulator.state.orders.get(order_id)
            if order is not None and not visible(request, [marketplace_of(order)]):
                raise not_found(f"Order {order_id} was not found.")
            return 200, restricted(
                get_order(emulator.state.orders, order_id, included),
                emulator.state.orders,
                emulator.state.application_roles,
            )

        return await sp_api_call(request, "getOrder", operation)

    return routes
