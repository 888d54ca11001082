"""Buyers' return requests on merchant-fulfilled orders, as the control API records them.

On Amazon a buyer asks to return an item from Your Orders; the seller sees the request in Seller
Central and, through SP-API, only in the returns reports (``GET_FLAT_FILE_RETURNS_DATA_BY_RETURN_DATE``
and its XML twin), which the emulator renders from these records (``returns_report``). A record
is one item line of a return: an Amazon RMA id can cover several items of an order.

How each request is then authorized, shipped back and delivered in simulated time is
``emulator.return_lifecycle``. ``POST /_emulator/returns`` takes a JSON list of requests; each is checked against the account's
orders (the order exists and has shipped, the item is one of its items, the quantity fits) and
the whole list is refused if one is wrong. A request without ``amazonRmaId`` gets one derived from
its order, item and date, so posting the same list twice updates instead of duplicating.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from emulator.clock import iso, parse_time
from emulator.order_validation import Problem
from emulator.orders import fulfillment_status, marketplace_of
from emulator.return_lifecycle import on_request

#: Amazon's return reason codes look like ``CR-UNWANTED_ITEM`` or ``AMZ-PG-BAD-DESC``.
RETURN_REASON = re.compile(r"^(CR|AMZ-PG)-[A-Z0-9_-]+$")
#: Codes seen in Amazon's returns reports (the list is Amazon's to extend; any code of the form
#: above is accepted).
KNOWN_RETURN_REASONS = (
    "CR-UNWANTED_ITEM",
    "CR-DEFECTIVE",
    "CR-DAMAGED_BY_CARRIER",
    "CR-DAMAGED_BY_FC",
    "CR-SWITCHEROO",
    "CR-ORDERED_WRONG_ITEM",
    "CR-NOT_COMPATIBLE",
    "CR-QUALITY_UNACCEPTABLE",
    "CR-MISSING_PARTS",
    "CR-FOUND_BETTER_PRICE",
    "CR-MISSED_ESTIMATED_DELIVERY",
    "CR-UNAUTHORIZED_PURCHASE",
    "CR-EXTRA_ITEM",
    "AMZ-PG-BAD-DESC",
)
RMA_ID = re.compile(r"^[A-Za-z0-9]{4,40}$")
#: Orders whose items can be returned: something was sent.
RETURNABLE_STATUSES = ("SHIPPED", "PARTIALLY_SHIPPED")
MAX_COMMENT_LENGTH = 4000
#: Optional free-text report columns a test may set, with their defaults.
TEXT_FIELDS: dict[str, str | None] = {
    "status": "Pending",
    "returnType": "C-Returns",
    "resolution": "StandardRefund",
    "merchantRmaId": None,
    "labelType": None,
    "labelToBePaidBy": None,
    "returnCarrier": None,
    "trackingId": None,
    "invoiceNumber": None,
}
FLAG_FIELDS = {"inPolicy": True, "isPrime": False, "aToZClaim": False}
ALLOWED_FIELDS = frozenset(
    {
        "orderId",
        "orderItemId",
        "sku",
        "returnRequestDate",
        "quantity",
        "returnReason",
        "customerComments",
        "amazonRmaId",
        "labelCost",
        "returnDeliveryDate",
        "refundAtFirstScan",
        *TEXT_FIELDS,
        *FLAG_FIELDS,
    }
)


@dataclass
class _Checker:
    """Collects the problems of one submitted return request."""

    index: int
    problems: list[Problem]

    def refuse(self, field: str, message: str) -> None:
        path = f"$[{self.index}]" + (f".{field}" if field else "")
        self.problems.append(Problem(self.index, path, message))


def rma_for(order_id: str, item_id: str, requested: str) -> str:
    """A stable Amazon-style RMA id (``D`` + 8 characters + ``RMA``) for a request without one."""
    digest = hashlib.sha256(f"{order_id}|{item_id}|{requested}".encode()).digest()
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "D" + "".join(alphabet[byte % len(alphabet)] for byte in digest[:8]) + "RMA"


def parse_returns(
    body: Any,
    orders: dict[str, dict[str, Any]],
    existing: list[dict[str, Any]],
    now: datetime,
    settings: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Check a submitted list and build the records to store; problems refuse the whole list.

    Each record gets what Amazon does at request time under the marketplaces' return
    ``settings`` (``emulator.return_lifecycle``: authorized at once, or left to the seller)."""
    if not isinstance(body, list):
        return [], [Problem(None, "$", "The body must be a JSON list of return requests.")]
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for index, entry in enumerate(body):
        checker = _Checker(index, problems)
        record = _record(entry, orders, now, checker)
        if record is not None:
            on_request(record, entry, settings or {})
            records.append(record)
    if not problems:
        _check_quantities(records, existing, problems)
    return records, problems


