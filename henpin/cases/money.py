"""Money of refunds: build one, total it, compare it with what was paid."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, JsonValue

from henpin.domain import (
    AdjustmentReason,
    AlreadyRefunded,
    Money,
    Order,
    OrderItem,
    PriceComponent,
    PromotionComponent,
    PromotionPart,
    Refund,
    RefundComponent,
    RefundedLine,
    RefundItem,
)
from henpin.policy._base import money_json, round_money
from henpin.policy.proposals import paid_for_units, parts_total, refund_parts
from henpin.policy.reasons import Phrase, phrase


def full_refund_item(
    item: OrderItem, quantity: int, reason: AdjustmentReason, *, with_shipping: bool
) -> RefundItem | None:
    """Everything the buyer paid for `quantity` units of the item: the price less its
    promotion, and the shipping less its promotion when `with_shipping`. None: nothing known."""
    paid = paid_for_units(item, quantity)
    if paid is None:
        return None
    components, promotions = refund_parts(
        paid, shipping_percent=Decimal(100) if with_shipping else None
    )
    if not components or parts_total(components, promotions) <= 0:
        return None
    return RefundItem(
        order_item_id=item.order_item_id,
        reason=reason,
        components=components,
        promotions=promotions,
    )


def items_price_refund(
    order: Order, reason: AdjustmentReason, *, with_shipping: bool = False
) -> Refund:
    """Refund what the buyer paid for every item of the order: its price less its promotion
    (Principal and a promotion adjustment), and its shipping when `with_shipping`."""
    items = [
        line
        for i in order.items
        if (line := full_refund_item(i, i.quantity, reason, with_shipping=with_shipping))
    ]
    if not items:
        raise ValueError(f"order {order.order_id} has no priced items to refund")
    return Refund(order_id=order.order_id, items=items)


def refundable(item: OrderItem, quantity: int) -> Money | None:
    """The most a refund of `quantity` units may give back: what the buyer paid for them,
    price and shipping, less promotions. None when unknown."""
    paid = paid_for_units(item, quantity)
    return None if paid is None else Money(amount=paid.net, currency=paid.currency)


def order_refundable(order: Order) -> Money | None:
    """What the buyer paid for the whole order (price and shipping less promotions)."""
    amounts = [refundable(i, i.quantity) for i in order.items]
    known = [a for a in amounts if a is not None]
    if not known or len({a.currency for a in known}) != 1:
        return None
    return Money(amount=sum((a.amount for a in known), Decimal(0)), currency=known[0].currency)


def amount_refund_item(
    item: OrderItem, quantity: int, amount: Decimal, reason: AdjustmentReason
) -> RefundItem:
    """Refund `amount` of what was paid for `quantity` units of the item, spread over its price
    and shipping in proportion, with their promotions' shares (`refund_parts`): the parts add up
    exactly to `amount`. More than was paid is refused."""
    paid = paid_for_units(item, quantity)
    if paid is None or paid.net <= 0:
        raise ValueError(f"order item {item.order_item_id} has no price, so nothing to refund")
    if amount > paid.net:
        raise ValueError(
            f"{amount} {paid.currency} is more than the {paid.net} {paid.currency} paid for item "
            f"{item.order_item_id}"
        )
    percent = amount * 100 / paid.net
    components, promotions = refund_parts(paid, percent=percent, shipping_percent=percent)
    return RefundItem(
        order_item_id=item.order_item_id,
        reason=reason,
        components=components,
        promotions=promotions,
    )


def amount_refund(order: Order, amount: Decimal, reason: AdjustmentReason) -> Refund:
    """Refund a given amount, spread over the items in order: each item up to what was paid for
    it, each item's share split over its price and shipping (`amount_refund_item`)."""
    left = amount
    items = []
    for i in order.items:
        paid = refundable(i, i.quantity)
        if left <= 0 or paid is None or paid.amount <= 0:
            continue
        part = min(left, paid.amount)
        items.append(amount_refund_item(i, i.quantity, part, reason))
        left -= part
    if not items or left > 0:
        raise ValueError(f"{amount} is more than what was paid for the items of {order.order_id}")
    return Refund(order_id=order.order_id, items=items)


