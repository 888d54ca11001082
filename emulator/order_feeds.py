"""What the order feeds do to the seller's orders when Amazon processes them.

- ``POST_ORDER_ACKNOWLEDGEMENT_DATA``: ``StatusCode=Failure`` cancels an order that has not shipped
  (PENDING or UNSHIPPED, merchant-fulfilled): the listed items, or all items when none is listed.
  A cancelled item keeps the buyer's ``cancellationRequest`` and gains
  ``cancellationExecution = {cancelledBy: MERCHANT, cancelReason: <the feed's CancelReason>}``:
  the seller carried the cancellation out, whoever asked for it (a buyer who cancels on their own
  shows ``cancelledBy: BUYER`` instead). When every item is cancelled the order becomes CANCELLED.
  ``StatusCode=Success`` only acknowledges the order.
- ``POST_PAYMENT_ADJUSTMENT_DATA``: ``OrderAdjustment`` messages record refunds per order item; the
  Principal refunded for an item, over all feeds, may not exceed its unit price times quantity.
  ``AdjustedItem/QuantityCancelled`` cancels units not shipped of a PARTIALLY_SHIPPED order
  (`units_to_cancel`: Amazon's documented way to cancel part of a multi-item order).
  Refunds do not change the Order (the Orders API has no refund field); they are listed by the
  control API at ``GET /_emulator/orders/{orderId}/refunds``.

Each message is checked completely before anything changes, so a failed message changes nothing
while the other messages of the feed still apply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree import ElementTree as ET

from emulator.clock import iso
from emulator.feed_xml import (
    FeedMessage,
    MessageInvalid,
    one_of,
    only_children,
    optional_text,
    parse_envelope,
    required_text,
)
from emulator.marketplaces import decimals_of
from emulator.orders import fulfillment_status, marketplace_of
from emulator.processing_report import (
    DATA_NOT_ACCEPTED,
    INTERNAL_ERROR,
    INTERNAL_ERROR_DESCRIPTION,
)
from emulator.state import FeedResult

CANCEL_REASONS = (
    "BuyerCanceled",
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
    "GeneralAdjustment",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "CustomerReturn",
    "MerchandiseNotReceived",
)
ADJUSTMENT_REASONS = (
    "NoInventory",
    "CustomerReturn",
    "GeneralAdjustment",
    "CouldNotShip",
    "DifferentItem",
    "Abandoned",
    "CustomerCancel",
    "PriceError",
    "ProductOutofStock",
    "CustomerAddressIncorrect",
    "Exchange",
    "Other",
    "CarrierCreditDecision",
    "RiskAssessmentInformationNotValid",
    "CarrierCoverageFailure",
    "TransactionRecord",
    "Undeliverable",
    "RefusedDelivery",
)
COMPONENT_TYPES = (
    "Principal",
    "Shipping",
    "Tax",
    "ShippingTax",
    "RestockingFee",
    "RestockingFeeTax",
    "GiftWrap",
    "GiftWrapTax",
    "Surcharge",
    "ReturnShipping",
    "Goodwill",
    "ExportCharge",
    "COD",
    "CODTax",
    "Other",
    "FreeReplacementReturnShipping",
)
#: Orders a seller may still cancel: nothing has left the warehouse.
CANCELLABLE_STATUSES = ("PENDING", "UNSHIPPED")
#: The XML MessageType each supported feed type carries.
MESSAGE_TYPES = {
    "POST_ORDER_ACKNOWLEDGEMENT_DATA": "OrderAcknowledgement",
    "POST_PAYMENT_ADJUSTMENT_DATA": "OrderAdjustment",
}


@dataclass
class FeedContext:
    """What a feed is applied to: the account's orders and refunds, at the feed's finishing time."""

    feed_id: str
    marketplace_ids: list[str]
    orders: dict[str, dict[str, Any]]
    refunds: list[dict[str, Any]]
    now: datetime

    def order(self, order_id: str) -> dict[str, Any]:
        """The order the message names, if it exists in one of the feed's marketplaces."""
        order = self.orders.get(order_id)
        if order is None or marketplace_of(order) not in self.marketplace_ids:
            raise MessageInvalid(
                f"Order {order_id} cannot be found in marketplace(s) "
                f"{', '.join(self.marketplace_ids)}. Enter the correct order ID and resubmit.",
                DATA_NOT_ACCEPTED,
            )
        return order