def _record(
    entry: Any, orders: dict[str, dict[str, Any]], now: datetime, check: _Checker
) -> dict[str, Any] | None:
    before = len(check.problems)
    if not isinstance(entry, dict):
        check.refuse("", "A return request must be a JSON object.")
        return None
    for unknown in sorted(set(entry) - ALLOWED_FIELDS):
        check.refuse(
            unknown, f"Unknown field {unknown!r}; allowed: {', '.join(sorted(ALLOWED_FIELDS))}."
        )
    order = _order(entry, orders, check)
    item = _item(entry, order, check) if order is not None else None
    requested = _time(entry, "returnRequestDate", check) or now
    delivered = _time(entry, "returnDeliveryDate", check)
    quantity = entry.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        check.refuse("quantity", "quantity must be a whole number of at least 1.")
    reason = entry.get("returnReason")
    if not isinstance(reason, str) or not RETURN_REASON.match(reason):
        check.refuse(
            "returnReason",
            "returnReason must be an Amazon return reason code such as "
            f"{', '.join(KNOWN_RETURN_REASONS[:4])}.",
        )
    comments = entry.get("customerComments")
    if comments is not None and (
        not isinstance(comments, str) or len(comments) > MAX_COMMENT_LENGTH
    ):
        check.refuse(
            "customerComments",
            f"customerComments must be text of at most {MAX_COMMENT_LENGTH} characters.",
        )
    rma = entry.get("amazonRmaId")
    if rma is not None and (not isinstance(rma, str) or not RMA_ID.match(rma)):
        check.refuse("amazonRmaId", "amazonRmaId must be 4 to 40 letters or digits.")
    texts: dict[str, Any] = {}
    for field, default in TEXT_FIELDS.items():
        texts[field] = entry.get(field, default)
        if texts[field] is not None and (
            not isinstance(texts[field], str) or not texts[field].strip()
        ):
            check.refuse(field, f"{field} must be non-empty text.")
    flags: dict[str, Any] = {}
    for field, flag in FLAG_FIELDS.items():
        flags[field] = entry.get(field, flag)
        if not isinstance(flags[field], bool):
            check.refuse(field, f"{field} must be true or false.")
    label_cost = _amount(entry.get("labelCost"), check)
    # Whether Amazon refunds this one at first scan (emulator.amazon_refunds); None: the
    # marketplace's setting decides.
    first_scan = entry.get("refundAtFirstScan")
    if first_scan is not None and not isinstance(first_scan, bool):
        check.refuse("refundAtFirstScan", "refundAtFirstScan must be true, false or null.")
    if len(check.problems) > before or order is None or item is None:
        return None
    return {
        "amazonRmaId": rma or rma_for(order["orderId"], item["orderItemId"], iso(requested)),
        "orderId": order["orderId"],
        "orderItemId": item["orderItemId"],
        "sku": item.get("product", {}).get("sellerSku"),
        "marketplaceId": marketplace_of(order),
        "returnRequestDate": iso(requested),
        "quantity": quantity,
        "returnReason": reason,
        "customerComments": comments,
        **texts,
        **flags,
        "labelCost": label_cost,
        "refundAtFirstScan": first_scan,
        "returnDeliveryDate": iso(delivered) if delivered else None,
        "_ordered": int(item.get("quantityOrdered", 1)),  # for the quantity check, not stored
    }