def refund_total(refund: Refund) -> Money:
    """What the buyer gets back: every item's components and (negative) promotions."""
    currency = refund.items[0].components[0].currency
    return Money(amount=sum((i.total for i in refund.items), Decimal(0)), currency=currency)


def is_full_refund(order: Order, refund: Refund) -> bool:
    """Does the refund give back at least the price the buyer paid for every item?"""
    paid = [paid_for_units(i, i.quantity) for i in order.items]
    if any(p is None for p in paid):
        return False
    owed = sum((p.net_price for p in paid if p is not None), Decimal(0))
    return refund_total(refund).amount >= owed


# --- Never refund twice --------------------------------------------------------------------------

#: How the ledger names a promotion's share, ahead of the part it lowered (PromotionPrincipal).
PROMOTION_KEY = "Promotion"

#: (order item id, component) → amount. A component Henpin names is its PriceComponent value.
Amounts = dict[tuple[str, str], Decimal]


def refund_amounts(refunds: list[Refund]) -> Amounts:
    """What these refunds give back, per order item and component."""
    totals: Amounts = {}
    for refund in refunds:
        for item in refund.items:
            for c in item.components:
                key = (item.order_item_id, str(c.type))
                totals[key] = totals.get(key, Decimal(0)) + c.amount
            for p in item.promotions:  # the discount given back to Amazon, as a positive size
                key = (item.order_item_id, p.ledger_key)
                totals[key] = totals.get(key, Decimal(0)) - p.amount
    return totals


def amazon_amounts(shown: AlreadyRefunded) -> Amounts:
    """What Amazon's financial events show as refunded, per order item and component."""
    totals: Amounts = {}
    for line in shown.lines:
        key = (line.order_item_id, str(line.component))
        totals[key] = totals.get(key, Decimal(0)) + line.amount
    return totals


class RefundedBefore(BaseModel):
    """What was refunded for an order before this refund, and by whom.

    Henpin's own refunds are `sent` (done, or in a feed Amazon may already have applied) or
    `pending` (not yet in a feed). Amazon's view includes the sent ones once Amazon has applied
    and posted them, which may take up to 48 hours; so per item and component the larger of
    Amazon's figure and Henpin's sent refunds is taken (counting a sent refund twice would make
    a later refund of the order smaller than is due), plus the pending ones. What Amazon refunded
    on its own is what it shows beyond Henpin's sent refunds. The one gap: Amazon's own refund
    and a sent refund of Henpin's that Amazon has not posted yet are counted once.
    """

    total: Amounts
    by_amazon: Amounts

    @classmethod
    def of(
        cls, shown: AlreadyRefunded, sent: list[Refund], pending: list[Refund]
    ) -> RefundedBefore:
        amazon, ours, coming = (
            amazon_amounts(shown),
            refund_amounts(sent),
            refund_amounts(pending),
        )
        keys = set(amazon) | set(ours) | set(coming)
        total = {
            k: max(amazon.get(k, Decimal(0)), ours.get(k, Decimal(0))) + coming.get(k, Decimal(0))
            for k in keys
        }
        by_amazon = {
            k: amazon[k] - ours.get(k, Decimal(0))
            for k in amazon
            if amazon[k] > ours.get(k, Decimal(0))
        }
        return cls(total=total, by_amazon=by_amazon)


