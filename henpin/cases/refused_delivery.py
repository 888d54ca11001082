"""Refused or unclaimed delivery: waiting for the buyer's refund request, and the refund."""

from __future__ import annotations

from typing import ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.cases.money import (
    amount_refund,
    is_full_refund,
    items_price_refund,
    order_refundable,
    refund_total,
)
from henpin.cases.refund_confirmation import RefundConfirmation, refund_confirmation_question
from henpin.domain import Order, Outcome, PriceComponent, Refund
from henpin.policy import RefusedDeliveryPolicy
from henpin.questions import Question, line, money_value, order_facts

#: Henpin's answer when the address-error case takes the parcel over (henpin/parcel_cases.py).
HANDED_OVER = "handed_over"


class RefundAsked(OperatorAnswer):
    """Whether the buyer has asked for a refund yet."""

    choice: Literal["buyer_asked", "remind", "no_refund", "handed_over"]

    labels: ClassVar[dict[str, str]] = {
        "buyer_asked": "The buyer asked for a refund",
        "remind": "Not yet: look again later",
        "no_refund": "Close without refund (the buyer did not ask)",
    }
    henpin_only = frozenset({HANDED_OVER})


class RefusedRefundConfirmation(RefundConfirmation):
    """The policy's refund confirmed, another amount, or none."""

    choice: Literal["refund_proposed", "refund_other_amount", "no_refund", "handed_over"]

    labels: ClassVar[dict[str, str]] = {
        **RefundConfirmation.labels,
        "no_refund": "No refund (write the reason)",
    }
    henpin_only = frozenset({HANDED_OVER})


def refund_asked_question(
    order: Order, policy: RefusedDeliveryPolicy, *, reminded: bool
) -> Question:
    return Question(
        step="refund-asked-after-reminder" if reminded else "refund-asked",
        title_code="refused-asked",
        title_values={"order_id": order.order_id},
        prompt_lines=[*order_facts(order), line("refused-no-refund-until-asked")],
        choices=["buyer_asked", "no_refund"] if reminded else list(RefundAsked.labels),
        labels=RefundAsked.labels,
        deadline_hours=policy.wait_days * 24,
        timeout_choice="no_refund" if reminded else "remind",
        recommended="remind" if not reminded else "no_refund",
    )


def proposed_refund(order: Order, policy: RefusedDeliveryPolicy, *, refused: bool) -> Refund:
    """The policy's refund (by default the item price only, outbound shipping kept), reason
    RefusedDelivery or Undeliverable."""
    refund = policy.refund_for(order, refused=refused).refund()
    if refund is None:  # no priced item: offer the item prices so the operator can edit them
        return items_price_refund(order, policy.adjustment_reason(refused=refused))
    return refund


def refund_question(order: Order, policy: RefusedDeliveryPolicy, proposal: Refund) -> Question:
    total = refund_total(proposal)
    value = order_refundable(order)
    shipping = any(c.type is PriceComponent.SHIPPING for i in proposal.items for c in i.components)
    what = "item price and shipping paid" if shipping else "item price paid, shipping kept"
    return refund_confirmation_question(
        RefusedRefundConfirmation,
        order,
        title_code="refused-refund",
        facts=[
            *order_facts(order),
            line(
                "refused-refund-with-shipping" if shipping else "refused-refund-price-only",
                refund=money_value(total.amount, total.currency),
            ),
        ],
        proposed_words=f"Refund {total} ({what})",
        proposed_amount=str(total.amount),
        currency=total.currency,
        paid=value.amount if value else None,
        note_required_for=["refund_other_amount", "no_refund"],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice="refund_proposed"
        if policy.operator.on_deadline == "refund"
        else "no_refund",
    )


def refund_from_answer(
    order: Order, proposal: Refund, confirmed: RefusedRefundConfirmation
) -> Refund:
    """The policy's refund, or the operator's own amount with the policy's reason."""
    amount = confirmed.other_amount()
    return proposal if amount is None else amount_refund(order, amount, proposal.items[0].reason)


def outcome_for(order: Order, refund: Refund) -> Outcome:
    return Outcome.REFUNDED_IN_FULL if is_full_refund(order, refund) else Outcome.REFUNDED_PARTLY
