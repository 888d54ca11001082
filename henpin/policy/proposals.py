"""Refunds that policy proposes: their parts, their total, and the rule that gave them.

A proposal is what the operator is shown and confirms (or changes, with a reason); it becomes the
outbox's `Refund` only then. A component of zero is left out (Amazon refuses one), so a proposal
may hold nothing to refund; its total then says 0 and `refund()` says there is nothing to send.

Every refund's money comes from `refund_parts`, whatever the path (a return by condition, a
refused delivery, an address error's options, an operator's other amount): what the buyer paid
for the units (`paid_for_units`: price and shipping less their promotions, from Amazon's
proceeds breakdown), scaled by the refund's percent, less a restocking fee, each part rounded
to the currency's minor unit so that the parts add up exactly to the rounded total. So the
figure an operator is shown is the one the feed sends.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

from henpin.domain import (
    AdjustmentReason,
    Money,
    Order,
    OrderItem,
    PriceComponent,
    PromotionComponent,
    PromotionPart,
    Refund,
    RefundComponent,
    RefundItem,
)
from henpin.policy._base import Inputs, money, round_money
from henpin.policy.reasons import Phrase


class RefundProposal(BaseModel):
    """The refund policy proposes for one order item (some or all of its units)."""

    model_config = ConfigDict(frozen=True)

    order_item_id: str
    quantity: int
    condition: str | None = None  # the returned item's condition, for a return
    adjustment_reason: AdjustmentReason
    components: list[RefundComponent]  # Principal, Shipping; RestockingFee is negative
    promotions: list[PromotionComponent] = []  # the discounts the buyer had (negative)
    total: Money
    rule: str
    explanation: str  # plain words for the operator: how the total was reached (English)
    # The same as a code and values (`explanation.<code>`), for the inbox to word
    explanation_code: str | None = None
    explanation_values: dict[str, JsonValue] = {}
    inputs: Inputs

    def refund_item(self) -> RefundItem | None:
        """The payment adjustment line for this item; None when there is nothing to refund."""
        if self.total.amount <= 0 or not self.components:
            return None
        return RefundItem(
            order_item_id=self.order_item_id,
            reason=self.adjustment_reason,
            components=list(self.components),
            promotions=list(self.promotions),
        )


class OrderRefundProposal(BaseModel):
    """The refund policy proposes for a whole order: one line per item that has money to give."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    items: list[RefundProposal]
    total: Money | None  # None when no item has a known price
    rule: str
    explanation: str
    explanation_code: str | None = None
    explanation_values: dict[str, JsonValue] = {}
    inputs: Inputs

    def refund(self) -> Refund | None:
        """The outbox payload; None when there is nothing to refund."""
        lines = [line for p in self.items if (line := p.refund_item()) is not None]
        return Refund(order_id=self.order_id, items=lines) if lines else None


def explained(how: Phrase) -> dict[str, Any]:
    """A proposal's explanation fields: English words, code and values."""
    return {
        "explanation": how.text,
        "explanation_code": how.code,
        "explanation_values": how.values,
    }


def explanation_value(proposal: dict[str, Any]) -> JsonValue:
    """A stored proposal's explanation as a value of a reason or a prompt line: the coded
    phrase, or its English words when it was stored without a code."""
    code = proposal.get("explanation_code")
    if isinstance(code, str):
        values = proposal.get("explanation_values") or {}
        return {"kind": "explanation", "code": code, "values": values}
    return str(proposal.get("explanation") or "")


def component(kind: PriceComponent, amount: Decimal, currency: str) -> RefundComponent | None:
    """A refund component rounded for its currency, or None when it rounds to nothing."""
    rounded = round_money(amount, currency)
    return None if rounded == 0 else RefundComponent(type=kind, amount=rounded, currency=currency)


def units_value(item: OrderItem, quantity: int) -> Money | None:
    """The price of `quantity` units of the item (before promotions); None when unknown."""
    paid = paid_for_units(item, quantity)
    return None if paid is None else Money(amount=paid.price, currency=paid.currency)


class PaidShare(BaseModel):
    """What the buyer paid for some units of an item, part by part, in one currency: the price
    and the shipping before promotions, and each one's promotion discount (positive). Shipping
    None: the order does not say."""

    model_config = ConfigDict(frozen=True)

    currency: str
    price: Decimal
    item_discount: Decimal = Decimal(0)
    shipping: Decimal | None = None
    shipping_discount: Decimal = Decimal(0)

    @property
    def net_price(self) -> Decimal:
        """The price the buyer paid after the promotion."""
        return self.price - self.item_discount

    @property
    def net_shipping(self) -> Decimal | None:
        return None if self.shipping is None else self.shipping - self.shipping_discount

    @property
    def net(self) -> Decimal:
        """Everything the buyer paid for these units (tax aside)."""
        return self.net_price + (self.net_shipping or Decimal(0))


def paid_for_units(item: OrderItem, quantity: int) -> PaidShare | None:
    """What the buyer paid for `quantity` of the item's units: Amazon's proceeds breakdown
    (`OrderItem.paid`), else the unit price (no shipping or promotion known), else the proceeds
    total; each part is the units' share of the line, rounded for the currency. None when no
    price is known."""
    if item.quantity <= 0:
        return None
    paid = item.paid
    if paid is not None and paid.item_price is not None:
        currency, line_price = paid.currency, paid.item_price
    elif item.unit_price is not None:
        currency, line_price = item.unit_price.currency, item.unit_price.amount * item.quantity
    elif item.proceeds is not None:
        currency, line_price = item.proceeds.currency, item.proceeds.amount
    else:
        return None
    known = paid is not None and paid.currency == currency

    def part(amount: Decimal | None) -> Decimal | None:
        if amount is None:
            return None
        return round_money(amount * quantity / item.quantity, currency)

    return PaidShare(
        currency=currency,
        price=part(line_price) or Decimal(0),
        item_discount=(part(paid.item_discount) if known and paid else None) or Decimal(0),
        shipping=part(paid.shipping) if known and paid else None,
        shipping_discount=(part(paid.shipping_discount) if known and paid else None) or Decimal(0),
    )


