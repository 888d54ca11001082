"""Case type 2: a return request through the Return Center (返品センター経由の返品依頼).

The seller's checklist:
1. Did Amazon authorize the return itself (the returns report's status: US in-policy returns,
   or a marketplace set to authorize automatically)? Then record "authorized by Amazon" and go
   on. Otherwise read the buyer's reason and comment; policy recommends authorizing, declining,
   or (for an item cheaper than its return shipping) refunding the item price and letting the
   buyer keep or refuse it. SP-API cannot authorize a merchant-fulfilled return: the operator
   clicks it in Seller Central's Manage Returns and tells Henpin what they did, within 24 hours
   of the buyer's request.
2. Wait for the item to come back (no process held): Amazon's returns report saying it was
   delivered ends the wait, as does the operator; remind, then escalate when it is late.
3. Start Amazon's refund clock: two business days from the delivery, in the marketplace's local
   time, fixed on the case. Did Amazon refund the item already (refund at first scan, or a
   missed window; its financial events and the returns report's refunded amount)? Then nothing
   is left to refund: ask only whether the item calls for a SAFE-T claim, and close as refunded
   by Amazon, with nothing sent.
4. Record the item's condition; the policy's condition table gives the refund, full or partial
   with a restocking fee; the operator confirms or changes the amount with a reason, by the
   refund deadline.
5. Refund through the outbox (payment adjustment feed, reason CustomerReturn) and close with
   Amazon's result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any, Literal

from prefect import flow

from flows.steps import ask_operator, refund_and_close
from henpin.cases import return_request as texts
from henpin.cases.money import RefundFit
from henpin.cases.return_request import (
    ItemAfterAmazonRefund,
    ItemCondition,
    ItemReceipt,
    ReturnAuthorization,
    ReturnRefundConfirmation,
)
from henpin.domain import (
    AuthorizationStatus,
    Order,
    Outcome,
    ReturnRequest,
)
from henpin.policy import ReturnRequestPolicy
from tasks.amazon_refunds import (
    amazon_refund_on_arrival,
    refund_when_closed_at_amazon,
)
from tasks.cases import (
    close_case,
    flag_attention,
    read_return_request,
    record_details,
    record_recommendation,
)
from tasks.kinds import policy_step
from tasks.orders import order_of_case
from tasks.return_clock import note_authorized_by_amazon, start_refund_clock


@policy_step("recommend-return")
def recommend(ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy) -> dict[str, Any]:
    """What policy says to do with this return, and which rule said so."""
    return policy.recommend(ret, order, datetime.now(UTC)).model_dump(mode="json")


@policy_step("refund-for-condition")
def refund_for_condition(
    ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, condition: str
) -> dict[str, Any]:
    """The refund the condition table gives for the returned units."""
    return texts.proposal_for_condition(ret, order, policy, condition)


@flow(name="return-request", persist_result=True, log_prints=True)
async def return_request(
    case_id: int,
    order_id: str,
    policy: ReturnRequestPolicy,
    policy_version: str,
    marketplace_id: str | None = None,
    return_request: ReturnRequest | None = None,  # only runs started before it was read here
) -> Outcome:
    ret = return_request or read_return_request(case_id)
    order = order_of_case(case_id, order_id, marketplace_id or ret.marketplace_id)
    advice = recommend(ret, order, policy)
    record_recommendation(case_id, order, advice, policy_version)
    record_details(case_id, texts.return_details(ret))

    if ret.authorization_status is AuthorizationStatus.AUTHORIZED:
        note_authorized_by_amazon(case_id, ret)
    else:
        ended = await authorize_in_seller_central(case_id, ret, order, advice, policy)
        if ended is not None:
            return ended

    came_back = await wait_for_the_item(case_id, ret, order, policy)
    if came_back is None:
        return close_case(
            case_id, Outcome.RETURN_NOT_RECEIVED, "The item did not come back; escalated."
        )
    received_at, told_by = came_back
    refund_due = start_refund_clock(case_id, ret, order, policy, received_at, told_by)
    refunded_by_amazon = amazon_refund_on_arrival(case_id, ret, order)
    if refunded_by_amazon is not None:
        return await check_item_after_amazon_refund(case_id, ret, order, policy, refunded_by_amazon)

    inspected = await inspect_the_item(case_id, ret, order, policy)
    if inspected.choice == "escalate":
        return close_case(case_id, Outcome.ESCALATED, "Escalated to the owner after inspection.")
    condition = inspected.condition or ""
    proposal = refund_for_condition(ret, order, policy, condition)

    confirmed = await ask_operator(
        case_id,
        texts.refund_question(ret, order, policy, proposal, refund_due),
        ReturnRefundConfirmation,
    )
    if confirmed.choice == "escalate":
        return close_case(case_id, Outcome.ESCALATED, "Escalated to the owner before refunding.")
    refund = texts.refund_from_answer(ret, order, proposal, confirmed)
    if refund is None:
        return close_case(
            case_id, Outcome.NO_REFUND_DUE, f"No refund is due for condition '{condition}'."
        )
    full = texts.is_full_refund(ret, order, refund)
    outcome = Outcome.REFUNDED_IN_FULL if full else Outcome.REFUNDED_PARTLY
    return await refund_and_close(case_id, order, refund, "refund", outcome, returned=ret)


async def inspect_the_item(
    case_id: int, ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy
) -> ItemCondition:
    """Record the item's condition. The refund is owed, so nobody answering in time never
    closes the case: it is flagged for attention and the question asked again."""
    for overdue in count():
        question = texts.condition_question(ret, order, policy, overdue)
        inspected = await ask_operator(case_id, question, ItemCondition)
        if inspected.choice != texts.INSPECTION_OVERDUE:
            if overdue:
                flag_attention(case_id, texts.inspection_overdue(order), clear=True)
            return inspected
        flag_attention(case_id, texts.inspection_overdue(order))
    raise AssertionError("unreachable")


async def check_item_after_amazon_refund(
    case_id: int, ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy, fit: RefundFit
) -> Outcome:
    """Amazon refunded the item itself: nothing is sent; the operator only checks whether the
    item that came back calls for a SAFE-T claim on Amazon's refund."""
    checked = await ask_operator(
        case_id, texts.safe_t_question(ret, order, policy, fit), ItemAfterAmazonRefund
    )
    if checked.choice == "escalate":
        return close_case(
            case_id, Outcome.ESCALATED, f"{texts.amazon_refunded(fit)}; escalated to the owner."
        )
    return close_case(
        case_id,
        Outcome.REFUNDED_BY_AMAZON,
        texts.closing_message(fit, checked.choice, checked.note),
    )


