"""What is left to refund of an order, from Amazon's financial events and Henpin's own refunds
(henpin.cases.money.fit_refund): pure money, no servers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from henpin.cases.money import (
    RefundedBefore,
    amount_refund,
    fit_refund,
    items_price_refund,
    refund_total,
)
from henpin.domain import (
    AdjustmentReason,
    AlreadyRefunded,
    FulfillmentStatus,
    Money,
    Order,
    OrderItem,
    PaidAmounts,
    PriceComponent,
    Refund,
    RefundComponent,
    RefundedLine,
    RefundItem,
)

NOW = datetime(2026, 12, 5, tzinfo=UTC)
ORDER = Order(
    order_id="113-0000051-0000051",
    marketplace_id="ATVPDKIKX0DER",
    created_time=NOW,
    last_updated_time=NOW,
    fulfillment_status=FulfillmentStatus.SHIPPED,
    items=[
        OrderItem(
            order_item_id="A",
            quantity=2,
            unit_price=Money(amount=Decimal("20.00"), currency="USD"),
        )
    ],
)


def refund(*components: tuple[PriceComponent, str]) -> Refund:
    return Refund(
        order_id=ORDER.order_id,
        items=[
            RefundItem(
                order_item_id="A",
                reason=AdjustmentReason.CUSTOMER_RETURN,
                components=[
                    RefundComponent(type=kind, amount=Decimal(amount), currency="USD")
                    for kind, amount in components
                ],
            )
        ],
    )


def shown(*amounts: str) -> AlreadyRefunded:
    return AlreadyRefunded(
        order_id=ORDER.order_id,
        lines=[
            RefundedLine(
                order_item_id="A",
                component=PriceComponent.PRINCIPAL,
                amount=Decimal(a),
                currency="USD",
            )
            for a in amounts
        ],
    )


PRINCIPAL = PriceComponent.PRINCIPAL


def test_a_sent_refund_amazon_shows_is_counted_once() -> None:
    ours = refund((PRINCIPAL, "30.00"))
    before = RefundedBefore.of(shown("30.00"), sent=[ours], pending=[])
    fit = fit_refund(ORDER, refund((PRINCIPAL, "25.00")), before)
    assert fit.sent == Money(amount=Decimal("10.00"), currency="USD")
    assert fit.by_amazon is None  # Amazon's 30.00 is Henpin's own refund


def test_amazons_own_refund_and_a_pending_one_both_count() -> None:
    before = RefundedBefore.of(shown("15.00"), sent=[], pending=[refund((PRINCIPAL, "20.00"))])
    fit = fit_refund(ORDER, refund((PRINCIPAL, "40.00")), before)
    assert fit.sent == Money(amount=Decimal("5.00"), currency="USD")
    assert fit.by_amazon == Money(amount=Decimal("15.00"), currency="USD")
    assert fit.cut


def test_nothing_left_sends_nothing_and_names_amazon() -> None:
    fit = fit_refund(ORDER, refund((PRINCIPAL, "40.00")), RefundedBefore.of(shown("40.00"), [], []))
    assert fit.refund is None and fit.by_amazon == Money(amount=Decimal("40.00"), currency="USD")


def test_a_refund_within_what_is_left_is_unchanged_and_keeps_its_restocking_fee() -> None:
    asked = refund((PRINCIPAL, "20.00"), (PriceComponent.RESTOCKING_FEE, "-4.00"))
    fit = fit_refund(ORDER, asked, RefundedBefore.of(shown("20.00"), [], []))
    assert fit.refund == asked and not fit.cut


def test_the_outbox_tells_henpins_sent_and_pending_refunds_of_an_order(case_store: str) -> None:
    """Every case's refunds of the order count, on SQLite and PostgreSQL; failed ones do not,
    nor other orders' refunds."""
    from sqlalchemy import update

    from henpin import outbox
    from henpin.domain import ActionKind, ActionStatus
    from henpin.outbox.refund_limits import henpin_refunds
    from henpin.store.db import session_scope
    from henpin.store.models import Action

    other = ORDER.model_copy(update={"order_id": "113-0000052-0000052"})
    rows = {
        "case-1:refund:refund:" + ORDER.order_id: (ORDER, "10.00", ActionStatus.DONE),
        "case-2:refund:keep-item:" + ORDER.order_id: (ORDER, "5.00", ActionStatus.SUBMITTED),
        "case-3:refund:refund:" + ORDER.order_id: (ORDER, "7.00", ActionStatus.PENDING),
        "case-4:refund:refund:" + ORDER.order_id: (ORDER, "9.00", ActionStatus.FAILED),
        "case-5:refund:refund:" + other.order_id: (other, "3.00", ActionStatus.DONE),
    }
    for key, (order, amount, status) in rows.items():
        payload = refund((PRINCIPAL, amount)).model_copy(update={"order_id": order.order_id})
        action_id = outbox.enqueue(
            case_store,
            key=key,
            case_id=None,
            kind=ActionKind.REFUND,
            marketplace_id="ATVPDKIKX0DER",
            payload=payload,
        )
        with session_scope(case_store) as s:
            s.execute(update(Action).where(Action.id == action_id).values(status=status.value))
    with session_scope(case_store) as s:
        sent, pending = henpin_refunds(s, ORDER.order_id)
    assert sorted(str(r.items[0].components[0].amount) for r in sent) == ["10.00", "5.00"]
    assert [str(r.items[0].components[0].amount) for r in pending] == ["7.00"]