class RefundFit(BaseModel):
    """A refund held against what is left to refund: what may go out (None: nothing is left)."""

    asked: Money
    refund: Refund | None
    sent: Money | None
    by_amazon: Money | None  # Amazon's own refunds on the refund's items, if any
    before: Money | None  # everything refunded on those items before (Amazon's and Henpin's)
    # Components held back because the order does not say what was paid for them while some of
    # them was refunded already: Henpin cannot tell what is left, so a person decides.
    unverified: list[str] = []
    unverified_parts: list[dict[str, JsonValue]] = []  # the same, as coded phrases

    @property
    def cut(self) -> bool:
        return self.sent is None or self.sent.amount != self.asked.amount


def paid_for(item: OrderItem, component: str) -> Decimal | None:
    """What the buyer paid for one component of an item (Principal and Shipping before their
    promotions; a promotion's ledger key: its discount); None when the order does not say."""
    paid = paid_for_units(item, item.quantity)
    if paid is None:
        return None
    by_component = {
        PriceComponent.PRINCIPAL.value: paid.price,
        PriceComponent.SHIPPING.value: paid.shipping,
        f"{PROMOTION_KEY}{PromotionPart.PRINCIPAL.value}": paid.item_discount,
        f"{PROMOTION_KEY}{PromotionPart.SHIPPING.value}": paid.shipping_discount,
    }
    return by_component.get(component)


def fit_refund(order: Order, refund: Refund, before: RefundedBefore) -> RefundFit:
    """The refund cut to what the buyer paid minus what was already refunded, per item and
    component (a deduction such as a restocking fee stays). An item with nothing left to refund
    is dropped. A component whose price the order does not show goes as asked only while none
    of it was refunded before; otherwise it is held back (`unverified`): an unknown amount never
    lets a second refund through."""
    items = {i.order_item_id: i for i in order.items}
    currency = refund_total(refund).currency
    kept: list[RefundItem] = []
    unverified: list[Phrase] = []
    for line in refund.items:
        item = items.get(line.order_item_id)
        promotions = _fit_promotions(line, item, before)
        components: list[RefundComponent] = []
        for c in line.components:
            paid = paid_for(item, str(c.type)) if item is not None else None
            amount = c.amount
            refunded = before.total.get((line.order_item_id, str(c.type)), Decimal(0))
            if paid is None and amount > 0 and refunded > 0:
                unverified.append(
                    phrase(
                        "attention",
                        "part-unverified",
                        part=str(c.type),
                        item=line.order_item_id,
                        asked=money_json(Money(amount=amount, currency=c.currency)),
                        refunded=money_json(Money(amount=refunded, currency=c.currency)),
                    )
                )
                amount = Decimal(0)
            elif paid is not None and amount > 0:
                left = paid - refunded
                amount = round_money(min(amount, max(left, Decimal(0))), c.currency)
            if amount != 0:
                components.append(c.model_copy(update={"amount": amount}))
        given = sum((c.amount for c in components), Decimal(0))
        if given + sum((p.amount for p in promotions), Decimal(0)) > 0 and any(
            c.amount > 0 for c in components
        ):
            kept.append(
                line.model_copy(update={"components": components, "promotions": promotions})
            )
    fitted = refund.model_copy(update={"items": kept}) if kept else None
    touched = {line.order_item_id for line in refund.items}

    def on_items(amounts: Amounts) -> Money | None:
        # What the buyer got back: a promotion's share counts against it (the ledger keeps its
        # size, positive).
        total = sum(
            (
                -v if key.startswith(PROMOTION_KEY) else v
                for (item_id, key), v in amounts.items()
                if item_id in touched
            ),
            Decimal(0),
        )
        return Money(amount=round_money(total, currency), currency=currency) if total > 0 else None

    return RefundFit(
        asked=refund_total(refund),
        refund=fitted,
        sent=refund_total(fitted) if fitted else None,
        by_amazon=on_items(before.by_amazon),
        before=on_items(before.total),
        unverified=[p.text for p in unverified],
        unverified_parts=[p.as_json() for p in unverified],
    )


