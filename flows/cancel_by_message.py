"""Case type 3: a buyer asked to cancel by message instead of through Amazon
(コンタクトフォーム経由のキャンセル依頼).

Amazon cannot tell who caused a cancellation the seller makes: it counts against the seller's
cancellation rate even with a buyer reason. So:
1. Reply to the buyer, in their language (Amazon's getAttributes), asking them to press
   "Cancel items" in Your Orders, so the cancellation is the buyer's own. By e-mail to their
   Amazon relay address; when Amazon gives Henpin no address, the operator sends the reply in
   Seller Central's Buyer-Seller Messages and records it (or escalates).
2. Wait for that request (no process held). When ingestion sees it, this case hands over to a
   buyer-cancel-request case for the same order (linked), which cancels as BuyerCanceled.
3. If the wait ends first, the operator chooses: remind the buyer, cancel as the seller
   (counts against the rate), or ship the order.
"""

from __future__ import annotations

from prefect import flow

from flows.steps import ask_operator, cancel_as_buyer_requested
from henpin.cases import cancel_by_message as texts
from henpin.cases.cancel_by_message import (
    AnsweredInSellerCentral,
    BuyerRequestWait,
    NoRequestDecision,
)
from henpin.domain import FulfillmentStatus, Order, Outcome
from henpin.policy import CancelByMessagePolicy
from tasks.cases import close_case, record_details
from tasks.messages import linked_cancel_request, queue_reply_email, read_buyer_language
from tasks.orders import order_of_case


async def reply_to_buyer(
    case_id: int, order: Order, policy: CancelByMessagePolicy, attempt: int, language: str
) -> bool:
    """E-mail the reply (or reminder) to the buyer's Amazon relay address; without one, ask the
    operator to send it in Seller Central. True once the buyer has been written to."""
    if order.buyer_email:
        queue_reply_email(case_id, order, policy, attempt, language)
        return True
    answered = await ask_operator(
        case_id,
        texts.answer_in_seller_central_question(order, policy, attempt, language),
        AnsweredInSellerCentral,
    )
    return answered.choice == "answered_in_seller_central"


async def buyer_requested_cancel(
    case_id: int, order: Order, policy: CancelByMessagePolicy, attempt: int
) -> bool:
    """Wait for the buyer's own cancel request (Henpin answers the wait when ingestion sees it,
    or the deadline ends it); True at once when it already came, e.g. while the operator was
    answering in Seller Central."""
    if linked_cancel_request(case_id) is not None:
        return True
    waited = await ask_operator(
        case_id, texts.wait_question(order, policy, attempt), BuyerRequestWait
    )
    return waited.choice == "buyer_requested"


@flow(name="cancel-by-message", persist_result=True, log_prints=True)
async def cancel_by_message(
    case_id: int,
    order_id: str,
    policy: CancelByMessagePolicy,
    policy_version: str,
    marketplace_id: str | None = None,
    buyer_message: str = "",  # only runs started before it was kept in the case store alone
) -> Outcome:
    order = order_of_case(case_id, order_id, marketplace_id)
    if buyer_message:
        record_details(case_id, {"buyer_message": buyer_message})
    if order.fulfillment_status == FulfillmentStatus.CANCELLED:
        return close_case(case_id, Outcome.ALREADY_CANCELLED, "The order is already cancelled.")
    if order.fulfillment_status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED):
        return close_case(
            case_id, Outcome.ORDER_CHANGED, "The order has shipped: handle it as a return instead."
        )

    buyer = read_buyer_language(order)
    record_details(case_id, {"buyer_locale": buyer.locale, "buyer_language": buyer.language})
    for attempt in range(policy.reminders + 1):
        if not await reply_to_buyer(case_id, order, policy, attempt, buyer.language):
            return close_case(case_id, Outcome.ESCALATED, texts.NOT_ANSWERED)
        if await buyer_requested_cancel(case_id, order, policy, attempt):
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
                case_id,
                order_id,
                done=Outcome.CANCELLED_BY_SELLER,
                marketplace_id=order.marketplace_id,
            )
    # The last round's question offers no reminder (texts.no_request_question): it ships or
    # cancels, so no round is left over.
    raise AssertionError("unreachable")
