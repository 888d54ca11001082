"""Cancel asked by message: the waits, the operator's question when the buyer does not act, and
the reply the operator sends in Seller Central when Amazon gives no buyer e-mail."""

from __future__ import annotations

from typing import ClassVar, Literal

from henpin.cases.answers import OperatorAnswer
from henpin.cases.buyer_contact import seller_central_links
from henpin.domain import Order
from henpin.policy import CancelByMessagePolicy
from henpin.questions import Question, line, order_facts


class BuyerRequestWait(OperatorAnswer):
    """Answered by Henpin when the buyer's cancel request arrives, or by the deadline."""

    choice: Literal["buyer_requested", "wait_ended"]

    labels: ClassVar[dict[str, str]] = {
        "buyer_requested": "The buyer requested the cancellation in Your Orders (Henpin answers "
        "this itself when it sees the request)",
        "wait_ended": "Stop waiting for the buyer",
    }


class NoRequestDecision(OperatorAnswer):
    """What to do when the buyer did not request the cancellation in time."""

    choice: Literal["remind", "cancel_as_seller", "ship"]

    labels: ClassVar[dict[str, str]] = {
        "remind": "Remind the buyer to cancel in Your Orders, and wait again",
        "cancel_as_seller": "Cancel it myself (WARNING: counts against your cancellation rate)",
        "ship": "Ship the order as ordered",
    }


def wait_question(order: Order, policy: CancelByMessagePolicy, attempt: int) -> Question:
    return Question(
        step=f"buyer-request-{attempt}",
        title_code="cbm-wait",
        title_values={"order_id": order.order_id},
        prompt_lines=[*order_facts(order), line("cbm-asked")],
        choices=list(BuyerRequestWait.labels),
        labels=BuyerRequestWait.labels,
        deadline_hours=policy.wait_hours,
        timeout_choice="wait_ended",
        recommended="buyer_requested",
    )


def no_request_question(order: Order, policy: CancelByMessagePolicy, attempt: int) -> Question:
    can_remind = attempt < policy.reminders
    choices = list(NoRequestDecision.labels) if can_remind else ["cancel_as_seller", "ship"]
    on_deadline = policy.deadline_choice(attempt)
    return Question(
        step=f"no-buyer-request-{attempt}",
        title_code="cbm-no-request",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *order_facts(order),
            line("cbm-reminders-sent", count=attempt),
            line("cbm-self-cancel-counts"),
        ],
        choices=choices,
        labels=NoRequestDecision.labels,
        note_required_for=["cancel_as_seller"],
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice=on_deadline if on_deadline in choices else "ship",
        recommended="remind" if can_remind else "ship",
    )


# --- No buyer e-mail: the operator answers in Seller Central ------------------------------------


class AnsweredInSellerCentral(OperatorAnswer):
    """The operator sent Henpin's reply in Seller Central (no buyer e-mail), or escalates."""

    choice: Literal["answered_in_seller_central", "escalate"]

    labels: ClassVar[dict[str, str]] = {
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
        title_code=f"cbm-send-{what}",
        title_values={"order_id": order.order_id},
        prompt_lines=[
            *order_facts(order),
            line(f"cbm-no-email-{what}"),
            line(f"cbm-send-{what}", language=language),
            "",
            line("subject", subject=reply.subject),
            "",
            quoted,
        ],
        choices=list(AnsweredInSellerCentral.labels),
        labels=AnsweredInSellerCentral.labels,
        deadline_hours=policy.operator.deadline_hours,
        timeout_choice="escalate",
        recommended="answered_in_seller_central",
        links=seller_central_links(order),
    )
