"""Address error: the buyer's address confirmation, the way out, and the money of each option."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.cases.buyer_contact import seller_central_links
from henpin.cases.money import amount_refund, items_price_refund, order_refundable
from henpin.cases.refund_confirmation import refund_amount_field
from henpin.domain import AdjustmentReason, Order, Refund
from henpin.policy import AddressErrorPolicy
from henpin.questions import AnswerField, Question, line, order_facts


def confirm_address_text(order: Order, policy: AddressErrorPolicy, language: str) -> str:
    """The message asking the buyer to confirm the address (Amazon's confirm delivery details),
    in the buyer's language: the policy's text (policies.yaml `address_error.confirm_address`),
    English when it has none in that language."""
    return policy.confirm_address_text(order, language)


class AddressAnswer(OperatorAnswer):
    """What the buyer answered to Amazon's confirm-delivery-details message."""

    choice: Literal["address_confirmed", "no_answer"]
    confirmed_address: str | None = None

    labels: ClassVar[dict[str, str]] = {
        "address_confirmed": "The buyer confirmed (or corrected) the address",
        "no_answer": "The buyer has not answered",
    }


def address_question(order: Order, policy: AddressErrorPolicy, message_sent: bool) -> Question:
    return Question(
        step="buyer-address",
        title_code="address-confirm",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *order_facts(order),
            line("address-asked" if message_sent else "address-not-asked"),
        ],
        choices=list(AddressAnswer.labels),
        labels=AddressAnswer.labels,
        fields=[
            AnswerField(
                name="confirmed_address",
                kind="text",
                label="The address the buyer confirmed",
                required_for=["address_confirmed"],
            )
        ],
        deadline_hours=policy.answer_wait_days * 24,
        timeout_choice="no_answer",
        recommended="address_confirmed",
        links={} if message_sent else seller_central_links(order),
    )


class Resolution(OperatorAnswer):
    """The way out the operator chose, with what it needs."""

    choice: Literal["reship", "partial_refund", "cancel_for_reorder", "escalate"]
    tracking_number: str | None = None
    reship_cost: Decimal | None = None
    refund_amount: Decimal | None = None

    labels: ClassVar[dict[str, str]] = {
        "reship": "Reship to the confirmed address (record tracking number and cost)",
        "partial_refund": "Refund part of the price, as agreed with the buyer",
        "cancel_for_reorder": "Refund in full as buyer-caused and ask the buyer to reorder with "
        "the right address (recovers most of the referral fee)",
        "escalate": "Escalate to the owner",
    }


def _money_line(option: dict[str, Any]) -> str:
    parts = ", ".join(
        f"{k}: {v}" for k, v in option.items() if k not in ("choice", "label", "note_phrases")
    )
    return f"- `{option.get('choice')}`: {parts}"


def resolution_question(
    order: Order, policy: AddressErrorPolicy, options: list[dict[str, Any]]
) -> Question:
    paid = order_refundable(order)
    currency = paid.currency if paid else None
    partial = policy.refund_proposal(order, "partial_refund")
    return Question(
        step="resolve-address-error",
        title_code="address-resolve",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *order_facts(order),
            "",
            line("options-heading"),
            *map(_money_line, options),
        ],
        choices=list(Resolution.labels),
        labels=Resolution.labels,
        fields=[
            AnswerField(
                name="tracking_number",
                kind="text",
                label="New tracking number",
                required_for=["reship"],
            ),
            AnswerField(
                name="reship_cost",
                kind="money",
                label="Reship cost",
                required_for=["reship"],
                minimum=Decimal(0),
                currency=currency,
            ),
            refund_amount_field(
                "refund_amount",
                required_for="partial_refund",
                currency=currency,
                paid=paid.amount if paid else None,
                proposed=str(partial.total.amount) if partial.total else None,
            ),
        ],
        note_required_for=["partial_refund"],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice="escalate",
        options=options,
    )


def reship_details(resolution: Resolution) -> dict[str, Any]:
    """The case's record of the reshipment (as the answer's form gave it)."""
    cost = resolution.reship_cost
    return {
        "tracking_number": resolution.tracking_number,
        "cost": None if cost is None else str(cost),
    }


def partial_refund(order: Order, resolution: Resolution) -> Refund:
    """The amount agreed with the buyer, split over each item's price and shipping paid with
    their promotions (`amount_refund`, as every amount an operator enters)."""
    assert resolution.refund_amount is not None, "the question requires it for partial_refund"
    return amount_refund(
        order, resolution.refund_amount, AdjustmentReason.CUSTOMER_ADDRESS_INCORRECT
    )


def cancel_for_reorder_refund(order: Order, policy: AddressErrorPolicy) -> Refund:
    """A full refund as buyer-caused (reason CustomerCancel): what the buyer paid, price and
    shipping less promotions, the figure the options showed (`refund_proposal`). Amazon returns
    the referral fee less its refund administration fee; the buyer reorders with the right
    address."""
    refund = policy.refund_proposal(order, "cancel_for_reorder").refund()
    if refund is None:
        return items_price_refund(order, AdjustmentReason.CUSTOMER_CANCEL)
    return refund