def _fit_promotions(
    line: RefundItem, item: OrderItem | None, before: RefundedBefore
) -> list[PromotionComponent]:
    """A line's promotion adjustments, each no larger than the discount not yet given back by
    an earlier refund (its price was refunded less the promotion already)."""
    kept: list[PromotionComponent] = []
    for p in line.promotions:
        discount = paid_for(item, p.ledger_key) if item is not None else None
        if discount is None:
            kept.append(p)
            continue
        left = discount - before.total.get((line.order_item_id, p.ledger_key), Decimal(0))
        amount = -min(-p.amount, max(left, Decimal(0)))
        if amount != 0:
            kept.append(p.model_copy(update={"amount": amount}))
    return kept


def refund_cut_message(fit: RefundFit) -> str:
    """The timeline's words for a refund made smaller because part was already refunded."""
    return (
        f"Refund reduced from {fit.asked} to {fit.sent}: {fit.before} was already refunded on "
        "these items" + (f", {fit.by_amazon} of it by Amazon." if fit.by_amazon else ".")
    )


def cut_by_another_case(fit: RefundFit) -> bool:
    """Was the refund cut (or dropped) because another case of the order refunded these items,
    not only Amazon on its own? Then the case asked for more than the buyer paid in all."""
    if not fit.cut or fit.before is None:
        return False
    by_amazon = fit.by_amazon.amount if fit.by_amazon else Decimal(0)
    return fit.before.amount > by_amazon


def over_paid_message(fit: RefundFit) -> Phrase:
    """Why a case is flagged: its refund and the order's other refunds would exceed what was
    paid, with the figures."""
    sent = (
        phrase("attention", "only-sent", sent=money_json(fit.sent))
        if fit.sent
        else phrase("attention", "nothing-sent")
    )
    figures: dict[str, JsonValue] = {
        "asked": money_json(fit.asked),
        "before": money_json(fit.before) if fit.before else "None",
        "sent": sent.as_json(),
    }
    if fit.by_amazon:
        return phrase(
            "attention", "refund-over-paid-amazon", by_amazon=money_json(fit.by_amazon), **figures
        )
    return phrase("attention", "refund-over-paid", **figures)


def unverified_message(fit: RefundFit) -> Phrase:
    """Why part of a refund was held back for a person: what was paid is unknown (each part
    as a coded phrase; a fit made before they had codes, in its words)."""
    parts: JsonValue = list(fit.unverified_parts) or "; ".join(fit.unverified)
    return phrase("attention", "refund-unverified", unverified=parts)


def nothing_left_message(fit: RefundFit) -> str:
    """The closing words when nothing is left to refund: nothing is sent."""
    if fit.unverified:
        return unverified_message(fit).text + f" Nothing of the refund of {fit.asked} was sent."
    if fit.by_amazon:
        return (
            f"Amazon already refunded {fit.by_amazon} on these items; the refund of {fit.asked} "
            "was not sent."
        )
    return (
        f"{fit.before or 'Everything'} was already refunded on these items by another case of "
        f"this order; the refund of {fit.asked} was not sent."
    )


def with_report_figure(
    shown: AlreadyRefunded, order_item_id: str, reported: Money | None
) -> AlreadyRefunded:
    """Amazon's financial events for the order, raised to the returns report's `Refunded Amount`
    for one item where the report shows more: Amazon may take up to 48 hours to post a refund
    in its financial events, and the report may already have it. The report gives a total, not
    its components, so the difference is counted as item price (Principal), the component a
    return's refund gives back."""
    if reported is None:
        return shown
    events = sum(
        (line.amount for line in shown.lines if line.order_item_id == order_item_id), Decimal(0)
    )
    if reported.amount <= events:
        return shown
    missing = RefundedLine(
        order_item_id=order_item_id,
        component=PriceComponent.PRINCIPAL,
        amount=reported.amount - events,
        currency=reported.currency,
        event="returns-report",
    )
    return shown.model_copy(update={"lines": [*shown.lines, missing]})
