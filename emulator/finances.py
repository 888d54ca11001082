"""Finances API: every refund of an order, the seller's and Amazon's own, as Amazon reports it.

The account's refunds live in ``state.refunds``: the seller's come from payment adjustment feeds
(``order_feeds.adjust_order``), Amazon's own from ``POST /_emulator/orders/{orderId}/refunds``
(Amazon refunding on the seller's behalf: an A-to-z guarantee claim, a refund at first scan, a
missed refund window) and from the returns Amazon refunds by itself in simulated time
(``emulator.amazon_refunds``). Both are served by:

- ``listFinancialEventsByOrderId`` (Finances v0, ``GET /finances/v0/orders/{orderId}/financialEvents``):
  a refund is a ``ShipmentEvent`` in ``RefundEventList`` (an A-to-z claim in
  ``GuaranteeClaimEventList``), one ``ShipmentItemAdjustmentList`` line per order item whose
  ``ItemChargeAdjustmentList`` carries each refunded charge as a negative amount (money leaving
  the seller's account; a restocking fee kept from the buyer is positive), as Amazon's refund
  events do (seen in Amazon's answers quoted in public client code: ``Principal`` ``-8.69``,
  ``RestockingFee`` positive). Feed component ``Shipping`` is the event's ``ShippingCharge``,
  ``GiftWrap`` its ``Giftwrap`` (the ChargeComponent names of the model).
- ``listTransactions`` (Finances 2024-06-19, ``GET /finances/2024-06-19/transactions``) with
  ``relatedIdentifierName=ORDER_ID``: one ``Refund`` transaction per refund, ``totalAmount``
  negative, an item per order item with its breakdowns.

Amazon says "it may take up to 48 hours for orders to appear in your financial events"
(listFinancialEventsByOrderId reference, developer-docs.amazon.com/sp-api/reference/
listfinancialeventsbyorderid). The emulator posts a refund when it is made (a delay of zero is
within "up to"); a client must not count on it, which is why Henpin also counts its own refunds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.clock import iso, parse_time
from emulator.control import read_json, refused
from emulator.errors import invalid_input
from emulator.marketplaces import CURRENCY_DECIMALS, NAME_OF, decimals_of
from emulator.orders import ORDER_ID, marketplace_of
from emulator.regions import visible
from emulator.runtime import emulator_of, sp_api_call

#: Why Amazon refunds on the seller's behalf (Seller Central help U7K5N5GUP67M4X9: a missed
#: two-business-day window; refund at first scan for prepaid labels; returnless refunds, help
#: 202174940; A-to-z guarantee claims).
AMAZON_REFUND_REASONS = (
    "A-to-z claim",
    "refund at first scan",
    "missed refund window",
    "returnless refund",
    "other",
)
#: Components Amazon may refund, and their ChargeType in financial events.
CHARGE_TYPES = {
    "Principal": "Principal",
    "Shipping": "ShippingCharge",
    "Tax": "Tax",
    "ShippingTax": "ShippingTax",
    "RestockingFee": "RestockingFee",
    "ReturnShipping": "ReturnShipping",
    "Goodwill": "Goodwill",
    "GiftWrap": "Giftwrap",
    "GiftWrapTax": "GiftwrapTax",
    "Other": "Other",
}
#: What the buyer paid per component, from the order (2026-01-01): the price, and the item's
#: proceeds breakdown for shipping when the order carries one.
PROCEEDS_TYPES = {"Shipping": "SHIPPING", "Tax": "TAX", "GiftWrap": "GIFT_WRAP"}
#: The marketplaces' currencies without a minor unit (JPY): emulator/marketplaces.py.
ZERO_DECIMAL_CURRENCIES = frozenset(c for c, d in CURRENCY_DECIMALS.items() if d == 0)
MARKETPLACE_NAMES = NAME_OF  # all 23 marketplaces (emulator/marketplaces.py)


class RefundRefused(ValueError):
    """A refund Amazon would not make; the message says why."""


def paid_by_component(item: dict[str, Any]) -> tuple[str, dict[str, Decimal]]:
    """(currency, what the buyer paid per refundable component) for one order item."""
    price = item.get("product", {}).get("price", {}).get("unitPrice")
    if price is None:
        return "", {}
    currency = price["currencyCode"]
    paid = {"Principal": Decimal(price["amount"]) * int(item.get("quantityOrdered", 1))}
    for line in item.get("proceeds", {}).get("breakdowns", []) or []:
        for component, kind in PROCEEDS_TYPES.items():
            if (
                line.get("type") == kind
                and line.get("subtotal", {}).get("currencyCode") == currency
            ):
                paid[component] = paid.get(component, Decimal(0)) + Decimal(
                    line["subtotal"]["amount"]
                )
    return currency, paid


def refunded_so_far(
    refunds: Iterable[dict[str, Any]], order_id: str, item_id: str
) -> dict[str, Decimal]:
    """Everything refunded for an order item, by whoever, per component."""
    totals: dict[str, Decimal] = {}
    for refund in refunds:
        if refund["orderId"] != order_id or refund["orderItemId"] != item_id:
            continue
        for component in refund["components"]:
            totals[component["type"]] = totals.get(component["type"], Decimal(0)) + Decimal(
                component["amount"]
            )
    return totals


def _amount(raw: Any, where: str, currency: str) -> Decimal:
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise InvalidOperation
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise RefundRefused(f"{where}: the amount must be a number.") from None
    if not amount.is_finite() or amount <= 0:
        raise RefundRefused(f"{where}: the amount must be more than 0.")
    places = decimals_of(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise RefundRefused(
            f"{where}: {amount} {currency} has more decimals than the currency's minor unit "
            f"({places})."
        )
    return amount


def parse_amazon_refund(
    body: Any, order: dict[str, Any], refunds: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """Check a control-API refund and return the refund records to store (one per item).

    Refused when it names an unknown item or component, or would give back more of a component
    than the buyer paid minus what was already refunded (by the seller or by Amazon).
    """
    if not isinstance(body, dict):
        raise RefundRefused(
            'The body must be {"reason": "...", "items": [{"orderItemId": "...", '
            '"components": {"Principal": "12.50"}}]}.'
        )
    reason = body.get("reason")
    if reason not in AMAZON_REFUND_REASONS:
        raise RefundRefused(f"reason must be one of: {', '.join(AMAZON_REFUND_REASONS)}.")
    lines = body.get("items")
    if not isinstance(lines, list) or not lines:
        raise RefundRefused("items must be a non-empty list of order items to refund.")
    order_id = order["orderId"]
    items = {item["orderItemId"]: item for item in order.get("orderItems", [])}
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        where = f"items[{index}]"
        item_id = line.get("orderItemId") if isinstance(line, dict) else None
        item = items.get(item_id) if isinstance(item_id, str) else None
        if item is None or item_id is None:
            raise RefundRefused(f"{where}: order {order_id} has no item {item_id!r}.")
        if item_id in seen:
            raise RefundRefused(f"{where}: item {item_id} is listed twice.")
        seen.add(item_id)
        components = line.get("components")
        if not isinstance(components, dict) or not components:
            raise RefundRefused(f"{where}: components must map a component to an amount.")
        currency, paid = paid_by_component(item)
        before = refunded_so_far(refunds, order_id, item_id)
        kept: list[dict[str, str]] = []
        for component, raw in components.items():
            if component not in CHARGE_TYPES:
                raise RefundRefused(
                    f"{where}: unknown component {component!r}; use {', '.join(CHARGE_TYPES)}."
                )
            amount = _amount(raw, f"{where}.{component}", currency)
            if component not in paid:
                raise RefundRefused(
                    f"{where}: the buyer paid no {component} for item {item_id} of order "
                    f"{order_id} (as far as the order shows), so Amazon cannot refund it."
                )
            left = paid[component] - before.get(component, Decimal(0))
            if amount > left:
                raise RefundRefused(
                    f"{where}: refunding {amount} {currency} of {component} for item {item_id} "
                    f"of order {order_id} would exceed what is left: {paid[component]} paid, "
                    f"{before.get(component, Decimal(0))} already refunded, {left} left."
                )
            kept.append(
                {"type": component, "amount": format(amount, "f"), "currencyCode": currency}
            )
        records.append(
            {
                "refundId": _refund_id(order_id, item_id, len(refunds) + index, now),
                "feedId": None,
                "messageId": None,
                "orderId": order_id,
                "orderItemId": item_id,
                "actionType": "Refund",
                "adjustmentReason": None,
                "components": kept,
                "time": iso(now),
                "refundedBy": "AMAZON",
                "amazonReason": reason,
            }
        )
    return records


def _refund_id(order_id: str, item_id: str, number: int, now: datetime) -> str:
    digest = hashlib.sha256(f"{order_id}|{item_id}|{number}|{iso(now)}".encode()).hexdigest()
    return f"AMZ-{digest[:16]}"


# -- listFinancialEventsByOrderId (v0) ----------------------------------------------------------


def _currency_v0(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"CurrencyCode": currency, "CurrencyAmount": float(amount)}


def _charge_amount(component: dict[str, Any]) -> Decimal:
    """The seller's account moves the other way from the buyer: a refund is negative, a
    restocking fee or return label kept from it positive."""
    return -Decimal(component["amount"])


def refund_event(refund: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """One refund as a v0 ShipmentEvent (RefundEventList / GuaranteeClaimEventList)."""
    item: dict[str, Any] = next(
        (i for i in order.get("orderItems", []) if i["orderItemId"] == refund["orderItemId"]), {}
    )
    adjustment: dict[str, Any] = {
        "OrderItemId": refund["orderItemId"],
        "OrderAdjustmentItemId": refund["refundId"],
        "QuantityShipped": int(item.get("quantityOrdered", 1)),
        "ItemChargeAdjustmentList": [
            {
                "ChargeType": CHARGE_TYPES.get(c["type"], c["type"]),
                "ChargeAmount": _currency_v0(_charge_amount(c), c["currencyCode"]),
            }
            for c in refund["components"]
        ],
    }
    sku = item.get("product", {}).get("sellerSku")
    if sku:
        adjustment["SellerSKU"] = sku
    event: dict[str, Any] = {
        "AmazonOrderId": refund["orderId"],
        "PostedDate": refund["time"],
        "ShipmentItemAdjustmentList": [adjustment],
    }
    name = MARKETPLACE_NAMES.get(marketplace_of(order) or "")
    if name:
        event["MarketplaceName"] = name
    return event


def financial_events(refunds: list[dict[str, Any]], order: dict[str, Any]) -> dict[str, Any]:
    """The FinancialEvents of an order: its refunds (A-to-z claims apart)."""
    mine = [r for r in refunds if r["orderId"] == order["orderId"]]
    claims = [r for r in mine if r.get("amazonReason") == "A-to-z claim"]
    plain = [r for r in mine if r.get("amazonReason") != "A-to-z claim"]
    return {
        "ShipmentEventList": [],
        "RefundEventList": [refund_event(r, order) for r in plain],
        "GuaranteeClaimEventList": [refund_event(r, order) for r in claims],
        "ChargebackEventList": [],
    }


def _page_size(request: Request) -> int:
    raw = request.query_params.get("MaxResultsPerPage", "100")
    try:
        size = int(raw)
    except ValueError:
        raise invalid_input("MaxResultsPerPage must be an integer between 1 and 100.") from None
    if not 1 <= size <= 100:
        raise invalid_input("MaxResultsPerPage must be between 1 and 100.")
    return size


def list_financial_events_by_order(
    refunds: list[dict[str, Any]], orders: dict[str, dict[str, Any]], order_id: str
) -> dict[str, Any]:
    """listFinancialEventsByOrderId's answer. An order Amazon does not know has no events (an
    empty list, as Amazon answers for orders with none)."""
    if not ORDER_ID.match(order_id):
        raise invalid_input("Bad order ID provided.", "An Amazon order id has the form 3-7-7.")
    order = orders.get(order_id)
    if order is None:
        return {"payload": {"FinancialEvents": {}}}
    return {"payload": {"FinancialEvents": financial_events(refunds, order)}}


# -- listTransactions (2024-06-19) ----------------------------------------------------------------


def _currency_2024(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"currencyCode": currency, "currencyAmount": float(amount)}


def refund_transaction(refund: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    """One refund as a 2024-06-19 Transaction."""
    currency = refund["components"][0]["currencyCode"]
    total = sum((_charge_amount(c) for c in refund["components"]), Decimal(0))
    marketplace_id = marketplace_of(order) or ""
    return {
        "sellingPartnerMetadata": {
            "accountType": "Standard Orders",
            "marketplaceId": marketplace_id,
        },
        "relatedIdentifiers": [
            {"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": refund["orderId"]},
            {"relatedIdentifierName": "REFUND_ID", "relatedIdentifierValue": refund["refundId"]},
        ],
        "transactionType": "Refund",
        "transactionId": refund["refundId"],
        "transactionStatus": "RELEASED",
        "description": "Refund Order",
        "postedDate": refund["time"],
        "totalAmount": _currency_2024(total, currency),
        "marketplaceDetails": {
            "marketplaceId": marketplace_id,
            "marketplaceName": MARKETPLACE_NAMES.get(marketplace_id, ""),
        },
        "items": [
            {
                "description": refund["orderItemId"],
                "relatedIdentifiers": [
                    {
                        "itemRelatedIdentifierName": "ORDER_ADJUSTMENT_ITEM_ID",
                        "itemRelatedIdentifierValue": refund["refundId"],
                    }
                ],
                "totalAmount": _currency_2024(total, currency),
                "breakdowns": [
                    {
                        "breakdownType": CHARGE_TYPES.get(c["type"], c["type"]),
                        "breakdownAmount": _currency_2024(_charge_amount(c), currency),
                    }
                    for c in refund["components"]
                ],
            }
        ],
        "breakdowns": [
            {"breakdownType": "Product Charges", "breakdownAmount": _currency_2024(total, currency)}
        ],
    }


def list_transactions(
    request: Request, refunds: list[dict[str, Any]], orders: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """listTransactions: the refund transactions of one order (``relatedIdentifierName=ORDER_ID``)
    or of a posted-date window."""
    name = request.query_params.get("relatedIdentifierName")
    value = request.query_params.get("relatedIdentifierValue")
    after_raw = request.query_params.get("postedAfter")
    if name is None and after_raw is None:
        raise invalid_input("postedAfter is required when no related identifier is given.")
    if name is not None and name not in ("ORDER_ID", "FINANCIAL_EVENT_GROUP_ID"):
        raise invalid_input("relatedIdentifierName must be ORDER_ID or FINANCIAL_EVENT_GROUP_ID.")
    if name is not None and not value:
        raise invalid_input("relatedIdentifierValue is required with relatedIdentifierName.")
    try:
        after = parse_time(after_raw) if after_raw else None
        before_raw = request.query_params.get("postedBefore")
        before = parse_time(before_raw) if before_raw else None
    except ValueError:
        raise invalid_input("postedAfter and postedBefore must be ISO 8601 date-times.") from None
    marketplace_id = request.query_params.get("marketplaceId")
    found = []
    for refund in refunds:
        order = orders.get(refund["orderId"])
        if order is None or name == "FINANCIAL_EVENT_GROUP_ID":
            continue
        if name == "ORDER_ID" and refund["orderId"] != value:
            continue
        posted = parse_time(refund["time"])
        if (after and posted < after) or (before and posted >= before):
            continue
        if marketplace_id and marketplace_of(order) != marketplace_id:
            continue
        found.append(refund_transaction(refund, order))
    return {"payload": {"transactions": found}}


def _in_region(request: Request, orders: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The orders whose money this call's region shows (docs/emulator.md, "Regions")."""
    return {k: o for k, o in orders.items() if visible(request, [marketplace_of(o)])}