def apply_feed(
    feed_type: str,
    document: str,
    context: FeedContext,
    fails: Callable[[int], bool] = lambda message_id: False,
) -> list[FeedResult]:
    """Process every message of a feed document; raises FeedRejected if the document is unusable.

    ``fails(message_id)`` marks messages that fail by an injected internal error (fault modes):
    they get an error result and are not applied.
    """
    handler = HANDLERS[feed_type]
    results: list[FeedResult] = []
    for message in parse_envelope(document, MESSAGE_TYPES[feed_type]):
        if isinstance(message, MessageInvalid):
            results.append(FeedResult(0, None, "Error", message.code, message.description))
            continue
        if fails(message.message_id):
            order_id = (message.element.findtext(".//AmazonOrderID") or "").strip() or None
            results.append(
                FeedResult(
                    message.message_id,
                    order_id,
                    "Error",
                    INTERNAL_ERROR,
                    INTERNAL_ERROR_DESCRIPTION,
                )
            )
            continue
        try:
            results.append(handler(message, context))
        except MessageInvalid as problem:
            order_id = (message.element.findtext(".//AmazonOrderID") or "").strip() or None
            results.append(
                FeedResult(message.message_id, order_id, "Error", problem.code, problem.description)
            )
    return results


# -- POST_ORDER_ACKNOWLEDGEMENT_DATA ------------------------------------------------------------


def acknowledge_order(message: FeedMessage, context: FeedContext) -> FeedResult:
    """One OrderAcknowledgement: acknowledge (Success) or cancel (Failure) an order."""
    only_children(message.element, {"MessageID", "OperationType", "OrderAcknowledgement"})
    acknowledgement = message.element.find("OrderAcknowledgement")
    if acknowledgement is None:
        raise MessageInvalid("The message has no <OrderAcknowledgement>.")
    only_children(acknowledgement, {"AmazonOrderID", "MerchantOrderID", "StatusCode", "Item"})
    order_id = required_text(acknowledgement, "AmazonOrderID")
    status_code = one_of(
        required_text(acknowledgement, "StatusCode"), ("Success", "Failure"), "StatusCode"
    )
    requested = [_cancel_line(item) for item in acknowledgement.findall("Item")]
    codes = [code for code, _ in requested]
    if len(set(codes)) != len(codes):
        raise MessageInvalid("An AmazonOrderItemCode is listed twice in this message.")
    order = context.order(order_id)
    if status_code == "Success":
        return FeedResult(message.message_id, order_id, "Success", None, "Order acknowledged.")
    cancelled = cancel_items(order, requested, context.now)
    return FeedResult(
        message.message_id,
        order_id,
        "Success",
        None,
        f"Cancelled {cancelled} item(s); order is {fulfillment_status(order)}.",
    )


def _cancel_line(item: ET.Element) -> tuple[str, str | None]:
    only_children(item, {"AmazonOrderItemCode", "MerchantOrderItemID", "CancelReason"})
    code = required_text(item, "AmazonOrderItemCode")
    reason = optional_text(item, "CancelReason")
    if reason is not None:
        one_of(reason, CANCEL_REASONS, "CancelReason")
    return code, reason


def is_cancelled(item: dict[str, Any]) -> bool:
    """Has this order item been cancelled already?"""
    return "cancellationExecution" in item.get("cancellation", {})


def cancel_items(
    order: dict[str, Any], requested: list[tuple[str, str | None]], now: datetime
) -> int:
    """Cancel the requested items (all open items if none listed); returns how many."""
    order_id = order["orderId"]
    if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON":
        raise MessageInvalid(
            f"Order {order_id} is fulfilled by Amazon; the seller cannot cancel it with this feed.",
            DATA_NOT_ACCEPTED,
        )
    status = fulfillment_status(order)
    if status not in CANCELLABLE_STATUSES:
        raise MessageInvalid(
            f"Order {order_id} is {status or 'without a fulfillment status'} and can no longer be "
            "cancelled.",
            DATA_NOT_ACCEPTED,
        )
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    targets: list[tuple[dict[str, Any], str | None]] = []
    for code, reason in requested:
        item = items.get(code)
        if item is None:
            raise MessageInvalid(
                f"Order {order_id} has no item with AmazonOrderItemCode {code}.", DATA_NOT_ACCEPTED
            )
        if is_cancelled(item):
            raise MessageInvalid(
                f"Item {code} of order {order_id} is already cancelled.", DATA_NOT_ACCEPTED
            )
        targets.append((item, reason))
    if not requested:
        targets = [(item, None) for item in items.values() if not is_cancelled(item)]
    for item, reason in targets:
        execution = {"cancelledBy": "MERCHANT"}
        if reason:
            execution["cancelReason"] = reason
        item.setdefault("cancellation", {})["cancellationExecution"] = execution
    if all(is_cancelled(item) for item in items.values()):
        order.setdefault("fulfillment", {})["fulfillmentStatus"] = "CANCELLED"
    order["lastUpdatedTime"] = iso(now)
    return len(targets)