def test_the_returns_reports_refunded_amount_counts_when_it_shows_more() -> None:
    from henpin.cases.money import with_report_figure

    reported = Money(amount=Decimal("40.00"), currency="USD")
    lagging = with_report_figure(shown("15.00"), "A", reported)  # events lag: the report counts
    assert lagging.amount("A", PRINCIPAL) == Decimal("40.00")
    fit = fit_refund(ORDER, refund((PRINCIPAL, "40.00")), RefundedBefore.of(lagging, [], []))
    assert fit.refund is None  # nothing left: nothing is sent
    caught_up = with_report_figure(shown("40.00"), "A", reported)  # the same: counted once
    assert caught_up.amount("A", PRINCIPAL) == Decimal("40.00")
    assert with_report_figure(shown("15.00"), "A", None).amount("A", PRINCIPAL) == Decimal("15")


def test_an_unknown_price_never_lets_a_second_refund_through() -> None:
    """The order shows no price for the item (no unit price, no proceeds): while nothing was
    refunded the refund goes as asked; once something was, it is held back for a person."""
    unpriced = ORDER.model_copy(
        update={"items": [OrderItem(order_item_id="A", quantity=1, unit_price=None)]}
    )
    first = fit_refund(unpriced, refund((PRINCIPAL, "100.00")), RefundedBefore.of(shown(), [], []))
    assert first.sent == Money(amount=Decimal("100.00"), currency="USD")
    assert first.unverified == []

    before = RefundedBefore.of(shown("100.00"), sent=[refund((PRINCIPAL, "100.00"))], pending=[])
    second = fit_refund(unpriced, refund((PRINCIPAL, "100.00")), before)
    assert second.refund is None and second.sent is None
    assert second.unverified and "100.00 USD already refunded" in second.unverified[0]


PROMOTED = ORDER.model_copy(
    update={
        "items": [
            OrderItem(
                order_item_id="A",
                quantity=1,
                unit_price=Money(amount=Decimal("50.00"), currency="USD"),
                paid=PaidAmounts(
                    currency="USD",
                    item_price=Decimal("50.00"),
                    shipping=Decimal("6.00"),
                    item_discount=Decimal("10.00"),
                ),
            )
        ]
    }
)


def test_a_full_refund_is_what_was_paid_and_a_second_finds_nothing_left() -> None:
    full = items_price_refund(PROMOTED, AdjustmentReason.CUSTOMER_RETURN, with_shipping=True)
    assert refund_total(full).amount == Decimal("46.00")  # 50.00 - 10.00 + 6.00
    [line] = full.items
    assert [(p.type.value, p.amount) for p in line.promotions] == [("Principal", Decimal("-10.00"))]
    fit = fit_refund(PROMOTED, full, RefundedBefore.of(AlreadyRefunded(order_id="x"), [], [full]))
    assert fit.refund is None  # price, shipping and the promotion's share all used up
    assert fit.before == Money(amount=Decimal("46.00"), currency="USD")  # as the buyer got it


def test_half_refunded_leaves_the_other_half_of_price_and_promotion() -> None:
    half = amount_refund(PROMOTED, Decimal("23.00"), AdjustmentReason.CUSTOMER_RETURN)
    assert refund_total(half).amount == Decimal("23.00")
    full = items_price_refund(PROMOTED, AdjustmentReason.CUSTOMER_RETURN, with_shipping=True)
    fit = fit_refund(PROMOTED, full, RefundedBefore.of(AlreadyRefunded(order_id="x"), [half], []))
    assert fit.sent is not None and fit.sent.amount == Decimal("23.00")  # 46.00 paid in all
    assert fit.refund is not None
    assert [p.amount for p in fit.refund.items[0].promotions] == [Decimal("-5.00")]


def test_an_operator_amount_splits_over_price_and_shipping_and_adds_up() -> None:
    jpy = ORDER.model_copy(
        update={
            "items": [
                OrderItem(
                    order_item_id="A",
                    paid=PaidAmounts(
                        currency="JPY",
                        item_price=Decimal(4800),
                        shipping=Decimal(500),
                        item_discount=Decimal(480),
                    ),
                )
            ]
        }
    )
    refund = amount_refund(jpy, Decimal(3000), AdjustmentReason.CUSTOMER_RETURN)
    [line] = refund.items
    assert {c.type.value: c.amount for c in line.components} == {
        "Principal": Decimal(2988),
        "Shipping": Decimal(311),
    }
    assert [p.amount for p in line.promotions] == [Decimal(-299)]
    assert line.total == Decimal(3000)
    with pytest.raises(ValueError, match="more than"):
        amount_refund(jpy, Decimal(4821), AdjustmentReason.CUSTOMER_RETURN)
