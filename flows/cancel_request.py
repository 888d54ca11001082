"""Case type 1: a buyer asked Amazon to cancel an order (注文のキャンセル依頼).

The seller's checklist:
1. An order still pending (about the first 30 minutes) needs nothing: Amazon cancels it.
2. An unshipped order is cancelled with reason BuyerCanceled, so it does not count against the
   seller's cancellation rate. Policy says which requests Henpin carries out on its own and
   which wait for an operator (by value, SKU, marketplace, ...), and until when.
3. Right before acting, look at the order again: if it shipped meanwhile, stop safely.
4. Cancel through the outbox (order acknowledgement feed) and close with Amazon's result.
5. A request for only some items of a multi-item order goes the way Amazon documents: the
   operator ships and confirms the other items, then Henpin refunds the cancelled ones with
   QuantityCancelled (payment adjustment feed, CustomerCancel; henpin/cases/part_cancellation).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

from prefect import flow

from flows.steps import ask_operator, cancel_as_buyer_requested, refund_and_close
from henpin.cases.cancel_request import CancelDecision, cancel_request_question
from henpin.cases.part_cancellation import (
    PartCancelDecision,
    part_cancel_question,
    part_cancellation,
    requested_part,
)
from henpin.domain import FulfillmentStatus, Order, Outcome
from henpin.policy import CancelRequestPolicy
from henpin.policy.cancel_request import Recommendation
from tasks.cases import close_case, record_recommendation
from tasks.kinds import policy_step
from tasks.orders import order_of_case, read_order_after


@policy_step("recommend")
def recommend(order: Order, policy: CancelRequestPolicy) -> dict[str, Any]:
    """What policy says to do with this request, and which rule said so."""
    return policy.recommend(order, datetime.now(UTC)).model_dump(mode="json")


@flow(name="cancel-request", persist_result=True, log_prints=True)
async def cancel_request(
    case_id: int,
    order_id: str,
    policy: CancelRequestPolicy,
    policy_version: str,
    marketplace_id: str | None = None,
) -> Outcome:
    order = order_of_case(case_id, order_id, marketplace_id)
    advice = recommend(order, policy)
    record_recommendation(case_id, order, advice, policy_version)
    recommended = Recommendation.model_validate(advice)

    if recommended.action == "nothing_to_do":
        return close_case(case_id, nothing_to_do_outcome(order), recommended.reason)

    if recommended.action == "ask_operator":
        question = cancel_request_question(
            order,
            advice,
            deadline_hours=policy.operator.deadline_hours,
            timeout_choice=policy.operator.on_deadline,
        )
        decision = await ask_operator(case_id, question, CancelDecision)
        if decision.choice != "cancel":
            return close_without_cancelling(case_id, decision)

    if requested_part(order):
        return await cancel_the_part_asked(case_id, order, policy)
    return await cancel_as_buyer_requested(case_id, order_id, marketplace_id=order.marketplace_id)


async def cancel_the_part_asked(case_id: int, order: Order, policy: CancelRequestPolicy) -> Outcome:
    """The buyer wants only some items cancelled: the operator ships and confirms the others
    first, then the asked items' unshipped units are refunded with QuantityCancelled (Amazon's
    documented route; the order acknowledgement feed would cancel the whole order)."""
    for round_ in count(1):
        question = part_cancel_question(
            order, deadline_hours=policy.operator.deadline_hours, round_=round_
        )
        decision = await ask_operator(case_id, question, PartCancelDecision)
        if decision.choice != "others_shipped":
            return close_without_cancelling(case_id, decision)
        order = read_order_after(order.order_id, order.marketplace_id, question.step)
        if order.fulfillment_status != FulfillmentStatus.PARTIALLY_SHIPPED:
            if order.fulfillment_status in (FulfillmentStatus.PENDING, FulfillmentStatus.UNSHIPPED):
                continue  # nothing shipped yet: ask again, saying so
            return close_case(
                case_id,
                nothing_to_do_outcome(order)
                if order.fulfillment_status == FulfillmentStatus.CANCELLED
                else Outcome.ORDER_CHANGED,
                f"Did not cancel part of the order: it is now {order.fulfillment_status.value}.",
            )
        refund = part_cancellation(order)
        if refund is None:
            return close_case(
                case_id,
                Outcome.ORDER_CHANGED,
                "Did not cancel part of the order: nothing of the items the buyer asked to "
                "cancel is left unshipped (or their price is unknown).",
            )
        return await refund_and_close(case_id, order, refund, "part-cancel", Outcome.PART_CANCELLED)
    raise AssertionError("unreachable")


def close_without_cancelling(
    case_id: int, decision: CancelDecision | PartCancelDecision
) -> Outcome:
    """The operator keeps the order (`keep_order`) or hands it to the owner (`escalate`)."""
    if decision.choice == "keep_order":
        return close_case(case_id, Outcome.KEPT_ORDER, f"Kept the order ({decision.operator}).")
    return close_case(case_id, Outcome.ESCALATED, f"Escalated to the owner ({decision.operator}).")


def nothing_to_do_outcome(order: Order) -> Outcome:
    if order.fulfillment_status == FulfillmentStatus.CANCELLED:
        return Outcome.ALREADY_CANCELLED
    return Outcome.NOTHING_TO_DO_PENDING