def units_to_cancel(adjustment: ET.Element, order: dict[str, Any]) -> dict[str, int]:
    """The units an OrderAdjustment cancels (`AdjustedItem/QuantityCancelled`), checked before
    anything changes.

    Amazon documents one way to cancel part of a multi-item order: "Ship and confirm all the
    order items that you can fulfill", then "use an Order Adjustment Feed to submit a refund for
    the order items that you cannot fulfill" with Quantity Cancelled and reason NoInventory or
    CustomerCancel (Seller Central help 200198080,
    https://sellercentral.amazon.com/gp/help/external/200198080); a whole order is cancelled
    with the order acknowledgement feed (help G200387280). So the emulator cancels units only of
    a PARTIALLY_SHIPPED order, and only units not shipped. Refusing a QuantityCancelled on an
    order nothing of which has shipped is inferred from those steps and from a seller's report of
    Amazon answering 18028 to one (https://c-reactjs.developreference.com/article/18085900/);
    Amazon's exact check is not documented (docs/emulator.md)."""
    wanted: dict[str, int] = {}
    for element in adjustment.findall("AdjustedItem"):
        text = optional_text(element, "QuantityCancelled")
        if text is None:
            continue
        if not text.isdigit() or int(text) < 1:  # xsd:positiveInteger
            raise MessageInvalid(f"QuantityCancelled {text!r} is not a positive integer.")
        code = required_text(element, "AmazonOrderItemCode")
        wanted[code] = wanted.get(code, 0) + int(text)
    if not wanted:
        return wanted
    order_id = order["orderId"]
    status = fulfillment_status(order)
    if order.get("fulfillment", {}).get("fulfilledBy") == "AMAZON" or status != "PARTIALLY_SHIPPED":
        raise MessageInvalid(
            f"{INCOMPLETE_OR_INVALID} Order {order_id} is {status or 'without a status'}: units "
            "are cancelled by an order adjustment only once the items that can be fulfilled "
            "have shipped; a whole unshipped order is cancelled with the order acknowledgement "
            "feed.",
            DATA_NOT_ACCEPTED,
        )
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    for code, quantity in wanted.items():
        unshipped = _unshipped(items[code]) if code in items else 0
        if quantity > unshipped:
            raise MessageInvalid(
                f"{INCOMPLETE_OR_INVALID} Item {code} of order {order_id} has {unshipped} unit(s) "
                f"not shipped; QuantityCancelled is {quantity}.",
                DATA_NOT_ACCEPTED,
            )
    return wanted


def _unshipped(item: dict[str, Any]) -> int:
    fulfillment = item.get("fulfillment", {})
    if "quantityUnfulfilled" in fulfillment:
        return int(fulfillment["quantityUnfulfilled"])
    return int(item.get("quantityOrdered", 0)) - int(fulfillment.get("quantityFulfilled", 0))


def cancel_units(order: dict[str, Any], wanted: dict[str, int], now: datetime) -> None:
    """Take the cancelled units off what is left to ship (`units_to_cancel` checked them). An
    item none of which shipped is cancelled by the merchant; when nothing is left to ship the
    order is SHIPPED (or CANCELLED if nothing shipped at all)."""
    if not wanted:
        return
    items = order["orderItems"]
    for item in items:
        quantity = wanted.get(item["orderItemId"])
        if quantity is None:
            continue
        fulfillment = item.setdefault("fulfillment", {})
        fulfillment["quantityUnfulfilled"] = _unshipped(item) - quantity
        if fulfillment["quantityUnfulfilled"] == 0 and not fulfillment.get("quantityFulfilled"):
            item.setdefault("cancellation", {})["cancellationExecution"] = {
                "cancelledBy": "MERCHANT"
            }
    open_items = [i for i in items if not is_cancelled(i)]
    if all(_unshipped(i) == 0 for i in open_items):
        shipped = any(i.get("fulfillment", {}).get("quantityFulfilled") for i in open_items)
        order.setdefault("fulfillment", {})["fulfillmentStatus"] = (
            "SHIPPED" if shipped else "CANCELLED"
        )
    order["lastUpdatedTime"] = iso(now)