async def authorize_in_seller_central(
    case_id: int,
    ret: ReturnRequest,
    order: Order,
    advice: dict[str, Any],
    policy: ReturnRequestPolicy,
) -> Outcome | None:
    """Ask the operator to answer the request in Manage Returns (due 24 hours after the buyer's
    request). The case's outcome when that ends it; None when the return was authorized."""
    authorization = await ask_operator(
        case_id, texts.authorization_question(ret, order, advice, policy), ReturnAuthorization
    )
    if authorization.buyer_comment:
        record_details(case_id, {"buyer_comment": authorization.buyer_comment})
    if authorization.choice == "declined":
        return close_case(
            case_id, Outcome.RETURN_DECLINED, f"Return declined: {authorization.note}"
        )
    if authorization.choice == texts.CLOSED_AT_AMAZON:
        return close_after_amazon_closed(case_id, ret, order)
    if authorization.choice == "escalate":
        return close_case(case_id, Outcome.ESCALATED, "Escalated to the owner.")
    if authorization.choice == "keep_item_refund":
        item_price = texts.item_price_refund(ret, order)
        return await refund_and_close(
            case_id, order, item_price, "keep-item", Outcome.KEEP_ITEM_REFUNDED, returned=ret
        )
    return None


def close_after_amazon_closed(case_id: int, ret: ReturnRequest, order: Order) -> Outcome:
    """Amazon's report shows the request Closed (answered by ingestion, never by a person):
    refunded by Amazon with its amount when Amazon refunded the item, else closed at Amazon."""
    fit = refund_when_closed_at_amazon(case_id, ret, order)
    outcome = (
        Outcome.REFUNDED_BY_AMAZON if fit.by_amazon is not None else Outcome.RETURN_CLOSED_AT_AMAZON
    )
    return close_case(case_id, outcome, texts.closed_at_amazon(ret, fit))


#: Who said the item came back: Amazon's returns report, or the operator.
ReceiptSource = Literal["amazon-report", "operator"]


async def wait_for_the_item(
    case_id: int, ret: ReturnRequest, order: Order, policy: ReturnRequestPolicy
) -> tuple[datetime, ReceiptSource] | None:
    """Wait for the parcel to come back: once, then once more after a reminder. When it came
    back and who said so ("amazon-report": the returns report's delivery date, which ingestion
    also uses to answer the wait; "operator": the time of their answer), or None."""
    if ret.return_delivery_date is not None:
        return ret.return_delivery_date, "amazon-report"
    first = await ask_operator(
        case_id, texts.receipt_question(ret, order, policy, reminded=False), ItemReceipt
    )
    if first.choice == "received":
        return came_back_at(first)
    if first.choice == "remind":
        second = await ask_operator(
            case_id, texts.receipt_question(ret, order, policy, reminded=True), ItemReceipt
        )
        if second.choice == "received":
            return came_back_at(second)
    return None


def came_back_at(received: ItemReceipt) -> tuple[datetime, ReceiptSource]:
    """When the item came back: the report's delivery date if the answer carries one."""
    if received.return_delivery_date is not None:
        return received.return_delivery_date, "amazon-report"
    return received.at, "operator"
