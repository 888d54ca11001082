"""Cancel asked by message: the waits and the operator's question when the buyer does not act."""

from __future__ import annotations

from henpin.domain import Order
from henpin.policy import CancelByMessagePolicy
from henpin.questions import Question, order_facts

WAIT_LABELS = {
    "buyer_requested": "The buyer requested the cancellation in Your Orders (Henpin answers this "
    "itself when it sees the request)",
    "wait_ended": "Stop waiting for the buyer",
}

NO_REQUEST_LABELS = {
    "remind": "Remind the buyer to cancel in Your Orders, and wait again",
    "cancel_as_seller": "Cancel it myself (WARNING: counts against your cancellation rate)",
    "ship": "Ship the order as ordered",
}


def wait_question(order: Order, policy: CancelByMessagePolicy, attempt: int) -> Question:
    return Question(
        step=f"buyer-request-{attempt}",
        title=f"Waiting for the buyer to cancel order {order.order_id} in Your Orders",
        prompt="\n".join(
            [
                *order_facts(order),
                "- Henpin asked the buyer to press *Cancel items* in Your Orders, so the "
                "cancellation is theirs and does not count against your cancellation rate.",
            ]
        ),
        choices=list(WAIT_LABELS),
        labels=WAIT_LABELS,
        deadline_hours=policy.wait_hours,
        timeout_choice="wait_ended",
        recommended="buyer_requested",
    )


def no_request_question(order: Order, policy: CancelByMessagePolicy, attempt: int) -> Question:
    can_remind = attempt < policy.reminders
    choices = list(NO_REQUEST_LABELS) if can_remind else ["cancel_as_seller", "ship"]
    on_deadline = policy.deadline_choice(attempt)
    return Question(
        step=f"no-buyer-request-{attempt}",
        title=f"The buyer has not cancelled order {order.order_id} in Your Orders",
        prompt="\n".join(
            [
                *order_facts(order),
                f"- Reminders sent so far: {attempt}",
                "- A cancellation you make yourself counts against your cancellation rate.",
            ]
        ),
        choices=choices,
        labels=NO_REQUEST_LABELS,
        note_required_for=["cancel_as_seller"],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice=on_deadline if on_deadline in choices else "ship",
        recommended="remind" if can_remind else "ship",
    )
