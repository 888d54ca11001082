"""Buyer cancel request: the operator's answer and the question that asks for it."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES
from henpin.questions import Question, advice_line, buyer_reason_line, order_facts


class CancelDecision(OperatorAnswer):
    """The operator's answer to a buyer's cancel request."""

    choice: Literal["cancel", "keep_order", "escalate"]

    labels: ClassVar[dict[str, str]] = {
        "cancel": "Cancel the order with reason BuyerCanceled (does not count against your "
        "cancellation rate)",
        "keep_order": "Keep the order and ship it (the buyer withdrew the request, or you agreed "
        "with them)",
        "escalate": "Escalate to the owner; Henpin closes the case without acting",
    }


def cancel_request_question(
    order: Order, advice: dict[str, Any], *, deadline_hours: float, timeout_choice: str
) -> Question:
    m = MARKETPLACES.get(order.marketplace_id)
    return Question(
        step="operator-decision",
        title_code="cancel-request",
        title_values={"order_id": order.order_id},
        prompt_lines=[*order_facts(order), buyer_reason_line(order), advice_line(advice)],
        choices=list(CancelDecision.labels),
        labels=CancelDecision.labels,
        deadline_hours=deadline_hours,
        timeout_choice=timeout_choice,
        recommended="cancel",
        links={"Seller Central order": m.order_page(order.order_id)} if m else {},
    )