# -- POST_PAYMENT_ADJUSTMENT_DATA ---------------------------------------------------------------

#: Amazon's words for result code 18028 (an order adjustment report quoted at
#: https://c-reactjs.developreference.com/article/18085900/).
INCOMPLETE_OR_INVALID = "The data you submitted with this item is incomplete or invalid."


@dataclass(frozen=True)
class Component:
    """One refunded amount of an item: its type (Principal, Shipping, Tax, ...) and money."""

    type: str
    amount: Decimal
    currency: str


def adjust_order(message: FeedMessage, context: FeedContext) -> FeedResult:
    """One OrderAdjustment: record a refund on one or more items of an order."""
    only_children(message.element, {"MessageID", "OperationType", "OrderAdjustment"})
    adjustment = message.element.find("OrderAdjustment")
    if adjustment is None:
        raise MessageInvalid("The message has no <OrderAdjustment>.")
    only_children(adjustment, {"AmazonOrderID", "MerchantOrderID", "ActionType", "AdjustedItem"})
    order_id = required_text(adjustment, "AmazonOrderID")
    action = one_of(
        optional_text(adjustment, "ActionType") or "Refund", ("Refund", "Cancel"), "ActionType"
    )
    lines = [_adjusted_item(item) for item in adjustment.findall("AdjustedItem")]
    if not lines:
        raise MessageInvalid("<OrderAdjustment> has no <AdjustedItem>.")
    order = context.order(order_id)
    items = {item["orderItemId"]: item for item in order["orderItems"]}
    refunded_now: dict[tuple[str, str], Decimal] = {}
    for item_id, _, components in lines:
        item = items.get(item_id)
        if item is None:
            raise MessageInvalid(
                f"Order {order_id} has no item with AmazonOrderItemCode {item_id}.",
                DATA_NOT_ACCEPTED,
            )
        _check_refund_fits(order_id, item, components, context, refunded_now)
    cancelled = units_to_cancel(adjustment, order)
    for index, (item_id, reason, components) in enumerate(lines, start=1):
        context.refunds.append(
            {
                "refundId": f"{context.feed_id}-{message.message_id}-{index}",
                "feedId": context.feed_id,
                "messageId": message.message_id,
                "orderId": order_id,
                "orderItemId": item_id,
                "actionType": action,
                "adjustmentReason": reason,
                "components": [
                    {"type": c.type, "amount": format(c.amount, "f"), "currencyCode": c.currency}
                    for c in components
                ],
                "time": iso(context.now),
                "refundedBy": "SELLER",  # Amazon's own refunds: emulator.finances
            }
        )
    cancel_units(order, cancelled, context.now)
    return FeedResult(
        message.message_id,
        order_id,
        "Success",
        None,
        f"Recorded {action.lower()} on {len(lines)} item(s).",
    )


def _adjusted_item(item: ET.Element) -> tuple[str, str, list[Component]]:
    only_children(
        item,
        {
            "AmazonOrderItemCode",
            "MerchantOrderItemID",
            "MerchantAdjustmentItemID",
            "AdjustmentReason",
            "DirectPaymentAdjustments",
            "ItemPriceAdjustments",
            "PromotionAdjustments",
            "QuantityCancelled",
        },
    )
    item_id = required_text(item, "AmazonOrderItemCode")
    reason = one_of(required_text(item, "AdjustmentReason"), ADJUSTMENT_REASONS, "AdjustmentReason")
    prices = item.find("ItemPriceAdjustments")
    if prices is None or not prices.findall("Component"):
        raise MessageInvalid(f"<AdjustedItem> {item_id} has no <ItemPriceAdjustments>/<Component>.")
    return item_id, reason, [_component(element) for element in prices.findall("Component")]


