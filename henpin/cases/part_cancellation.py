"""A buyer's cancel request for only some items of a multi-item order: what Amazon documents,
the question the operator answers, and the refund that cancels the items.

Amazon's documented way (Seller Central help 200198080, "Cancel an item, order, or multiple
orders", https://sellercentral.amazon.com/gp/help/external/200198080): "To cancel or refund
part of a multi-item order: ship and confirm all the order items that you can fulfill; use an
Order Adjustment Feed to submit a refund for the order items that you cannot fulfill", with
Quantity Cancelled and the reason NoInventory or CustomerCancel. The order acknowledgement feed
is for a whole order ("To cancel an entire order, you must use the Order Acknowledgement feed",
help G200387280). What is not verified (docs/emulator.md, "Partial cancellation"): whether
Amazon refuses the adjustment before the rest has shipped (a seller reports 18028), and whether
a CustomerCancel cancellation counts against the seller's cancellation rate as BuyerCanceled
does not.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.domain import (
    AdjustmentReason,
    FulfillmentStatus,
    Order,
    OrderItem,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.marketplaces import MARKETPLACES
from henpin.policy.proposals import units_value
from henpin.questions import Question, buyer_reason_line, line, order_facts


class PartCancelDecision(OperatorAnswer):
    """The operator's answer when the buyer asked to cancel only some items."""

    choice: Literal["others_shipped", "keep_order", "escalate"]

    labels: ClassVar[dict[str, str]] = {
        "others_shipped": "I shipped and confirmed the other items: cancel the ones the buyer "
        "asked for (order adjustment, CustomerCancel)",
        "keep_order": "Keep the whole order and ship it (the buyer withdrew the request, or you "
        "agreed with them)",
        "escalate": "Escalate to the owner; Henpin closes the case without acting",
    }


def open_items(order: Order) -> list[OrderItem]:
    """The items not cancelled yet."""
    return [i for i in order.items if i.cancelled_by is None]


def requested_part(order: Order) -> list[OrderItem]:
    """The items the buyer asked to cancel when they are only part of the order's open items;
    empty when the request covers the whole order (or names no item)."""
    still_open = open_items(order)
    asked = [i for i in still_open if i.cancel_requested_by_buyer]
    return asked if asked and len(asked) < len(still_open) else []


def unshipped_units(item: OrderItem, order: Order) -> int:
    """Units of the item not shipped yet; when Amazon does not say, all of them while the order
    has shipped nothing, none once it has shipped."""
    if item.quantity_unshipped is not None:
        return item.quantity_unshipped
    nothing_shipped = order.fulfillment_status in (
        FulfillmentStatus.PENDING,
        FulfillmentStatus.UNSHIPPED,
    )
    return item.quantity if nothing_shipped else 0


def part_cancellation(order: Order) -> Refund | None:
    """The refund that cancels the requested items' unshipped units, the item price of those
    units (nothing was shipped of them), reason CustomerCancel, with QuantityCancelled. None
    when none of them is left unshipped or their price is unknown."""
    lines: list[RefundItem] = []
    for item in requested_part(order):
        units = unshipped_units(item, order)
        price = units_value(item, units) if units > 0 else None
        if price is None or price.amount <= 0:
            continue
        lines.append(
            RefundItem(
                order_item_id=item.order_item_id,
                reason=AdjustmentReason.CUSTOMER_CANCEL,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=price.amount, currency=price.currency
                    )
                ],
                quantity_cancelled=units,
            )
        )
    return Refund(order_id=order.order_id, items=lines) if lines else None


def part_cancel_question(order: Order, *, deadline_hours: float, round_: int) -> Question:
    """Ask the operator to ship the rest first (`round_`: the how-many-th time, when the order
    had still shipped nothing at the last answer)."""
    asked = "; ".join(
        f"{i.quantity} × {i.sku or i.asin or i.order_item_id}" for i in requested_part(order)
    )
    m = MARKETPLACES.get(order.marketplace_id)
    still = (
        [line("part-nothing-shipped", status=order.fulfillment_status.value)] if round_ > 1 else []
    )
    return Question(
        step="part-cancel" if round_ == 1 else f"part-cancel-round{round_}",
        title_code="part-cancel",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *order_facts(order),
            line("part-asked", asked=asked),
            buyer_reason_line(order),
            line("part-how"),
            *still,
        ],
        choices=list(PartCancelDecision.labels),
        labels=PartCancelDecision.labels,
        deadline_hours=deadline_hours,
        timeout_choice="escalate",
        recommended="others_shipped",
        links={"Seller Central order": m.order_page(order.order_id)} if m else {},
    )
