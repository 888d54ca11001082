"""What the order feeds do to the seller's orders when Amazon processes them.

- ``POST_ORDER_ACKNOWLEDGEMENT_DATA``: ``StatusCode=Failure`` cancels an order that has not shipped
  (PENDING or UNSHIPPED, merchant-fulfilled): the listed items, or all items when none is listed.
  A cancelled item keeps the buyer's ``cancellationRequest`` and gains
  ``cancellationExecution = {cancelledBy: MERCHANT, cancelReason: <the feed's CancelReason>}``:
  the seller carried the cancellation out, whoever asked for it (a buyer who cancels on their own
  shows ``cancelledBy: BUYER`` instead). When every item is cancelled the order becomes CANCELLED.
  ``StatusCode=Success`` only acknowledges the order.
- ``POST_PAYMENT_ADJUSTMENT_DATA``: ``OrderAdjustment`` messages record refunds per order item.
  Over all refunds of an item (the seller's and Amazon's), each component may not exceed what the
  buyer paid for it (Principal: unit price times quantity; Shipping, Tax, GiftWrap: the item's
  proceeds breakdown), each promotion adjustment (``PromotionAdjustments``, negative, Type
  Principal or Shipping) may not give back more of a discount than the item's proceeds DISCOUNT
  shows for that part, and the item's net refund (components plus promotion adjustments) may not
  exceed what the buyer paid for it in all: a refund of the full price to a buyer who had a
  promotion is refused. ``AdjustedItem/QuantityCancelled`` cancels units not shipped of a
  PARTIALLY_SHIPPED order (`units_to_cancel`: Amazon's documented way to cancel part of a
  multi-item order). Refunds do not change the Order (the Orders API has no refund field);
  they are listed by the control API at ``GET /_emulator/orders/{orderId}/refunds`` (a record's
  ``promotions`` lists its promotion adjustments).

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
#: ``PromotionAdjustments/Component/Type``: the XSD's PromotionApplicationType (amzn-base.xsd).
PROMOTION_TYPES = ("Principal", "Shipping")
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
    for item_id, _, components, promotions in lines:
        item = items.get(item_id)
        if item is None:
            raise MessageInvalid(
                f"Order {order_id} has no item with AmazonOrderItemCode {item_id}.",
                DATA_NOT_ACCEPTED,
            )
        _check_refund_fits(order_id, item, components, context, refunded_now, promotions)
    cancelled = units_to_cancel(adjustment, order)
    for index, (item_id, reason, components, promotions) in enumerate(lines, start=1):
        record = {
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
        if promotions:
            record["promotions"] = [
                {
                    "type": c.type.removeprefix("Promotion"),
                    "amount": format(c.amount, "f"),
                    "currencyCode": c.currency,
                }
                for c in promotions
            ]
        context.refunds.append(record)
    cancel_units(order, cancelled, context.now)
    return FeedResult(
        message.message_id,
        order_id,
        "Success",
        None,
        f"Recorded {action.lower()} on {len(lines)} item(s).",
    )


def _adjusted_item(item: ET.Element) -> tuple[str, str, list[Component], list[Component]]:
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
    only_children(prices, {"Component"})
    components = [_component(element) for element in prices.findall("Component")]
    promotions = [
        _component(element, promotion=True)
        for block in item.findall("PromotionAdjustments")
        for element in _promotion_components(block, item_id)
    ]
    return item_id, reason, components, promotions


def _promotion_components(block: ET.Element, item_id: str) -> list[ET.Element]:
    """A ``PromotionAdjustments`` block: optional PromotionClaimCode and MerchantPromotionID,
    then one or more Components (OrderAdjustment.xsd)."""
    only_children(block, {"PromotionClaimCode", "MerchantPromotionID", "Component"})
    found = block.findall("Component")
    if not found:
        raise MessageInvalid(f"<PromotionAdjustments> of item {item_id} has no <Component>.")
    return found


def _component(element: ET.Element, *, promotion: bool = False) -> Component:
    only_children(element, {"Type", "Amount"})
    allowed = PROMOTION_TYPES if promotion else COMPONENT_TYPES
    what = "PromotionAdjustments Component Type" if promotion else "Component Type"
    kind = one_of(required_text(element, "Type"), allowed, what)
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
    if promotion:
        # The promotion's share of a refund is the discount the buyer had, kept out of the
        # refund: negative, as sellers' adjustment feeds and Amazon's order reports write it.
        if amount > 0:
            raise MessageInvalid(f"Amount of promotion {kind} must not be positive.")
        return Component(f"Promotion{kind}", amount, currency)
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
    promotions: list[Component] | None = None,
) -> None:
    """A refund must be in the item's currency (its minor unit is checked when the amount is
    read, `_check_decimals`), and give back, per component, shipping and promotions included,
    no more than the buyer paid for it minus every refund of it so far, the seller's and
    Amazon's (the Finances helpers Amazon's own refunds are checked with):

    - each ItemPriceAdjustments component within what was paid for it;
    - each promotion adjustment (kept as ``PromotionPrincipal``/``PromotionShipping``) within
      the discount the item's proceeds show on that part;
    - the item's net refund (components, fees and promotions) within what the buyer paid in
      all (price, shipping, gift wrap and tax less discounts), so a buyer who had a promotion
      never gets the price before it."""
    # Imported here: emulator.finances imports the control API, which imports the feeds.
    from emulator.finances import paid_by_component, refunded_so_far

    item_id = item["orderItemId"]
    currency, paid = paid_by_component(item)
    if not currency:
        raise MessageInvalid(
            f"Item {item_id} of order {order_id} has no price to refund.", DATA_NOT_ACCEPTED
        )
    discounts = _discounts(item, currency)
    paid.update(discounts)
    before = refunded_so_far(context.refunds, order_id, item_id)
    before_promotions = _promotions_so_far(context.refunds, order_id, item_id)
    given = [*components, *(promotions or [])]
    for component in given:
        if component.currency != currency:
            raise MessageInvalid(
                f"Currency {component.currency} does not match the order's currency {currency}.",
                DATA_NOT_ACCEPTED,
            )
    for component in components:
        if component.amount <= 0:
            continue  # a restocking fee is kept from the buyer, not given back
        _within(order_id, item_id, component.type, component.amount, before, paid, refunded_now)
    for promotion in promotions or []:
        _within(
            order_id,
            item_id,
            promotion.type,
            -promotion.amount,
            before_promotions,
            paid,
            refunded_now,
            what="discount",
        )
    net_paid = sum((v for k, v in paid.items() if k not in discounts), Decimal(0)) - sum(
        discounts.values(), Decimal(0)
    )
    net_before = sum(before.values(), Decimal(0)) - sum(before_promotions.values(), Decimal(0))
    net_now = refunded_now.get((item_id, "net"), Decimal(0))
    net = net_before + net_now + sum((c.amount for c in given), Decimal(0))
    if net > net_paid:
        raise MessageInvalid(
            f"{REFUND_EXCEEDS} Item {item_id} of order {order_id} would have {net} {currency} "
            f"refunded in all, more than the {net_paid} {currency} the buyer paid for it"
            + (" after promotions." if discounts else "."),
            DATA_NOT_ACCEPTED,
        )
    refunded_now[(item_id, "net")] = net_now + sum((c.amount for c in given), Decimal(0))


def _within(
    order_id: str,
    item_id: str,
    kind: str,
    amount: Decimal,
    before: dict[str, Decimal],
    paid: dict[str, Decimal],
    refunded_now: dict[tuple[str, str], Decimal],
    what: str = "paid for it",
) -> None:
    """Refuse a component (or a promotion's size) that would exceed what there is of it."""
    key = (item_id, kind)
    total = before.get(kind, Decimal(0)) + refunded_now.get(key, Decimal(0)) + amount
    limit = paid.get(kind, Decimal(0))
    if total > limit:
        said = (
            f"more than the {limit} paid for it"
            if what == "paid for it"
            else (f"more than the {limit} discount the buyer had on it")
        )
        raise MessageInvalid(
            f"{REFUND_EXCEEDS} The {kind} refunded for item {item_id} of order {order_id} "
            f"would be {total}, {said}.",
            DATA_NOT_ACCEPTED,
        )
    refunded_now[key] = refunded_now.get(key, Decimal(0)) + amount


#: The proceeds DISCOUNT breakdown's subtypes and the promotion adjustment each one bounds.
DISCOUNT_SUBTYPES = {"ITEM": "PromotionPrincipal", "SHIPPING": "PromotionShipping"}


def _discounts(item: dict[str, Any], currency: str) -> dict[str, Decimal]:
    """The discounts the buyer had on the item, by promotion adjustment kind, from its proceeds
    (Orders API 2026-01-01: a DISCOUNT breakdown, split by ``detailedBreakdowns`` subtype ITEM
    or SHIPPING; without subtypes it is on the item's price). Sizes, whatever the sign."""
    found: dict[str, Decimal] = {}
    for line in item.get("proceeds", {}).get("breakdowns", []) or []:
        if line.get("type") != "DISCOUNT":
            continue
        details = [
            d
            for d in line.get("detailedBreakdowns", []) or []
            if d.get("subtype") in DISCOUNT_SUBTYPES
        ]
        parts = (
            [(DISCOUNT_SUBTYPES[d["subtype"]], d.get("value", {})) for d in details]
            if details
            else [("PromotionPrincipal", line.get("subtotal", {}))]
        )
        for kind, money in parts:
            if money.get("currencyCode") == currency:
                found[kind] = found.get(kind, Decimal(0)) + abs(Decimal(money["amount"]))
    return found


def _promotions_so_far(
    refunds: list[dict[str, Any]], order_id: str, item_id: str
) -> dict[str, Decimal]:
    """The discounts earlier refunds of the item kept out (sizes), by promotion kind."""
    totals: dict[str, Decimal] = {}
    for refund in refunds:
        if refund["orderId"] != order_id or refund["orderItemId"] != item_id:
            continue
        for promotion in refund.get("promotions", []):
            kind = f"Promotion{promotion['type']}"
            totals[kind] = totals.get(kind, Decimal(0)) - Decimal(promotion["amount"])
    return totals


HANDLERS: dict[str, Callable[[FeedMessage, FeedContext], FeedResult]] = {
    "POST_ORDER_ACKNOWLEDGEMENT_DATA": acknowledge_order,
    "POST_PAYMENT_ADJUSTMENT_DATA": adjust_order,
}
