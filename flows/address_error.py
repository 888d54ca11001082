"""Case type 5: the parcel came back undeliverable because of the address (住所不備).

The seller's checklist:
1. Ask the buyer to confirm their address (Messaging API: confirm delivery details, in the
   buyer's language of preference), not Seller Support: Amazon only requires shipping to the
   address the buyer gave.
2. Wait for the buyer's answer (the operator records it; deadline).
3. Choose, seeing the money of each option: reship to the confirmed address (tracking number
   and cost recorded), refund partly by agreement (reason CustomerAddressIncorrect), or cancel
   as buyer-caused and ask the buyer to reorder with the right address (Amazon cannot change the
   address of an order) — which recovers most of the referral fee.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.steps import ask_operator, refund_and_close, wait_for_amazon
from henpin.cases import address_error as texts
from henpin.cases.address_error import AddressAnswer, Resolution
from henpin.domain import ActionStatus, Order, Outcome
from henpin.policy import AddressErrorPolicy
from tasks.cases import close_case, mark_acting, record_details
from tasks.kinds import policy_step
from tasks.messages import queue_buyer_message, read_buyer_language
from tasks.orders import order_of_case


@policy_step("money-of-each-option")
def money_of_each_option(order: Order, policy: AddressErrorPolicy) -> list[dict[str, Any]]:
    """What each way out costs or recovers, from the policy's money values."""
    return [o.model_dump(mode="json") for o in policy.options_money(order)]


@flow(name="address-error", persist_result=True, log_prints=True)
async def address_error(
    case_id: int,
    order_id: str,
    policy: AddressErrorPolicy,
    policy_version: str,
    marketplace_id: str | None = None,
) -> Outcome:
    order = order_of_case(case_id, order_id, marketplace_id)
    options = money_of_each_option(order, policy)
    record_details(case_id, {"options": options})

    buyer = read_buyer_language(order)
    record_details(case_id, {"buyer_locale": buyer.locale, "buyer_language": buyer.language})
    asked = queue_buyer_message(
        case_id,
        "confirm-address",
        order,
        "confirmDeliveryDetails",
        texts.confirm_address_text(order, policy, buyer.language),
    )
    mark_acting(case_id, "Asked the buyer to confirm their delivery address (Amazon message).")
    sent = await wait_for_amazon(asked)
    message_sent = sent.status == ActionStatus.DONE
    if not message_sent:
        record_details(case_id, {"message_problem": sent.result_message})

    answer = await ask_operator(
        case_id, texts.address_question(order, policy, message_sent), AddressAnswer
    )
    if answer.choice == "address_confirmed":
        record_details(case_id, {"confirmed_address": answer.confirmed_address})

    resolution = await ask_operator(
        case_id, texts.resolution_question(order, policy, options), Resolution
    )
    if resolution.choice == "escalate":
        return close_case(case_id, Outcome.ESCALATED, "Escalated to the owner.")
    if resolution.choice == "reship":
        record_details(case_id, {"reship": texts.reship_details(resolution)})
        return close_case(
            case_id,
            Outcome.RESHIPPED,
            f"Reshipped to the confirmed address, tracking {resolution.tracking_number}.",
        )
    if resolution.choice == "partial_refund":
        refund = texts.partial_refund(order, resolution)
        return await refund_and_close(
            case_id, order, refund, "address-partial", Outcome.REFUNDED_PARTLY
        )
    refund = texts.cancel_for_reorder_refund(order, policy)
    return await refund_and_close(
        case_id, order, refund, "address-reorder", Outcome.CANCELLED_FOR_REORDER
    )