def refund_parts(
    paid: PaidShare,
    *,
    percent: Decimal = Decimal(100),
    fee_percent: Decimal = Decimal(0),
    shipping_percent: Decimal | None = None,
) -> tuple[list[RefundComponent], list[PromotionComponent]]:
    """The feed's parts of refunding `percent` % of what was paid for the units' price, and
    `shipping_percent` % of their shipping (None: shipping kept), less a restocking fee of
    `fee_percent` % of the price paid: Principal and Shipping at their price before promotions,
    each promotion's share as a negative promotion adjustment, the fee negative.

    Each part is rounded to the currency's minor unit; the rounding left over (a cent or a yen
    at most per part) goes on the largest part, so the parts add up exactly to the rounded
    total, which `refund_total` and the operator's figures show."""
    currency = paid.currency
    exact: list[tuple[PriceComponent | PromotionPart, bool, Decimal]] = [
        (PriceComponent.PRINCIPAL, False, paid.price * percent / 100),
        (PromotionPart.PRINCIPAL, True, -paid.item_discount * percent / 100),
    ]
    if shipping_percent is not None and paid.shipping is not None:
        exact += [
            (PriceComponent.SHIPPING, False, paid.shipping * shipping_percent / 100),
            (PromotionPart.SHIPPING, True, -paid.shipping_discount * shipping_percent / 100),
        ]
    exact.append((PriceComponent.RESTOCKING_FEE, False, -paid.net_price * fee_percent / 100))
    target = round_money(sum((amount for _, _, amount in exact), Decimal(0)), currency)
    rounded = [round_money(amount, currency) for _, _, amount in exact]
    left = target - sum(rounded, Decimal(0))
    if left:
        largest = max(range(len(rounded)), key=lambda i: rounded[i])
        rounded[largest] += left
    components: list[RefundComponent] = []
    promotions: list[PromotionComponent] = []
    for (kind, is_promotion, _), amount in zip(exact, rounded, strict=True):
        if amount == 0:
            continue
        if is_promotion:
            promotions.append(
                PromotionComponent(type=PromotionPart(kind), amount=amount, currency=currency)
            )
        else:
            components.append(
                RefundComponent(type=PriceComponent(kind), amount=amount, currency=currency)
            )
    return components, promotions


def parts_total(components: list[RefundComponent], promotions: list[PromotionComponent]) -> Decimal:
    """What the buyer gets back from these parts."""
    return sum((c.amount for c in components), Decimal(0)) + sum(
        (p.amount for p in promotions), Decimal(0)
    )


def check_quantity(item: OrderItem, quantity: int) -> None:
    if not 1 <= quantity <= item.quantity:
        raise ValueError(
            f"cannot refund {quantity} unit(s) of order item {item.order_item_id}: the buyer"
            f" bought {item.quantity}"
        )


def shipping_paid(item: OrderItem, quantity: int) -> Money | None:
    """What the buyer paid for shipping `quantity` units of the item, after its promotion
    (Amazon's proceeds breakdown); None when the order does not say."""
    paid = paid_for_units(item, quantity)
    if paid is None or paid.net_shipping is None:
        return None
    return Money(amount=paid.net_shipping, currency=paid.currency)


def whole_order_proposal(
    order: Order,
    *,
    reason: AdjustmentReason,
    rule: str,
    explanation: Phrase,
    inputs: Inputs,
    percent: Decimal = Decimal(100),
    shipping_percent: Decimal | None = None,
    explain_item: Callable[[Money], Phrase] | None = None,
) -> OrderRefundProposal:
    """The same refund of every item of the order, all its units (`refund_parts`: `percent` of
    the price paid, `shipping_percent` of the shipping paid or none). Items with no known price
    get nothing."""
    lines: list[RefundProposal] = []
    currency: str | None = None
    for item in order.items:
        paid = paid_for_units(item, item.quantity)
        if paid is None:
            continue
        currency = paid.currency
        components, promotions = refund_parts(
            paid, percent=percent, shipping_percent=shipping_percent
        )
        total = money(parts_total(components, promotions), currency)
        lines.append(
            RefundProposal(
                order_item_id=item.order_item_id,
                quantity=item.quantity,
                adjustment_reason=reason,
                components=components,
                promotions=promotions,
                total=total,
                rule=rule,
                **explained(explain_item(total) if explain_item else explanation),
                inputs={
                    "unit_price": None if item.unit_price is None else str(item.unit_price.amount),
                    "quantity": item.quantity,
                    "price_paid": str(paid.net_price),
                    "shipping_paid": None if paid.net_shipping is None else str(paid.net_shipping),
                },
            )
        )
    return OrderRefundProposal(
        order_id=order.order_id,
        items=lines,
        total=money(sum((p.total.amount for p in lines), Decimal(0)), currency)
        if currency
        else None,
        rule=rule,
        **explained(explanation),
        inputs=inputs,
    )