def router() -> APIRouter:
    """The Finances API routes and the control route that makes Amazon refund."""
    routes = APIRouter()

    @routes.get("/finances/v0/orders/{order_id}/financialEvents")
    async def events_route(request: Request, order_id: str) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            _page_size(request)
            state = emulator.state
            # Per region, as orders are: another region's order is unknown here (no events).
            order = state.orders.get(order_id)
            orders = _in_region(request, {order_id: order} if order is not None else {})
            return 200, list_financial_events_by_order(state.refunds, orders, order_id)

        return await sp_api_call(request, "listFinancialEventsByOrderId", operation)

    @routes.get("/finances/2024-06-19/transactions")
    async def transactions_route(request: Request) -> Response:
        emulator = emulator_of(request)

        def operation(now: datetime) -> tuple[int, dict[str, Any]]:
            state = emulator.state
            return 200, list_transactions(request, state.refunds, _in_region(request, state.orders))

        return await sp_api_call(request, "listTransactions", operation)

    @routes.post("/_emulator/orders/{order_id}/refunds")
    async def amazon_refunds(request: Request, order_id: str) -> JSONResponse:
        emulator, body = emulator_of(request), await read_json(request)
        with emulator.state.lock:
            now = emulator.now()
            emulator.settle(now)  # feeds due before this refund apply first
            order = emulator.state.orders.get(order_id)
            if order is None:
                return refused(404, f"No order {order_id} in the emulator.")
            try:
                records = parse_amazon_refund(body, order, emulator.state.refunds, now)
            except RefundRefused as problem:
                return refused(400, f"Amazon's refund refused: {problem}")
            emulator.state.refunds.extend(records)
            emulator.save()
        return JSONResponse({"refunds": records})

    return routes
