"""Case type 4: a refused or unclaimed delivery (受取の拒否および放置).

The seller's checklist:
1. The parcel is coming back (refused by the buyer, or never collected). No refund until the
   buyer asks for one: wait (no process held), with a reminder to check, then close.
2. When the buyer asks, refund per policy: by default the item price only, the outbound
   shipping kept, with reason RefusedDelivery (refused) or Undeliverable (unclaimed).
3. If Amazon reports meanwhile that the parcel came back because of the address, the
   address-error case takes it over (Henpin answers `handed_over`): nothing is refunded here.
"""

from __future__ import annotations

from prefect import flow

from flows.steps import ask_operator, refund_and_close
from henpin.cases import refused_delivery as texts
from henpin.cases.refused_delivery import RefundAsked, RefusedRefundConfirmation
from henpin.domain import Outcome
from henpin.policy import RefusedDeliveryPolicy
from tasks.cases import close_case, record_details
from tasks.orders import order_of_case


@flow(name="refused-delivery", persist_result=True, log_prints=True)
async def refused_delivery(
    case_id: int,
    order_id: str,
    refused: bool,
    policy: RefusedDeliveryPolicy,
    policy_version: str,
    marketplace_id: str | None = None,
) -> Outcome:
    order = order_of_case(case_id, order_id, marketplace_id)
    record_details(case_id, {"delivery": "refused by the buyer" if refused else "unclaimed"})

    asked = await ask_operator(
        case_id, texts.refund_asked_question(order, policy, reminded=False), RefundAsked
    )
    if asked.choice == "remind":
        asked = await ask_operator(
            case_id, texts.refund_asked_question(order, policy, reminded=True), RefundAsked
        )
    if asked.choice == "handed_over":
        return close_case(case_id, Outcome.HANDED_TO_ADDRESS_ERROR, asked.note)
    if asked.choice != "buyer_asked":
        return close_case(
            case_id, Outcome.NO_REFUND_REQUESTED, "The buyer did not ask for a refund."
        )

    proposal = texts.proposed_refund(order, policy, refused=refused)
    confirmed = await ask_operator(
        case_id, texts.refund_question(order, policy, proposal), RefusedRefundConfirmation
    )
    if confirmed.choice == "handed_over":
        return close_case(case_id, Outcome.HANDED_TO_ADDRESS_ERROR, confirmed.note)
    if confirmed.choice == "no_refund":
        return close_case(case_id, Outcome.NO_REFUND_REQUESTED, f"No refund: {confirmed.note}")
    refund = texts.refund_from_answer(order, proposal, confirmed)
    return await refund_and_close(
        case_id, order, refund, "refused-delivery", texts.outcome_for(order, refund)
    )
