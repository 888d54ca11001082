"""Refunds that policy proposes: their parts, their total, and the rule that gave them.

A proposal is what the operator is shown and confirms (or changes, with a reason); it becomes the
outbox's `Refund` only then. A component of zero is left out (Amazon refuses one), so a proposal
may hold nothing to refund; its total then says 0 and `refund()` says there is nothing to send.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from henpin.domain import (
    AdjustmentReason,
    Money,
    OrderItem,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.policy._base import Inputs, round_money


class RefundProposal(BaseModel):
    """The refund policy proposes for one order item (some or all of its units)."""

    model_config = ConfigDict(frozen=True)

    order_item_id: str
    quantity: int
    condition: str | None = None  # the returned item's condition, for a return
    adjustment_reason: AdjustmentReason
    components: list[RefundComponent]  # Principal, Shipping; RestockingFee is negative
    total: Money
    rule: str
    explanation: str  # plain words for the operator: how the total was reached
    inputs: Inputs

    def refund_item(self) -> RefundItem | None:
        """The payment adjustment line for this item; None when there is nothing to refund."""
        if self.total.amount <= 0 or not self.components:
            return None
        return RefundItem(
            order_item_id=self.order_item_id,
            reason=self.adjustment_reason,
            components=list(self.components),
        )


class OrderRefundProposal(BaseModel):
    """The refund policy proposes for a whole order: one line per item that has money to give."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    items: list[RefundProposal]
    total: Money | None  # None when no item has a known price
    rule: str
    explanation: str
    inputs: Inputs

    def refund(self) -> Refund | None:
        """The outbox payload; None when there is nothing to refund."""
        lines = [line for p in self.items if (line := p.refund_item()) is not None]
        return Refund(order_id=self.order_id, items=lines) if lines else None


def component(kind: PriceComponent, amount: Decimal, currency: str) -> RefundComponent | None:
    """A refund component rounded for its currency, or None when it rounds to nothing."""
    rounded = round_money(amount, currency)
    return None if rounded == 0 else RefundComponent(type=kind, amount=rounded, currency=currency)


def units_value(item: OrderItem, quantity: int) -> Money | None:
    """What the buyer paid for `quantity` units of the item (price only); None when unknown."""
    if item.unit_price is None:
        return None
    amount = item.unit_price.amount * quantity
    return Money(
        amount=round_money(amount, item.unit_price.currency), currency=item.unit_price.currency
    )


def check_quantity(item: OrderItem, quantity: int) -> None:
    if not 1 <= quantity <= item.quantity:
        raise ValueError(
            f"cannot refund {quantity} unit(s) of order item {item.order_item_id}: the buyer"
            f" bought {item.quantity}"
        )


def shipping_paid(item: OrderItem, quantity: int) -> Money | None:
    """What the buyer paid for shipping `quantity` units of the item; None when unknown.

    The order types carry no shipping price yet; an item's `shipping_price` (for its whole line,
    like Amazon's ShippingPrice) is used as soon as it has one.
    """
    line: object = getattr(item, "shipping_price", None)
    if not isinstance(line, Money) or item.quantity <= 0:
        return None
    amount = line.amount * quantity / item.quantity
    return Money(amount=round_money(amount, line.currency), currency=line.currency)
