"""Case type 3: a buyer asked to cancel by message instead of through Amazon
(コンタクトフォーム経由のキャンセル依頼).

Amazon cannot tell who caused a cancellation the seller makes: it counts against the seller's
cancellation rate even with a buyer reason. So:
1. Reply to the buyer, in the marketplace's language, asking them to press "Cancel items" in
   Your Orders, so the cancellation is the buyer's own.
2. Wait for that request (no process held). When ingestion sees it, this case hands over to a
   buyer-cancel-request case for the same order (linked), which cancels as BuyerCanceled.
3. If the wait ends first, the operator chooses: remind the buyer, cancel as the seller
   (counts against the rate), or ship the order.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow

from flows.cancel_request import cancel_as_buyer_requested
from flows.waiting import OperatorAnswer, ask_operator
from henpin.cases import cancel_by_message as texts
from henpin.domain import FulfillmentStatus, Outcome
from henpin.policy import CancelByMessagePolicy
from tasks.cases import close_case, record_details
from tasks.messages import queue_reply_email
from tasks.orders import read_order


class BuyerRequestWait(OperatorAnswer):
    """Answered by Henpin when the buyer's cancel request arrives, or by the deadline."""

    choice: Literal["buyer_requested", "wait_ended"]


class NoRequestDecision(OperatorAnswer):
    choice: Literal["remind", "cancel_as_seller", "ship"]


@flow(name="cancel-by-message", persist_result=True, log_prints=True)
async def cancel_by_message(
    case_id: int,
    order_id: str,
    buyer_message: str,
    policy: CancelByMessagePolicy,
    policy_version: str,
) -> Outcome:
    order = read_order(order_id)
    record_details(case_id, {"buyer_message": buyer_message})
    if order.fulfillment_status == FulfillmentStatus.CANCELLED:
        return close_case(case_id, Outcome.ALREADY_CANCELLED, "The order is already cancelled.")
    if order.fulfillment_status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED):
        return close_case(
            case_id, Outcome.ORDER_CHANGED, "The order has shipped: handle it as a return instead."
        )

    for attempt in range(policy.reminders + 1):
        queue_reply_email(case_id, order, policy, attempt)
        waited = await ask_operator(
            case_id, texts.wait_question(order, policy, attempt), BuyerRequestWait
        )
        if waited.choice == "buyer_requested":
            return close_case(
                case_id,
                Outcome.HANDED_TO_CANCEL_REQUEST,
                "The buyer requested the cancellation in Your Orders; the buyer-cancel-request "
                "case carries it out.",
            )
        decision = await ask_operator(
            case_id, texts.no_request_question(order, policy, attempt), NoRequestDecision
        )
        if decision.choice == "ship":
            return close_case(case_id, Outcome.SHIPPED_AS_ORDERED, "The order ships as ordered.")
        if decision.choice == "cancel_as_seller":
            # Counts against the cancellation rate: the operator was warned in the question.
            return await cancel_as_buyer_requested(
                case_id, order_id, done=Outcome.CANCELLED_BY_SELLER
            )
    return close_case(case_id, Outcome.ESCALATED, "No cancel request after all reminders.")