def _component(element: ET.Element) -> Component:
    only_children(element, {"Type", "Amount"})
    kind = one_of(required_text(element, "Type"), COMPONENT_TYPES, "Component Type")
    amount_element = element.find("Amount")
    if amount_element is None or not (amount_element.text or "").strip():
        raise MessageInvalid(f"Component {kind} has no <Amount>.")
    currency = amount_element.get("currency")
    if not currency:
        raise MessageInvalid(f"<Amount> of component {kind} has no currency attribute.")
    try:
        amount = Decimal((amount_element.text or "").strip())
    except InvalidOperation:
        raise MessageInvalid(f"Amount {amount_element.text!r} of {kind} is not a number.") from None
    _check_decimals(amount, currency, kind)
    # A restocking fee is kept from the refund, so it may be negative; refunds themselves are not.
    if amount < 0 and kind != "RestockingFee":
        raise MessageInvalid(f"Amount of {kind} must not be negative.")
    return Component(kind, amount, currency)


#: Decimals an amount may have: the currency's minor unit (ISO 4217: 2; none for yen). No
#: Amazon page found states the XSD's limit; an amount off the minor unit is refused here.
def _check_decimals(amount: Decimal, currency: str, kind: str) -> None:
    """Refuse 12.345 USD or 1500.5 JPY: Amazon checks amounts against its XSD and reports a
    facet violation in the schema validator's words ("Value '-5' is not facet-valid with respect
    to minInclusive '0'", quoted at http://forum.nitrosell.com/t/amazon-504-amazon-error-messages-
    and-what-they-mean/80). Amazon's exact code for an amount with extra decimals is not
    documented, so the message gets the emulator's per-message schema error (MessageInvalid)."""
    exponent = amount.normalize().as_tuple().exponent
    digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    allowed = decimals_of(currency)
    if digits > allowed:
        raise MessageInvalid(
            f"cvc-fractionDigits-valid: Value '{amount}' of {kind} has {digits} fraction digits,"
            f" but the number of fraction digits has been limited to {allowed} for {currency}."
        )


#: Amazon's words for a refund above what the buyer paid minus earlier refunds (Seller Central help
#: 25281; help 25161: each component's balance, e.g. Principal, is what was paid for it minus
#: every refund of it). The result code stays 18028 (see docs/emulator.md, "Processing report").
REFUND_EXCEEDS = "The requested refund amount exceeds the amount that can be refunded."


def _check_refund_fits(
    order_id: str,
    item: dict[str, Any],
    components: list[Component],
    context: FeedContext,
    refunded_now: dict[tuple[str, str], Decimal],
) -> None:
    """A refund must be in the item's currency (its minor unit is checked when the amount is
    read, `_check_decimals`), and each component it gives back
    within what the buyer paid for it minus every refund of it so far, the seller's and Amazon's
    (the Finances helpers Amazon's own refunds are checked with)."""
    # Imported here: emulator.finances imports the control API, which imports the feeds.
    from emulator.finances import paid_by_component, refunded_so_far

    item_id = item["orderItemId"]
    currency, paid = paid_by_component(item)
    if not currency:
        raise MessageInvalid(
            f"Item {item_id} of order {order_id} has no price to refund.", DATA_NOT_ACCEPTED
        )
    before = refunded_so_far(context.refunds, order_id, item_id)
    for component in components:
        if component.currency != currency:
            raise MessageInvalid(
                f"Currency {component.currency} does not match the order's currency {currency}.",
                DATA_NOT_ACCEPTED,
            )
    for component in components:
        if component.amount <= 0:
            continue  # a restocking fee is kept from the buyer, not given back
        key = (item_id, component.type)
        total = before.get(component.type, Decimal(0)) + refunded_now.get(key, Decimal(0))
        total += component.amount
        limit = paid.get(component.type, Decimal(0))
        if total > limit:
            raise MessageInvalid(
                f"{REFUND_EXCEEDS} The {component.type} refunded for item {item_id} of order "
                f"{order_id} would be {total} {currency}, more than the {limit} paid for it.",
                DATA_NOT_ACCEPTED,
            )
        refunded_now[key] = refunded_now.get(key, Decimal(0)) + component.amount


HANDLERS: dict[str, Callable[[FeedMessage, FeedContext], FeedResult]] = {
    "POST_ORDER_ACKNOWLEDGEMENT_DATA": acknowledge_order,
    "POST_PAYMENT_ADJUSTMENT_DATA": adjust_order,
}
