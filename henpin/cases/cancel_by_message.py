"""Cancel asked by message: the waits, the operator's question when the buyer does not act, and
the reply the operator sends in Seller Central when Amazon gives no buyer e-mail."""

from __future__ import annotations

from henpin.cases.buyer_contact import seller_central_links
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


# --- No buyer e-mail: the operator answers in Seller Central ------------------------------------

SELLER_CENTRAL_LABELS = {
    "answered_in_seller_central": "I sent this reply in Seller Central's Buyer-Seller Messages",
    "escalate": "Escalate to the owner; Henpin closes the case without replying",
}
NOT_ANSWERED = "Nobody answered the buyer in Seller Central; escalated to the owner."


def answer_in_seller_central_question(
    order: Order, policy: CancelByMessagePolicy, attempt: int, language: str
) -> Question:
    """Amazon gave no e-mail address for the buyer (Henpin's application lacks the restricted
    Direct-to-Consumer Delivery role, or the order is not one Amazon shows it for): the operator
    sends the reply in Seller Central, in the buyer's thread, and says so."""
    reply = policy.reply(order, reminder=attempt > 0, language=language)
    what = "reminder" if attempt > 0 else "reply"
    quoted = "\n".join(f"> {line}" if line else ">" for line in reply.body.splitlines())
    return Question(
        step=f"reply-in-seller-central-{attempt}",
        title=f"Send the {what} to the buyer of order {order.order_id} in Seller Central",
        prompt="\n".join(
            [
                *order_facts(order),
                "- Amazon does not give Henpin this buyer's e-mail address (that needs the "
                "restricted Direct-to-Consumer Delivery role), so Henpin cannot send the "
                f"{what} itself.",
                "- Open Buyer-Seller Messages (link), search the order id, and answer in the "
                f"buyer's thread with this {what} (language: {language}). Then record it here; "
                "Henpin then waits for the buyer's own cancel request.",
                "",
                f"**Subject:** {reply.subject}",
                "",
                quoted,
            ]
        ),
        choices=list(SELLER_CENTRAL_LABELS),
        labels=SELLER_CENTRAL_LABELS,
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice="escalate",
        recommended="answered_in_seller_central",
        links=seller_central_links(order),
    )