def _order(
    entry: dict[str, Any], orders: dict[str, dict[str, Any]], check: _Checker
) -> dict[str, Any] | None:
    order_id = entry.get("orderId")
    order = orders.get(order_id) if isinstance(order_id, str) else None
    if order is None:
        check.refuse("orderId", f"No order {order_id!r} in the emulator: load it first.")
        return None
    if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON":
        check.refuse("orderId", "The returns report covers merchant-fulfilled orders only.")
    if fulfillment_status(order) not in RETURNABLE_STATUSES:
        check.refuse(
            "orderId",
            f"Order {order_id} is {fulfillment_status(order)}: only a shipped order can be returned.",
        )
    return order


def _item(entry: dict[str, Any], order: dict[str, Any], check: _Checker) -> dict[str, Any] | None:
    item_id, sku = entry.get("orderItemId"), entry.get("sku")
    items = order.get("orderItems", [])
    if item_id is not None:
        found = [item for item in items if item.get("orderItemId") == item_id]
        if not found:
            check.refuse("orderItemId", f"Order {order['orderId']} has no item {item_id!r}.")
            return None
        if sku is not None and found[0].get("product", {}).get("sellerSku") != sku:
            check.refuse("sku", f"Item {item_id} is not SKU {sku!r}.")
            return None
        found_item: dict[str, Any] = found[0]
        return found_item
    if sku is None:
        check.refuse("orderItemId", "Give the returned item's orderItemId or its sku.")
        return None
    found = [item for item in items if item.get("product", {}).get("sellerSku") == sku]
    if len(found) != 1:
        problem = "no item" if not found else "several items"
        check.refuse(
            "sku", f"Order {order['orderId']} has {problem} with SKU {sku!r}; give orderItemId."
        )
        return None
    only: dict[str, Any] = found[0]
    return only


def _time(entry: dict[str, Any], field: str, check: _Checker) -> datetime | None:
    raw = entry.get(field)
    if raw is None:
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError
        return parse_time(raw)
    except ValueError:
        check.refuse(field, f"{field} must be an ISO 8601 date-time.")
        return None


def _amount(raw: Any, check: _Checker) -> str | None:
    if raw is None:
        return None
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise InvalidOperation
        amount = Decimal(str(raw))
        if amount < 0:
            raise InvalidOperation
    except InvalidOperation:
        check.refuse("labelCost", "labelCost must be a non-negative amount.")
        return None
    return format(amount, "f")


def _check_quantities(
    records: list[dict[str, Any]], existing: list[dict[str, Any]], problems: list[Problem]
) -> None:
    """An item cannot be returned more times than it was ordered (over all its RMAs)."""
    replaced = {(r["amazonRmaId"], r["orderItemId"]) for r in records}
    kept = [r for r in existing if (r["amazonRmaId"], r["orderItemId"]) not in replaced]
    totals: dict[tuple[str, str], int] = {}
    for record in [*kept, *records]:
        key = (record["orderId"], record["orderItemId"])
        totals[key] = totals.get(key, 0) + int(record["quantity"])
    for index, record in enumerate(records):
        key = (record["orderId"], record["orderItemId"])
        ordered = record.get("_ordered")
        if ordered is not None and totals[key] > ordered:
            problems.append(
                Problem(
                    index,
                    f"$[{index}].quantity",
                    f"Item {key[1]} of order {key[0]} was ordered {ordered} time(s); its return "
                    f"requests would add up to {totals[key]}.",
                )
            )


def upsert_returns(stored: list[dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Store checked records, replacing those with the same RMA id and item."""
    created = updated = 0
    positions = {(r["amazonRmaId"], r["orderItemId"]): i for i, r in enumerate(stored)}
    for record in records:
        clean = {key: value for key, value in record.items() if not key.startswith("_")}
        position = positions.get((clean["amazonRmaId"], clean["orderItemId"]))
        if position is None:
            positions[(clean["amazonRmaId"], clean["orderItemId"])] = len(stored)
            stored.append(clean)
            created += 1
        else:
            stored[position] = clean
            updated += 1
    return {"created": created, "updated": updated}
