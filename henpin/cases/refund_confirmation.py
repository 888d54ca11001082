"""The refund-confirmation question, written once: a person confirms the refund Henpin proposes
or gives another amount (with a reason), by a deadline. Return requests and refused deliveries
ask it; each adds its own way out (`escalate`, `no_refund`) to the answer's choices. An amount
an operator enters, here or as an address error's partial refund, is one `refund_amount_field`:
at least one minor unit, at most what was paid, in the order's currency, never rounded."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from henpin.cases.answers import OperatorAnswer
from henpin.domain import Order
from henpin.questions import AnswerField, PromptLine, Question


class RefundConfirmation(OperatorAnswer):
    """The proposed refund confirmed (`refund_proposed`), or another amount
    (`refund_other_amount`, with `amount`). Each case type narrows `choice` to its own."""

    choice: str
    amount: Decimal | None = None

    labels: ClassVar[dict[str, str]] = {
        "refund_proposed": "Refund what the policy proposes",
        "refund_other_amount": "Refund another amount (write the reason)",
    }

    def other_amount(self) -> Decimal | None:
        """The operator's own amount when they chose to refund another amount, else None."""
        if self.choice != "refund_other_amount":
            return None
        assert self.amount is not None, "the question requires it for refund_other_amount"
        return self.amount


def refund_amount_field(
    name: str,
    *,
    required_for: str,
    currency: str | None,
    paid: Decimal | None,
    proposed: str | None,
) -> AnswerField:
    """The amount an operator refunds instead of the proposal: at least 0.01, at most `paid`."""
    return AnswerField(
        name=name,
        kind="money",
        label="Refund amount",
        required_for=[required_for],
        minimum=Decimal("0.01"),
        maximum=paid,
        currency=currency,
        proposed=proposed,
    )


def refund_confirmation_question(
    answer: type[RefundConfirmation],
    order: Order,
    *,
    title_code: str,
    facts: list[PromptLine | str],
    proposed_words: str,
    proposed_amount: str,
    currency: str | None,
    paid: Decimal | None,
    note_required_for: list[str],
    deadline_hours: float,
    timeout_choice: str,
    deadline_at: datetime | None = None,
    minimum_hours: float | None = None,
) -> Question:
    """Confirm the proposed refund (`proposed_words` says what it is, with its amount) or give
    another amount, up to what was paid; `answer` names the case type's choices."""
    return Question(
        step="confirm-refund",
        title_code=title_code,
        title_values={"order_id": order.order_id},
        prompt_lines=facts,
        choices=list(answer.labels),
        labels={**answer.labels, "refund_proposed": proposed_words},
        fields=[
            refund_amount_field(
                "amount",
                required_for="refund_other_amount",
                currency=currency,
                paid=paid,
                proposed=proposed_amount,
            )
        ],
        note_required_for=note_required_for,
        deadline_hours=deadline_hours,
        deadline_at=deadline_at,
        minimum_hours=minimum_hours,
        timeout_choice=timeout_choice,
        recommended="refund_proposed",
    )
