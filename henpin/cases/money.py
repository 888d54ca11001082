"""Money of refunds: build one, total it, compare it with what was paid."""

from __future__ import annotations

from decimal import Decimal

from henpin.domain import (
    AdjustmentReason,
    Money,
    Order,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)


def items_price_refund(order: Order, reason: AdjustmentReason) -> Refund:
    """Refund every item's price (Principal) of the order, nothing else (shipping is kept)."""
    items = [
        RefundItem(
            order_item_id=i.order_item_id,
            reason=reason,
            components=[
                RefundComponent(
                    type=PriceComponent.PRINCIPAL,
                    amount=i.value.amount,
                    currency=i.value.currency,
                )
            ],
        )
        for i in order.items
        if i.value is not None and i.value.amount > 0
    ]
    if not items:
        raise ValueError(f"order {order.order_id} has no priced items to refund")
    return Refund(order_id=order.order_id, items=items)


def amount_refund(order: Order, amount: Decimal, reason: AdjustmentReason) -> Refund:
    """Refund a given amount as Principal, spread over the items in order (never more than an
    item's price on one item)."""
    left = amount
    items = []
    for i in order.items:
        if left <= 0 or i.value is None:
            continue
        part = min(left, i.value.amount)
        items.append(
            RefundItem(
                order_item_id=i.order_item_id,
                reason=reason,
                components=[
                    RefundComponent(
                        type=PriceComponent.PRINCIPAL, amount=part, currency=i.value.currency
                    )
                ],
            )
        )
        left -= part
    if not items or left > 0:
        raise ValueError(f"{amount} is more than what was paid for the items of {order.order_id}")
    return Refund(order_id=order.order_id, items=items)


def refund_total(refund: Refund) -> Money:
    components = [c for i in refund.items for c in i.components]
    return Money(
        amount=sum((c.amount for c in components), Decimal(0)), currency=components[0].currency
    )


def is_full_refund(order: Order, refund: Refund) -> bool:
    value = order.value
    return value is not None and refund_total(refund).amount >= value.amount
